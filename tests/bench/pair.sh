# Sourced by the benchmark scripts (lib.sh among them) that start nodes: a free
# loopback port, and a fresh pair of nodes of a given binary.

# A free loopback port.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_pair BIN DIR: n1 and n2 (n2 joined to n1) of BIN under DIR, with a fresh
# cluster secret and compaction off (exported, so clients of BIN use them too);
# waits until both answer and n1 knows n2. Sets p1, p2 (their ports) and n1, n2 (their pids).
start_pair() {
  local b=$1 w=$2 p
  "$b" secret --out "$w/secret" 2>/dev/null
  export VAST_CLUSTER__SECRET_FILE="$w/secret" VAST_COMPACTION__INTERVAL=0
  p1=$(port); p2=$(port)
  RUST_LOG=warn "$b" -i n1 -d "$w/c1" -e 127.0.0.1:$p1 start 2>"$w/n1.log" & n1=$!
  RUST_LOG=warn "$b" -i n2 -d "$w/c2" -e 127.0.0.1:$p2 start --peer 127.0.0.1:$p1 2>"$w/n2.log" & n2=$!
  for p in $p1 $p2; do
    for _ in $(seq 100); do "$b" -e 127.0.0.1:$p status >/dev/null 2>&1 && break; sleep 0.2; done
    "$b" -e 127.0.0.1:$p status >/dev/null 2>&1 || { echo "node on port $p did not start:" >&2; cat "$w"/n*.log >&2; return 1; }
  done
  # Answering is not having joined: a relayed import into n2 started before n1
  # knew n2 failed with 'unknown node "n2"'.
  local joined='import json,sys; sys.exit(not any(m["id"] == "n2" and m.get("reachable") for m in json.load(sys.stdin)))'
  for _ in $(seq 100); do "$b" -e 127.0.0.1:$p1 peers --json 2>/dev/null | python3 -c "$joined" && return 0; sleep 0.2; done
  echo "n2 did not join n1:" >&2; cat "$w"/n*.log >&2; return 1
}
