#!/bin/sh
# phoenix feature: docker — Docker engine and the compose plugin.
#
# Run inside the guest as root by the lxc/vm recipes:
#   env PHOENIX_FEATURE=docker PHOENIX_DOCKER_DAEMON_JSON='{"log-driver":"local"}' sh docker.sh
#
# Settings (environment; all optional):
#   PHOENIX_DOCKER_SOURCE       docker (default): Docker's apt repository (docker-ce, docker-ce-cli,
#                               containerd.io, docker-buildx-plugin, docker-compose-plugin);
#                               distro: the guest's own archive (docker.io, docker-compose)
#   PHOENIX_DOCKER_REPO_URL     Docker's repository (default https://download.docker.com/linux/<ID of /etc/os-release>)
#   PHOENIX_DOCKER_DAEMON_JSON  /etc/docker/daemon.json, written as-is (JSON text); default:
#                               json-file logs rotated at 10 MB, 3 files
#   PHOENIX_DOCKER_USERS        accounts to add to the docker group, space- or comma-separated
#
# Checks before acting: packages by dpkg status (the repository is set up
# only when they must be installed); daemon.json by content (docker is
# restarted only when it changed); the service with is-enabled/is-active;
# group membership with `id -nG`.
set -euf
FEATURE=${PHOENIX_FEATURE:-docker}
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

SOURCE=${PHOENIX_DOCKER_SOURCE:-docker}
DAEMON_JSON=${PHOENIX_DOCKER_DAEMON_JSON:-'{
  "log-driver": "json-file",
  "log-opts": { "max-size": "10m", "max-file": "3" }
}'}
case $(printf '%s' "$DAEMON_JSON" | tr -d ' \t\n\r') in
  \{*\}) ;;
  *) die "PHOENIX_DOCKER_DAEMON_JSON must be a JSON object" ;;
esac

case $SOURCE in
  docker)
    set -- docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
    need=
    for p in "$@"; do pkg_ok "$p" || need=yes; done
    if [ -n "$need" ]; then
      id=$(os_field ID)
      codename=$(os_field VERSION_CODENAME)
      [ -n "$id" ] || die "cannot tell the distribution (ID) from /etc/os-release"
      [ -n "$codename" ] || die "cannot tell the release (VERSION_CODENAME) from /etc/os-release"
      repo=${PHOENIX_DOCKER_REPO_URL:-https://download.docker.com/linux/$id}
      apt_install ca-certificates
      key=/etc/apt/keyrings/docker.asc
      if [ ! -s "$key" ]; then
        mkdir -p /etc/apt/keyrings
        fetch "${repo%/}/gpg" "$key"
        chmod 0644 "$key"
        APT_FRESH=
      fi
      case $(uname -m) in
        x86_64) arch=amd64 ;;
        aarch64) arch=arm64 ;;
        armv7l) arch=armhf ;;
        *) die "no Docker packages for $(uname -m)" ;;
      esac
      if put_file /etc/apt/sources.list.d/docker.list 0644 \
        "deb [arch=$arch signed-by=$key] ${repo%/} $codename stable"; then
        APT_FRESH=
      fi
      apt_install "$@"
    fi
    ;;
  distro) apt_install docker.io docker-compose ;;
  *) die "PHOENIX_DOCKER_SOURCE '$SOURCE' is not docker or distro" ;;
esac

restart=no
put_file /etc/docker/daemon.json 0644 "$DAEMON_JSON" && restart=yes
service_up docker "$restart"

for user in $(words "${PHOENIX_DOCKER_USERS:-}"); do
  id -u "$user" >/dev/null 2>&1 || die "PHOENIX_DOCKER_USERS: no user $user"
  if ! id -nG "$user" | tr ' ' '\n' | grep -qx docker; then
    usermod -aG docker "$user" || die "usermod -aG docker $user failed (exit $?)"
    say "added $user to the docker group"
  fi
done
say "done"
