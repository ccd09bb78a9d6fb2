#!/usr/bin/env bash
# testnet/down.sh: removes everything testnet/up.sh made: its processes (by
# recorded PID), network namespaces, cgroups kc/<host>, data and state.
# Safe to run twice, or after a half-finished up.sh.
set -uo pipefail
source "$(dirname "$0")/common.sh"
[ "$(id -u)" = 0 ] || die "run as root"

for f in "$KCNET_STATE"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    # Only a process we started (the PID may have been reused since).
    grep -qaE 'kcnode|socat' "/proc/$pid/cmdline" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null && say "stopped $(basename "$f" .pid) (pid $pid)"
done
sleep 0.3
for f in "$KCNET_STATE"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    grep -qaE 'kcnode|socat' "/proc/$pid/cmdline" 2>/dev/null || continue
    kill -KILL "$pid" 2>/dev/null || true
done
namespaces=$(cat "$KCNET_STATE/namespaces" 2>/dev/null || true)
for ns in $namespaces $(ip netns list 2>/dev/null | awk '$1 ~ /^kcnet-/ {print $1}'); do
    ip netns del "$ns" 2>/dev/null && say "removed namespace $ns"
done
for h in $(kcnet_hosts | awk '{print $1}'); do
    cg=/sys/fs/cgroup/kc/$h
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
done
rm -rf "$KCNET_DATA" "$KCNET_STATE"
say "down"
