#!/bin/sh
# phoenix feature: portainer — the Portainer server or agent container, by the guest's portainer_role.
#
# Run inside the guest as root by the lxc recipe (after the docker feature):
#   env PHOENIX_FEATURE=portainer PHOENIX_PORTAINER_ROLE=server sh portainer.sh
#
# Settings (environment):
#   PHOENIX_PORTAINER_ROLE          server or primary: the server (container "portainer");
#                                   agent: the agent (container "portainer_agent");
#                                   none or infrastructure (default none): neither (removes one phoenix ran)
#   PHOENIX_PORTAINER_SERVER_IMAGE  default portainer/portainer-ce:latest
#   PHOENIX_PORTAINER_AGENT_IMAGE   default portainer/agent:latest
#   PHOENIX_PORTAINER_SERVER_PORT   HTTPS port of the server (default 9443; also 8000 for edge agents)
#   PHOENIX_PORTAINER_AGENT_PORT    port of the agent (default 9001)
#
# Checks before acting: `docker inspect` of the container: its image, its
# io.phoenix.settings label (image and ports as last run) and whether it
# runs. A container whose settings differ is replaced; a stopped one is
# started; the other role's container is removed.
set -euf
FEATURE=${PHOENIX_FEATURE:-portainer}
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

ROLE=${PHOENIX_PORTAINER_ROLE:-none}
SERVER_IMAGE=${PHOENIX_PORTAINER_SERVER_IMAGE:-portainer/portainer-ce:latest}
AGENT_IMAGE=${PHOENIX_PORTAINER_AGENT_IMAGE:-portainer/agent:latest}
SERVER_PORT=${PHOENIX_PORTAINER_SERVER_PORT:-9443}
AGENT_PORT=${PHOENIX_PORTAINER_AGENT_PORT:-9001}
for port in "$SERVER_PORT" "$AGENT_PORT"; do
  case $port in '' | *[!0-9]*) die "Portainer ports must be numbers (got '$port')" ;; esac
done
for image in "$SERVER_IMAGE" "$AGENT_IMAGE"; do
  case $image in '' | *[!A-Za-z0-9_./:@-]*) die "'$image' is not an image reference" ;; esac
done
case $ROLE in
  server | primary) want=portainer other=portainer_agent ;;
  agent) want=portainer_agent other=portainer ;;
  none | infrastructure) want='' other='' ;;
  *) die "PHOENIX_PORTAINER_ROLE '$ROLE' is not server, primary, agent, infrastructure or none" ;;
esac
have docker || die "docker is not installed: list the docker feature before portainer"

LABEL=io.phoenix.settings
# state NAME: "image|settings|running" of a container, empty when there is none.
state() { docker inspect --format "{{.Config.Image}}|{{index .Config.Labels \"$LABEL\"}}|{{.State.Running}}" "$1" 2>/dev/null || true; }
remove() {
  if [ -n "$(state "$1")" ]; then
    docker rm -f "$1" >/dev/null || die "docker rm -f $1 failed (exit $?)"
    say "removed container $1"
  fi
}

if [ -z "$want" ]; then
  remove portainer
  remove portainer_agent
  say "done (role $ROLE: no Portainer container)"
  exit 0
fi
remove "$other"

if [ "$want" = portainer ]; then
  image=$SERVER_IMAGE
  settings="image=$image port=$SERVER_PORT"
  set -- -p "$SERVER_PORT:9443" -p 8000:8000 \
    -v /var/run/docker.sock:/var/run/docker.sock -v portainer_data:/data
else
  image=$AGENT_IMAGE
  settings="image=$image port=$AGENT_PORT"
  set -- -p "$AGENT_PORT:9001" \
    -v /var/run/docker.sock:/var/run/docker.sock -v /var/lib/docker/volumes:/var/lib/docker/volumes -v /:/host
fi

current=$(state "$want")
case $current in
  "$image|$settings|true") ;;
  "$image|$settings|"*)
    docker start "$want" >/dev/null || die "docker start $want failed (exit $?)"
    say "started container $want"
    ;;
  *)
    [ -z "$current" ] || say "replacing container $want (was ${current%|*})"
    docker pull "$image" || die "docker pull $image failed (exit $?)"
    remove "$want"
    docker run -d --name "$want" --restart=always --label "$LABEL=$settings" "$@" "$image" >/dev/null ||
      die "docker run $want ($image) failed (exit $?)"
    say "running container $want ($image)"
    ;;
esac
say "done (role $ROLE)"
