#!/bin/sh
# phoenix feature: base_setup — base packages, locale, time zone, an admin account.
#
# Run inside the guest as root by the lxc/vm recipes:
#   env PHOENIX_FEATURE=base_setup PHOENIX_TIMEZONE=Europe/Berlin ... sh base_setup.sh
#
# Settings (environment; all optional):
#   PHOENIX_PACKAGES             extra packages to install, space- or comma-separated
#   PHOENIX_TIMEZONE             time zone, e.g. Europe/Berlin (/etc/localtime, /etc/timezone)
#   PHOENIX_LOCALE               default en_US.UTF-8 (/etc/locale.gen, locale-gen, /etc/default/locale)
#   PHOENIX_ADMIN_USER           an account to create (home directory, /bin/bash)
#   PHOENIX_ADMIN_SUDO           yes: passwordless sudo for it (/etc/sudoers.d/phoenix-<user>)
#   PHOENIX_ADMIN_SSH_KEYS       its ~/.ssh/authorized_keys, one key per line
#   PHOENIX_ADMIN_PASSWORD_HASH  its crypt(3) password hash (secret: never printed, set through chpasswd -e)
#
# Checks before acting: packages by dpkg status; the locale by `locale -a`;
# the zone by the /etc/localtime link and /etc/timezone; the account by `id`;
# files by content; the password by the hash in /etc/shadow.
set -euf
FEATURE=${PHOENIX_FEATURE:-base_setup}
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

LOCALE=${PHOENIX_LOCALE:-en_US.UTF-8}
TZONE=${PHOENIX_TIMEZONE:-}
ADMIN=${PHOENIX_ADMIN_USER:-}
SUDO=${PHOENIX_ADMIN_SUDO:-no}

case $LOCALE in
  *[!A-Za-z0-9_.@-]* | '') die "PHOENIX_LOCALE '$LOCALE' is not a locale name (like en_US.UTF-8)" ;;
esac
case $TZONE in
  *..* | /* | *[!A-Za-z0-9_+/-]*) die "PHOENIX_TIMEZONE '$TZONE' is not a time zone name (like Europe/Berlin)" ;;
esac
case $ADMIN in
  '') ;;
  [a-z_]*) case $ADMIN in *[!a-z0-9_-]*) die "PHOENIX_ADMIN_USER '$ADMIN' is not a valid user name" ;; esac ;;
  *) die "PHOENIX_ADMIN_USER '$ADMIN' is not a valid user name" ;;
esac

# shellcheck disable=SC2046 # word lists on purpose
set -- ca-certificates curl gnupg locales tzdata $(words "${PHOENIX_PACKAGES:-}")
if [ -n "$ADMIN" ] && truthy "$SUDO"; then set -- "$@" sudo; fi
apt_install "$@"

# Locale: generated once (locale -a lists it as en_US.utf8), made the default.
case $LOCALE in
  C | POSIX | C.UTF-8 | C.utf8) ;;
  *)
    charset=UTF-8
    case $LOCALE in
      *.*)
        charset=${LOCALE#*.}
        charset=${charset%%@*}
        ;;
    esac
    norm=${LOCALE%%.*}.$(printf '%s' "$charset" | tr '[:upper:]' '[:lower:]' | tr -d '-')
    case $LOCALE in *@*) norm="$norm@${LOCALE#*@}" ;; esac
    if ! locale -a 2>/dev/null | grep -qix "$norm"; then
      line="$LOCALE $charset"
      if ! grep -qx "$line" /etc/locale.gen 2>/dev/null; then
        if grep -qx "# *$line" /etc/locale.gen 2>/dev/null; then
          sed -i "s|^# *$line\$|$line|" /etc/locale.gen || die "cannot edit /etc/locale.gen"
        else
          printf '%s\n' "$line" >>/etc/locale.gen || die "cannot write /etc/locale.gen"
        fi
      fi
      say "generating locale $LOCALE"
      locale-gen || die "locale-gen failed (exit $?)"
    fi
    ;;
esac
put_file /etc/default/locale 0644 "LANG=$LOCALE" || :

# Time zone.
if [ -n "$TZONE" ]; then
  zone=/usr/share/zoneinfo/$TZONE
  [ -f "$zone" ] || die "unknown time zone $TZONE (no $zone)"
  if [ "$(readlink /etc/localtime 2>/dev/null || true)" != "$zone" ]; then
    ln -sf "$zone" /etc/localtime || die "cannot link /etc/localtime"
    say "time zone $TZONE"
  fi
  put_file /etc/timezone 0644 "$TZONE" || :
fi

# The admin account.
if [ -n "$ADMIN" ]; then
  if ! id -u "$ADMIN" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$ADMIN" || die "useradd $ADMIN failed (exit $?)"
    say "created user $ADMIN"
  fi
  home=$(awk -F: -v u="$ADMIN" '$1 == u { print $6 }' /etc/passwd)
  [ -n "$home" ] || die "user $ADMIN has no home directory in /etc/passwd"
  group=$(id -gn "$ADMIN")
  sudoers=/etc/sudoers.d/phoenix-$ADMIN
  if truthy "$SUDO"; then
    put_file "$sudoers" 0440 "$ADMIN ALL=(ALL:ALL) NOPASSWD: ALL" || :
  elif [ -e "$sudoers" ]; then
    rm -f "$sudoers" || die "cannot remove $sudoers"
    say "removed $sudoers"
  fi
  if [ -n "${PHOENIX_ADMIN_SSH_KEYS:-}" ]; then
    if [ ! -d "$home/.ssh" ]; then
      { mkdir -p "$home/.ssh" && chmod 0700 "$home/.ssh" && chown "$ADMIN:$group" "$home/.ssh"; } ||
        die "cannot create $home/.ssh"
    fi
    if put_file "$home/.ssh/authorized_keys" 0600 "$PHOENIX_ADMIN_SSH_KEYS"; then
      chown "$ADMIN:$group" "$home/.ssh/authorized_keys" || die "cannot chown $home/.ssh/authorized_keys"
    fi
  fi
  if [ -n "${PHOENIX_ADMIN_PASSWORD_HASH:-}" ]; then
    current=$(awk -F: -v u="$ADMIN" '$1 == u { print $2 }' /etc/shadow 2>/dev/null || true)
    if [ "$current" != "$PHOENIX_ADMIN_PASSWORD_HASH" ]; then
      printf '%s:%s\n' "$ADMIN" "$PHOENIX_ADMIN_PASSWORD_HASH" | chpasswd -e ||
        die "chpasswd failed for $ADMIN (exit $?)"
      say "set the password of $ADMIN"
    fi
  fi
fi
say "done"
