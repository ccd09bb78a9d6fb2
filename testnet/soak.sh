#!/usr/bin/env bash
# testnet/soak.sh [--minutes N] [--control-planes N] [--workers M] [--seed S]
#                 [--kill-every SECONDS] [--settle SECONDS]:
# churn on a cluster of hosts in network namespaces for N minutes (default
# 30): create, scale and delete Deployments, and every minute kill a random
# process (kill -9 of a worker's kcnode, a power cut of every process of a
# worker; with --control-planes 3 also kill -9 of a member's kcnode or of
# the Raft leader's) and start it again. Every write kubectl acknowledged is recorded;
# at the end the run checks zero lost acknowledged writes and zero stuck
# pods (Pending/Terminating, or Running pods != replicas), prints its
# counts, and exits non-zero on any loss. Not part of the default test run.
#
# The cluster is the tests' (tests/src/chaos.rs: unique namespace names),
# not testnet/up.sh's, so a soak never touches a testnet someone is using;
# it is torn down at the end, also on failure (not on Ctrl-C: then remove
# the leftover kc-test-* namespaces with `ip netns del`).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in -h|--help) sed -n '2,15p' "$0"; exit 0 ;; esac
[ "$(id -u)" = 0 ] || { echo "soak: run as root (network namespaces, cgroups)" >&2; exit 1; }
cd "$REPO"
cargo build -q -p kc-node -p kc-ctl
exec cargo run -q -p kc-tests --example soak -- "$@"
