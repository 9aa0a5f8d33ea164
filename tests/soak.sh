#!/usr/bin/env bash
# Soak: two nodes for MINUTES (default 10) under everything at once, outside CI's
# default run:
#  - a live capture on lo (spawned on n2 through n1) of generated UDP traffic;
#  - repeated client imports of a Zeek log into n1 and, relayed, into n2;
#  - concurrent counts and exports through n1.
# Prints each node's RSS every 30 s, and at the end the events expected and the
# events counted, which must be equal (and RSS must stay under 1 GiB).
#
#   tests/soak.sh [MINUTES]          (root or CAP_NET_RAW, for the capture)
set -euo pipefail
minutes=${1:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
data="$root/../shared/data"
work=$(mktemp -d /tmp/vast-soak.XXXXXX)
(cd "$root" && cargo build --release -q -p vast)
vast="${CARGO_TARGET_DIR:-$root/target}/release/vast"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p1=$(port); p2=$(port); udp=$(port)
e1=127.0.0.1:$p1
export VAST_IMPORT__PARTITION_TIMEOUT=2
RUST_LOG=warn "$vast" -i n1 -d "$work/n1" -e "$e1" start 2>"$work/n1.log" & n1=$!
RUST_LOG=warn "$vast" -i n2 -d "$work/n2" -e 127.0.0.1:$p2 start --peer "$e1" 2>"$work/n2.log" & n2=$!
pids=()
cleanup() { kill "${pids[@]}" $n1 $n2 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do "$vast" -e "$e1" status >/dev/null 2>&1 && break; sleep 0.2; done
for _ in $(seq 100); do [ "$("$vast" -e "$e1" peers | grep -c '"reachable": true')" = 2 ] && break; sleep 0.2; done
end=$(( $(date +%s) + minutes * 60 ))

label=$("$vast" -e "$e1" --node n2 spawn source -i lo -f "udp dst port $udp" pcap)
# Generated traffic: 200 datagrams a second until the end; the count is kept.
python3 - "$udp" "$end" "$work/sent" <<'EOF' & pids+=($!)
import socket, sys, time
port, end, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n = 0
while time.time() < end:
    for _ in range(20):
        s.sendto(b"soak %d" % n, ("127.0.0.1", port)); n += 1
    open(out, "w").write(str(n))
    time.sleep(0.1)
open(out, "w").write(str(n))
EOF
# Client imports, alternating n1 and n2 (relayed), each counted when acknowledged.
(
  i=0
  while [ "$(date +%s)" -lt "$end" ]; do
    node=n1; [ $((i % 2)) = 1 ] && node=n2
    if "$vast" -e "$e1" --node $node import -r "$data/zeek/conn.log.gz" zeek 2>>"$work/imports.err"; then
      echo ok >> "$work/imports"
    fi
    i=$((i + 1)); sleep 5
  done
) & pids+=($!)
# Queries while all that runs.
(
  while [ "$(date +%s)" -lt "$end" ]; do
    "$vast" -e "$e1" count ':addr == 192.168.1.104' >/dev/null 2>>"$work/queries.err" || echo fail >> "$work/query-failures"
    "$vast" -e "$e1" export -n 100 json '#type == "pcap.packet"' >/dev/null 2>>"$work/queries.err" || echo fail >> "$work/query-failures"
    sleep 1
  done
) & pids+=($!)

rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$1/status"; }
max=0
echo "soak: $minutes min; RSS in MiB"
printf '%6s %8s %8s %8s\n' elapsed n1 n2 imports
start=$(date +%s)
while [ "$(date +%s)" -lt "$end" ]; do
  sleep 30
  r1=$(rss $n1); r2=$(rss $n2)
  for r in $r1 $r2; do [ "$r" -gt "$max" ] && max=$r; done
  printf '%5ss %8s %8s %8s\n' $(( $(date +%s) - start )) "$r1" "$r2" "$(wc -l < "$work/imports" 2>/dev/null || echo 0)"
done
wait "${pids[@]}" 2>/dev/null || true
sleep 3
"$vast" -e "$e1" --node n2 kill "$label"
sleep 4   # the last capture partition seals after the partition timeout
imports=$(wc -l < "$work/imports")
sent=$(cat "$work/sent")
drops=$("$vast" -e "$e1" --node n2 status --detailed | python3 -c "import json,sys; d=json.load(sys.stdin); c=d.get('sources',{}).get('$label',{}).get('counters',{}); print(sum(v for k,v in c.items() if 'drop' in k))" 2>/dev/null || echo '?')
conn=$("$vast" -e "$e1" count '#type == "zeek.conn"')
pkts=$("$vast" -e "$e1" count "#type == \"pcap.packet\" && dport == $udp")
expected=$(( imports * 8462 + sent ))
counted=$(( conn + pkts ))
echo
echo "imports acknowledged: $imports x 8462 = $(( imports * 8462 )); zeek.conn counted: $conn"
echo "datagrams sent: $sent; captured and counted: $pkts (kernel/interface drops reported: $drops)"
echo "query failures: $(cat "$work/query-failures" 2>/dev/null | wc -l)"
echo "expected events: $expected; counted: $counted; max RSS: $max MiB"
[ "$expected" = "$counted" ] || { echo "FAIL: counts differ"; exit 1; }
[ "$max" -lt 1024 ] || { echo "FAIL: RSS over 1 GiB"; exit 1; }
echo "soak: passed"
