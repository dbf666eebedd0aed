#!/bin/sh
# Runs inside demo-web: the page names the container.
set -eu
page=$(wget -q -O - http://127.0.0.1:8080/)
case "$page" in
  *"$PHOENIX_HOSTNAME"*) echo "ok: $page" ;;
  *) echo "unexpected page: $page" >&2; exit 1 ;;
esac
