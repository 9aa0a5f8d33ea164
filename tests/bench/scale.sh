#!/usr/bin/env bash
# Scale benchmark: `vast -N` beside the duckdb CLI on generated Zeek conn logs of
# several sizes, to show what 10x the data costs. For each size: ingest time, disk
# (whole vast.db and the DuckDB file, each over the raw log), and a rare host's
# export and count (median of 5 whole-process runs), with the answers checked to
# be identical (row counts, and the sorted uids of the exported rows). Then two
# partition figures: 500 imports of 2,000 events into a running node against one
# import of the same 1M events, before and after the node's background compaction,
# and the partitions of ../shared/data/json/sysmon.json.
#
#   tests/bench/scale.sh [LINES...]          (default 2000000 20000000)
#
# Logs are cached in ${BENCH_DIR:-/tmp/vast-bench} as conn-2M.log, conn-20M.log, ...
# (made by ../shared/tools/gen-zeek-conn --lines N --seed 11), so BENCH_DIR=/work/bench
# reuses logs generated there. Needs: duckdb (pip install duckdb-cli), python3, GNU
# time (/usr/bin/time, Debian's `time`).
set -euo pipefail
[ $# -gt 0 ] || set -- 2000000 20000000
# shellcheck source=tests/bench/duckdb-peer.sh
source "$(dirname "$0")/duckdb-peer.sh" scale
gen="$root/../shared/tools/gen-zeek-conn"

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2-$1:.3f}')"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
median5() { # median wall time of 5 runs of the command "$@", output discarded
  # Timed by one python process around each run: `date` forks on both sides
  # would add a few ms to every run, which flatters a 10 ms query's growth.
  python3 - "$@" <<'PY'
import subprocess, sys, time
ts = []
for _ in range(5):
    s = time.perf_counter()
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
    ts.append(time.perf_counter() - s)
print(f"{sorted(ts)[2]:.4f}")
PY
}
label() { # 2000000 -> 2M, 1500 -> 1500
  if [ $(($1 % 1000000)) -eq 0 ]; then echo "$(($1 / 1000000))M"; else echo "$1"; fi
}
log_for() { # the cached log of $1 lines, generated on first use
  local log; log="$work/conn-$(label "$1").log"
  if [ ! -s "$log" ]; then
    echo "generating $log ..." >&2
    "$gen" --lines "$1" --seed 11 > "$log.gen.$$"
    mv "$log.gen.$$" "$log"
  fi
  echo "$log"
}
duck_count() { duckdb -readonly "$1" -noheader -list -c "$2" | tail -1; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); vast: $vast"
echo
printf '%-8s %-34s %12s %12s %8s\n' "size" "measure" "vast" "duckdb" "v/d"
first_log=""
for lines in "$@"; do
  log=$(log_for "$lines")
  [ -n "$first_log" ] || first_log=$log
  size=$(label "$lines")
  raw=$(stat -c %s "$log")
  db="$scratch/vast-$size.db"; duck="$scratch/duck-$size.db"
  sync
  # Max RSS by GNU time, written apart so the import's own stderr stays whole.
  s=$(now); /usr/bin/time -f %M -o "$scratch/rss.vast" "$vast" -N -d "$db" import -r "$log" zeek 2>"$scratch/import.err"; t_vast=$(elapsed "$s" "$(now)")
  s=$(now)
  /usr/bin/time -f %M -o "$scratch/rss.duck" duckdb "$duck" -c "CREATE TABLE conn AS SELECT * FROM read_csv('$log', delim='\t', comment='#', header=false);" >/dev/null
  t_duck=$(elapsed "$s" "$(now)")
  rss_vast=$(( $(tail -1 "$scratch/rss.vast") / 1024 )); rss_duck=$(( $(tail -1 "$scratch/rss.duck") / 1024 ))
  disk_vast=$(du -sb "$db" | cut -f1)
  disk_duck=$(stat -c %s "$duck")
  status=$("$vast" -N -d "$db" status --json)
  read -r parts idx_bytes arch_bytes < <(python3 -c '
import json, sys
s = json.loads(sys.argv[1])
print(s["partitions"], s["index"]["bytes"], s["archive"]["bytes"])' "$status")

  # The rare host: the address whose rows come closest to 10 per million lines.
  want=$(( (lines + 50000) / 100000 ))
  rare=$(duck_count "$duck" "
    SELECT a FROM (SELECT column02 AS a FROM conn UNION ALL SELECT column04 FROM conn)
    GROUP BY a ORDER BY abs(count(*) - $want), a LIMIT 1")

  expr=":addr == $rare"
  sql_where="column02 = '$rare' OR column04 = '$rare'"
  n_vast=$("$vast" -N -d "$db" count "$expr")
  n_duck=$(duck_count "$duck" "SELECT count(*) FROM conn WHERE $sql_where")
  "$vast" -N -d "$db" export json "$expr" > "$scratch/vast.json"
  duckdb -readonly "$duck" -noheader -list -c "SELECT column01 FROM conn WHERE $sql_where" \
    | sort > "$scratch/duck.uids"
  python3 -c '
import json, sys
print("\n".join(sorted(json.loads(l)["uid"] for l in open(sys.argv[1]) if l.strip())))' \
    "$scratch/vast.json" > "$scratch/vast.uids"
  n_export=$(wc -l < "$scratch/vast.json")
  if [ "$n_vast" = "$n_duck" ] && [ "$n_export" = "$n_duck" ] && cmp -s "$scratch/vast.uids" "$scratch/duck.uids"; then
    same="identical: $n_vast rows, same uids"
  else
    same="DIFFERENT: vast count $n_vast, vast export $n_export, duckdb $n_duck"
    diff "$scratch/vast.uids" "$scratch/duck.uids" | head -5 >&2 || true
  fi
  e_vast=$(median5 "$vast" -N -d "$db" export json "$expr")
  e_duck=$(median5 duckdb -readonly "$duck" -c "SELECT * FROM conn WHERE $sql_where")
  c_vast=$(median5 "$vast" -N -d "$db" count "$expr")
  c_duck=$(median5 duckdb -readonly "$duck" -c "SELECT count(*) FROM conn WHERE $sql_where")

  row() { printf '%-8s %-34s %12s %12s %8s\n' "$size" "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
  row "ingest seconds" "$t_vast" "$t_duck"
  row "ingest max RSS MiB" "$rss_vast" "$rss_duck"
  row "disk bytes" "$disk_vast" "$disk_duck"
  row "disk / raw ($raw bytes)" "$(ratio "$disk_vast" "$raw")" "$(ratio "$disk_duck" "$raw")"
  row "export $rare seconds (median 5)" "$e_vast" "$e_duck"
  row "count $rare seconds (median 5)" "$c_vast" "$c_duck"
  printf '%-8s %-34s %s\n' "$size" "answers" "$same"
  printf '%-8s %-34s index %s (%s of raw), archive %s (%s of raw), %s partitions\n' "$size" "vast.db split" \
    "$idx_bytes" "$(ratio "$idx_bytes" "$raw")" "$arch_bytes" "$(ratio "$arch_bytes" "$raw")" "$parts"
  eval "t_ingest_$size=$t_vast c_$size=$c_vast e_$size=$e_vast disk_$size=$disk_vast lines_$size=$lines"
  rm -rf "$db" "$duck"
done

if [ $# -gt 1 ]; then
  a=$(label "$1"); b=$(label "${!#}")
  echo
  echo "scaling $a -> $b ($(ratio "$(eval echo "\$lines_$b")" "$(eval echo "\$lines_$a")")x the data), vast:"
  for m in t_ingest c e disk; do
    name=$(case $m in t_ingest) echo "ingest time";; c) echo "rare-host count time";; e) echo "rare-host export time";; disk) echo "disk";; esac)
    printf '  %-24s %6sx\n' "$name" "$(ratio "$(eval echo "\$${m}_$b")" "$(eval echo "\$${m}_$a")")"
  done
