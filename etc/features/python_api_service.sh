#!/bin/sh
# phoenix feature: python_api_service — a Python (ASGI) API service: a virtualenv and a systemd unit
# running uvicorn.
#
# Run inside the guest as root by the lxc recipe:
#   env PHOENIX_FEATURE=python_api_service PHOENIX_API_NAME=embeddings PHOENIX_API_PORT=8000 sh python_api_service.sh
#
# Settings (environment; all optional):
#   PHOENIX_API_NAME          the service, its account and /opt/<name> (default python-api)
#   PHOENIX_API_REQUIREMENTS  requirements.txt text, written as-is (default: fastapi and uvicorn[standard])
#   PHOENIX_API_SOURCE        the application's main.py, written as-is to /opt/<name>/app/main.py
#                             (default: the application_script or a mount provides /opt/<name>/app)
#   PHOENIX_API_APP           the ASGI application (default main:app)
#   PHOENIX_API_HOST          listen address (default 0.0.0.0)
#   PHOENIX_API_PORT          listen port (default 8000)
#
# Checks before acting: python3/python3-venv by dpkg status; the venv by its
# bin/python; the requirements by content against the copy kept after the
# last successful `pip install -r` (so a failed install is retried); the
# account by `id`; main.py and the unit by content. The service is
# restarted when something changed and started when not running, once
# app/ holds the application.
set -euf
FEATURE=${PHOENIX_FEATURE:-python_api_service}
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

NAME=${PHOENIX_API_NAME:-python-api}
APP=${PHOENIX_API_APP:-main:app}
HOST=${PHOENIX_API_HOST:-0.0.0.0}
PORT=${PHOENIX_API_PORT:-8000}
default_requirements='fastapi
uvicorn[standard]'
REQS=${PHOENIX_API_REQUIREMENTS:-$default_requirements}
case $NAME in '' | [!a-z]* | *[!a-z0-9_-]*) die "PHOENIX_API_NAME '$NAME' must be lower case letters, digits, _ and -" ;; esac
case $APP in *[!A-Za-z0-9_.:]* | *:*:* | :* | *:) die "PHOENIX_API_APP '$APP' is not module:attribute" ;; *:*) ;; *) die "PHOENIX_API_APP '$APP' is not module:attribute" ;; esac
case $HOST in '' | *[!0-9A-Za-z.:-]*) die "PHOENIX_API_HOST '$HOST' is not an address" ;; esac
case $PORT in '' | *[!0-9]*) die "PHOENIX_API_PORT '$PORT' is not a port number" ;; esac
DIR=/opt/$NAME
VENV=$DIR/venv

apt_install python3 python3-venv
if ! id -u "$NAME" >/dev/null 2>&1; then
  useradd --system --user-group --home-dir "$DIR" --shell /usr/sbin/nologin "$NAME" || die "useradd $NAME failed (exit $?)"
  say "created user $NAME"
fi
mkdir -p "$DIR/app" || die "cannot create $DIR/app"

restart=no
if [ ! -x "$VENV/bin/python" ]; then
  say "creating the virtualenv $VENV"
  python3 -m venv "$VENV" || die "python3 -m venv $VENV failed (exit $?)"
fi
put_file "$DIR/requirements.txt" 0644 "$REQS" || :
if ! cmp -s "$DIR/requirements.txt" "$VENV/.phoenix-requirements.txt"; then
  say "pip install -r $DIR/requirements.txt"
  "$VENV/bin/pip" install --quiet -r "$DIR/requirements.txt" || die "pip install -r $DIR/requirements.txt failed (exit $?)"
  cp "$DIR/requirements.txt" "$VENV/.phoenix-requirements.txt" || die "cannot write $VENV/.phoenix-requirements.txt"
  restart=yes
fi
if [ -n "${PHOENIX_API_SOURCE:-}" ]; then
  put_file "$DIR/app/main.py" 0644 "$PHOENIX_API_SOURCE" && restart=yes
fi

unit_file "$NAME" "[Unit]
Description=$NAME Python API (phoenix python_api_service feature)
After=network-online.target
Wants=network-online.target

[Service]
User=$NAME
Group=$NAME
WorkingDirectory=$DIR/app
ExecStart=$VENV/bin/uvicorn $APP --host $HOST --port $PORT
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target" && restart=yes

if [ -z "$(ls -A "$DIR/app")" ]; then
  systemctl is-enabled --quiet "$NAME" 2>/dev/null || systemctl enable --quiet "$NAME" || die "systemctl enable $NAME failed (exit $?)"
  say "done ($DIR/app is empty: $NAME is enabled, the application_script starts it)"
  exit 0
fi
service_up "$NAME" "$restart"
say "done"
