#!/usr/bin/env bash
# Pod start latency on a 1+2 testnet (testnet/up.sh): the busybox image is
# made present on every node first, then PODS pods (default 100, `sleep`
# in busybox, imagePullPolicy IfNotPresent) are created through the API
# one after another and the time from each create request to the watch
# event showing it Running is recorded (bench/pod_start.py): p50/p99.
# A second round creates them INTERVAL_MS apart (default 100) to see the
# latency without the burst's queueing. Goal: p50 <= 100 ms, p99 <= 300 ms.
#
#   bench/pod_start.sh [--pods N] [--interval-ms MS] [--keep]
#
# Needs root, python3 with PyYAML; builds kcnode (debug, as testnet/up.sh
# runs it) if missing. The testnet is torn down at the end unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
source testnet/common.sh
pods=100
interval=100
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --pods) pods=$2; shift 2 ;;
        --interval-ms) interval=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "pod_start.sh: needs root" >&2; exit 1; }
python3 -c 'import yaml' 2>/dev/null || { echo "pod_start.sh: needs PyYAML (apt-get install python3-yaml)" >&2; exit 1; }

[ "$keep" = 1 ] || trap 'testnet/down.sh >/dev/null 2>&1 || true' EXIT
testnet/up.sh --workers 2 | grep 'Ready in'
while read -r h _; do
    "$KCNODE" --data-dir "$KCNET_DATA/$h" --node-name "$h" image base busybox >/dev/null
done < "$KCNET_STATE/hosts"
kc="$KCNET_STATE/kubeconfig"
round() { # name interval
    kubectl --kubeconfig "$kc" create namespace "$1" >/dev/null
    echo "round $1: $pods pods, ${2} ms apart"
    python3 bench/pod_start.py "$kc" "$pods" "$1" busybox:latest "$2"
    while read -r h _; do
        echo "  $h kcnode with the pods running: $(kcnet_mem "$(cat "$KCNET_STATE/$h.pid")")"
    done < "$KCNET_STATE/hosts"
    kubectl --kubeconfig "$kc" -n "$1" delete pods --all --timeout=120s >/dev/null
}
round burst 0
round spaced "$interval"
