#!/usr/bin/env bash
# testnet/upgrade.sh --from OLD_KCNODE --to NEW_KCNODE [--control-planes N]
#                    [--workers M] [--replicas R] [--keep]
# A rolling upgrade with two real builds: brings up a testnet (up.sh; N=3
# members, M=3 workers by default) running OLD_KCNODE, runs a Deployment
# of R busybox web servers (default 6) behind a ClusterIP Service, then
# replaces the kcnode binary one host at a time, members first, then
# workers (each host: SIGTERM to its kcnode, wait for it to exit, start
# NEW_KCNODE with the same data dir and arguments, wait until it is back
# in the cluster: its node session connected, a member's API ready, its
# Node Ready) while a client keeps creating ConfigMaps through the API
# and another keeps curling the Service. Prints failed requests, per-host
# downtime, lost acknowledged writes and whether every pod kept running
# (same container, no restart: containers outlive kcnode). Exits 1 on a
# lost write or a restarted/missing pod. The testnet is removed at the end
# unless --keep. Uses KCNET (testnet/common.sh): on a shared machine run it
# as  KCNET=myname flock /work/testnet.lock testnet/upgrade.sh ...
set -euo pipefail
source "$(dirname "$0")/common.sh"
dir=$(cd "$(dirname "$0")" && pwd)

OLD="" NEW="" CONTROL_PLANES=3 WORKERS=3 REPLICAS=6 KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --from) OLD=$2; shift 2 ;;
        --to) NEW=$2; shift 2 ;;
        --control-planes) CONTROL_PLANES=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --replicas) REPLICAS=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[ -n "$OLD" ] && [ -n "$NEW" ] || die "--from OLD_KCNODE and --to NEW_KCNODE are required (see --help)"
OLD=$(readlink -f "$OLD") NEW=$(readlink -f "$NEW")
[ -x "$OLD" ] || die "--from $OLD: not an executable kcnode"
[ -x "$NEW" ] || die "--to $NEW: not an executable kcnode"
[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces)"
command -v curl >/dev/null || die "needs curl"

