#!/usr/bin/env bash
# Image figures: how long the image side's common operations take on this
# machine, printed as a table. Run as root after `cargo build --release -p
# kc-node` (or set KCNODE). Uses a private data dir, removed after.
#   bench/images.sh [LAYER_MB]   (size of the big random layer, default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
kcnode=${KCNODE:-target/release/kcnode}
[ -x "$kcnode" ] || kcnode=target/debug/kcnode
layer_mb=${1:-200}
work=$(mktemp -d /var/tmp/kc-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
k() { "$kcnode" --data-dir "$work/data" "$@"; }

# seconds (3 decimals) a command takes, its output discarded
t() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    echo "$start $end" | awk '{ printf "%.3f", $2 - $1 }'
}

mkdir -p "$work/ctx"
echo 'Hello, World!' >"$work/ctx/index.html"
head -c $((layer_mb << 20)) /dev/urandom >"$work/ctx/big.bin"
cat >"$work/ctx/Dockerfile" <<'DOCKERFILE'
FROM busybox
COPY index.html /www/
COPY big.bin /data/
RUN ls -l /data/big.bin
CMD ["httpd", "-f", "-p", "5000", "-h", "/www"]
DOCKERFILE

printf '%-44s %10s\n' "operation ($kcnode)" "seconds"
printf '%-44s %10s\n' "image base busybox" "$(t k image base busybox)"
printf '%-44s %10s\n' "build, cold (${layer_mb} MB COPY + RUN)" "$(t k build -t bench:1 "$work/ctx")"
printf '%-44s %10s\n' "build, all steps cached" "$(t k build -t bench:1 "$work/ctx")"
printf '%-44s %10s\n' "image save bench:1 (${layer_mb} MB)" "$(t k image save bench:1 -o "$work/bench.tar")"
printf '%-44s %10s\n' "rmi bench:1 (untag; build cache keeps it)" "$(t k rmi bench:1)"
printf '%-44s %10s\n' "image prune (drop cache, collect ${layer_mb} MB)" "$(t k image prune)"
printf '%-44s %10s\n' "image import (verify + unpack ${layer_mb} MB)" "$(t k image import "$work/bench.tar")"
printf '%-44s %10s\n' "images (list)" "$(t k images)"
