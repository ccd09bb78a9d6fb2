#!/usr/bin/env bash
# Scheduler throughput with hollow nodes: 1,000 and 5,000 nodes, 10,000 pods.
# Prints a table (see control-plane/member/benches/scheduler.rs for what is measured).
# KC_BENCH_NODES=1000,5000 KC_BENCH_PODS=10000 bench/scheduler.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p kc-member --bench scheduler "$@"
