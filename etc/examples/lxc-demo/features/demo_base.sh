#!/bin/sh
# demo_base: a small site feature for the lxc demo (busybox guests). Safe
# to rerun: it checks before it writes.
#
# Settings (phoenix passes the ones listed here):
#   PHOENIX_HOSTNAME     the container's hostname
#   PHOENIX_GUEST_ID     its CTID
#   PHOENIX_DOMAIN_NAME  the site's domain
set -eu
motd="${PHOENIX_HOSTNAME} (container ${PHOENIX_GUEST_ID}) - managed by phoenix, domain ${PHOENIX_DOMAIN_NAME:-none}"
if [ "$(cat /etc/motd 2>/dev/null || true)" != "$motd" ]; then
  printf '%s\n' "$motd" > /etc/motd
  echo "demo_base: wrote /etc/motd"
fi
mkdir -p /srv/www
