#!/usr/bin/env bash
# Registry figures: push and pull throughput (MB/s) of an image with a big
# random layer through the cluster registry (`kcnode serve-api`'s /v2/),
# next to skopeo doing the same and skopeo copying between two local
# directories (the ceiling: no network, no TLS). Run as root after
# `cargo build -p kc-node` (or set KCNODE). Uses a private temp dir and a
# free loopback port; everything is removed and the server (by its PID)
# stopped on exit.
#   bench/registry.sh [LAYER_MB]   (size of the big random layer, default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
kcnode=${KCNODE:-target/release/kcnode}
[ -x "$kcnode" ] || kcnode=target/debug/kcnode
layer_mb=${1:-200}
work=$(mktemp -d /var/tmp/kc-bench-registry.XXXXXX)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# seconds (3 decimals) a command takes, its output discarded
t() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    echo "$start $end" | awk '{ printf "%.3f", $2 - $1 }'
}
row() { # label seconds
    printf '%-52s %8s s %8s MB/s\n' "$1" "$2" "$(awk -v s="$2" -v mb="$size_mb" 'BEGIN { printf "%.1f", mb / s }')"
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$kcnode" --data-dir "$work/cp" serve-api --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do [ -f "$work/cp/admin.kubeconfig" ] && break; sleep 0.1; done
sleep 0.5
export KUBECONFIG=$work/cp/admin.kubeconfig
token=$(cut -d, -f1 "$work/cp/tokens.csv")
mkdir -p "$work/certs" && cp "$work/cp/pki/ca.crt" "$work/certs/ca.crt"

# The image: busybox + a big random file (COPY only: no container needed).
a() { "$kcnode" --data-dir "$work/a" "$@"; }
b() { "$kcnode" --data-dir "$work/b" "$@"; }
mkdir -p "$work/ctx"
head -c $((layer_mb << 20)) /dev/urandom >"$work/ctx/big.bin"
printf 'FROM busybox\nCOPY big.bin /data/\n' >"$work/ctx/Dockerfile"
a image base busybox >/dev/null
a build -t bench:1 "$work/ctx" >/dev/null
a image save bench:1 -o "$work/bench.tar"
skopeo copy -q "docker-archive:$work/bench.tar" "oci:$work/layout:1" >/dev/null
size_mb=$(du -sm "$work/layout/blobs" | cut -f1)

echo "image: busybox + ${layer_mb} MB random layer = ${size_mb} MB of blobs; kcnode: $kcnode"
row "skopeo copy oci: -> dir: (ceiling, local disk)" "$(t skopeo copy -q "oci:$work/layout:1" "dir:$work/copy")"
row "kcnode image push (cold registry)" "$(t a image push bench:1)"
row "kcnode image push again (all blobs present)" "$(t a image push bench:1)"
row "kcnode pull (empty node)" "$(t b pull bench:1)"
row "skopeo copy oci: -> registry (push, new repo)" "$(t skopeo copy -q --dest-creds "kc:$token" --dest-cert-dir "$work/certs" "oci:$work/layout:1" "docker://127.0.0.1:$port/skopeo/bench:1")"
row "skopeo copy registry -> dir: (pull)" "$(t skopeo copy -q --src-creds "kc:$token" --src-cert-dir "$work/certs" "docker://127.0.0.1:$port/skopeo/bench:1" "dir:$work/pulled")"
