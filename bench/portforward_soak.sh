#!/usr/bin/env bash
# Port-forward soak: on a testnet (1 control plane + 2 workers, testnet/up.sh)
# with the seed's basicserver:0.42 pod (testnet/images/hello, sent with
# `kcctl image load`), drives HTTP requests through `kcctl port-forward` and,
# for comparison, `kubectl port-forward`:
#   1. SEQ sequential connections (default 1,000), one GET each;
#   2. CONC concurrent connections (default 50), one GET each, 5 rounds;
#   3. a soak of MINUTES minutes (default 10): one GET per second per client.
# Prints, per client and phase, successes, failures and latency p50/p99, and
# whether the forward process is still alive at the end. Figures only, no
# asserts. Run as root after `cargo build -p kc-node -p kc-ctl`.
#   bench/portforward_soak.sh [--minutes N] [--seq N] [--conc N] [--reuse]
# --reuse: use the testnet that is already up (and leave it up); otherwise the
# script brings one up and tears it down on exit (refusing if one is up).
# Everything runs inside the testnet's cp1 namespace (nsenter); nothing is
# configured in the machine's own network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
source testnet/common.sh
MINUTES=10 SEQ=1000 CONC=50 REUSE=0
while [ $# -gt 0 ]; do
    case $1 in
        --minutes) MINUTES=$2; shift 2 ;;
        --seq) SEQ=$2; shift 2 ;;
        --conc) CONC=$2; shift 2 ;;
        --reuse) REUSE=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "portforward_soak: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
KCNODE=${KCNODE:-$REPO/target/debug/kcnode}
KCCTL=${KCCTL:-$REPO/target/debug/kcctl}
[ -x "$KCNODE" ] && [ -x "$KCCTL" ] || { echo "build first: cargo build -p kc-node -p kc-ctl" >&2; exit 1; }
for p in kubectl python3 nsenter; do command -v $p >/dev/null || { echo "needs $p" >&2; exit 1; }; done

work=$(mktemp -d /var/tmp/kc-pf-soak.XXXXXX)
pids=()
up_here=0
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    [ "$up_here" = 1 ] && testnet/down.sh >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$REUSE" = 0 ]; then
    if [ -e "/run/netns/$(kcnet_ns cp1)" ]; then
        echo "a testnet $KCNET is already up (maybe someone else's): pass --reuse to use it, or set KCNET=<another name>" >&2
        exit 1
    fi
    up_here=1
    KCNODE=$KCNODE testnet/up.sh >/dev/null
fi
KC=$KCNET_DATA/cp1/admin.kubeconfig
inns() { nsenter --net="/run/netns/$(kcnet_ns cp1)" "$@"; }
kcctl() { inns "$KCCTL" --kubeconfig "$KC" "$@"; }
kubectl_() { inns kubectl --kubeconfig "$KC" "$@"; }

# The seed's image, built here and loaded into the cluster registry.
"$KCNODE" --data-dir "$work/img" image base busybox >/dev/null
"$KCNODE" --data-dir "$work/img" build -t basicserver:0.42 testnet/images/hello >/dev/null
kcctl image load basicserver:0.42 --data-dir "$work/img" >/dev/null
pod=pf-soak-$$
kcctl run "$pod" --image basicserver:0.42 >/dev/null
kubectl_ wait --for=condition=Ready "pod/$pod" --timeout=120s >/dev/null
pods_cleanup() { kcctl delete pod "$pod" --wait=false >/dev/null 2>&1 || true; }
trap 'pods_cleanup; cleanup' EXIT

# The two forwards, on free ports of cp1's loopback.
port_of() { inns python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
KPORT=$(port_of); UPORT=$(port_of)
# nsenter execs the client: $! is the client's PID (for its RSS below).
inns "$KCCTL" --kubeconfig "$KC" port-forward "$pod" "$KPORT:5000" >"$work/kcctl.pf" 2>&1 &
pids+=($!); kcctl_pid=$!
inns kubectl --kubeconfig "$KC" port-forward "$pod" "$UPORT:5000" >"$work/kubectl.pf" 2>&1 &
pids+=($!); kubectl_pid=$!
for _ in $(seq 100); do
    grep -q Forwarding "$work/kcctl.pf" && grep -q Forwarding "$work/kubectl.pf" && break
    sleep 0.1
done

cat >"$work/load.py" <<'PY'
import socket, sys, threading, time
phase, port, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
REQ = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"
lat, fails, lock = [], [0], threading.Lock()
first_fail = []
start = time.monotonic()
def one():
    t = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(REQ)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        ok = b"Hello, World!" in data
    except OSError:
        ok = False
    with lock:
        if ok:
            lat.append(time.monotonic() - t)
        else:
            fails[0] += 1
            if not first_fail:
                first_fail.append(time.monotonic() - start)
def pct(p):
    if not lat:
        return float("nan")
    s = sorted(lat)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] * 1000
start = time.monotonic()
if phase == "seq":
    for _ in range(n):
        one()
elif phase == "conc":
    for _ in range(n):
        ts = [threading.Thread(target=one) for _ in range(conc)]
        [t.start() for t in ts]
        [t.join() for t in ts]
else:  # soak: n seconds, one request per second
    for i in range(n):
        one()
        time.sleep(max(0, start + i + 1 - time.monotonic()))
wall = time.monotonic() - start
since = f"   first failure after {first_fail[0]:.1f} s" if first_fail else ""
print(f"{len(lat):>7} ok {fails[0]:>5} failed   p50 {pct(50):7.2f} ms  p99 {pct(99):7.2f} ms   {wall:7.1f} s{since}")
PY

row() { # client port phase n conc
    printf '%-8s %-28s ' "$1" "$3"
    inns python3 "$work/load.py" "${3%% *}" "$2" "$4" "$5"
}
echo "port-forward soak: pod $pod, image basicserver:0.42; kcctl $KCCTL; $(kubectl version --client 2>/dev/null | head -1)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for c in kcctl kubectl; do
    port=$KPORT; [ $c = kubectl ] && port=$UPORT
    row $c "$port" "seq ($SEQ connections)" "$SEQ" 1
    row $c "$port" "conc ($CONC x 5 rounds)" 5 "$CONC"
done
# The soak: both clients at once, one request per second each.
secs=$((MINUTES * 60))
row kcctl "$KPORT" "soak ($MINUTES min, 1/s)" "$secs" 1 >"$work/soak.kcctl" &
s1=$!
row kubectl "$UPORT" "soak ($MINUTES min, 1/s)" "$secs" 1 >"$work/soak.kubectl" &
s2=$!
wait $s1 $s2
cat "$work/soak.kcctl" "$work/soak.kubectl"
for c in kcctl kubectl; do
    pid=$kcctl_pid; [ $c = kubectl ] && pid=$kubectl_pid
    if kill -0 "$pid" 2>/dev/null; then state=alive; else state=DEAD; fi
    rss=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d " " || true)
    echo "$c port-forward after the run: $state, RSS ${rss:-?} kB, errors logged: $(grep -c -i error "$work/$c.pf" || true)"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
