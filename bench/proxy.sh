#!/usr/bin/env bash
# Service proxy benchmark (root; works only inside test network namespaces):
# nftables rule sync time for SERVICES Services x ENDPOINTS endpoints, and
# connection rate through a ClusterIP vs straight to the pod IP.
# Anchor: kube-proxy nftables mode (same table shape).
#
#   bench/proxy.sh                       # 1000 x 10, 2000 connections
#   SERVICES=5000 ENDPOINTS=10 CONNS=5000 bench/proxy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nft >/dev/null || { echo "bench/proxy.sh: nft missing: apt-get install nftables" >&2; exit 1; }
# PROFILE=release for optimised figures (builds kcnode and the runner in
# release: several minutes on 2 cores); dev by default.
PROFILE=${PROFILE:-dev}
cargo build --profile "$PROFILE" -p kc-node >&2
dir=debug; [ "$PROFILE" = dev ] || dir=$PROFILE
KC_BIN_DIR=$PWD/target/$dir cargo bench --profile "$PROFILE" -p kc-tests --bench proxy
