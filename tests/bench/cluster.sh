#!/usr/bin/env bash
# Cluster benchmark, whole-process figures in one run on one generated Zeek log:
#  - client-process import (`vast import`) vs an in-node source (`spawn source -r`)
#    into the same node;
#  - import through n1 into n2 (relayed batches) vs embedded `vast -N import`;
#  - data-plane throughput of rkyv batches between two processes vs raw TCP.
#
#   tests/bench/cluster.sh [LINES]      (default 2000000)
set -euo pipefail
lines=${1:-2000000}
. "$(dirname "$0")/lib.sh"

rm -rf "$work/c1" "$work/c2" "$work/emb.db" "$work/cluster.secret"
# Figures count with the cluster secret on, as a real cluster runs; n1 may read
# the generated log for the in-node source.
"$vast" secret --out "$work/cluster.secret" 2>/dev/null
export VAST_CLUSTER__SECRET_FILE="$work/cluster.secret"
p1=$(port); p2=$(port)
VAST_SOURCE__READ_DIRS="$work" RUST_LOG=warn "$vast" -i n1 -d "$work/c1" -e 127.0.0.1:$p1 start 2>"$work/n1.log" & n1=$!
RUST_LOG=warn "$vast" -i n2 -d "$work/c2" -e 127.0.0.1:$p2 start --peer 127.0.0.1:$p1 2>"$work/n2.log" & n2=$!
trap 'kill $n1 $n2 2>/dev/null || true' EXIT
for p in $p1 $p2; do
  for _ in $(seq 100); do "$vast" -e 127.0.0.1:$p status >/dev/null 2>&1 && break; sleep 0.2; done
done

s=$(now); "$vast" -e 127.0.0.1:$p1 import -r "$log" zeek 2>/dev/null; t_client=$(elapsed "$s" "$(now)")

# The in-node source's time: the spawn command's, then the import's as the node
# timed it (`seconds`). Timing until a poll saw `done` counted the poll's lag
# against the source: a busy node answers `status --detailed` slowly, and polls
# every 50 ms saw `done` 0.1-0.27 s after the node recorded it.
s=$(now)
label=$("$vast" -e 127.0.0.1:$p1 spawn source -r "$log" zeek)
t_spawn=$(elapsed "$s" "$(now)")
until t_src=$("$vast" -e 127.0.0.1:$p1 status --detailed | python3 -c "import json,sys; s=json.load(sys.stdin)['sources']['$label']; print(s['seconds']) if s['done'] else sys.exit(1)"); do sleep 0.5; done
t_node=$(python3 -c "print(f'{$t_spawn+$t_src:.3f}')")

s=$(now); "$vast" -e 127.0.0.1:$p1 --node n2 import -r "$log" zeek 2>/dev/null; t_relay=$(elapsed "$s" "$(now)")
s=$(now); "$vast" -N -d "$work/emb.db" import -r "$log" zeek 2>/dev/null; t_emb=$(elapsed "$s" "$(now)")

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; input: $lines lines, $(stat -c %s "$log") bytes"
echo
printf '%-48s %8s %10s\n' "import into one node" seconds events/s
printf '%-48s %8s %10s\n' "client process: vast import -r FILE" "$t_client" "$(rate "$t_client")"
printf '%-48s %8s %10s\n' "in-node source: vast spawn source -r FILE" "$t_node" "$(rate "$t_node")"
printf '%-48s %8s\n' "ratio client/in-node throughput (target >= 0.9)" "$(python3 -c "print(f'{$t_node/$t_client:.2f}')")"
echo
printf '%-48s %8s %10s\n' "vast -e n1 --node n2 import (relayed to n2)" "$t_relay" "$(rate "$t_relay")"
printf '%-48s %8s %10s\n' "vast -N import (embedded)" "$t_emb" "$(rate "$t_emb")"
echo
"$vast" -e 127.0.0.1:$p2 bench-dataplane --mib 1024
