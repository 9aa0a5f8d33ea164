#!/usr/bin/env bash
# Packet ingest benchmark: `vast -N import pcap` (release build, Community IDs on)
# vs `tcpdump -nn -r` on the same generated trace, plain and with VLAN tags; then
# live capture from `lo` through an embedded node (needs root or CAP_NET_RAW).
#
#   tests/bench/pcap.sh [PACKETS] [LIVE_COUNT]     (defaults 2000000, 500000)
#
# Needs: ../shared/tools/gen-pcap, tcpdump, python3.
set -euo pipefail
packets=${1:-2000000}
live=${2:-500000}
root=$(cd "$(dirname "$0")/../.." && pwd)
gen="$root/../shared/tools/gen-pcap"
work=${BENCH_DIR:-$(mktemp -d /tmp/vast-pcap-bench.XXXXXX)}
mkdir -p "$work"
for tool in tcpdump python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
(cd "$root" && cargo build --release -q -p vast && cargo build --release -q -p vast-node --example pcap_live_bench)
vast="${CARGO_TARGET_DIR:-$root/target}/release/vast"

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2-$1:.3f}')"; }
rate() { python3 -c "print(f'{$1/$2:,.0f}')"; }

printf '| trace | bytes | tool | seconds | packets/s | MB/s |\n|---|---|---|---|---|---|\n'
for variant in plain vlan; do
  trace="$work/trace-$packets-$variant.pcap"
  flag=""; [ "$variant" = vlan ] && flag=--vlan
  [ -s "$trace" ] || "$gen" --packets "$packets" $flag > "$trace"
  size=$(stat -c %s "$trace")
  cat "$trace" > /dev/null # page cache, same for both tools
  rm -rf "$work/vast.db"; sync
  s=$(now); "$vast" -N -d "$work/vast.db" import -r "$trace" pcap 2>"$work/import-$variant.err"; t_vast=$(elapsed "$s" "$(now)")
  got=$("$vast" -N -d "$work/vast.db" count '#type == "pcap.packet"')
  [ "$got" = "$packets" ] || { echo "vast imported $got of $packets packets" >&2; exit 1; }
  s=$(now); tcpdump -nn -r "$trace" > /dev/null 2>&1; t_td=$(elapsed "$s" "$(now)")
  for row in "vast -N import pcap:$t_vast" "tcpdump -nn -r:$t_td"; do
    tool=${row%%:*}; t=${row##*:}
    printf '| %s | %s | %s | %s | %s | %s |\n' "$variant" "$size" "$tool" "$t" "$(rate "$packets" "$t")" "$(python3 -c "print(f'{$size/1e6/$t:.0f}')")"
  done
  printf '| %s | | ratio vast/tcpdump | **%s** | | |\n' "$variant" "$(python3 -c "print(f'{$t_vast/$t_td:.2f}')")"
  rm -rf "$work/vast.db"
done

echo
echo "live capture from lo, $live datagrams:"
for r in 0 50000 20000; do
  "$root/target/release/examples/pcap_live_bench" "$live" "$r" || echo "(live capture needs root or CAP_NET_RAW)"
done
