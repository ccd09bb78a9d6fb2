#!/usr/bin/env bash
# The whole kc test suite: installs what the tests need (Debian packages),
# builds every binary, then runs every test. Run as root on Debian 12+.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: the tests create namespaces, cgroups and mounts: run as root" >&2
    exit 1
fi

need=()
command -v busybox >/dev/null || need+=(busybox-static)
command -v runc >/dev/null || need+=(runc)
command -v crun >/dev/null || need+=(crun)
command -v umoci >/dev/null || need+=(umoci)
command -v skopeo >/dev/null || need+=(skopeo)
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
# Another OCI registry for the pull-by-reference test (it starts its own).
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v socat >/dev/null || need+=(socat)
# Certificate requests for the CertificateSigningRequest tests.
command -v openssl >/dev/null || need+=(openssl)
command -v nsenter >/dev/null || need+=(util-linux)
# kubectl 1.32 is on these machines; Debian's package (1.20) is the fallback.
command -v kubectl >/dev/null || need+=(kubernetes-client)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ "${#need[@]}" -gt 0 ]; then
    echo "tests/run.sh: installing ${need[*]}"
    apt-get update -qq
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        # Packages must not start services (docker-registry would listen on :5000).
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    [ -z "$policy" ] || rm -f "$policy"
fi

cargo build --workspace --all-targets
cargo test --workspace --no-fail-fast -- "$@"
