#!/usr/bin/env bash
# Alternating A/B of `vast bench-dataplane` between binaries: per round and binary,
# a fresh node with a cluster secret, 1 GiB of batches from a client process; prints
# the data-plane and raw TCP rates and the CPU each side spent (node from
# /proc/PID/stat, client user+system from /usr/bin/time), which a noisy machine
# moves less than the rates.
#
#   tests/bench/dataplane-ab.sh ROUNDS BIN [BIN...]
set -euo pipefail
rounds=$1; shift
# shellcheck source=tests/bench/pair.sh
source "$(dirname "$0")/pair.sh"
cpu() { awk '{print ($14+$15)/100}' /proc/$1/stat; }
for _ in $(seq "$rounds"); do
  for b in "$@"; do
    w=$(mktemp -d /tmp/vast-dp.XXXXXX)
    "$b" secret --out "$w/secret" 2>/dev/null
    p=$(port)
    VAST_CLUSTER__SECRET_FILE="$w/secret" RUST_LOG=warn "$b" -i n2 -d "$w/db" -e 127.0.0.1:$p start 2>"$w/n.log" & n=$!
    for _ in $(seq 100); do VAST_CLUSTER__SECRET_FILE="$w/secret" "$b" -e 127.0.0.1:$p status >/dev/null 2>&1 && break; sleep 0.2; done
    a=$(cpu $n)
    VAST_CLUSTER__SECRET_FILE="$w/secret" /usr/bin/time -f "%U %S" -o "$w/time" "$b" -e 127.0.0.1:$p bench-dataplane --mib ${MIB:-1024} > "$w/out"
    z=$(cpu $n)
    dp=$(grep -o 'data plane.*: [0-9]* MB/s' "$w/out" | grep -o '[0-9]* MB/s')
    tcp=$(grep -o 'raw tcp.*: *[0-9]* MB/s' "$w/out" | grep -o '[0-9]* MB/s')
    echo "$(basename "$b") data plane $dp, raw tcp $tcp, node cpu $(python3 -c "print(f'{$z-$a:.2f}')") s, client cpu $(awk '{print $1+$2}' "$w/time") s"
    kill $n; wait $n 2>/dev/null || true; rm -rf "$w"
  done
done
