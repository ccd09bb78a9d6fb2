#!/usr/bin/env bash
# testnet/bench.sh [runs]: brings the testnet up and down `runs` times
# (default 3) and prints the time until every Node was Ready, and the
# resident memory of the control-plane and worker kcnode processes.
# Goal: all Ready within 5 s of start (after the build).
set -euo pipefail
source "$(dirname "$0")/common.sh"
runs=${1:-3}
dir=$(dirname "$0")
"$dir/down.sh" >/dev/null 2>&1 || true
for i in $(seq 1 "$runs"); do
    "$dir/up.sh" 2>&1 | grep 'Ready in' | sed "s/^testnet:/run $i:/"
    sleep 3 # let heartbeats and mirror pods settle before measuring memory
    while read -r h _; do
        pid=$(cat "$KCNET_STATE/$h.pid")
        echo "run $i: $h kcnode $(kcnet_mem "$pid")"
    done < "$KCNET_STATE/hosts"
    "$dir/down.sh" >/dev/null 2>&1
done
