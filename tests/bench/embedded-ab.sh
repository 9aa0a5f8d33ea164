#!/usr/bin/env bash
# Alternating A/B between binaries of an embedded import (`vast -N import -r LOG
# FORMAT`), ROUNDS rounds, each into a fresh database; prints wall and CPU
# seconds per run, then each binary's medians. On a noisy machine only
# alternating runs compare.
#
#   tests/bench/embedded-ab.sh LOG FORMAT ROUNDS BIN [BIN...]
set -euo pipefail
log=$1; fmt=$2; rounds=$3; shift 3
out=$(mktemp); trap 'rm -f "$out"' EXIT
for _ in $(seq "$rounds"); do
  for b in "$@"; do
    d=$(mktemp -d /tmp/vast-emb.XXXXXX)
    /usr/bin/time -f "%e %U %S" -o "$d/time" "$b" -N -d "$d/db" import -r "$log" "$fmt" 2>/dev/null
    read -r wall user sys < "$d/time"
    cpu=$(python3 -c "print(f'{$user+$sys:.2f}')")
    echo "$(basename "$b") wall $wall s, cpu $cpu s" | tee -a "$out"
    rm -rf "$d"
  done
done
echo "medians:"
for b in "$@"; do
  n=$(basename "$b")
  python3 - "$n" "$out" <<'PY'
import statistics, sys
name, path = sys.argv[1], sys.argv[2]
w, c = [], []
for line in open(path):
    f = line.split()
    if f[0] == name:
        w.append(float(f[2])); c.append(float(f[5]))
print(f"{name}: wall {statistics.median(w):.3f} s, cpu {statistics.median(c):.2f} s ({len(w)} runs)")
PY
done
