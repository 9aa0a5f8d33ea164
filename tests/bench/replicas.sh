#!/usr/bin/env bash
# Replication benchmark, in one run on one generated Zeek log, three nodes on
# loopback with the cluster secret on:
#  - what replicas cost an import into n1: `import.replicas` 1, 2 and 3, each on
#    a fresh cluster (placement local: the first replica on n1, the others on
#    the other nodes, stored over the data plane in parallel);
#  - re-replication: with 2 replicas, n3 is killed and the time until n1 and n2
#    again hold two replicas of everything (`cluster.replica-timeout` 1 s) gives
#    the copy rate in events per second.
# No peer tool replicates (VAST, Tenzir and DuckDB do not): the baseline is our
# own unreplicated import.
#
#   tests/bench/replicas.sh [LINES]      (default 1000000)
set -euo pipefail
lines=${1:-1000000}
. "$(dirname "$0")/lib.sh"

rm -f "$work/cluster.secret"
"$vast" secret --out "$work/cluster.secret" 2>/dev/null
export VAST_CLUSTER__SECRET_FILE="$work/cluster.secret" VAST_COMPACTION__INTERVAL=0
export VAST_CLUSTER__REPLICA_TIMEOUT=1
# Partitions of a quarter million events, so n3 holds some of them to lose.
export VAST_IMPORT__PARTITION_SIZE=262144
pids=""
trap 'kill $pids 2>/dev/null || true' EXIT

# cluster REPLICAS: starts n1..n3 on fresh databases; sets p1..p3 and n1..n3.
cluster() {
  rm -rf "$work"/r1 "$work"/r2 "$work"/r3
  p1=$(port); p2=$(port); p3=$(port)
  export VAST_IMPORT__REPLICAS=$1
  RUST_LOG=warn "$vast" -i n1 -d "$work/r1" -e 127.0.0.1:$p1 start 2>"$work/n1.log" & n1=$!
  RUST_LOG=warn "$vast" -i n2 -d "$work/r2" -e 127.0.0.1:$p2 start --peer 127.0.0.1:$p1 2>"$work/n2.log" & n2=$!
  RUST_LOG=warn "$vast" -i n3 -d "$work/r3" -e 127.0.0.1:$p3 start --peer 127.0.0.1:$p1 2>"$work/n3.log" & n3=$!
  pids="$n1 $n2 $n3"
  for p in $p1 $p2 $p3; do
    for _ in $(seq 100); do "$vast" -e 127.0.0.1:$p status >/dev/null 2>&1 && break; sleep 0.2; done
  done
  until [ "$("$vast" -e 127.0.0.1:$p1 peers | grep -c '"reachable": true')" = 3 ]; do sleep 0.2; done
}
stop() { kill $pids 2>/dev/null || true; wait $pids 2>/dev/null || true; pids=""; }
import_time() { local s; s=$(now); "$vast" -e 127.0.0.1:$p1 import -r "$log" zeek 2>/dev/null; elapsed "$s" "$(now)"; }
repl() { "$vast" -e 127.0.0.1:$1 status | python3 -c 'import json,sys; r=json.load(sys.stdin)["replication"]; print(r["partitions"], r["under-replicated"])'; }

declare -A t
for r in 1 2 3; do
  cluster $r
  t[$r]=$(import_time)
  n=$("$vast" -e 127.0.0.1:$p1 count '#type == "zeek.conn"')
  [ "$n" = "$lines" ] || { echo "count with $r replicas: $n, expected $lines" >&2; exit 1; }
  if [ "$r" = 2 ]; then
    # Wait for every node to see two replicas of everything, then lose n3.
    until [ "$(repl $p1 | cut -d' ' -f2)$(repl $p2 | cut -d' ' -f2)$(repl $p3 | cut -d' ' -f2)" = 000 ]; do sleep 0.2; done
    held3=$(repl $p3 | cut -d' ' -f1)
    events3=$("$vast" -e 127.0.0.1:$p3 status | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')
    kill -9 $n3; s=$(now)
    until [ "$(repl $p1 | cut -d' ' -f2)$(repl $p2 | cut -d' ' -f2)" = 00 ] && \
          [ "$(repl $p1 | cut -d' ' -f1)" = "$(repl $p2 | cut -d' ' -f1)" ]; do sleep 0.2; done
    t_copy=$(elapsed "$s" "$(now)")
    n=$("$vast" -e 127.0.0.1:$p1 count '#type == "zeek.conn"')
    [ "$n" = "$lines" ] || { echo "count after re-replication: $n, expected $lines" >&2; exit 1; }
  fi
  stop
done

echo "replication benchmark: $lines Zeek conn events imported into n1 of three nodes on loopback, $(nproc) cores"
printf '%-28s %10s %14s %10s\n' "import.replicas" "seconds" "events/s" "vs 1"
for r in 1 2 3; do
  printf '%-28s %10s %14s %10s\n' "$r" "${t[$r]}" "$(rate "${t[$r]}")" "$(python3 -c "print(f'{${t[1]}/${t[$r]}:.2f}')")"
done
echo "re-replication after losing n3, which held $held3 partitions ($events3 events), replica-timeout 1 s:"
echo "  ${t_copy}s until n1 and n2 held two replicas of everything again: $(python3 -c "print(f'{$events3/$t_copy:.0f}')") events/s copied, timeout included"
