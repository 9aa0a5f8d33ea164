#!/usr/bin/env bash
# JSON ingest benchmark: `vast -N import` beside DuckDB's `read_json` into a
# persisted table, on two generated inputs:
#   - Suricata EVE: the event shapes of ../shared/data/suricata/eve.json (alert,
#     dns, fileinfo, flow, http, netflow; a stats event every 10,000 lines), each
#     line with its own timestamp, flow id, source address and port;
#   - Zeek JSON: the lines of ../shared/data/json/conn.log.json.gz, each with its
#     own ts, uid, originator address and port.
# Prints whole-process wall times side by side (best of 3), and checks that both
# tools hold the same number of events.
#
#   tests/bench/ingest-json.sh [EVE_LINES] [ZEEK_LINES]   (default 500000 2000000)
#
# Inputs are cached in ${BENCH_DIR:-/tmp/vast-bench}. Needs: duckdb (pip install
# duckdb-cli), python3.
set -euo pipefail
eve_lines=${1:-500000}
zeek_lines=${2:-2000000}
# shellcheck source=tests/bench/duckdb-peer.sh
source "$(dirname "$0")/duckdb-peer.sh" json

gen() { # gen KIND LINES OUT: deterministic input, generated on first use
  [ -s "$3" ] && return
  echo "generating $3 ..." >&2
  python3 - "$1" "$2" "$data" > "$3.gen.$$" <<'PY'
import datetime, gzip, json, sys
kind, n, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = sys.stdout
t0 = datetime.datetime(2011, 8, 12, 14, 52, 57, tzinfo=datetime.timezone.utc)
if kind == "eve":
    shapes = {}
    for line in open(f"{data}/suricata/eve.json"):
        d = json.loads(line)
        shapes[d["event_type"]] = d
    # A sensor's mix: mostly flows and DNS, some HTTP and files, few alerts.
    cycle = (["flow"] * 4 + ["dns"] * 3 + ["netflow"] * 2 + ["http"] * 2
             + ["fileinfo", "alert"])
    for i in range(n):
        kind_i = "stats" if i % 10000 == 0 else cycle[i % len(cycle)]
        d = dict(shapes[kind_i])
        d["timestamp"] = (t0 + datetime.timedelta(microseconds=1000 * i)).isoformat()
        if kind_i != "stats":
            d["flow_id"] = 1000000000000000 + i
            d["src_ip"] = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
            d["src_port"] = 1024 + i % 60000
            if "pcap_cnt" in d:
                d["pcap_cnt"] = i
        out.write(json.dumps(d, separators=(",", ":")) + "\n")
else:
    lines = [json.loads(l) for l in gzip.open(f"{data}/json/conn.log.json.gz", "rt")]
    for i in range(n):
        d = dict(lines[i % len(lines)])
        d["ts"] = (t0 + datetime.timedelta(microseconds=1000 * i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        d["uid"] = f"C{i:017d}"
        d["id.orig_h"] = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        d["id.orig_p"] = 1024 + i % 60000
        out.write(json.dumps(d, separators=(",", ":")) + "\n")
PY
  mv "$3.gen.$$" "$3"
}

now() { date +%s.%N; }
best3() { # best wall time of 3 runs of "$@" (each after `reset`), output discarded
  local best=""
  for _ in 1 2 3; do
    reset
    local s e
    s=$(now); "$@" >/dev/null 2>&1; e=$(now)
    best=$(python3 -c "a=$e-$s; b='$best'; print(f'{min(a, float(b)) if b else a:.3f}')")
  done
  echo "$best"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); vast: $vast"
echo
printf '%-12s %10s %10s %10s %10s %8s  %s\n' "input" "lines" "MB" "vast s" "duckdb s" "v/d" "events (vast, duckdb)"
for kind in eve zeek; do
  if [ "$kind" = eve ]; then lines=$eve_lines fmt=suricata; else lines=$zeek_lines fmt=zeek-json; fi
  log="$work/$kind-$lines.json"
  gen "$kind" "$lines" "$log"
  db="$scratch/vast.db"; duck="$scratch/duck.db"
  reset() { rm -rf "$db" "$duck" "$duck.wal"; sync; }
  t_vast=$(best3 "$vast" -N -d "$db" import -r "$log" "$fmt")
  n_vast=$("$vast" -N -d "$db" count '#type != ""')
  t_duck=$(best3 duckdb "$duck" -c "CREATE TABLE t AS SELECT * FROM read_json('$log', format='newline_delimited');")
  n_duck=$(duckdb -readonly "$duck" -noheader -list -c "SELECT count(*) FROM t" | tail -1)
  printf '%-12s %10s %10s %10s %10s %8s  %s\n' "$fmt" "$lines" "$(( $(stat -c %s "$log") / 1000000 ))" \
    "$t_vast" "$t_duck" "$(python3 -c "print(f'{$t_vast/$t_duck:.2f}')")" "$n_vast, $n_duck"
  reset
done
