#!/bin/sh
# Runs on the host: the shared directory the containers mount exists.
set -eu
test -d /var/lib/phoenix-demo/shared || { echo "/var/lib/phoenix-demo/shared is missing" >&2; exit 1; }
echo "ok: shared directory present for container $PHOENIX_GUEST_ID"
