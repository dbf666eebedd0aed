#!/bin/sh
# phoenix feature: dns_server — dnsmasq serving the site's names and forwarding the rest.
#
# Run inside the guest as root by the lxc recipe:
#   env PHOENIX_FEATURE=dns_server PHOENIX_DNS_DOMAIN=lab.example.lan PHOENIX_DNS_UPSTREAM="1.1.1.1 8.8.8.8" \
#       PHOENIX_DNS_HOSTS="192.168.10.10 dns.lab.example.lan" sh dns_server.sh
#
# Settings (environment):
#   PHOENIX_DNS_UPSTREAM  servers to forward to, space- or comma-separated (dns_server.upstream_servers;
#                         default 1.1.1.1 8.8.8.8)
#   PHOENIX_DNS_DOMAIN    the site's domain (domain_name): answered here, never forwarded
#   PHOENIX_DNS_ZONES     more zones answered only here (dns_server.authoritative_zones)
#   PHOENIX_DNS_HOSTS     the records, hosts-file text ("<ip> <name>..." per line), written as-is to
#                         /etc/dnsmasq.phoenix.hosts
#   PHOENIX_DNS_LISTEN    addresses to listen on, space-separated (default: all)
#
# Checks before acting: dnsmasq by dpkg status; /etc/dnsmasq.d/phoenix.conf
# and the hosts file by content. A changed configuration is checked with
# `dnsmasq --test`, then dnsmasq restarted; changed records only reload it
# (SIGHUP rereads the hosts file). systemd-resolved's stub listener, which
# would hold port 53, is turned off when resolved runs.
set -euf
FEATURE=${PHOENIX_FEATURE:-dns_server}
# --- phoenix feature helpers: identical in every built-in feature (tests/lua/features_spec.lua checks) ---
say() { printf '%s: %s\n' "$FEATURE" "$*"; }
die() { printf '%s: error: %s\n' "$FEATURE" "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
truthy() { case $1 in 1 | [Yy][Ee][Ss] | [Tt][Rr][Uu][Ee] | [Oo][Nn]) return 0 ;; *) return 1 ;; esac; }
words() { printf '%s\n' "$1" | tr ',' ' '; }
[ "$(id -u)" = 0 ] || die "must run as root"
[ -f /etc/debian_version ] || die "needs a Debian or Ubuntu guest (no /etc/debian_version)"
os_field() { sed -n "s/^$1=//p" /etc/os-release 2>/dev/null | tr -d '"' | head -n 1; }

# pkg_ok PKG: the package is installed (dpkg's status, not just a file on disk).
pkg_ok() { dpkg-query -W -f '${Status}\n' "$1" 2>/dev/null | grep -qx 'install ok installed'; }

# apt_install PKG...: installs the packages not yet installed; "apt-get update"
# runs once per script run, before the first install (APT_FRESH= forces it again).
APT_FRESH=
apt_install() {
  _ai_missing=
  for _ai_p in "$@"; do pkg_ok "$_ai_p" || _ai_missing="$_ai_missing $_ai_p"; done
  [ -n "$_ai_missing" ] || return 0
  have apt-get || die "apt-get not found: needs a Debian or Ubuntu guest"
  if [ -z "$APT_FRESH" ]; then
    apt-get update -q || die "apt-get update failed (exit $?)"
    APT_FRESH=1
  fi
  say "installing$_ai_missing"
  # shellcheck disable=SC2086 # the package list is split on purpose
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $_ai_missing ||
    die "apt-get install$_ai_missing failed (exit $?)"
}

# put_file PATH MODE TEXT: writes TEXT (plus a final newline when it has none)
# when the file's content differs; returns 0 when it wrote, 1 when unchanged.
put_file() {
  _pf_dir=$(dirname "$1")
  [ -d "$_pf_dir" ] || mkdir -p "$_pf_dir" || die "cannot create $_pf_dir"
  _pf_new="$1.phoenix-new"
  (
    umask 077
    case $3 in
      *"
") printf '%s' "$3" ;;
      *) printf '%s\n' "$3" ;;
    esac >"$_pf_new"
  ) || die "cannot write $_pf_new"
  if [ -f "$1" ] && cmp -s "$_pf_new" "$1"; then
    rm -f "$_pf_new"
    chmod "$2" "$1" || die "cannot chmod $1"
    return 1
  fi
  if ! { chmod "$2" "$_pf_new" && mv -f "$_pf_new" "$1"; }; then die "cannot write $1"; fi
  say "wrote $1"
  return 0
}

# fetch URL FILE: downloads with curl (or wget); the only network access besides apt-get.
fetch() {
  have curl || have wget || apt_install curl
  rm -f "$2.part"
  if have curl; then
    curl -fsSL --retry 3 -o "$2.part" "$1" || { _f_rc=$?; rm -f "$2.part"; die "download failed (curl exit $_f_rc): $1"; }
  else
    wget -q -O "$2.part" "$1" || { _f_rc=$?; rm -f "$2.part"; die "download failed (wget exit $_f_rc): $1"; }
  fi
  mv -f "$2.part" "$2" || die "cannot write $2"
}

