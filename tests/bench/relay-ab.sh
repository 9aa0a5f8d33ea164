#!/usr/bin/env bash
# Alternating A/B between binaries of a client import into n1, a relayed import
# through n1 into n2 (`vast -e n1 --node n2 import`), each round on a fresh pair of
# nodes with a cluster secret and compaction off, and an embedded `vast -N import`
# right after; prints seconds per run and the relayed rate over the embedded one.
#
#   tests/bench/relay-ab.sh LOG ROUNDS BIN [BIN...]
set -euo pipefail
log=$1; rounds=$2; shift 2
# shellcheck source=tests/bench/pair.sh
source "$(dirname "$0")/pair.sh"
secs() { python3 -c "print(f'{$2-$1:.3f}')"; }
for _ in $(seq "$rounds"); do
  for b in "$@"; do
    w=$(mktemp -d /tmp/vast-relay.XXXXXX)
    start_pair "$b" "$w"
    s=$(date +%s.%N); "$b" -e 127.0.0.1:$p1 import -r "$log" zeek 2>/dev/null; e=$(date +%s.%N); client=$(secs $s $e)
    s=$(date +%s.%N); "$b" -e 127.0.0.1:$p1 --node n2 import -r "$log" zeek 2>/dev/null; e=$(date +%s.%N); relay=$(secs $s $e)
    kill $n1 $n2; wait $n1 $n2 2>/dev/null || true
    s=$(date +%s.%N); "$b" -N -d "$w/emb" import -r "$log" zeek 2>/dev/null; e=$(date +%s.%N); emb=$(secs $s $e)
    echo "$(basename "$b") client $client s, relayed $relay s, embedded $emb s, relayed/embedded $(python3 -c "print(f'{$emb/$relay:.2f}')")"
    rm -rf "$w"
  done
done
