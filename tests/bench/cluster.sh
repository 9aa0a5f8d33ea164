#!/usr/bin/env bash
# Cluster benchmark, whole-process figures on one generated Zeek log:
#  - client-process import (`vast import`) vs an in-node source (`spawn source -r`);
#  - import through n1 into n2 (relayed batches) vs embedded `vast -N import`;
#  - data-plane throughput of rkyv batches between two processes vs raw TCP.
#
#   tests/bench/cluster.sh [LINES] [ROUNDS]      (defaults 2000000, 3)
#
# Every import goes into an empty node of a fresh pair (cluster secret on, as a
# real cluster runs), so no figure pays for an earlier one: with compaction on, a
# node merged the last import's partitions while the next was timed (relayed /
# embedded read 0.71 against 0.88-0.91 with it off, 2026-12-07). Compaction is off
# in these nodes as embedded imports never compact. Times drift by 10-15% on a
# shared 2-core machine, so each figure is taken ROUNDS times, and each ratio is
# the median of the rounds' ratios.
set -euo pipefail
lines=${1:-2000000}
rounds=${2:-3}
. "$(dirname "$0")/lib.sh"

# n2's in-node source may read the generated log.
export VAST_SOURCE__READ_DIRS="$work"
pids=""
trap 'kill $pids 2>/dev/null || true' EXIT
# Runs a command whose stderr is kept aside, and shows it if the command fails
# (the script stops there: a figure with a failed import in it means nothing).
quiet() { "$@" 2>"$work/cmd.err" || { echo "failed: $*" >&2; cat "$work/cmd.err" >&2; return 1; }; }
# A fresh pair of empty nodes under $work/pair (see pair.sh).
fresh_pair() { rm -rf "$work/pair"; mkdir -p "$work/pair"; start_pair "$vast" "$work/pair"; pids="$n1 $n2"; }
stop_pair() { kill "$n1" "$n2" 2>/dev/null || true; wait "$n1" "$n2" 2>/dev/null || true; pids=""; }

declare -a t_client t_node t_relay t_emb
for r in $(seq "$rounds"); do
  rm -rf "$work/emb.db"
  fresh_pair

  s=$(now); quiet "$vast" -e 127.0.0.1:$p1 import -r "$log" zeek; t_client[r]=$(elapsed "$s" "$(now)")

  # The in-node source's time: the spawn command's, then the import's as the
  # node timed it (`seconds`). Timing until a poll saw `done` counted the poll's
  # lag against the source: a busy node answers `status --detailed` slowly, and
  # polls every 50 ms saw `done` 0.1-0.27 s after the node recorded it.
  s=$(now)
  label=$(quiet "$vast" -e 127.0.0.1:$p2 spawn source -r "$log" zeek)
  t_spawn=$(elapsed "$s" "$(now)")
  until t_src=$("$vast" -e 127.0.0.1:$p2 status --detailed | python3 -c "import json,sys; s=json.load(sys.stdin)['sources']['$label']; print(s['seconds']) if s['done'] else sys.exit(1)"); do sleep 0.5; done
  t_node[r]=$(python3 -c "print(f'{$t_spawn+$t_src:.3f}')")
  stop_pair

  fresh_pair
  s=$(now); quiet "$vast" -e 127.0.0.1:$p1 --node n2 import -r "$log" zeek; t_relay[r]=$(elapsed "$s" "$(now)")
  stop_pair

  s=$(now); quiet "$vast" -N -d "$work/emb.db" import -r "$log" zeek; t_emb[r]=$(elapsed "$s" "$(now)")
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
declare -a r_client r_relay
for r in $(seq "$rounds"); do
  r_client[r]=$(ratio "${t_node[r]}" "${t_client[r]}")
  r_relay[r]=$(ratio "${t_emb[r]}" "${t_relay[r]}")
done
mc=$(median "${t_client[@]}"); mn=$(median "${t_node[@]}")
mr=$(median "${t_relay[@]}"); me=$(median "${t_emb[@]}")

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; input: $lines lines, $(stat -c %s "$log") bytes; $rounds rounds"
echo
echo "seconds per round: client import, in-node source (ratio: throughput of the client"
echo "over the source's), relayed import, embedded import (ratio: relayed over embedded)"
for r in $(seq "$rounds"); do
  printf '  %d: %s %s (%s)  %s %s (%s)\n' "$r" "${t_client[r]}" "${t_node[r]}" "${r_client[r]}" \
    "${t_relay[r]}" "${t_emb[r]}" "${r_relay[r]}"
done
echo
# The figures are medians of each round's ratio: the two imports of a ratio run
# back to back, so the machine's drift over the run cancels out of it.
printf '%-48s %8s %10s\n' "import into one node (median seconds)" seconds events/s
printf '%-48s %8s %10s\n' "client process: vast import -r FILE" "$mc" "$(rate "$mc")"
printf '%-48s %8s %10s\n' "in-node source: vast spawn source -r FILE" "$mn" "$(rate "$mn")"
printf '%-48s %8s\n' "ratio client/in-node throughput (median; target >= 0.9)" "$(median "${r_client[@]}")"
echo
printf '%-48s %8s %10s\n' "vast -e n1 --node n2 import (relayed to n2)" "$mr" "$(rate "$mr")"
printf '%-48s %8s %10s\n' "vast -N import (embedded)" "$me" "$(rate "$me")"
printf '%-48s %8s\n' "ratio relayed/embedded throughput (median; target >= 0.8)" "$(median "${r_relay[@]}")"
echo
fresh_pair
"$vast" -e 127.0.0.1:$p2 bench-dataplane --mib 1024
stop_pair
rm -rf "$work/pair" "$work/emb.db"
