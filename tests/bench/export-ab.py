#!/usr/bin/env python3
"""Alternating A/B of rare-host exports: each binary runs the export on a small and
a large database every round, the order of the binaries reversed every other
round, each run timed by one python timer around the whole process. Prints the
median of each and the growth from small to large.

  tests/bench/export-ab.py BIN[,BIN...] SMALL_DB SMALL_EXPR LARGE_DB LARGE_EXPR [ROUNDS]

The databases come from tests/bench/scale.sh (or `vast -N -d DB import zeek`),
e.g. conn-2M.log and conn-20M.log of gen-zeek-conn --seed 11 with the rare hosts
1.171.57.19 and 10.181.15.135.
"""
import statistics
import subprocess
import sys
import time

if len(sys.argv) < 6:
    sys.exit(__doc__)
bins = sys.argv[1].split(",")
runs = [("small", sys.argv[2], sys.argv[3]), ("large", sys.argv[4], sys.argv[5])]
rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 21
times = {(b, name): [] for b in bins for name, _, _ in runs}
for r in range(rounds):
    for b in bins if r % 2 == 0 else bins[::-1]:
        for name, db, expr in runs:
            s = time.perf_counter()
            subprocess.run([b, "-N", "-d", db, "export", "json", expr],
                           stdout=subprocess.DEVNULL, check=True)
            times[(b, name)].append(time.perf_counter() - s)
for b in bins:
    small = statistics.median(times[(b, "small")]) * 1000
    large = statistics.median(times[(b, "large")]) * 1000
    print(f"{b}: small {small:.2f} ms, large {large:.2f} ms, growth {large / small:.2f}x")
