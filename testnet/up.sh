#!/usr/bin/env bash
# testnet/up.sh [--control-planes N] [--workers M]: a kc cluster of hosts
# on this machine, each host a network namespace (kcnet-cp1, kcnet-w1, ...)
# linked by a bridge in its own namespace (kcnet-br); KCNET=<name> makes
# them <name>-cp1, ... with nodes of the same names, so several testnets
# coexist (testnet/common.sh). Starts `kcnode init`
# on cp1, `kcnode join --control-plane` on cp2..N (one at a time: each is
# added to the store as a learner, then a voter), `kcnode join` on the
# workers, waits until every Node is Ready, and writes a kubeconfig usable
# from this host (through a userland forward from 127.0.0.1:$KCNET_HOST_PORT
# into the first live member; no interface is added to the host's
# namespace). Undo with testnet/down.sh. If it fails, it prints the end of
# the log of each host that failed and keeps every log under
# /var/tmp/kc-testnet-logs/ (down.sh does not remove them). Waits up to
# KCNET_READY_TIMEOUT (90) seconds for the Nodes.
set -euo pipefail
source "$(dirname "$0")/common.sh"

CONTROL_PLANES=1
WORKERS=2
while [ $# -gt 0 ]; do
    case "$1" in
        --control-planes) CONTROL_PLANES=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces)"
[ "$CONTROL_PLANES" -ge 1 ] 2>/dev/null || die "--control-planes must be 1 or more"
[ -e "$KCNET_STATE/hosts" ] && die "a testnet is already up ($KCNET_STATE); run testnet/down.sh first"

# What a fresh Debian machine lacks.
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
command -v socat >/dev/null || need+=(socat)
command -v kubectl >/dev/null || need+=(kubernetes-client)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -x "$KCNODE" ]; then
    say "building kcnode"
    (cd "$REPO" && cargo build -q -p kc-node)
fi

mkdir -p "$KCNET_STATE" "$KCNET_DATA"
hosts=()
for i in $(seq 1 "$CONTROL_PLANES"); do hosts+=("cp$i"); done
for i in $(seq 1 "$WORKERS"); do hosts+=("w$i"); done
start=$(date +%s.%N)

ip netns add "$KCNET_BRIDGE_NS"
echo "$KCNET_BRIDGE_NS" > "$KCNET_STATE/namespaces"
ip -n "$KCNET_BRIDGE_NS" link add br0 type bridge
ip -n "$KCNET_BRIDGE_NS" link set br0 up
n=0
for h in "${hosts[@]}"; do
    n=$((n + 1))
    ns=$(kcnet_ns "$h")
    ip netns add "$ns"
    echo "$ns" >> "$KCNET_STATE/namespaces"
    ip -n "$KCNET_BRIDGE_NS" link add "v-$h" type veth peer name eth0 netns "$ns"
    ip -n "$KCNET_BRIDGE_NS" link set "v-$h" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$KCNET_SUBNET.$n/24" dev eth0
    ip -n "$ns" link set eth0 up
    echo "$h $KCNET_SUBNET.$n" >> "$KCNET_STATE/hosts"
done

start_kcnode() { kcnet_start_kcnode "$@"; }

start_kcnode cp1 init --advertise-address "$KCNET_SUBNET.1" --heartbeat 2s
# The two join commands init prints: the first for workers, the second
# (ending in --control-plane) for members.
join=""
cp_join=""
init_deadline=$(( $(date +%s) + 60 ))
while [ "$(date +%s)" -lt "$init_deadline" ]; do
    cp_join=$(grep -m1 'kcnode join.*--control-plane' "$KCNET_STATE/cp1.out" 2>/dev/null || true)
    [ -n "$cp_join" ] && break
    kill -0 "$(cat "$KCNET_STATE/cp1.pid")" 2>/dev/null || kcnet_fail "kcnode init failed" cp1
    sleep 0.05
