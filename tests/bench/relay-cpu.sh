#!/usr/bin/env bash
# Where a relayed import's CPU goes, per process: alternating between binaries,
# each round on a fresh pair of nodes (cluster secret on, compaction off), one
# `vast -e n1 --node n2 import` and then an embedded `vast -N import` of LOG.
# Prints wall seconds, CPU seconds (user+system; system apart for the client) and
# minor page faults of the client, n1 (the relay) and n2, then the embedded import's.
#
#   tests/bench/relay-cpu.sh LOG ROUNDS BIN [BIN...]
set -euo pipefail
log=$1; rounds=$2; shift 2
# shellcheck source=tests/bench/pair.sh
source "$(dirname "$0")/pair.sh"
# utime+stime in seconds and minor faults of a running process
stat() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f %d\n", ($14+$15)/hz, $10}' "/proc/$1/stat"; }
for _ in $(seq "$rounds"); do
  for b in "$@"; do
    w=$(mktemp -d /tmp/vast-relay-cpu.XXXXXX)
    start_pair "$b" "$w"
    sleep 1
    read -r c1 f1 < <(stat $n1); read -r c2 f2 < <(stat $n2)
    client=$(/usr/bin/time -f "%e %U %S %R" "$b" -e 127.0.0.1:$p1 --node n2 import -r "$log" zeek 2>&1 >/dev/null | tail -1)
    read -r d1 g1 < <(stat $n1); read -r d2 g2 < <(stat $n2)
    kill $n1 $n2; wait $n1 $n2 2>/dev/null || true
    emb=$(/usr/bin/time -f "%e %U %S %R" "$b" -N -d "$w/emb" import -r "$log" zeek 2>&1 >/dev/null | tail -1)
    read -r cw cu cs cf <<<"$client"; read -r ew eu es ef <<<"$emb"
    python3 - "$(basename "$b")" "$cw" "$cu" "$cs" "$cf" "$c1" "$d1" "$f1" "$g1" "$c2" "$d2" "$f2" "$g2" "$ew" "$eu" "$es" "$ef" <<'PY'
import sys
n, cw, cu, cs, cf, c1, d1, f1, g1, c2, d2, f2, g2, ew, eu, es, ef = sys.argv[1:]
f = float
print(f"{n}: relayed {f(cw):.2f} s; client {f(cu)+f(cs):.2f} s CPU ({f(cs):.2f} sys), {cf} faults; "
      f"n1 {f(d1)-f(c1):.2f} s, {int(g1)-int(f1)} faults; n2 {f(d2)-f(c2):.2f} s, {int(g2)-int(f2)} faults | "
      f"embedded {f(ew):.2f} s, {f(eu)+f(es):.2f} s CPU, {ef} faults")
PY
    rm -rf "$w"
  done
done
