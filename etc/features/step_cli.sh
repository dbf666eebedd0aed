#!/bin/sh
# phoenix feature: step_cli — smallstep's step CLI, bootstrapped against the site's CA.
#
# Run inside the guest as root by the lxc/vm recipes:
#   env PHOENIX_FEATURE=step_cli PHOENIX_CA_URL=https://ca.lab:9000 PHOENIX_CA_FINGERPRINT=... sh step_cli.sh
#
# Settings (environment; all optional):
#   PHOENIX_CA_URL           bootstrap `step` against this CA (`step ca bootstrap --install`,
#                            which also trusts its root); needs PHOENIX_CA_FINGERPRINT
#   PHOENIX_CA_FINGERPRINT   the CA root's SHA-256 fingerprint (hex)
#   PHOENIX_STEPPATH         step's configuration directory (default /root/.step)
#   PHOENIX_STEP_REPO_URL    smallstep's apt repository (default https://packages.smallstep.com/stable/debian)
#   PHOENIX_STEP_KEY_URL     its signing key (default https://packages.smallstep.com/keys/apt/repo-signing-key.gpg)
#
# Checks before acting: the step-cli package by dpkg status (the repository
# is set up only when it must be installed); the bootstrap by the CA URL and
# fingerprint in $STEPPATH/config/defaults.json.
set -euf
FEATURE=${PHOENIX_FEATURE:-step_cli}
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

STEPPATH=${PHOENIX_STEPPATH:-/root/.step}
export STEPPATH
CA_URL=${PHOENIX_CA_URL:-}
FP=$(printf '%s' "${PHOENIX_CA_FINGERPRINT:-}" | tr -d ': ' | tr '[:upper:]' '[:lower:]')
case $CA_URL in
  '') ;;
  https://*) [ -n "$FP" ] || die "PHOENIX_CA_URL needs PHOENIX_CA_FINGERPRINT" ;;
  *) die "PHOENIX_CA_URL '$CA_URL' must be an https:// URL" ;;
esac
case $FP in *[!0-9a-f]*) die "PHOENIX_CA_FINGERPRINT is not a hex SHA-256 fingerprint" ;; esac

# smallstep_install PKG...: from smallstep's apt repository, set up on first need.
smallstep_install() {
  _si_need=
  for _si_p in "$@"; do pkg_ok "$_si_p" || _si_need=yes; done
  [ -n "$_si_need" ] || return 0
  apt_install ca-certificates
  _si_key=/etc/apt/keyrings/smallstep.asc
  if [ ! -s "$_si_key" ]; then
    mkdir -p /etc/apt/keyrings
    fetch "${PHOENIX_STEP_KEY_URL:-https://packages.smallstep.com/keys/apt/repo-signing-key.gpg}" "$_si_key"
    chmod 0644 "$_si_key"
    APT_FRESH=
  fi
  if put_file /etc/apt/sources.list.d/smallstep.list 0644 \
    "deb [signed-by=$_si_key] ${PHOENIX_STEP_REPO_URL:-https://packages.smallstep.com/stable/debian} debs main"; then
    APT_FRESH=
  fi
  apt_install "$@"
}

smallstep_install step-cli
have step || die "step-cli is installed but there is no step command"

if [ -n "$CA_URL" ]; then
  defaults=$STEPPATH/config/defaults.json
  if ! grep -qF "\"ca-url\": \"$CA_URL\"" "$defaults" 2>/dev/null ||
    ! grep -qF "\"fingerprint\": \"$FP\"" "$defaults" 2>/dev/null; then
    say "bootstrapping against $CA_URL"
    step ca bootstrap --ca-url "$CA_URL" --fingerprint "$FP" --install --force ||
      die "step ca bootstrap --ca-url $CA_URL failed (exit $?)"
  fi
fi
say "done"
