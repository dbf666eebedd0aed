#!/bin/sh
# phoenix feature: ollama — the Ollama server as the systemd service ollama.
#
# Run inside the guest as root by the lxc recipe:
#   env PHOENIX_FEATURE=ollama PHOENIX_OLLAMA_VERSION=0.5.7 sh ollama.sh
#
# Settings (environment; all optional):
#   PHOENIX_OLLAMA_VERSION     release to install, e.g. 0.5.7 (default: the newest, installed once)
#   PHOENIX_OLLAMA_URL         the release tarball (default https://ollama.com/download/ollama-linux-<arch>.tgz,
#                              or with a version .../download/v<version>/ollama-linux-<arch>.tgz on GitHub)
#   PHOENIX_OLLAMA_HOST        listen address, OLLAMA_HOST (default 0.0.0.0:11434)
#   PHOENIX_OLLAMA_MODELS_DIR  where models are kept, OLLAMA_MODELS (default: the ollama user's home)
#
# Checks before acting: the binary and its version (`ollama -v`); the
# ollama account by `id`; the unit by content (the service is restarted only
# when it changed, else started when not running).
set -euf
FEATURE=${PHOENIX_FEATURE:-ollama}
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

WANT=${PHOENIX_OLLAMA_VERSION:-}
HOST=${PHOENIX_OLLAMA_HOST:-0.0.0.0:11434}
MODELS=${PHOENIX_OLLAMA_MODELS_DIR:-}
case $WANT in *[!0-9A-Za-z.-]*) die "PHOENIX_OLLAMA_VERSION '$WANT' is not a version" ;; esac
case $HOST in '' | *[!A-Za-z0-9_.:\[\]-]*) die "PHOENIX_OLLAMA_HOST '$HOST' is not an address (host:port)" ;; esac
case $MODELS in '' | /*) ;; *) die "PHOENIX_OLLAMA_MODELS_DIR must be an absolute path" ;; esac
case $MODELS in *[!A-Za-z0-9_./-]*) die "PHOENIX_OLLAMA_MODELS_DIR must be a plain path" ;; esac
case $(uname -m) in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "no Ollama build for $(uname -m)" ;;
esac
BIN=/usr/local/bin/ollama

installed() { "$BIN" -v 2>/dev/null | sed -n 's/.*version is \([0-9][0-9A-Za-z.-]*\).*/\1/p' | head -n 1; }

restart=no
have_version=
[ -x "$BIN" ] && have_version=$(installed)
if [ ! -x "$BIN" ] || { [ -n "$WANT" ] && [ "$have_version" != "$WANT" ]; }; then
  if [ -n "$WANT" ]; then
    url=${PHOENIX_OLLAMA_URL:-https://github.com/ollama/ollama/releases/download/v$WANT/ollama-linux-$arch.tgz}
  else
    url=${PHOENIX_OLLAMA_URL:-https://ollama.com/download/ollama-linux-$arch.tgz}
  fi
  say "installing Ollama ${WANT:-(newest)} (was ${have_version:-not installed})"
  mkdir -p /var/lib/phoenix/cache
  tgz=/var/lib/phoenix/cache/ollama-linux-$arch.tgz
  fetch "$url" "$tgz"
  # The tarball holds bin/ollama and lib/ollama/; the old libraries go first.
  rm -rf /usr/local/lib/ollama
  tar -C /usr/local -xzf "$tgz" || { rc=$?; rm -f "$tgz"; die "cannot unpack $url (tar exit $rc)"; }
  rm -f "$tgz"
  [ -x "$BIN" ] || die "$url holds no bin/ollama"
  now=$(installed)
  if [ -n "$WANT" ] && [ "$now" != "$WANT" ]; then die "installed Ollama reports version ${now:-none}, not $WANT"; fi
  restart=yes
fi

if ! id -u ollama >/dev/null 2>&1; then
  useradd --system --user-group --create-home --home-dir /usr/share/ollama --shell /bin/false ollama ||
    die "useradd ollama failed (exit $?)"
  say "created user ollama"
fi
if [ -n "$MODELS" ] && [ ! -d "$MODELS" ]; then
  { mkdir -p "$MODELS" && chown ollama:ollama "$MODELS"; } || die "cannot create $MODELS"
fi

env_models=
[ -z "$MODELS" ] || env_models="
Environment=OLLAMA_MODELS=$MODELS"
unit_file ollama "[Unit]
Description=Ollama server (phoenix ollama feature)
After=network-online.target
Wants=network-online.target

[Service]
User=ollama
Group=ollama
Environment=OLLAMA_HOST=$HOST$env_models
ExecStart=$BIN serve
Restart=always
RestartSec=3

[Install]
WantedBy=multi-user.target" && restart=yes
service_up ollama "$restart"
say "done"
