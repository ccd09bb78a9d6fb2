#!/usr/bin/env bash
# bench/failover.sh [runs]: API failover of a replicated control plane.
# Brings up a testnet of 3 control-plane members (testnet/up.sh
# --control-planes 3 --workers 0), writes ConfigMaps in a loop through a
# member that is not the store's leader (curl, admin certificate, each
# attempt at most 500 ms), kill -9s the leader's kcnode and prints the time
# from the kill to the first acknowledged write among those started after
# the kill. Tears the
# testnet down after each run. Goal (issue #9): within 1 s.
# Figures, not asserts; needs root and no testnet already up.
set -euo pipefail
cd "$(dirname "$0")/.."
source testnet/common.sh
RUNS=${1:-3}
[ "$(id -u)" = 0 ] || die "run as root (the testnet is network namespaces)"
[ -e "$KCNET_STATE/hosts" ] && die "a testnet is already up: bench/failover.sh brings up its own (testnet/down.sh first)"
# testnet/down.sh removes this testnet's namespaces ($KCNET-*, testnet/common.sh):
# never run beside a testnet of the same name (another KCNET=<name> is fine).
ip netns list 2>/dev/null | awk '{print $1}' | while read -r ns; do kcnet_owns_ns "$ns" && exit 1; done ||
    die "$KCNET-* network namespaces exist (someone's testnet, with another KCNET_STATE?): not touching them (set KCNET=<another name>)"
command -v jq >/dev/null || die "jq missing: apt-get install jq"
cargo build -q -p kc-node
trap 'testnet/down.sh >/dev/null 2>&1 || true' EXIT

for run in $(seq 1 "$RUNS"); do
    testnet/up.sh --control-planes 3 --workers 0 >/dev/null 2>"/tmp/kc-failover-up.log" ||
        die "testnet/up.sh failed: $(tail -3 /tmp/kc-failover-up.log)"
    status=$(nsenter --net=/run/netns/$(kcnet_ns cp1) "$KCNODE" store status \
        --endpoints 127.0.0.1:7000 --pki-dir "$KCNET_DATA/cp1/pki")
    leader_ip=$(jq -r '.members[(.leader|tostring)] | split(":")[0]' <<<"$status")
    leader=$(awk -v ip="$leader_ip" '$2 == ip {print $1}' "$KCNET_STATE/hosts")
    survivor=$(awk -v l="$leader" '$1 ~ /^cp/ && $1 != l {print $1; exit}' "$KCNET_STATE/hosts")
    pki=$KCNET_DATA/$survivor/pki
    log=$KCNET_STATE/failover-writes.log
    # The writer: one line per attempt, "ok|fail <start ns> <end ns>".
    nsenter --net="/run/netns/$(kcnet_ns "$survivor")" bash -c '
        i=0
        while true; do
            i=$((i + 1))
            start=$(date +%s%N)
            if curl -sf -m 0.5 --cacert "$1/ca.crt" --cert "$1/admin.crt" --key "$1/admin.key" \
                -H "Content-Type: application/json" -o /dev/null \
                -d "{\"metadata\":{\"name\":\"failover-$i\"}}" \
                https://127.0.0.1:6443/api/v1/namespaces/default/configmaps; then
                echo "ok $start $(date +%s%N)"
            else
                echo "fail $start $(date +%s%N)"
            fi
        done' writer "$pki" >"$log" 2>/dev/null &
    writer=$!
    sleep 2
    before=$(grep -c '^ok' "$log" || true)
    killed=$(date +%s%N)
    kill -9 "$(cat "$KCNET_STATE/$leader.pid")"
    sleep 4
    kill "$writer" 2>/dev/null || true
    wait "$writer" 2>/dev/null || true
    # Only writes started after the kill count (one in flight may have
    # been committed just before it).
    first=$(awk -v k="$killed" '$1 == "ok" && $2 > k {print $3; exit}' "$log")
    failed=$(awk -v k="$killed" '$1 == "fail" && $3 > k' "$log" | wc -l)
    if [ -n "$first" ]; then
        ms=$(( (first - killed) / 1000000 ))
        echo "run $run: leader $leader killed; first acknowledged write through $survivor after $ms ms ($failed failed attempts; $before writes before the kill)"
    else
        echo "run $run: leader $leader killed; NO acknowledged write through $survivor within 4 s"
    fi
    testnet/down.sh >/dev/null 2>&1
done
