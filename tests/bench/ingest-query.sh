#!/usr/bin/env bash
# Ingest and point-query benchmark: `vast -N` vs the duckdb CLI vs ripgrep on one
# generated Zeek conn log. Prints whole-process wall times side by side.
#
#   tests/bench/ingest-query.sh [LINES]      (default 2000000)
#
# Needs: ../shared/tools/gen-zeek-conn, duckdb (pip install duckdb-cli), rg.
set -euo pipefail
lines=${1:-2000000}
root=$(cd "$(dirname "$0")/../.." && pwd)
gen="$root/../shared/tools/gen-zeek-conn"
work=${BENCH_DIR:-$(mktemp -d /tmp/vast-bench.XXXXXX)}
mkdir -p "$work"
for tool in duckdb rg python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (pip install duckdb-cli; apt-get install ripgrep)" >&2; exit 1; }
done
(cd "$root" && cargo build --release -q -p vast)
vast="${CARGO_TARGET_DIR:-$root/target}/release/vast"

log="$work/conn-$lines.log"
[ -s "$log" ] || "$gen" --lines "$lines" --seed 1 > "$log"
raw=$(stat -c %s "$log")

# Hot and rare addresses, taken from the data itself.
read -r hot rare < <(python3 - "$log" <<'PY'
import sys, collections
c = collections.Counter()
with open(sys.argv[1]) as f:
    for line in f:
        if line.startswith('#'):
            continue
        p = line.split('\t', 5)
        c[p[2]] += 1; c[p[4]] += 1
hot = c.most_common(1)[0][0]
rare = min((a for a, n in c.items() if n == 3), default=hot)
print(hot, rare)
PY
)

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2-$1:.3f}')"; }
median5() { # median wall time of 5 runs of "$@"
  local ts=()
  for _ in 1 2 3 4 5; do
    local s; s=$(now); "$@" >/dev/null; ts+=("$(elapsed "$s" "$(now)")")
  done
  printf '%s\n' "${ts[@]}" | sort -n | sed -n 3p
}

rm -rf "$work/vast.db" "$work/duck.db"
sync
s=$(now); "$vast" -N -d "$work/vast.db" import -r "$log" zeek 2>"$work/import.err"; t_vast=$(elapsed "$s" "$(now)")
s=$(now); duckdb "$work/duck.db" -c "CREATE TABLE conn AS SELECT * FROM read_csv('$log', delim='\t', comment='#', header=false);" >/dev/null; t_duck=$(elapsed "$s" "$(now)")

disk_vast=$(du -sb "$work/vast.db" | cut -f1)
disk_duck=$(stat -c %s "$work/duck.db")

vq() { "$vast" -N -d "$work/vast.db" count ":addr == $1"; }
dq() { duckdb -readonly "$work/duck.db" -c "SELECT count(*) FROM conn WHERE column02 = '$1' OR column04 = '$1'"; }
rq() { rg -c -F "$1" "$log"; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
echo "input: $lines lines, $raw bytes ($log)"
echo
printf '%-28s %10s %12s\n' "ingest" "seconds" "events/s"
printf '%-28s %10s %12.0f\n' "vast -N import zeek" "$t_vast" "$(python3 -c "print($lines/$t_vast)")"
printf '%-28s %10s %12.0f\n' "duckdb read_csv -> table" "$t_duck" "$(python3 -c "print($lines/$t_duck)")"
printf '%-28s %10s\n' "ratio vast/duckdb" "$(python3 -c "print(f'{$t_vast/$t_duck:.2f}')")"
echo
for which in hot rare; do
  addr=${!which}
  n_vast=$(vq "$addr"); n_duck=$(dq "$addr" | grep -Eo '[0-9]+' | tail -1); n_rg=$(rq "$addr")
  m_vast=$(median5 vq "$addr"); m_duck=$(median5 dq "$addr"); m_rg=$(median5 rq "$addr")
  echo "count $which address $addr (vast $n_vast, duckdb $n_duck, rg lines $n_rg), median of 5, seconds:"
  printf '  %-10s %8s\n  %-10s %8s\n  %-10s %8s\n  %-10s %8s\n' vast "$m_vast" duckdb "$m_duck" rg "$m_rg" \
    "vast/duck" "$(python3 -c "print(f'{$m_vast/$m_duck:.2f}')")"
done
echo
printf '%-28s %12s %10s\n' "disk" "bytes" "per event"
printf '%-28s %12s %10.1f\n' "raw log" "$raw" "$(python3 -c "print($raw/$lines)")"
printf '%-28s %12s %10.1f\n' "vast.db" "$disk_vast" "$(python3 -c "print($disk_vast/$lines)")"
printf '%-28s %12s %10.1f\n' "duckdb file" "$disk_duck" "$(python3 -c "print($disk_duck/$lines)")"
printf '%-28s %12s\n' "ratio vast/raw" "$(python3 -c "print(f'{$disk_vast/$raw:.2f}')")"
