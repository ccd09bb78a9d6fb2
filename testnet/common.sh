# Shared settings of the testnet scripts (sourced, not run).
# Hosts are network namespaces $KCNET-<host> on a bridge in $KCNET-br; nothing
# is added to the host's own network namespace.
#
# KCNET=<name> (default kcnet) names one testnet, so several coexist on a
# machine: its namespaces ($KCNET-cp1, $KCNET-br), node names ($KCNET-cp1;
# cgroups are kc/<node>), state and data dirs and host port all derive from
# it, and down.sh removes only its own. The default keeps the historical
# names (namespaces kcnet-*, nodes cp1, w1, ..., /run/kc-testnet). Pick a
# name NOT starting with "kcnet-": older down.sh scripts remove every kcnet-*.
KCNET=${KCNET:-kcnet}
case "$KCNET" in
    *[!a-z0-9-]* | "" | -*) echo "testnet: KCNET=$KCNET: use lower-case letters, digits and '-'" >&2; exit 1 ;;
esac
if [ "$KCNET" = kcnet ]; then
    KCNET_STATE=${KCNET_STATE:-/run/kc-testnet}
    KCNET_DATA=${KCNET_DATA:-/var/lib/kc-testnet}
    KCNET_HOST_PORT=${KCNET_HOST_PORT:-36443}
    KCNET_NODE_PREFIX=${KCNET_NODE_PREFIX-}
else
    KCNET_STATE=${KCNET_STATE:-/run/kc-testnet-$KCNET}
    KCNET_DATA=${KCNET_DATA:-/var/lib/kc-testnet-$KCNET}
    # A port of its own, derived from the name (override with KCNET_HOST_PORT).
    KCNET_HOST_PORT=${KCNET_HOST_PORT:-$((36444 + $(printf %s "$KCNET" | cksum | cut -d' ' -f1) % 2000))}
    KCNET_NODE_PREFIX=${KCNET_NODE_PREFIX-$KCNET-}
fi
KCNET_SUBNET=${KCNET_SUBNET:-10.100.0}
KCNET_BRIDGE_NS=$KCNET-br
# forward.sh (run by socat) and child scripts see the same testnet.
export KCNET KCNET_STATE KCNET_DATA KCNET_HOST_PORT KCNET_NODE_PREFIX KCNET_SUBNET
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KCNODE=${KCNODE:-$REPO/target/debug/kcnode}

die() { echo "testnet: $*" >&2; exit 1; }
say() { echo "testnet: $*" >&2; }

# Fails up.sh with message $1: prints the last lines of the logs of hosts
# $2..., and keeps every log of this testnet under /var/tmp/kc-testnet-logs
# (outside the state dir, so the teardown that follows keeps them).
kcnet_fail() {
    local why=$1 h keep
    shift
    keep=/var/tmp/kc-testnet-logs/$KCNET-$(date +%Y%m%d-%H%M%S)
    mkdir -p "$keep"
    cp "$KCNET_STATE"/*.log "$KCNET_STATE"/*.out "$keep"/ 2>/dev/null || true
    for h in "$@"; do
        echo "testnet: --- last lines of $h's log ($keep/$h.log) ---" >&2
        tail -n 15 "$KCNET_STATE/$h.log" >&2 2>/dev/null || echo "(no log)" >&2
    done
    die "$why; every host's log is kept in $keep"
}

# The hosts recorded by up.sh, one per line.
kcnet_hosts() { cat "$KCNET_STATE/hosts" 2>/dev/null || true; }

# The network namespace and the node name of testnet host $1 (cp1, w2, ...).
kcnet_ns() { echo "$KCNET-$1"; }
kcnet_node() { echo "$KCNET_NODE_PREFIX$1"; }

# Whether namespace $1 is one of this testnet's ($KCNET-br, $KCNET-cpN, $KCNET-wN).
kcnet_owns_ns() { [[ "$1" =~ ^$KCNET-(br|cp[0-9]+|w[0-9]+)$ ]]; }

# Starts $KCNODE on host $1 with the rest as arguments (its data dir and
# node name added); records its PID in $KCNET_STATE/$1.pid, its output in
# $1.out and $1.log.
kcnet_start_kcnode() {
    local h=$1; shift
    mkdir -p "$KCNET_DATA/$h"
    # nsenter --net (not `ip netns exec`, which remounts /sys and hides cgroups).
    RUST_LOG=${RUST_LOG:-info} setsid nsenter --net="/run/netns/$(kcnet_ns "$h")" "$KCNODE" \
        --data-dir "$KCNET_DATA/$h" --node-name "$(kcnet_node "$h")" "$@" \
        >"$KCNET_STATE/$h.out" 2>"$KCNET_STATE/$h.log" </dev/null &
    echo "$!" > "$KCNET_STATE/$h.pid"
}

# kubectl inside the first running control-plane member's namespace.
kcnet_kubectl() {
    local h=cp1 c
    for c in $(kcnet_hosts | awk '$1 ~ /^cp/ {print $1}'); do
        if kill -0 "$(cat "$KCNET_STATE/$c.pid" 2>/dev/null)" 2>/dev/null; then h=$c; break; fi
    done
    nsenter --net="/run/netns/$(kcnet_ns "$h")" kubectl --kubeconfig "$KCNET_DATA/$h/admin.kubeconfig" "$@"
}

# The memory of process $1: RSS, its anonymous and file-backed parts (the
# binary's pages are file-backed and shared by every kcnode on the machine)
# and PSS (shared pages divided among the processes mapping them), in MiB.
kcnet_mem() {
    awk '/^VmRSS/ {r=$2} /^RssAnon/ {a=$2} /^RssFile/ {f=$2} END {printf "RSS %.1f MiB (anon %.1f, file %.1f)", r/1024, a/1024, f/1024}' "/proc/$1/status"
    awk '/^Pss:/ {p=$2} END {printf ", PSS %.1f MiB\n", p/1024}' "/proc/$1/smaps_rollup" 2>/dev/null || echo
}