fi

# Many small imports against one: the first 1M events of the first log.
echo
head -n 8 "$first_log" > "$scratch/header"
# (`head` closes the pipe early: with pipefail that status is expected.)
{ grep -v '^#' "$first_log" | head -n 1000000 > "$scratch/events"; } || true
tail -n 1 "$first_log" | grep '^#close' > "$scratch/footer" || true
split -l 2000 -a 3 -d "$scratch/events" "$scratch/part."
one="$scratch/one.db"; many="$scratch/many.db"
cat "$scratch/header" "$scratch/events" "$scratch/footer" > "$scratch/one.log"
s=$(now); "$vast" -N -d "$one" import -r "$scratch/one.log" zeek 2>/dev/null; t_one=$(elapsed "$s" "$(now)")
# The small imports go to a running node (compaction is a node's background job);
# first with compaction off, to show what they cost uncompacted, then with it on.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ep="127.0.0.1:$port"
node_up() { # start a node on $many with compaction interval $1; wait until it answers
  VAST_COMPACTION__INTERVAL=$1 VAST_COMPACTION__RETIRE_GRACE=0 "$vast" -d "$many" -e "$ep" start 2>>"$scratch/node.log" &
  for _ in $(seq 100); do "$vast" -e "$ep" status >/dev/null 2>&1 && return; sleep 0.2; done
  echo "node did not start" >&2; exit 1
}
node_down() { "$vast" -e "$ep" stop >/dev/null 2>&1 || true; wait; }
node_up 0
s=$(now)
for p in "$scratch"/part.*; do
  cat "$scratch/header" "$p" "$scratch/footer" | "$vast" -e "$ep" import zeek 2>/dev/null
