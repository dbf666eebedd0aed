#!/bin/sh
# phoenix feature: nat_gateway — IPv4 forwarding and masquerading for a private network.
#
# Run inside the guest as root by the lxc recipe:
#   env PHOENIX_FEATURE=nat_gateway PHOENIX_NAT_SOURCE=10.0.10.0/24 PHOENIX_NAT_OUT_IFACE=eth0 sh nat_gateway.sh
#
# Settings (environment):
#   PHOENIX_NAT_SOURCE     required: the private networks (CIDR), space- or comma-separated
#   PHOENIX_NAT_OUT_IFACE  the interface towards the outside (default: the one of the default route)
#   PHOENIX_NAT_IN_IFACE   only masquerade what arrives on this interface (default: any)
#
# Writes /etc/sysctl.d/99-phoenix-nat.conf (net.ipv4.ip_forward = 1) and the
# nftables table "ip phoenix_nat" in /etc/nftables.d/phoenix-nat.nft,
# included from /etc/nftables.conf (nftables.service loads it at boot).
# Checks before acting: `sysctl -n net.ipv4.ip_forward`; the files by
# content; `nft list table ip phoenix_nat` (the table is loaded with
# `nft -f` only when the file changed or the table is missing). Other
# tables are never touched.
set -euf
FEATURE=${PHOENIX_FEATURE:-nat_gateway}
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

SOURCE=$(words "${PHOENIX_NAT_SOURCE:-}")
IN=${PHOENIX_NAT_IN_IFACE:-}
OUT=${PHOENIX_NAT_OUT_IFACE:-}
[ -n "$SOURCE" ] || die "PHOENIX_NAT_SOURCE is required (the private network, e.g. 10.0.10.0/24)"
for net in $SOURCE; do
  printf '%s\n' "$net" | grep -Eqx '([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}' ||
    die "PHOENIX_NAT_SOURCE: '$net' is not an IPv4 network (like 10.0.10.0/24)"
done
if [ -z "$OUT" ]; then
  OUT=$(ip -4 route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
  [ -n "$OUT" ] || die "no default route to take the outside interface from: set PHOENIX_NAT_OUT_IFACE"
fi
for i in "$OUT" "$IN"; do
  case $i in *[!A-Za-z0-9_.@-]*) die "'$i' is not an interface name" ;; esac
done

apt_install nftables

put_file /etc/sysctl.d/99-phoenix-nat.conf 0644 "net.ipv4.ip_forward = 1" || :
if [ "$(sysctl -n net.ipv4.ip_forward 2>/dev/null || true)" != 1 ]; then
  sysctl -w net.ipv4.ip_forward=1 >/dev/null || die "sysctl -w net.ipv4.ip_forward=1 failed (exit $?)"
  say "enabled IPv4 forwarding"
fi

# shellcheck disable=SC2086 # a validated word list
nets=$(printf '%s ' $SOURCE | sed 's/ $//; s/ /, /g')
match="ip saddr { $nets }"
[ -z "$IN" ] || match="iifname \"$IN\" $match"
ruleset="#!/usr/sbin/nft -f
# NAT for a private network (phoenix nat_gateway feature).
table ip phoenix_nat
delete table ip phoenix_nat
table ip phoenix_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		$match oifname \"$OUT\" masquerade
	}
}"
load=no
put_file /etc/nftables.d/phoenix-nat.nft 0644 "$ruleset" && load=yes
nft list table ip phoenix_nat >/dev/null 2>&1 || load=yes
if [ "$load" = yes ]; then
  out=$(nft -f /etc/nftables.d/phoenix-nat.nft 2>&1) || die "nft -f /etc/nftables.d/phoenix-nat.nft failed: $out"
  say "loaded table ip phoenix_nat ($nets via $OUT)"
fi

include='include "/etc/nftables.d/*.nft"'
if ! grep -qxF "$include" /etc/nftables.conf 2>/dev/null; then
  [ -f /etc/nftables.conf ] || printf '#!/usr/sbin/nft -f\n' >/etc/nftables.conf
  printf '%s\n' "$include" >>/etc/nftables.conf || die "cannot write /etc/nftables.conf"
  say "included /etc/nftables.d/*.nft in /etc/nftables.conf"
fi
if have systemctl && ! systemctl is-enabled --quiet nftables 2>/dev/null; then
  systemctl enable --quiet nftables || die "systemctl enable nftables failed (exit $?)"
fi
say "done"
