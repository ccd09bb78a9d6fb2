#!/usr/bin/env bash
# Container start benchmark: create + start + wait + delete of `/bin/busybox
# true` from the same busybox-static rootfs, kcnode vs runc vs crun, in one
# hyperfine run (medians and the ratio to crun printed at the end).
#
#   bench/container_start.sh [--runs N] [--fix-crun]     (KCNODE=path/to/kcnode to pick a build)
#
# Needs root, hyperfine, runc, crun, busybox-static, and a release kcnode
# (built here if missing). `kcnode run --rm` keeps the container in the
# node's tmpfs runtime dir, as runc and crun keep their state in /run. crun refuses a cgroup-hybrid host (hugetlb listed
# in the cgroup2 mount); --fix-crun binds hugetlb to a v1 hierarchy at
# /sys/fs/cgroup/hugetlb for the run and unmounts it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=100
fix_crun=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --fix-crun) fix_crun=1; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" -eq 0 ] || { echo "container_start.sh: needs root" >&2; exit 1; }
for p in hyperfine runc crun busybox; do
    command -v "$p" >/dev/null || { echo "container_start.sh: $p is missing (apt-get install $p${p/busybox/-static})" >&2; exit 1; }
done
kcnode="${KCNODE:-$PWD/target/release/kcnode}"   # KCNODE=... to measure another build
[ -x "$kcnode" ] || cargo build --release -p kc-node

work=$(mktemp -d /tmp/kc-bench-XXXXXX)
mounted_hugetlb=0
cleanup() {
    "$kcnode" --data-dir "$work/data" --node-name bench ps -a -q 2>/dev/null | xargs -r -n1 "$kcnode" --data-dir "$work/data" --node-name bench rm -f >/dev/null 2>&1 || true
    rmdir /sys/fs/cgroup/*/kc/bench 2>/dev/null || true
    rm -rf /run/kc/bench /dev/shm/kc/bench
    if [ "$mounted_hugetlb" = 1 ]; then
        # Give hugetlb back to the cgroup2 mount: its v1 hierarchy dies only
        # once it has no child cgroups and is unmounted (retry while crun's
        # last cgroup is still being released).
        find /sys/fs/cgroup/hugetlb -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
        umount /sys/fs/cgroup/hugetlb && rmdir /sys/fs/cgroup/hugetlb
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            grep -q ':hugetlb:' /proc/self/cgroup || break
            sleep 0.5
            grep -q ':hugetlb:' /proc/self/cgroup || break
            tmp=$(mktemp -d) && mount -t cgroup -o hugetlb cgroup "$tmp" && umount "$tmp"; rmdir "$tmp"
            sleep 0.5
        done
        grep -q ':hugetlb:' /proc/self/cgroup && echo "warning: hugetlb is still bound to a v1 hierarchy" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# One rootfs for everyone: static busybox only.
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/proc" "$work/bundle/rootfs/dev" "$work/bundle/rootfs/sys"
cp "$(command -v busybox)" "$work/bundle/rootfs/bin/busybox"
(cd "$work/bundle" && runc spec)
sed -i 's/"terminal": true/"terminal": false/; s#"sh"#"/bin/busybox", "true"#' "$work/bundle/config.json"

cmds=()
names=()
cmds+=("$kcnode --data-dir $work/data --node-name bench run --rm --rootfs $work/bundle/rootfs /bin/busybox true"); names+=(kcnode)
cmds+=("runc run -b $work/bundle kc-bench-runc"); names+=(runc)

if ! crun run -b "$work/bundle" kc-bench-crun-probe >/dev/null 2>"$work/crun.err"; then
    if grep -q hybrid "$work/crun.err" && [ "$fix_crun" = 1 ] && [ ! -e /sys/fs/cgroup/hugetlb ]; then
        mkdir /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb && mounted_hugetlb=1
    fi
fi
if crun run -b "$work/bundle" kc-bench-crun-probe >/dev/null 2>"$work/crun.err"; then
    cmds+=("crun run -b $work/bundle kc-bench-crun"); names+=(crun)
else
    echo "crun cannot run here: $(cat "$work/crun.err") (try --fix-crun)" >&2
fi

hyperfine -N --warmup 10 --runs "$runs" --export-csv "$work/result.csv" "${cmds[@]}" >&2

echo
echo "container create+start+wait+delete of /bin/busybox true, $runs runs (median):"
awk -F, -v names="${names[*]}" 'BEGIN { split(names, n, " ") }
    NR > 1 { i++; med[i] = $4 * 1000; printf "  %-8s %8.2f ms   (cpu user+sys %.2f ms)\n", n[i], med[i], ($5 + $6) * 1000; if (n[i] == "crun") c = med[i]; if (n[i] == "kcnode") k = med[i] }
    END { if (c > 0) printf "  kcnode / crun = %.2f (goal: <= 0.80)\n", k / c }' "$work/result.csv"
