#!/usr/bin/env bash
# Kubelet pod start/stop benchmark: N single-container busybox pods are
# written at once into a static manifests dir of `kcnode kubelet`; the time
# until every pod reports Ready (sandbox + container + status), then the time
# until every pod is gone after the manifests are removed (graceful stop with
# terminationGracePeriodSeconds 1 on a SIGTERM-handling shell, removal).
#
#   bench/kubelet_pods.sh [--pods N]        (KCNODE=path/to/kcnode to pick a build)
#
# Needs root, busybox-static, python3. Uses a private data dir and node name
# (cgroup parent kc/kbench); everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

pods=10
while [ $# -gt 0 ]; do
    case "$1" in
        --pods) pods="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "kubelet_pods.sh: needs root" >&2; exit 1; }
kcnode="${KCNODE:-$PWD/target/release/kcnode}"
[ -x "$kcnode" ] || cargo build --release -p kc-node

work=$(mktemp -d /tmp/kc-kbench-XXXXXX)
export KC_DATA_DIR="$work/data" KC_NODE_NAME=kbench
kpid=
cleanup() {
    [ -n "$kpid" ] && kill -9 "$kpid" 2>/dev/null || true
    "$kcnode" ps -a -q 2>/dev/null | xargs -r -n1 "$kcnode" rm -f >/dev/null 2>&1 || true
    for f in "$work"/data/sandboxes/*/sandbox.json; do
        [ -f "$f" ] || continue
        p=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$f")
        grep -q pause "/proc/$p/cmdline" 2>/dev/null && kill -9 "$p" || true
    done
    rmdir /sys/fs/cgroup/*/kc/kbench /sys/fs/cgroup/kc/kbench 2>/dev/null || true
    rm -rf /run/kc/kbench /dev/shm/kc/kbench "$work"
}
trap cleanup EXIT

"$kcnode" image base busybox >/dev/null
mkdir -p "$work/manifests"
"$kcnode" kubelet --manifests "$work/manifests" --host-ip 192.0.2.1 2>"$work/kubelet.log" &
kpid=$!

# Waits until `python3 predicate` over the status dir holds; prints seconds.
wait_for() {
    python3 - "$work/data/kubelet/status" "$pods" "$1" "$2" <<'PY'
import json, os, sys, time
d, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = float(sys.argv[4])
while True:
    files = [f for f in os.listdir(d) if f.endswith(".json")] if os.path.isdir(d) else []
    if mode == "gone":
        if not files:
            break
    else:
        ready = 0
        for f in files:
            try:
                s = json.load(open(os.path.join(d, f)))["status"]
            except Exception:
                continue
            if any(c["type"] == "Ready" and c["status"] == "True" for c in s.get("conditions", [])):
                ready += 1
        if ready >= n:
            break
    if time.time() - t0 > 300:
        sys.exit("timed out")
    time.sleep(0.05)
print(f"{time.time() - t0:.2f}")
PY
}

sleep 1
for i in $(seq "$pods"); do
    cat > "$work/manifests/.p$i.tmp" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: bench-$i}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: busybox, command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 0.2; done"]}
YAML
done
t_up=$(date +%s.%N)
for i in $(seq "$pods"); do mv "$work/manifests/.p$i.tmp" "$work/manifests/p$i.yaml"; done
up=$(wait_for ready "$t_up")
t_down=$(date +%s.%N)
rm -f "$work"/manifests/*.yaml
down=$(wait_for gone "$t_down")
echo "kubelet: $pods pods Ready in ${up}s ($(python3 -c "print(f'{$pods/$up:.1f}')") pods/s, including up to 1 s of manifest polling); all gone ${down}s after deletion"