done
[ -n "$cp_join" ] || kcnet_fail "kcnode init printed no join commands in 60 s" cp1
# The worker's command is printed before the member's: read it only now
# (read in the loop, it could be missed by a read that came too early).
join=$(grep -m1 'kcnode join' "$KCNET_STATE/cp1.out")
read -r -a join_args <<< "${join#*kcnode }"
read -r -a cp_join_args <<< "${cp_join#*kcnode }"
n=1
for h in "${hosts[@]:1}"; do
    n=$((n + 1))
    case "$h" in
        cp*)
            start_kcnode "$h" "${cp_join_args[@]}" --advertise-address "$KCNET_SUBNET.$n" --heartbeat 2s
            # One membership change at a time: wait until this member serves.
            for _ in $(seq 1 600); do
                grep -q 'control plane of' "$KCNET_STATE/$h.out" 2>/dev/null && break
                kill -0 "$(cat "$KCNET_STATE/$h.pid")" 2>/dev/null || kcnet_fail "kcnode join --control-plane on $h failed" "$h"
                sleep 0.1
            done
            grep -q 'control plane of' "$KCNET_STATE/$h.out" || kcnet_fail "$h did not become a member in 60 s" "$h"
            ;;
        *) start_kcnode "$h" "${join_args[@]}" --advertise-address "$KCNET_SUBNET.$n" --heartbeat 2s ;;
    esac
done

want=${#hosts[@]}
ready=0
ready_names=""
# A first run on a fresh machine (cold page cache, first kernel module
# loads) is slower than the usual second: wait by the clock, not by tries.
deadline=$(( $(date +%s) + ${KCNET_READY_TIMEOUT:-90} ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    ready_names=$(kcnet_kubectl get nodes --no-headers 2>/dev/null | awk '$2 == "Ready" {print $1}' || true)
    ready=$(printf '%s' "$ready_names" | grep -c . || true)
    [ "$ready" = "$want" ] && break
    for h in "${hosts[@]}"; do
        kill -0 "$(cat "$KCNET_STATE/$h.pid")" 2>/dev/null || kcnet_fail "kcnode on $h exited before its Node was Ready" "$h"
    done
    sleep 0.1
done
if [ "$ready" != "$want" ]; then
    not_ready=()
    for h in "${hosts[@]}"; do
        grep -qx "$(kcnet_node "$h")" <<< "$ready_names" || not_ready+=("$h")
    done
    kcnet_fail "only $ready of $want nodes Ready after ${KCNET_READY_TIMEOUT:-90} s (not Ready: ${not_ready[*]})" "${not_ready[@]}"
fi
end=$(date +%s.%N)

# A kubeconfig for this host, through a userland forward into a member:
# each connection goes to the first member whose API server answers
# (testnet/forward.sh), so it keeps working when cp1 is down.
members=$(printf '%s ' "${hosts[@]:0:$CONTROL_PLANES}")
setsid socat "TCP-LISTEN:$KCNET_HOST_PORT,bind=127.0.0.1,fork,reuseaddr" \
    "EXEC:$REPO/testnet/forward.sh $members" \
    >"$KCNET_STATE/forward.log" 2>&1 </dev/null &
echo "$!" > "$KCNET_STATE/forward.pid"
sleep 0.2
kill -0 "$(cat "$KCNET_STATE/forward.pid")" 2>/dev/null ||
    die "cannot forward 127.0.0.1:$KCNET_HOST_PORT (in use? set KCNET_HOST_PORT): $(cat "$KCNET_STATE/forward.log")"
# (The member's own kubeconfig names its advertised address, https://<ip>:6443.)
sed "s#server: https://[^ ]*#server: https://127.0.0.1:$KCNET_HOST_PORT#" \
    "$KCNET_DATA/cp1/admin.kubeconfig" > "$KCNET_STATE/kubeconfig"
chmod 600 "$KCNET_STATE/kubeconfig"

awk -v n="$want" -v s="$start" -v e="$end" 'BEGIN { printf "testnet: %d nodes Ready in %.2f s\n", n, e - s }'
cat <<USAGE
testnet: up. Use it with
  export KUBECONFIG=$KCNET_STATE/kubeconfig
  kubectl get nodes -o wide
or inside a host: nsenter --net=/run/netns/$(kcnet_ns cp1) kubectl --kubeconfig $KCNET_DATA/cp1/admin.kubeconfig get nodes
More workers later: kcnode token create on cp1. Status: testnet/status.sh. Tear down: testnet/down.sh
USAGE