done
t_many=$(elapsed "$s" "$(now)")
node_down
imports=$(ls "$scratch"/part.* | wc -l)
rm -f "$scratch"/part.* "$scratch/events"
rare=$(grep -v '^#' "$scratch/one.log" | cut -f3,5 | tr '\t' '\n' | sort | uniq -c \
  | awk '$1 >= 5 && $1 <= 15 {print $2; exit}' || true)
parts() { "$vast" -N -d "$1" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitions"])'; }
d_one=$(du -sb "$one" | cut -f1); d_many=$(du -sb "$many" | cut -f1)
c_one=$(median5 "$vast" -N -d "$one" count ":addr == $rare")
c_many=$(median5 "$vast" -N -d "$many" count ":addr == $rare")
p_many=$(parts "$many")
# Compaction: a node left alone merges the small partitions.
node_up 1
s=$(now)
while :; do
  st=$("$vast" -e "$ep" status --json)
  done_=$(python3 -c '
import json, sys
s = json.loads(sys.argv[1]); c = s["compaction"]
print(int(not c["running"] and c["retiring"] == 0 and c["small-partitions"] <= 1 and c["merges"] > 0))' "$st")
  [ "$done_" = 1 ] && break
  sleep 1
done
t_compact=$(elapsed "$s" "$(now)")
node_down
d_comp=$(du -sb "$many" | cut -f1)
c_comp=$(median5 "$vast" -N -d "$many" count ":addr == $rare")
n_one=$("$vast" -N -d "$one" count ":addr == $rare"); n_many=$("$vast" -N -d "$many" count ":addr == $rare")
printf '%-40s %14s %14s %8s %14s %8s\n' "1M events" "1 import" "$imports imports" "many/1" "compacted" "comp/1"
printf '%-40s %14s %14s %8s %14s\n' "import seconds (all imports)" "$t_one" "$t_many" "$(ratio "$t_many" "$t_one")" "+$t_compact"
printf '%-40s %14s %14s %8s %14s\n' "partitions" "$(parts "$one")" "$p_many" "" "$(parts "$many")"
printf '%-40s %14s %14s %8s %14s %8s\n' "disk bytes" "$d_one" "$d_many" "$(ratio "$d_many" "$d_one")" "$d_comp" "$(ratio "$d_comp" "$d_one")"
printf '%-40s %14s %14s %8s %14s %8s\n' "count $rare seconds (median 5)" "$c_one" "$c_many" "$(ratio "$c_many" "$c_one")" "$c_comp" "$(ratio "$c_comp" "$c_one")"
printf '%-40s %14s %14s\n' "count answer (one, compacted)" "$n_one" "$n_many"
rm -rf "$one" "$many"

sysmon="$data/json/sysmon.json"
if [ -s "$sysmon" ]; then
  sdb="$scratch/sysmon.db"
  "$vast" -N -d "$sdb" import -r "$sysmon" json 2>/dev/null
  echo
  echo "sysmon.json ($(wc -l < "$sysmon") lines): $(parts "$sdb") partitions, $("$vast" -N -d "$sdb" status --json \
    | python3 -c 'import json,sys; s=json.load(sys.stdin); print(len(s["schemas"]), "schemas,", s["events"], "events,", s["bytes-on-disk"], "bytes")')"
else
  echo "sysmon.json not found under $data/json; skipped" >&2
fi
