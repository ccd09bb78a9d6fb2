#!/usr/bin/env bash
# testnet/status.sh: the testnet's hosts, whether their kcnode runs (and
# its memory), and what the cluster says about its nodes and kube-system.
set -uo pipefail
source "$(dirname "$0")/common.sh"
[ -e "$KCNET_STATE/hosts" ] || die "no testnet is up (testnet/up.sh)"
printf '%-6s %-14s %-8s %-6s %s\n' HOST ADDRESS PID STATE RSS
while read -r h ip; do
    pid=$(cat "$KCNET_STATE/$h.pid" 2>/dev/null || echo -)
    if kill -0 "$pid" 2>/dev/null; then
        rss=$(awk '/VmRSS/ {print $2 " " $3}' "/proc/$pid/status")
        printf '%-6s %-14s %-8s %-6s %s\n' "$h" "$ip" "$pid" up "$rss"
    else
        printf '%-6s %-14s %-8s %-6s %s\n' "$h" "$ip" "$pid" DOWN -
    fi
done < "$KCNET_STATE/hosts"
echo
kcnet_kubectl get nodes -o wide
echo
kcnet_kubectl -n kube-system get pod -o wide
