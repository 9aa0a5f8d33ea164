#!/usr/bin/env bash
# The lab as a user meets it: build the image offline, bring up three nodes with
# docker compose, drive them from the host through n1 only, lose a node and keep
# whole answers from the replicas, regain it.
# Tears everything down, also when a step fails.
#
#   tests/compose/lab.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data="$root/../shared/data"
[ -d "$data" ] || { echo "skipping: ../shared/data is not present"; exit 0; }
cd "$root"
if docker compose version >/dev/null 2>&1; then dc=(docker compose); else dc=(docker-compose); fi
export COMPOSE_PROJECT_NAME=vastlab$$
export VAST_LAB_PORT=${VAST_LAB_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
ep=127.0.0.1:$VAST_LAB_PORT
vast="${CARGO_TARGET_DIR:-$root/target}/release/vast"
# One secret for the lab, made for this run; the nodes mount it, the host CLI reads it.
secret=$(mktemp -d)/lab.secret
export VAST_LAB_SECRET=$secret VAST_CLUSTER__SECRET_FILE=$secret
cleanup() { "${dc[@]}" down -v --remove-orphans >/dev/null 2>&1 || true; rm -rf "$(dirname "$secret")"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; "${dc[@]}" logs --tail 30 >&2 || true; exit 1; }
step() { echo "--- $*"; }
retry() { # retry SECONDS CMD...: until CMD succeeds
  local until=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt "$until" ] || return 1; sleep 1; done
}

step "build the image offline"
deploy/build-image.sh vast:latest
step "make the lab's cluster secret"
"$vast" secret --out "$secret"
step "start the lab"
"${dc[@]}" up -d
mesh() { [ "$("$vast" -e "$ep" peers | grep -c '"reachable": true')" = 3 ]; }
retry 90 mesh || fail "the three nodes did not mesh"

step "the published port is on the host's loopback only, and needs the secret"
docker port "$("${dc[@]}" ps -q n1)" 42000 | grep -qx "127.0.0.1:$VAST_LAB_PORT" || fail "n1's port is not bound to 127.0.0.1: $(docker port "$("${dc[@]}" ps -q n1)" 42000)"
if out=$(env -u VAST_CLUSTER__SECRET_FILE "$vast" -e "$ep" status 2>&1); then fail "a CLI without the secret got in: $out"; fi
echo "$out" | grep -q secret || fail "refusal does not mention the secret: $out"

step "a continuous export through n1 follows every node"
live=$(dirname "$secret")/live.json
"$vast" -e "$ep" export -c json '#type == "zeek.conn"' > "$live" 2>"$live.err" &
live_pid=$!
taps() { for n in n1 n2 n3; do "$vast" -e "$ep" --node $n status | grep -q '"live-taps": 1' || return 1; done; }
retry 30 taps || fail "the continuous export did not open a live tap on every node: $(cat "$live.err")"

step "import a zeek log into n3 through n1, count from the host"
gzip -dc "$data/zeek/conn.log.gz" | "$vast" -e "$ep" --node n3 import zeek
n=$("$vast" -e "$ep" count '#type == "zeek.conn"')
[ "$n" = 8462 ] || fail "count after import: $n"
streamed() { [ "$(wc -l < "$live")" = 8462 ]; }
retry 30 streamed || fail "the continuous export wrote $(wc -l < "$live") of 8462 events: $(cat "$live.err")"
kill -INT $live_pid
wait $live_pid || fail "the continuous export did not end cleanly on SIGINT: $(cat "$live.err")"

step "capture on n2's eth0, find n2's traffic through n1"
label=$("$vast" -e "$ep" --node n2 spawn source -i eth0 pcap)
n2ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$("${dc[@]}" ps -q n2)")
# Node-to-node traffic crosses n2's interface: every query fans out to n2.
seen() {
  "$vast" -e "$ep" count '#type == "zeek.conn"' >/dev/null
  [ "$("$vast" -e "$ep" count "src == $n2ip || dst == $n2ip")" -gt 0 ]
}
retry 60 seen || fail "no packets from or to n2 ($n2ip) found"
"$vast" -e "$ep" --node n2 kill "$label"

step "replicas: 2, every partition on two nodes; lose n3: answers through n1 stay whole"
replicated() { for n in n1 n2 n3; do "$vast" -e "$ep" --node $n status | grep -q '"under-replicated": 0' || return 1; done; }
retry 60 replicated || fail "partitions lack replicas: $(for n in n1 n2 n3; do "$vast" -e "$ep" --node $n status | grep -A3 '"replication"'; done)"
"${dc[@]}" kill n3 >/dev/null
n=$("$vast" -e "$ep" count '#type == "zeek.conn"') || fail "count without n3 failed"
[ "$n" = 8462 ] || fail "count without n3: $n"
n=$("$vast" -e "$ep" export json '#type == "zeek.conn"' | wc -l) || fail "export without n3 failed"
[ "$n" = 8462 ] || fail "export without n3: $n events"
step "regain n3: it returns with its replicas"
"${dc[@]}" start n3 >/dev/null
full() { [ "$("$vast" -e "$ep" count '#type == "zeek.conn"')" = 8462 ]; }
retry 90 full || fail "answers incomplete after n3 returned"
retry 60 replicated || fail "replicas not whole after n3 returned"
echo "lab: all steps passed"
