#!/usr/bin/env bash
# testnet/down.sh: removes everything testnet/up.sh made: its processes (by
# recorded PID), network namespaces, cgroups kc/<node>, data and state, of
# this testnet only (KCNET, see common.sh; other testnets are left alone).
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
# Containers and pod sandboxes of the testnet's nodes outlive kcnode by
# design (adoption): kill what runs in the nodes' cgroups, and any process
# started with a testnet data dir (container monitors).
for h in $(kcnet_hosts | awk '{print $1}'); do
    node=$(kcnet_node "$h")
    for procs in $(find /sys/fs/cgroup -path "*/kc/$node/*" -name cgroup.procs 2>/dev/null); do
        for pid in $(cat "$procs" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    done
done
for d in /proc/[0-9]*; do
    [ "${d#/proc/}" = "$$" ] && continue
    # "$KCNET_DATA/": not another testnet's data dir that starts alike.
    grep -qa "$KCNET_DATA/" "$d/cmdline" 2>/dev/null && kill -KILL "${d#/proc/}" 2>/dev/null
done
namespaces=$(cat "$KCNET_STATE/namespaces" 2>/dev/null || true)
for ns in $namespaces $(ip netns list 2>/dev/null | awk '{print $1}'); do
    kcnet_owns_ns "$ns" || continue
    ip netns del "$ns" 2>/dev/null && say "removed namespace $ns"
done
for h in $(kcnet_hosts | awk '{print $1}'); do
    node=$(kcnet_node "$h")
    for cg in /sys/fs/cgroup/kc/$node /sys/fs/cgroup/*/kc/$node; do
        [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    rm -rf "/run/kc/$node" "/dev/shm/kc/$node"
done
rm -rf "$KCNET_DATA" "$KCNET_STATE"
say "down"
