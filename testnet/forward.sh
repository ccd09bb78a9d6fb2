#!/usr/bin/env bash
# testnet/forward.sh HOST...: one forwarded connection (run by up.sh's
# socat for each client): stdin/stdout to the API server (6443) of the
# first listed testnet host whose kcnode is running.
source "$(dirname "$0")/common.sh"
for h in "$@"; do
    pid=$(cat "$KCNET_STATE/$h.pid" 2>/dev/null) || continue
    kill -0 "$pid" 2>/dev/null || continue
    exec nsenter --net="/run/netns/$(kcnet_ns "$h")" socat STDIO TCP:127.0.0.1:6443
done
echo "testnet: no control-plane member is running" >&2
exit 1
