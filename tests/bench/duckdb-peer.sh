# Shared setup of the benchmarks that run beside the duckdb CLI (sourced, not run):
# the repository root, the shared data, the cache directory BENCH_DIR (default
# /tmp/vast-bench), the tools checked, a release build of vast, and a scratch
# directory (named after $1) removed on exit.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
data="$root/../shared/data"
work=${BENCH_DIR:-/tmp/vast-bench}
mkdir -p "$work"
for tool in duckdb python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (pip install duckdb-cli)" >&2; exit 1; }
done
(cd "$root" && cargo build --release -q -p vast)
vast="${CARGO_TARGET_DIR:-$root/target}/release/vast"
scratch=$(mktemp -d "$work/$1.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
