#!/bin/sh
# phoenix feature: traefik — the Traefik reverse proxy with a file provider watching /etc/traefik/dynamic.
#
# Run inside the guest as root by the lxc recipe:
#   env PHOENIX_FEATURE=traefik PHOENIX_TRAEFIK_ACME_CA_URL=https://ca.lab:9000/acme/acme/directory sh traefik.sh
#
# Settings (environment; all optional):
#   PHOENIX_TRAEFIK_VERSION        release to install (default 3.1.6)
#   PHOENIX_TRAEFIK_URL            its tarball (default
#                                  https://github.com/traefik/traefik/releases/download/v<v>/traefik_v<v>_linux_<arch>.tar.gz)
#   PHOENIX_TRAEFIK_STATIC_CONFIG  /etc/traefik/traefik.yml as-is (YAML text), instead of the generated one
#   PHOENIX_TRAEFIK_ACME_CA_URL    an ACME directory (step-ca: <ca_url>/acme/acme/directory): adds the
#                                  certificate resolver "internal" (TLS challenge, /etc/traefik/acme.json)
#   PHOENIX_TRAEFIK_ACME_EMAIL     the ACME account's e-mail (default admin@<the guest's domain>)
#   PHOENIX_TRAEFIK_DASHBOARD      yes: enable the API dashboard (default no)
#
# The generated static configuration has the entry points web (:80) and
# websecure (:443) and the file provider on /etc/traefik/dynamic (watch:
# true), where phoenix's traefik:config resource puts the routes.
# Checks before acting: `traefik version` against the wanted version; the
# static configuration and unit by content (Traefik is restarted only when
# they changed; route files need no restart).
set -euf
FEATURE=${PHOENIX_FEATURE:-traefik}
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

WANT=${PHOENIX_TRAEFIK_VERSION:-3.1.6}
case $WANT in '' | *[!0-9A-Za-z.-]*) die "PHOENIX_TRAEFIK_VERSION '$WANT' is not a version" ;; esac
case $(uname -m) in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "no Traefik build for $(uname -m)" ;;
esac
URL=${PHOENIX_TRAEFIK_URL:-https://github.com/traefik/traefik/releases/download/v$WANT/traefik_v${WANT}_linux_$arch.tar.gz}
BIN=/usr/local/bin/traefik
ACME=${PHOENIX_TRAEFIK_ACME_CA_URL:-}
domain=$(hostname -d 2>/dev/null || true)
EMAIL=${PHOENIX_TRAEFIK_ACME_EMAIL:-admin@${domain:-localhost}}
for v in "$ACME" "$EMAIL"; do
  case $v in *[!A-Za-z0-9_.:/@%+=?\&~-]*) die "'$v' cannot go into traefik.yml (unexpected characters)" ;; esac
done
case $ACME in '' | https://*) ;; *) die "PHOENIX_TRAEFIK_ACME_CA_URL must be an https:// URL" ;; esac

installed() { "$BIN" version 2>/dev/null | awk '$1 == "Version:" { print $2; exit }'; }

restart=no
have_version=
[ -x "$BIN" ] && have_version=$(installed)
if [ "$have_version" != "$WANT" ]; then
  say "installing Traefik $WANT (was ${have_version:-not installed})"
  work=/var/lib/phoenix/cache/traefik
  rm -rf "$work"
  mkdir -p "$work"
  fetch "$URL" "$work/traefik.tar.gz"
  tar -C "$work" -xzf "$work/traefik.tar.gz" traefik || die "cannot unpack $URL (tar exit $?)"
  { chmod 0755 "$work/traefik" && mv -f "$work/traefik" "$BIN"; } || die "cannot install $BIN"
  rm -rf "$work"
  now=$(installed)
  [ "$now" = "$WANT" ] || die "installed Traefik reports version ${now:-none}, not $WANT"
  restart=yes
fi

mkdir -p /etc/traefik/dynamic
if [ -n "${PHOENIX_TRAEFIK_STATIC_CONFIG:-}" ]; then
  static=$PHOENIX_TRAEFIK_STATIC_CONFIG
else
  dashboard=false
  truthy "${PHOENIX_TRAEFIK_DASHBOARD:-no}" && dashboard=true
  static="# Traefik static configuration (phoenix traefik feature).
entryPoints:
  web:
    address: \":80\"
  websecure:
    address: \":443\"
providers:
  file:
    directory: /etc/traefik/dynamic
    watch: true
api:
  dashboard: $dashboard
log:
  level: INFO"
  if [ -n "$ACME" ]; then
    static="$static
certificatesResolvers:
  internal:
    acme:
      caServer: \"$ACME\"
      email: \"$EMAIL\"
      storage: /etc/traefik/acme.json
      tlsChallenge: {}"
  fi
fi
put_file /etc/traefik/traefik.yml 0644 "$static" && restart=yes

unit_file traefik "[Unit]
Description=Traefik reverse proxy (phoenix traefik feature)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=$BIN --configFile=/etc/traefik/traefik.yml
AmbientCapabilities=CAP_NET_BIND_SERVICE
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target" && restart=yes
service_up traefik "$restart"
say "done"
