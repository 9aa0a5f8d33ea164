# Sourced by the benchmark scripts that import a generated Zeek log into running
# nodes (after `set -euo pipefail` and setting `lines`). Sets `root`, `work`
# (BENCH_DIR, or a fresh directory under /tmp), `vast` (a release build, made
# here, or VAST_BIN to time another build) and `log` (`gen-zeek-conn --lines
# $lines --seed 1`, made once per work directory), and the helpers below.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=${BENCH_DIR:-$(mktemp -d /tmp/vast-bench.XXXXXX)}
mkdir -p "$work"
if [ -n "${VAST_BIN:-}" ]; then
  vast=$VAST_BIN
else
  (cd "$root" && cargo build --release -q -p vast)
  vast="${CARGO_TARGET_DIR:-$root/target}/release/vast"
fi
log="$work/conn-$lines.log"
[ -s "$log" ] || "$root/../shared/tools/gen-zeek-conn" --lines "$lines" --seed 1 > "$log"

# port, start_pair
# shellcheck source=tests/bench/pair.sh
source "$root/tests/bench/pair.sh"
now() { date +%s.%N; }
# Seconds from $1 to $2 (two `now`s).
elapsed() { python3 -c "print(f'{$2-$1:.3f}')"; }
# Events per second for $lines events in $1 seconds.
rate() { python3 -c "print(f'{$lines/$1:.0f}')"; }