work=$(mktemp -d /var/tmp/kc-upgrade.XXXXXX)
bg=()
cleanup() {
    for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
    [ "$KEEP" = 1 ] || "$dir/down.sh" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
kc() { kubectl --kubeconfig "$KCNET_STATE/kubeconfig" --request-timeout=5s "$@"; }
# kubectl in host $1's namespace against its own API server (members only).
kc_on() { local h=$1; shift; nsenter --net="/run/netns/$(kcnet_ns "$h")" kubectl --kubeconfig "$KCNET_DATA/$h/admin.kubeconfig" --request-timeout=3s "$@"; }

echo "upgrade: from $OLD"
echo "upgrade: to   $NEW"
KCNODE=$OLD "$dir/up.sh" --control-planes "$CONTROL_PLANES" --workers "$WORKERS" 2>&1 | grep 'Ready in' | sed 's/^testnet:/upgrade: OLD testnet:/'
[ -e "$KCNET_STATE/hosts" ] || die "testnet/up.sh failed"
mapfile -t hosts < <(kcnet_hosts | awk '{print $1}')
cp1_ip=$(awk '$1 == "cp1" {print $2}' "$KCNET_STATE/hosts")
for h in "${hosts[@]}"; do
    "$OLD" --data-dir "$KCNET_DATA/$h" --node-name "$(kcnet_node "$h")" image base busybox >/dev/null
done

kc apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: $REPLICAS
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: main
        image: busybox
        command: [sh, -c, "mkdir -p /www && echo upgrade-ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
YAML
# Pods by name: node, container id, restart count.
pod_table() {
    kc get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} {.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount}{"\n"}{end}' | sort
}
for _ in $(seq 1 240); do
    [ "$(pod_table | awk '$3 == "Running" && $4 != ""' | wc -l)" = "$REPLICAS" ] && break
    sleep 0.5
done
pod_table > "$work/before"
[ "$(awk '$3 == "Running"' "$work/before" | wc -l)" = "$REPLICAS" ] || die "the $REPLICAS web pods did not all run: $(cat "$work/before")"
cip=$(kc get service web -o jsonpath='{.spec.clusterIP}')
echo "upgrade: $REPLICAS web pods on $(awk '{print $2}' "$work/before" | sort -u | tr '\n' ' ')behind ClusterIP $cip"

# The client writing through the API (the host's forward into a live member).
(
    n=0
    while :; do
        n=$((n + 1))
        if kc create configmap "up-$n" >/dev/null 2>&1; then echo "$(now) ok up-$n"; else echo "$(now) fail up-$n"; fi
        sleep 0.2
    done
) > "$work/writes" &
bg+=($!)
# The client curling the Service (from cp1's namespace, where the node's
# Service rules are; they stay while kcnode restarts).
(
    while :; do
        if [ "$(nsenter --net="/run/netns/$(kcnet_ns cp1)" curl -s -m 2 "http://$cip/")" = upgrade-ok ]; then
            echo "$(now) ok"
        else
            echo "$(now) fail"
        fi
        sleep 0.2
    done
) > "$work/curls" &
bg+=($!)
sleep 3

# Host $1 is back: its node session connected (log), a member's API ready,
# its Node Ready.
back() {
    local h=$1
    grep -q 'connected to the control plane' "$KCNET_STATE/$h.log" 2>/dev/null || return 1
    case "$h" in cp*) kc_on "$h" get --raw /readyz >/dev/null 2>&1 || return 1 ;; esac
    kc get node "$(kcnet_node "$h")" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

printf '%-6s %-8s %-10s %-10s %s\n' HOST AT STOPPED_IN DOWNTIME "(AT: s from the first upgrade; DOWNTIME: SIGTERM -> new kcnode back: session, API, Node Ready)" > "$work/downtime"
tstart=$(now)
n=0
for h in "${hosts[@]}"; do
    n=$((n + 1))
    ip=$(awk -v h="$h" '$1 == h {print $2}' "$KCNET_STATE/hosts")
    case "$h" in
        cp1) args=(init --advertise-address "$ip" --heartbeat 2s) ;;
        *) args=(join --master "$cp1_ip:7000" --advertise-address "$ip" --heartbeat 2s) ;;
    esac
    pid=$(cat "$KCNET_STATE/$h.pid")
    t0=$(now)
    kill -TERM "$pid"
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        say "$h's kcnode did not exit 30 s after SIGTERM: kill -9"
        kill -KILL "$pid"
    fi
    t1=$(now)
    mv "$KCNET_STATE/$h.log" "$KCNET_STATE/$h.old.log"
    mv "$KCNET_STATE/$h.out" "$KCNET_STATE/$h.old.out"
    KCNODE=$NEW kcnet_start_kcnode "$h" "${args[@]}"
    ok=0
    for _ in $(seq 1 600); do
        if back "$h"; then ok=1; break; fi
        kill -0 "$(cat "$KCNET_STATE/$h.pid")" 2>/dev/null || die "NEW kcnode on $h exited: $(tail -5 "$KCNET_STATE/$h.log")"
        sleep 0.1
    done
    [ "$ok" = 1 ] || die "$h not back 60+ s after its upgrade; see $KCNET_STATE/$h.log"
    t2=$(now)
    printf '%-6s %-8s %-10s %-10s\n' "$h" "$(secs "$tstart" "$t0")" "$(secs "$t0" "$t1") s" "$(secs "$t0" "$t2") s" >> "$work/downtime"
    echo "upgrade: $h now runs NEW (down $(secs "$t0" "$t2") s)"
    sleep 2
done
sleep 3
for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
bg=()

# Verdict.
acked=$(awk '$2 == "ok"' "$work/writes" | wc -l)
wfail=$(awk '$2 == "fail"' "$work/writes" | wc -l)
kc get configmaps -o name | sed 's#^configmap/##' | sort > "$work/present"
lost=$(awk '$2 == "ok" {print $3}' "$work/writes" | sort | comm -23 - "$work/present" | wc -l)
cok=$(awk '$2 == "ok"' "$work/curls" | wc -l)
cfail=$(awk '$2 == "fail"' "$work/curls" | wc -l)
pod_table > "$work/after"
kept=yes
if ! diff <(awk '{print $1, $2, $4, $5}' "$work/before") <(awk '{print $1, $2, $4, $5}' "$work/after") > "$work/poddiff"; then kept=no; fi
[ "$(awk '$3 == "Running"' "$work/after" | wc -l)" = "$REPLICAS" ] || kept=no

echo
cat "$work/downtime"
echo
echo "upgrade: API writes: $acked acknowledged, $wfail failed; lost acknowledged writes: $lost"
echo "upgrade: Service curls: $cok ok, $cfail failed"
at() { awk -v s="$tstart" '$2 == "fail" {printf "%.1f ", $1 - s}' "$1"; }
[ "$wfail" = 0 ] || echo "upgrade: failed writes at (s from the first upgrade): $(at "$work/writes")"
[ "$cfail" = 0 ] || echo "upgrade: failed curls at (s from the first upgrade): $(at "$work/curls")"
echo "upgrade: every pod kept running (same pod, node, container, restart count): $kept"
[ "$kept" = yes ] || { echo "upgrade: pods before/after (name node container restarts):"; cat "$work/poddiff"; }
kc get nodes -o wide
if [ "$lost" != 0 ] || [ "$kept" != yes ]; then
    echo "upgrade: FAILED (logs in $KCNET_STATE unless removed; use --keep)"
    exit 1
fi
echo "upgrade: OK"
