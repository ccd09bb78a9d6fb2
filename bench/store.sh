#!/usr/bin/env bash
# Benchmark kc's replicated store against etcd 3.4 (Debian etcd-server), in
# one run: 3 members of each on loopback, data dirs side by side on the same
# disk, the same load generator (`kcnode store bench`) for both.
#
#   bench/store.sh                 # defaults below; override with env vars
#   SEQ=5000 CONC=50000 CLIENTS=100 bench/store.sh
#
# Prints: sequential put latency (1 client), throughput with CLIENTS
# concurrent clients over 16 connections, and leader failover (kill -9 of
# the leader -> first successful put). etcd is driven through its native
# gRPC API (HTTP/2), kc through its QUIC client; both through the same
# number of connections.
set -euo pipefail
cd "$(dirname "$0")/.."

SEQ=${SEQ:-3000}
CONC=${CONC:-30000}
CLIENTS=${CLIENTS:-100}
CONNS=${CONNS:-16}

command -v etcd >/dev/null || { echo "bench/store.sh: etcd missing: apt-get install etcd-server" >&2; exit 1; }
cargo build --release -p kc-node >&2
K=$PWD/target/release/kcnode

W=$(mktemp -d "${BENCH_DIR:-$PWD/target}/kc-store-bench.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

echo "# data dirs under $W ($(df -h "$W" | awk 'NR==2{print $1}'))"

# --- etcd: 3 members ---------------------------------------------------------
ec=""; for i in 1 2 3; do ec+="e$i=http://127.0.0.1:2380$i,"; done; ec=${ec%,}
epids=()
for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$W/etcd$i" \
        --listen-peer-urls "http://127.0.0.1:2380$i" --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
        --listen-client-urls "http://127.0.0.1:2379$i" --advertise-client-urls "http://127.0.0.1:2379$i" \
        --initial-cluster "$ec" --initial-cluster-state new --initial-cluster-token kc-bench \
        >"$W/etcd$i.log" 2>&1 &
    pids+=($!); epids+=($!)
done
for i in 1 2 3; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:2379$i/health" | grep -q true && break; sleep 0.1; done
done
E=127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793

# --- kc: 3 members -------------------------------------------------------------
"$K" store ca --pki-dir "$W/pki" >/dev/null
kp=""; for i in 1 2 3; do kp+="$i=127.0.0.1:2710$i,"; done; kp=${kp%,}
kpids=()
for i in 1 2 3; do
    "$K" store member --id "$i" --listen "127.0.0.1:2710$i" --peers "$kp" \
        --pki-dir "$W/pki" --data-dir "$W/kc$i" >"$W/kc$i.log" 2>&1 &
    pids+=($!); kpids+=($!)
done
KE=127.0.0.1:27101,127.0.0.1:27102,127.0.0.1:27103

run() { "$K" store bench "$@"; }
echo "# sequential puts, 1 client, $SEQ puts, 256-byte values"
run --target etcd --endpoints $E --clients 1 --requests "$SEQ"
run --target kc --endpoints $KE --pki-dir "$W/pki" --clients 1 --requests "$SEQ"
echo "# concurrent puts, $CLIENTS clients over $CONNS connections, $CONC puts"
run --target etcd --endpoints $E --clients "$CLIENTS" --connections "$CONNS" --requests "$CONC"
run --target kc --endpoints $KE --pki-dir "$W/pki" --clients "$CLIENTS" --connections "$CONNS" --requests "$CONC"
echo "# leader failover: kill -9 the leader, time to the first successful put"
run --target etcd --endpoints $E --failover-pids "$(IFS=,; echo "${epids[*]}")"
run --target kc --endpoints $KE --pki-dir "$W/pki" --failover-pids "$(IFS=,; echo "${kpids[*]}")"
