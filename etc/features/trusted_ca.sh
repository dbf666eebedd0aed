#!/bin/sh
# phoenix feature: trusted_ca — trust the site's internal root CA.
#
# Run inside the guest as root by the lxc/vm recipes:
#   env PHOENIX_FEATURE=trusted_ca PHOENIX_CA_CERT_PEM="$(cat root_ca.crt)" sh trusted_ca.sh
#
# Settings (environment; one source of the certificate is required):
#   PHOENIX_CA_CERT_PEM      the root certificate as PEM text
#   PHOENIX_CA_CERT_FILE     or: a file in the guest holding it (pushed there before)
#   PHOENIX_CA_URL           or: the step-ca URL; <url>/roots.pem is downloaded (TLS not yet
#                            trusted, so PHOENIX_CA_FINGERPRINT must match)
#   PHOENIX_CA_FINGERPRINT   SHA-256 fingerprint of the root (hex, colons allowed); checked for
#                            every source when given
#   PHOENIX_CA_NAME          file name in /usr/local/share/ca-certificates (default phoenix-root-ca)
#
# Checks before acting: the installed file's content (or, for a URL, its
# fingerprint, so a rerun downloads nothing) and its /etc/ssl/certs link;
# update-ca-certificates runs only when the file changed or is not linked.
set -euf
FEATURE=${PHOENIX_FEATURE:-trusted_ca}
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

NAME=${PHOENIX_CA_NAME:-phoenix-root-ca}
case $NAME in
  '' | *[!A-Za-z0-9_.-]* | .*) die "PHOENIX_CA_NAME '$NAME' must be a plain file name" ;;
esac
DEST=/usr/local/share/ca-certificates/$NAME.crt
LINK=/etc/ssl/certs/$NAME.pem
STATE=/var/lib/phoenix/trusted_ca.name
WANT_FP=$(printf '%s' "${PHOENIX_CA_FINGERPRINT:-}" | tr -d ': ' | tr '[:upper:]' '[:lower:]')
case $WANT_FP in
  '') ;;
  *[!0-9a-f]*) die "PHOENIX_CA_FINGERPRINT is not a hex SHA-256 fingerprint" ;;
  *) [ ${#WANT_FP} -eq 64 ] || die "PHOENIX_CA_FINGERPRINT must have 64 hex digits (SHA-256)" ;;
esac

# first_cert: the first PEM certificate of stdin.
first_cert() { awk '/-----BEGIN CERTIFICATE-----/ { on = 1 } on { print } /-----END CERTIFICATE-----/ && on { exit }'; }
# fingerprint FILE: SHA-256 of the first certificate's DER bytes (what `step certificate fingerprint` prints).
fingerprint() { first_cert <"$1" | sed '1d;$d' | base64 -d | sha256sum | cut -d ' ' -f 1; }

apt_install ca-certificates

pem=
if [ -n "${PHOENIX_CA_CERT_PEM:-}" ]; then
  pem=$PHOENIX_CA_CERT_PEM
elif [ -n "${PHOENIX_CA_CERT_FILE:-}" ]; then
  [ -r "$PHOENIX_CA_CERT_FILE" ] || die "PHOENIX_CA_CERT_FILE $PHOENIX_CA_CERT_FILE is not a readable file"
  pem=$(cat "$PHOENIX_CA_CERT_FILE")
elif [ -n "${PHOENIX_CA_URL:-}" ]; then
  [ -n "$WANT_FP" ] || die "PHOENIX_CA_URL needs PHOENIX_CA_FINGERPRINT (the download is not over trusted TLS)"
  if [ -f "$DEST" ] && [ "$(fingerprint "$DEST")" = "$WANT_FP" ]; then
    pem=$(cat "$DEST")
  else
    tmp=/var/lib/phoenix/trusted_ca.download
    mkdir -p /var/lib/phoenix
    have curl || have wget || apt_install curl
    # The CA's own TLS certificate is not trusted yet; the fingerprint check below is what trusts it.
    if have curl; then
      curl -fsSL --retry 3 --insecure -o "$tmp" "${PHOENIX_CA_URL%/}/roots.pem" ||
        { rc=$?; rm -f "$tmp"; die "download failed (curl exit $rc): ${PHOENIX_CA_URL%/}/roots.pem"; }
    else
      wget -q --no-check-certificate -O "$tmp" "${PHOENIX_CA_URL%/}/roots.pem" ||
        { rc=$?; rm -f "$tmp"; die "download failed (wget exit $rc): ${PHOENIX_CA_URL%/}/roots.pem"; }
    fi
    pem=$(first_cert <"$tmp")
    rm -f "$tmp"
  fi
else
  die "no certificate: set PHOENIX_CA_CERT_PEM, PHOENIX_CA_CERT_FILE or PHOENIX_CA_URL"
fi

case $pem in
  *"-----BEGIN CERTIFICATE-----"*"-----END CERTIFICATE-----"*) ;;
  *) die "the CA certificate is not PEM (no BEGIN/END CERTIFICATE lines)" ;;
esac
new=/var/lib/phoenix/trusted_ca.check
mkdir -p /var/lib/phoenix
printf '%s\n' "$pem" >"$new"
got_fp=$(fingerprint "$new")
rm -f "$new"
if [ -n "$WANT_FP" ] && [ "$got_fp" != "$WANT_FP" ]; then
  die "the CA certificate's fingerprint is $got_fp, not PHOENIX_CA_FINGERPRINT $WANT_FP"
fi

refresh=no
put_file "$DEST" 0644 "$pem" && refresh=yes
[ -e "$LINK" ] || refresh=yes
# A certificate installed before under another name is taken out again.
old=$(cat "$STATE" 2>/dev/null || true)
if [ -n "$old" ] && [ "$old" != "$NAME" ] && [ -e "/usr/local/share/ca-certificates/$old.crt" ]; then
  rm -f "/usr/local/share/ca-certificates/$old.crt"
  say "removed the old certificate $old"
  refresh=yes
fi
if [ "$refresh" = yes ]; then
  update-ca-certificates || die "update-ca-certificates failed (exit $?)"
  [ -e "$LINK" ] || die "update-ca-certificates did not link $LINK"
fi
put_file "$STATE" 0644 "$NAME" || :
say "done (fingerprint $got_fp)"
