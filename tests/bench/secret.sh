#!/usr/bin/env bash
# What the cluster secret costs on the data plane, in one run:
#  - `vast bench-dataplane` (rkyv batches, CLI process -> node process) against a
#    node without a secret (loopback, protected mode) and against one with a
#    secret, each beside raw loopback TCP measured in the same call;
#  - the transport alone (tests/bench/transport-cost): noise, noise with the
#    secret's prologue (what vast does), and libp2p pnet under noise (the other
#    mechanism considered).
#
#   tests/bench/secret.sh [MiB]      (default 1024)
set -euo pipefail
mib=${1:-1024}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/vast-secret-bench.XXXXXX)
(cd "$root" && cargo build --release -q -p vast)
(cd "$root" && cargo build --release -q --manifest-path tests/bench/transport-cost/Cargo.toml)
vast="${CARGO_TARGET_DIR:-$root/target}/release/vast"
# shellcheck source=tests/bench/pair.sh
source "$(dirname "$0")/pair.sh"
"$vast" secret --out "$work/s" 2>/dev/null
pa=$(port); pb=$(port)
RUST_LOG=warn "$vast" -i a -d "$work/a" -e 127.0.0.1:$pa start 2>"$work/a.log" & a=$!
RUST_LOG=warn "$vast" --secret-file "$work/s" -i b -d "$work/b" -e 127.0.0.1:$pb start 2>"$work/b.log" & b=$!
trap 'kill $a $b 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do "$vast" -e 127.0.0.1:$pa status >/dev/null 2>&1 && break; sleep 0.2; done
for _ in $(seq 100); do "$vast" --secret-file "$work/s" -e 127.0.0.1:$pb status >/dev/null 2>&1 && break; sleep 0.2; done
echo "machine: $(nproc) cores; $mib MiB per run; two runs each, alternating"
for round in 1 2; do
  echo "== round $round: no secret (protected mode, loopback)"
  "$vast" -e 127.0.0.1:$pa bench-dataplane --mib "$mib"
  echo "== round $round: with the cluster secret"
  "$vast" --secret-file "$work/s" -e 127.0.0.1:$pb bench-dataplane --mib "$mib"
done
echo "== the transport alone"
"$root/tests/bench/transport-cost/target/release/transport-cost" "$((mib * 2))"
