#!/usr/bin/env bash
# Alternating A/B between binaries of a client import (`vast -e EP import -r FILE
# zeek`) and of an in-node source (`spawn source -r FILE`), each into a fresh node
# of the same binary, three rounds; prints one line per run.
#
#   tests/bench/import-ab.sh LOG BIN [BIN...]      (the log must be under BENCH_DIR)
set -euo pipefail
log=$1; shift
mkdir -p "${BENCH_DIR:-/tmp/vast-bench}"
# shellcheck source=tests/bench/pair.sh
source "$(dirname "$0")/pair.sh"
for round in 1 2 3; do
  for b in "$@"; do
    for how in client node; do
      d=$(mktemp -d ${BENCH_DIR:-/tmp/vast-bench}/ab.XXXX); p=$(port)
      VAST_SOURCE__READ_DIRS=${BENCH_DIR:-/tmp/vast-bench} VAST_COMPACTION__INTERVAL=0 RUST_LOG=warn $b -i n1 -d $d/db -e 127.0.0.1:$p start 2>$d/n.log & n=$!
      for _ in $(seq 100); do $b -e 127.0.0.1:$p status >/dev/null 2>&1 && break; sleep 0.2; done
      s=$(date +%s.%N)
      if [ $how = client ]; then
        $b -e 127.0.0.1:$p import -r "$log" zeek 2>/dev/null
      else
        label=$($b -e 127.0.0.1:$p spawn source -r "$log" zeek)
        until $b -e 127.0.0.1:$p status --detailed | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if d['sources']['$label']['done'] else 1)"; do sleep 0.05; done
      fi
      e=$(date +%s.%N)
      echo "$(basename $b) $how $(python3 -c "print(f'{$e-$s:.3f}')")"
      kill $n; wait $n 2>/dev/null || true; rm -rf $d
    done
  done
done
