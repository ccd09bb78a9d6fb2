#!/usr/bin/env bash
# Makes a Debian bookworm image with python3 and Flask, without any
# registry: debootstrap (minbase + python3, python3-venv, python3-flask from
# Debian's own packages) into a temp dir, pack it as a one-layer
# docker-archive, and `kcnode image import` it as `python:3` and
# `debian-flask:latest`. Then the seed guide's Dockerfile builds with
# `FROM python:3` once its venv line uses the system's Flask:
#     RUN mkdir /opt/app && python3 -m venv /opt/venv --system-site-packages && /opt/venv/bin/pip install flask
# (pip sees Flask installed and needs no network).
#
# Slow (minutes: it downloads ~40 MB of .debs), so not part of tests/run.sh.
# Usage (root): testnet/images/flask.sh [--data-dir DIR] [--keep-tar FILE]
# The mirror is the one this machine's apt uses.
set -euo pipefail

kcnode=${KCNODE:-$(command -v kcnode || echo "$(dirname "$0")/../../target/debug/kcnode")}
data_dir_args=()
keep_tar=""
while [ $# -gt 0 ]; do
    case "$1" in
        --data-dir) data_dir_args=(--data-dir "$2"); shift 2 ;;
        --keep-tar) keep_tar=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "flask.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "flask.sh: debootstrap needs root" >&2
    exit 1
fi
command -v debootstrap >/dev/null || { echo "flask.sh: apt-get install debootstrap" >&2; exit 1; }
[ -x "$kcnode" ] || { echo "flask.sh: kcnode not found (build it: cargo build -p kc-node, or set KCNODE)" >&2; exit 1; }

# The Debian mirror apt uses here: deb822 sources first, then sources.list.
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    mirror=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' "$f")
    [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i; exit } }' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || { echo "flask.sh: no Debian mirror found in /etc/apt/sources.list{,.d}" >&2; exit 1; }

work=$(mktemp -d /var/tmp/kc-flask.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

rootfs=$work/rootfs
echo "flask.sh: debootstrap bookworm from $mirror (takes minutes)" >&2
debootstrap --variant=minbase --include=python3,python3-venv,python3-flask \
    bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
}
# Slim it: package caches and lists, and device nodes (the runtime makes /dev).
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/dev/*

image=$work/image
mkdir -p "$image"
tar --numeric-owner -C "$rootfs" -cf "$image/layer.tar" .
diff_id=sha256:$(sha256sum "$image/layer.tar" | cut -d' ' -f1)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat >"$image/config.json" <<JSON
{"architecture":"$(dpkg --print-architecture)","os":"linux","created":"$created",
 "config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","LANG=C.UTF-8"],"Cmd":["python3"]},
 "rootfs":{"type":"layers","diff_ids":["$diff_id"]},
 "history":[{"created":"$created","created_by":"testnet/images/flask.sh: debootstrap bookworm minbase + python3 python3-venv python3-flask"}]}
JSON
config_hex=$(sha256sum "$image/config.json" | cut -d' ' -f1)
mv "$image/config.json" "$image/$config_hex.json"
cat >"$image/manifest.json" <<JSON
[{"Config":"$config_hex.json","RepoTags":["python:3","debian-flask:latest"],"Layers":["layer.tar"]}]
JSON
tar -C "$image" -cf "$work/image.tar" manifest.json "$config_hex.json" layer.tar
"$kcnode" "${data_dir_args[@]}" image import "$work/image.tar"
if [ -n "$keep_tar" ]; then
    cp "$work/image.tar" "$keep_tar"
fi
