#!/usr/bin/env bash
# Continuous export benchmark, in one run on one generated Zeek log, two nodes
# with the cluster secret on:
#  - what live taps cost an import into n1: no continuous export, one with a
#    selective query (every batch filtered, nothing matches), one that matches
#    every event (every batch filtered, serialized and pulled across to n2);
#  - latency from a line written into a running `vast import` on n1 to the line
#    printed by `vast export -c` through n2 (p50, p99, max).
#
#   tests/bench/live.sh [LINES]      (default 1000000)
set -euo pipefail
lines=${1:-1000000}
. "$(dirname "$0")/lib.sh"

rm -rf "$work/l1" "$work/l2" "$work/cluster.secret"
"$vast" secret --out "$work/cluster.secret" 2>/dev/null
export VAST_CLUSTER__SECRET_FILE="$work/cluster.secret"
p1=$(port); p2=$(port)
# No compaction while measuring: it would copy earlier imports in the background.
export VAST_COMPACTION__INTERVAL=0
RUST_LOG=warn "$vast" -i n1 -d "$work/l1" -e 127.0.0.1:$p1 start 2>"$work/n1.log" & n1=$!
RUST_LOG=warn "$vast" -i n2 -d "$work/l2" -e 127.0.0.1:$p2 start --peer 127.0.0.1:$p1 2>"$work/n2.log" & n2=$!
pids="$n1 $n2"
trap 'kill $pids 2>/dev/null || true' EXIT
for p in $p1 $p2; do
  for _ in $(seq 100); do "$vast" -e 127.0.0.1:$p status >/dev/null 2>&1 && break; sleep 0.2; done
done
taps() { "$vast" -e 127.0.0.1:$p1 status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["live-taps"])'; }
wait_taps() { until [ "$(taps)" = "$1" ]; do sleep 0.1; done; }

import_time() { local s; s=$(now); "$vast" -e 127.0.0.1:$p1 import -r "$log" zeek 2>/dev/null; elapsed "$s" "$(now)"; }

t_none=$(import_time)

"$vast" -e 127.0.0.1:$p2 export -c null ':addr == 203.0.113.77' 2>"$work/sel.err" & ex=$!; pids="$pids $ex"
wait_taps 1
t_sel=$(import_time)
kill -INT $ex; wait $ex || true
wait_taps 0

"$vast" -e 127.0.0.1:$p2 export -c json '#type == "zeek.conn"' 2>"$work/all.err" | wc -l > "$work/all.count" & ex=$!; pids="$pids $ex"
wait_taps 1
t_all=$(import_time)
# Let the export drain what the taps still hold, then stop it.
sleep 3
pkill -INT -f "export -c json #type == \"zeek.conn\"" || true
wait $ex || true
got=$(cat "$work/all.count")
dropped=$(grep -o '[0-9]* live events were dropped' "$work/all.err" | awk '{s+=$1} END {print s+0}')
wait_taps 0

# Latency: a line every 20 ms into a running import on n1 (batches of one line),
# each line's uid carries its send time; the export through n2 prints them.
python3 - "$vast" "127.0.0.1:$p1" "127.0.0.1:$p2" > "$work/latency.txt" <<'EOF'
import json, subprocess, sys, threading, time
vast, e1, e2 = sys.argv[1:4]
exp = subprocess.Popen([vast, "-e", e2, "export", "-c", "json", 'uid ~ /^L/'],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
def taps():
    out = subprocess.run([vast, "-e", e1, "status", "--json"], capture_output=True, text=True).stdout
    return json.loads(out)["live-taps"]
while taps() != 1:
    time.sleep(0.1)
lat = []
def read():
    for line in exp.stdout:
        uid = json.loads(line)["uid"]
        lat.append(time.time() - float(uid[1:].replace("_", ".")))
t = threading.Thread(target=read, daemon=True); t.start()
imp = subprocess.Popen([vast, "-e", e1, "import", "--batch-size", "1", "zeek"],
                       stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
imp.stdin.write("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
                "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n"
                "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\n")
n = 500
for i in range(n):
    s = f"{time.time():.6f}"
    imp.stdin.write(f"{s}\tL{s.replace('.', '_')}\t10.0.0.1\t1000\t10.1.0.1\t80\ttcp\n")
    imp.stdin.flush()
    time.sleep(0.02)
imp.stdin.close(); imp.wait()
deadline = time.time() + 10
while len(lat) < n and time.time() < deadline:
    time.sleep(0.1)
exp.terminate()
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
print(f"{len(lat)}/{n} {q(0.5):.1f} {q(0.99):.1f} {lat[-1]*1000:.1f}")
EOF
read -r lat_n lat_p50 lat_p99 lat_max < "$work/latency.txt"

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; input: $lines lines, $(stat -c %s "$log") bytes"
echo
printf '%-60s %8s %10s\n' "vast import -r FILE into n1, while ..." seconds events/s
printf '%-60s %8s %10s\n' "no continuous export" "$t_none" "$(rate "$t_none")"
printf '%-60s %8s %10s\n' "export -c through n2, selective (nothing matches)" "$t_sel" "$(rate "$t_sel")"
printf '%-60s %8s %10s\n' "export -c json through n2, every event matches" "$t_all" "$(rate "$t_all")"
printf '%-60s %8s\n' "  events the every-event export wrote / dropped (lagging)" "$got / $dropped"
echo
printf '%-60s %s\n' "live latency, import into n1 -> export -c through n2" "$lat_n lines: p50 ${lat_p50} ms, p99 ${lat_p99} ms, max ${lat_max} ms"
