# Shared settings of the testnet scripts (sourced, not run).
# Hosts are network namespaces kcnet-<host> on a bridge in kcnet-br; nothing
# is added to the host's own network namespace.
KCNET_STATE=${KCNET_STATE:-/run/kc-testnet}
KCNET_DATA=${KCNET_DATA:-/var/lib/kc-testnet}
KCNET_SUBNET=${KCNET_SUBNET:-10.100.0}
KCNET_HOST_PORT=${KCNET_HOST_PORT:-36443}
KCNET_BRIDGE_NS=kcnet-br
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KCNODE=${KCNODE:-$REPO/target/debug/kcnode}

die() { echo "testnet: $*" >&2; exit 1; }
say() { echo "testnet: $*" >&2; }

# The hosts recorded by up.sh, one per line.
kcnet_hosts() { cat "$KCNET_STATE/hosts" 2>/dev/null || true; }

# kubectl inside the first running control-plane member's namespace.
kcnet_kubectl() {
    local h=cp1 c
    for c in $(kcnet_hosts | awk '$1 ~ /^cp/ {print $1}'); do
        if kill -0 "$(cat "$KCNET_STATE/$c.pid" 2>/dev/null)" 2>/dev/null; then h=$c; break; fi
    done
    nsenter --net="/run/netns/kcnet-$h" kubectl --kubeconfig "$KCNET_DATA/$h/admin.kubeconfig" "$@"
}

# The memory of process $1: RSS, its anonymous and file-backed parts (the
# binary's pages are file-backed and shared by every kcnode on the machine)
# and PSS (shared pages divided among the processes mapping them), in MiB.
kcnet_mem() {
    awk '/^VmRSS/ {r=$2} /^RssAnon/ {a=$2} /^RssFile/ {f=$2} END {printf "RSS %.1f MiB (anon %.1f, file %.1f)", r/1024, a/1024, f/1024}' "/proc/$1/status"
    awk '/^Pss:/ {p=$2} END {printf ", PSS %.1f MiB\n", p/1024}' "/proc/$1/smaps_rollup" 2>/dev/null || echo
}
