#!/usr/bin/env bash
# testnet/demo.sh [--flask]: the seed guide end to end, printing each command
# and its output. Containers: build basicserver:0.42, run it with a published
# port, curl it. Kubernetes: bring up a testnet cluster (1 control plane + 2
# workers in network namespaces), push the image into the cluster registry,
# `kubectl run` it, `kubectl get pod`, `kubectl -n kube-system get pod`,
# port-forward and curl. Tears the testnet down at the end.
#
# --flask builds the seed's own Flask Dockerfile (testnet/images/basicserver)
# on a python:3 image made with debootstrap (testnet/images/flask.sh, a few
# minutes, needs a Debian mirror); the default is the same hello server on
# the busybox base image (testnet/images/hello).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
[ "$(id -u)" = 0 ] || { echo "demo: run as root (namespaces, cgroups, mounts)" >&2; exit 1; }

FLASK=0
[ "${1:-}" = "--flask" ] && FLASK=1

need=()
command -v busybox >/dev/null || need+=(busybox-static)
command -v curl >/dev/null || need+=(curl)
command -v socat >/dev/null || need+=(socat)
command -v nsenter >/dev/null || need+=(util-linux)
command -v kubectl >/dev/null || need+=(kubernetes-client)
command -v cargo >/dev/null || { echo "demo: needs a Rust toolchain (cargo)" >&2; exit 1; }
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build -q -p kc-node
export PATH="$REPO/target/debug:$PATH"
export KC_DATA_DIR=/var/lib/kc-demo
DEMO_PORT=${DEMO_PORT:-5000}

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
cleanup() {
    [ -n "${PF_PID:-}" ] && kill "$PF_PID" 2>/dev/null || true
    kcnode rm -f demo >/dev/null 2>&1 || true
    testnet/down.sh >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== Containers - Practical"
step kcnode image base busybox
if [ "$FLASK" = 1 ]; then
    kcnode images python:3 -q | grep -q . || step testnet/images/flask.sh
    step kcnode build -t basicserver:0.42 testnet/images/basicserver
else
    step kcnode build -t basicserver:0.42 testnet/images/hello
fi
step kcnode run -d --name demo -p "$DEMO_PORT:5000" basicserver:0.42
for _ in $(seq 50); do curl -sf "http://localhost:$DEMO_PORT" >/dev/null && break; sleep 0.1; done
step curl -s "http://localhost:$DEMO_PORT"
step kcnode rm -f demo

echo
echo "== Kubernetes: a cluster of network namespaces on this machine"
step testnet/up.sh
export KUBECONFIG=/run/kc-testnet/kubeconfig
step kcnode image push basicserver:0.42
step kubectl run --image basicserver:0.42 testpod
kubectl wait --for=condition=Ready pod/testpod --timeout=120s >/dev/null
step kubectl get pod
step kubectl get pod -o wide
step kubectl -n kube-system get pod
printf '\n\033[1m$ kubectl port-forward testpod %s:5000 &\033[0m\n' "$DEMO_PORT"
kubectl port-forward testpod "$DEMO_PORT:5000" &
PF_PID=$!
for _ in $(seq 100); do curl -sf "http://localhost:$DEMO_PORT" >/dev/null && break; sleep 0.1; done
step curl -s "http://localhost:$DEMO_PORT"
echo
echo "demo: done (the testnet is removed on exit)"