# unit_file NAME TEXT: /etc/systemd/system/NAME.service (daemon-reload when it changed).
unit_file() {
  have systemctl || die "systemctl not found: the $1 service needs systemd in the guest"
  if put_file "/etc/systemd/system/$1.service" 0644 "$2"; then
    systemctl daemon-reload || die "systemctl daemon-reload failed (exit $?)"
    return 0
  fi
  return 1
}

# service_up NAME RESTART: enables NAME; restarts it when RESTART is yes, else starts it when it is not running.
service_up() {
  have systemctl || die "systemctl not found: the $1 service needs systemd in the guest"
  systemctl is-enabled --quiet "$1" 2>/dev/null || systemctl enable --quiet "$1" || die "systemctl enable $1 failed (exit $?)"
  if [ "$2" = yes ]; then
    say "restarting $1"
    systemctl restart "$1" || die "systemctl restart $1 failed (exit $?)"
  elif ! systemctl is-active --quiet "$1"; then
    say "starting $1"
    systemctl start "$1" || die "systemctl start $1 failed (exit $?)"
  fi
}
# --- end of phoenix feature helpers ---

UPSTREAM=$(words "${PHOENIX_DNS_UPSTREAM:-1.1.1.1 8.8.8.8}")
DOMAIN=${PHOENIX_DNS_DOMAIN:-}
ZONES=$(words "${PHOENIX_DNS_ZONES:-}")
LISTEN=$(words "${PHOENIX_DNS_LISTEN:-}")
HOSTS_FILE=/etc/dnsmasq.phoenix.hosts
for v in $UPSTREAM $LISTEN; do
  case $v in *[!0-9A-Fa-f.:#]*) die "'$v' is not an IP address (PHOENIX_DNS_UPSTREAM, PHOENIX_DNS_LISTEN)" ;; esac
done
for z in "$DOMAIN" $ZONES; do
  case $z in *[!A-Za-z0-9.-]* | .* | *..*) die "'$z' is not a domain name (PHOENIX_DNS_DOMAIN, PHOENIX_DNS_ZONES)" ;; esac
done
[ -n "$UPSTREAM" ] || die "PHOENIX_DNS_UPSTREAM is empty"
# Each hosts line is an address and names; anything else would be a silent no-op in dnsmasq.
printf '%s\n' "${PHOENIX_DNS_HOSTS:-}" | awk '
  /^[ \t]*(#|$)/ { next }
  NF < 2 || $1 !~ /^[0-9A-Fa-f.:]+$/ { printf "PHOENIX_DNS_HOSTS line %d is not \"<ip> <name>...\": %s\n", NR, $0; bad = 1 }
  END { exit bad }' >&2 || die "bad PHOENIX_DNS_HOSTS"

apt_install dnsmasq

conf="# dnsmasq configuration written by phoenix (dns_server feature).
domain-needed
bogus-priv
no-resolv
cache-size=1000
addn-hosts=$HOSTS_FILE"
for s in $UPSTREAM; do conf="$conf
server=$s"; done
if [ -n "$DOMAIN" ]; then
  conf="$conf
domain=$DOMAIN
expand-hosts
local=/$DOMAIN/"
fi
for z in $ZONES; do conf="$conf
local=/$z/"; done
if [ -n "$LISTEN" ]; then
  conf="$conf
bind-interfaces"
  for a in $LISTEN; do conf="$conf
listen-address=$a"; done
fi

reconfigured=no
reloaded=no
put_file "$HOSTS_FILE" 0644 "${PHOENIX_DNS_HOSTS:-}" && reloaded=yes
if put_file /etc/dnsmasq.d/phoenix.conf 0644 "$conf"; then
  if ! out=$(dnsmasq --test 2>&1); then
    # kept aside, so the next run writes and tests it again
    mv -f /etc/dnsmasq.d/phoenix.conf /etc/dnsmasq.phoenix.conf.rejected
    die "dnsmasq --test rejects the configuration (kept as /etc/dnsmasq.phoenix.conf.rejected): $out"
  fi
  reconfigured=yes
fi

if have systemctl && systemctl is-active --quiet systemd-resolved; then
  if put_file /etc/systemd/resolved.conf.d/phoenix-dns-server.conf 0644 "[Resolve]
DNSStubListener=no"; then
    systemctl restart systemd-resolved || die "systemctl restart systemd-resolved failed (exit $?)"
    reconfigured=yes
  fi
fi

service_up dnsmasq "$reconfigured"
if [ "$reconfigured" = no ] && [ "$reloaded" = yes ]; then
  systemctl reload dnsmasq || die "systemctl reload dnsmasq failed (exit $?)"
  say "reloaded dnsmasq"
fi
say "done"
