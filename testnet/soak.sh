#!/usr/bin/env bash
# testnet/soak.sh [--minutes N] [--workers M] [--seed S] [--kill-every SECONDS]:
# churn on a testnet for N minutes (default 30): create, scale and delete
# Deployments, and every minute kill -9 a random worker's kcnode (workers
# only while there is one control-plane member) and start it again. Every
# write kubectl acknowledged is recorded; at the end (after a settle time)
# the script checks that no acknowledged write was lost (every Deployment
# that should exist exists with its last acknowledged replica count, every
# deleted one is gone) and that no pod is stuck (Pending or Terminating,
# or more Running pods than replicas), prints its counts, and exits non-zero
# on any loss. Uses the testnet that is up, or brings one up (and down).
# Not part of the default test run.
set -euo pipefail
source "$(dirname "$0")/common.sh"

MINUTES=30
WORKERS=2
SEED=$$
KILL_EVERY=60
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --kill-every) KILL_EVERY=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root (testnet)"
RANDOM=$SEED

own_testnet=0
if [ ! -e "$KCNET_STATE/hosts" ]; then
    "$REPO/testnet/up.sh" --workers "$WORKERS"
    own_testnet=1
fi
cleanup() { [ "$own_testnet" = 1 ] && "$REPO/testnet/down.sh" >/dev/null 2>&1 || true; }
trap cleanup EXIT

kc() { kcnet_kubectl --request-timeout=10s "$@"; }
mapfile -t workers < <(kcnet_hosts | awk '$1 != "cp1" {print $1}')
cp_ip=$(kcnet_hosts | awk '$1 == "cp1" {print $2}')
for h in $(kcnet_hosts | awk '{print $1}'); do
    "$KCNODE" --data-dir "$KCNET_DATA/$h" --node-name "$h" image base busybox >/dev/null
done

ledger=$(mktemp /tmp/kc-soak-ledger.XXXXXX)
declare -A want   # deployment -> replicas last acknowledged (absent = deleted)
acked=0 failed=0 kills=0 n=0

manifest() {
    cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1, labels: {soak: "yes"}}
spec:
  replicas: $2
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1, soak: "yes"}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: main, image: busybox, command: [sleep, "36000"]}
EOF
}

# Records an acknowledged write (kubectl exit 0) or a failed one.
write() {
    local what=$1; shift
    if "$@" >/dev/null 2>&1; then
        acked=$((acked + 1)); echo "ack $what" >> "$ledger"; return 0
    fi
    failed=$((failed + 1)); echo "failed $what" >> "$ledger"; return 1
}

churn() {
    local names=("${!want[@]}") r=$((RANDOM % 10)) name replicas
    if [ ${#names[@]} -lt 3 ] || { [ $r -lt 4 ] && [ ${#names[@]} -lt 12 ]; }; then
        n=$((n + 1)); name=soak-$n; replicas=$((1 + RANDOM % 3))
        # An unacknowledged create may still have happened: remember it as
        # unknown (checked neither way) by leaving it out of `want`.
        if write "create $name $replicas" kc apply -f <(manifest "$name" "$replicas"); then
            want[$name]=$replicas
        fi
    elif [ $r -lt 8 ]; then
        name=${names[$((RANDOM % ${#names[@]}))]}; replicas=$((RANDOM % 4))
        if write "scale $name $replicas" kc scale deployment "$name" --replicas "$replicas"; then
            want[$name]=$replicas
        else
            unset "want[$name]"
        fi
    else
        name=${names[$((RANDOM % ${#names[@]}))]}
        if write "delete $name" kc delete deployment "$name" --wait=false; then
            gone+=("$name")
        fi
        unset "want[$name]"
    fi
}
gone=()

kill_one() {
    local h=${workers[$((RANDOM % ${#workers[@]}))]} pid
    pid=$(cat "$KCNET_STATE/$h.pid")
    grep -qa kcnode "/proc/$pid/cmdline" 2>/dev/null || return 0
    kill -KILL "$pid"
    kills=$((kills + 1))
    say "soak: kill -9 kcnode on $h (pid $pid), restarting it"
    sleep 1
    RUST_LOG=${RUST_LOG:-info} setsid nsenter --net="/run/netns/kcnet-$h" "$KCNODE" \
        --data-dir "$KCNET_DATA/$h" --node-name "$h" join --master "$cp_ip:7000" --heartbeat 2s \
        >>"$KCNET_STATE/$h.out" 2>>"$KCNET_STATE/$h.log" </dev/null &
    echo "$!" > "$KCNET_STATE/$h.pid"
}

start=$(date +%s)
end=$((start + MINUTES * 60))
next_kill=$((start + KILL_EVERY))
say "soak: $MINUTES min of churn, seed $SEED, ledger $ledger"
while [ "$(date +%s)" -lt "$end" ]; do
    churn || true
    if [ "$(date +%s)" -ge "$next_kill" ]; then
        kill_one
        next_kill=$((next_kill + KILL_EVERY))
    fi
    sleep $((1 + RANDOM % 3))
done

say "soak: churn over; letting the cluster settle (up to 120 s)"
lost=0 stuck=0 over=0
for _ in $(seq 1 60); do
    lost=0 stuck=0 over=0
    deploys=$(kc get deployments -l soak=yes -o jsonpath='{range .items[*]}{.metadata.name} {.spec.replicas}{"\n"}{end}' 2>/dev/null) || { sleep 2; continue; }
    pods=$(kc get pods -l soak=yes -o jsonpath='{range .items[*]}{.metadata.labels.app} {.status.phase} {.metadata.deletionTimestamp}{"\n"}{end}' 2>/dev/null) || { sleep 2; continue; }
    for name in "${!want[@]}"; do
        got=$(awk -v n="$name" '$1 == n {print $2}' <<< "$deploys")
        [ "$got" = "${want[$name]}" ] || lost=$((lost + 1))
        running=$(awk -v n="$name" '$1 == n && $2 == "Running" && $3 == ""' <<< "$pods" | wc -l)
        [ "$running" -gt "${want[$name]}" ] && over=$((over + 1))
        [ "$running" -lt "${want[$name]}" ] && stuck=$((stuck + 1))
    done
    for name in "${gone[@]}"; do
        [ -z "${want[$name]+x}" ] && awk -v n="$name" '$1 == n {found=1} END {exit !found}' <<< "$deploys" && lost=$((lost + 1))
    done
    pending=$(awk '$2 == "Pending" || $3 != ""' <<< "$pods" | grep -c . || true)
    stuck=$((stuck + pending))
    [ $((lost + stuck + over)) = 0 ] && break
    sleep 2
done
echo "soak: $(( ($(date +%s) - start) / 60 )) min, seed $SEED"
echo "soak: acknowledged writes $acked, failed (unacknowledged) writes $failed, kcnode kills $kills"
echo "soak: deployments expected ${#want[@]}, deleted ${#gone[@]}"
echo "soak: lost acknowledged writes $lost, stuck pods/deployments $stuck, deployments over replicas $over"
[ $((lost + stuck + over)) = 0 ] || { echo "soak: FAILED (ledger $ledger)"; exit 1; }
echo "soak: OK"
