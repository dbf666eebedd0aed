#!/bin/sh
# phoenix feature: step_ca — a smallstep certificate authority (step-ca) as the systemd service step-ca.
#
# Run inside the guest as root by the lxc recipe:
#   env PHOENIX_FEATURE=step_ca PHOENIX_STEP_CA_NAME="Lab Root CA" PHOENIX_STEP_CA_DNS=ca.lab,192.168.10.11 \
#       PHOENIX_STEP_CA_PROVISIONER=admin@lab sh step_ca.sh
#
# Settings (environment):
#   PHOENIX_STEP_CA_NAME               required: the CA's name (step_ca.root_ca_name); step names the
#                                      intermediate "<name> Intermediate CA"
#   PHOENIX_STEP_CA_DNS                required: its DNS names and addresses, space- or comma-separated
#                                      (step_ca.dns_name and the guest's address)
#   PHOENIX_STEP_CA_PROVISIONER        required: the first (JWK) provisioner (step_ca.provisioner_name)
#   PHOENIX_STEP_CA_ADDRESS            listen address (default :9000)
#   PHOENIX_STEP_CA_ACME               yes (default): also the ACME provisioner "acme" at initialisation
#   PHOENIX_STEP_CA_PASSWORD           the password of the CA's keys (secret; default: a random one,
#                                      kept in $STEPPATH/secrets/password.txt, mode 0600)
#   PHOENIX_STEPPATH                   the CA's directory (default /root/.step, where the step_ca:config
#                                      resource looks)
#   PHOENIX_STEP_REPO_URL              smallstep's apt repository (default https://packages.smallstep.com/stable/debian)
#   PHOENIX_STEP_KEY_URL               its signing key (default https://packages.smallstep.com/keys/apt/repo-signing-key.gpg)
#
# Checks before acting: step-cli/step-ca by dpkg status; initialisation by
# $STEPPATH/config/ca.json (its name, DNS names and provisioner are recorded
# in $STEPPATH/config/phoenix-init.txt: a CA is never re-initialised, a
# change there is an error); the listen address in ca.json (edited in place,
# then a restart); the root fingerprint file; the unit by content.
set -euf
FEATURE=${PHOENIX_FEATURE:-step_ca}
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

NAME=${PHOENIX_STEP_CA_NAME:-}
DNS=$(words "${PHOENIX_STEP_CA_DNS:-}" | tr -s ' ' | sed 's/^ //; s/ $//')
PROV=${PHOENIX_STEP_CA_PROVISIONER:-}
ADDR=${PHOENIX_STEP_CA_ADDRESS:-:9000}
STEPPATH=${PHOENIX_STEPPATH:-/root/.step}
export STEPPATH
[ -n "$NAME" ] || die "PHOENIX_STEP_CA_NAME is required (step_ca.root_ca_name)"
[ -n "$DNS" ] || die "PHOENIX_STEP_CA_DNS is required (step_ca.dns_name)"
[ -n "$PROV" ] || die "PHOENIX_STEP_CA_PROVISIONER is required (step_ca.provisioner_name)"
case $NAME$PROV in *"
"*) die "PHOENIX_STEP_CA_NAME and PHOENIX_STEP_CA_PROVISIONER must be one line each" ;; esac
case $ADDR in
  *:[0-9]*) case ${ADDR##*:} in *[!0-9]*) die "PHOENIX_STEP_CA_ADDRESS '$ADDR' is not [host]:port" ;; esac ;;
  *) die "PHOENIX_STEP_CA_ADDRESS '$ADDR' is not [host]:port" ;;
esac
case ${ADDR%:*} in *[!A-Za-z0-9_.:\[\]-]*) die "PHOENIX_STEP_CA_ADDRESS '$ADDR' is not [host]:port" ;; esac
case $STEPPATH in /*) ;; *) die "PHOENIX_STEPPATH must be an absolute path" ;; esac
case $STEPPATH in *[!A-Za-z0-9_./-]*) die "PHOENIX_STEPPATH must be a plain path" ;; esac

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

smallstep_install step-cli step-ca
have step || die "step-cli is installed but there is no step command"

CA_JSON=$STEPPATH/config/ca.json
RECORD=$STEPPATH/config/phoenix-init.txt
PASSWORD=$STEPPATH/secrets/password.txt
identity="name=$NAME
dns=$DNS
provisioner=$PROV"
restart=no

if [ -n "${PHOENIX_STEP_CA_PASSWORD:-}" ]; then
  if [ -f "$CA_JSON" ] && [ -f "$PASSWORD" ] && [ "$(cat "$PASSWORD")" != "$PHOENIX_STEP_CA_PASSWORD" ]; then
    die "PHOENIX_STEP_CA_PASSWORD differs from the one the CA's keys are encrypted with ($PASSWORD): change it with step crypto change-pass first"
  fi
  put_file "$PASSWORD" 0600 "$PHOENIX_STEP_CA_PASSWORD" || :
elif [ ! -s "$PASSWORD" ]; then
  [ ! -f "$CA_JSON" ] || die "the CA in $STEPPATH is initialised but $PASSWORD is missing: set PHOENIX_STEP_CA_PASSWORD"
  pw=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | cut -c 1-32)
  [ ${#pw} -ge 24 ] || die "cannot make a random password"
  put_file "$PASSWORD" 0600 "$pw" || :
fi

if [ ! -f "$CA_JSON" ]; then
  say "initialising the CA \"$NAME\""
  set -- ca init --deployment-type standalone --name "$NAME" --address "$ADDR" --provisioner "$PROV" \
    --password-file "$PASSWORD" --provisioner-password-file "$PASSWORD"
  for d in $DNS; do set -- "$@" --dns "$d"; done
  truthy "${PHOENIX_STEP_CA_ACME:-yes}" && set -- "$@" --acme
  step "$@" || die "step ca init failed (exit $?)"
  [ -f "$CA_JSON" ] || die "step ca init wrote no $CA_JSON"
  put_file "$RECORD" 0644 "$identity" || :
  restart=yes
elif [ ! -f "$RECORD" ]; then
  # A CA set up before phoenix managed it: adopt it as it is.
  put_file "$RECORD" 0644 "$identity" || :
elif [ "$(cat "$RECORD")" != "$identity" ]; then
  die "the CA in $STEPPATH was initialised as
$(cat "$RECORD")
and is now asked to be
$identity
A CA is not re-initialised (that would replace its root): move $STEPPATH away to start over"
fi

# The listen address is the one setting changed in place.
current=$(sed -n 's/^[[:space:]]*"address":[[:space:]]*"\([^"]*\)".*/\1/p' "$CA_JSON" | head -n 1)
if [ "$current" != "$ADDR" ]; then
  sed -i "s|^\([[:space:]]*\"address\":[[:space:]]*\"\)[^\"]*\"|\1$ADDR\"|" "$CA_JSON" || die "cannot edit $CA_JSON"
  say "listen address ${current:-none} -> $ADDR"
  restart=yes
fi

fp=$(step certificate fingerprint "$STEPPATH/certs/root_ca.crt") || die "step certificate fingerprint failed (exit $?)"
put_file "$STEPPATH/certs/root_ca.fingerprint" 0644 "$fp" || :

unit_file step-ca "[Unit]
Description=smallstep certificate authority (phoenix step_ca feature)
After=network-online.target
Wants=network-online.target

[Service]
Environment=STEPPATH=$STEPPATH
ExecStart=/usr/bin/step-ca $CA_JSON --password-file=$PASSWORD
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target" && restart=yes
service_up step-ca "$restart"
say "done (root fingerprint $fp)"
