#!/bin/sh
# phoenix feature: nvidia — the NVIDIA driver's user space (and, in a VM, its kernel module), matching
# the host; optionally the CUDA toolkit.
#
# Run inside the guest as root by the lxc/vm recipes:
#   env PHOENIX_FEATURE=nvidia PHOENIX_NVIDIA_DRIVER_VERSION=580.76.05 sh nvidia.sh
#
# Settings (environment):
#   PHOENIX_NVIDIA_DRIVER_VERSION  required, e.g. 580.76.05
#   PHOENIX_NVIDIA_RUNFILE_URL     the driver's .run installer (default
#                                  https://us.download.nvidia.com/XFree86/Linux-x86_64/<v>/NVIDIA-Linux-x86_64-<v>.run)
#   PHOENIX_NVIDIA_KERNEL_MODULE   auto (default: no inside a container, which uses the host's module;
#                                  yes in a VM), yes or no
#   PHOENIX_NVIDIA_CUDA_VERSION    e.g. 12.8: also install cuda-toolkit-12-8 from NVIDIA's CUDA repository
#   PHOENIX_NVIDIA_REPO_URL        that repository (default
#                                  https://developer.download.nvidia.com/compute/cuda/repos/<debian12|ubuntu2404|...>/<arch>/)
#
# Checks before acting: inside a container the host's kernel module
# (/proc/driver/nvidia/version) must be the requested version; the installed
# user space is `nvidia-smi --query-gpu=driver_version` (or, when no GPU
# answers, the version recorded after the last install), and the runfile is
# downloaded and run only when that differs. CUDA: dpkg status (dpkg-query) of
# cuda-keyring and cuda-toolkit-X-Y.
set -euf
FEATURE=${PHOENIX_FEATURE:-nvidia}
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

VERSION=${PHOENIX_NVIDIA_DRIVER_VERSION:-}
[ -n "$VERSION" ] || die "PHOENIX_NVIDIA_DRIVER_VERSION is required (e.g. 580.76.05)"
printf '%s\n' "$VERSION" | grep -Eqx '[0-9]+(\.[0-9]+)+' ||
  die "PHOENIX_NVIDIA_DRIVER_VERSION '$VERSION' is not a driver version (like 580.76.05)"
RUNFILE_URL=${PHOENIX_NVIDIA_RUNFILE_URL:-https://us.download.nvidia.com/XFree86/Linux-x86_64/$VERSION/NVIDIA-Linux-x86_64-$VERSION.run}
RECORD=/var/lib/phoenix/nvidia-driver.version
PROC_VERSION=/proc/driver/nvidia/version

in_container() {
  if have systemd-detect-virt; then
    systemd-detect-virt --quiet --container
    return
  fi
  [ -f /run/systemd/container ] && return 0
  tr '\0' '\n' </proc/1/environ 2>/dev/null | grep -q '^container='
}
case ${PHOENIX_NVIDIA_KERNEL_MODULE:-auto} in
  auto) if in_container; then KMOD=no; else KMOD=yes; fi ;;
  *) if truthy "$PHOENIX_NVIDIA_KERNEL_MODULE"; then KMOD=yes; else KMOD=no; fi ;;
esac

# kernel_version: the loaded module's version, from the NVRM line.
kernel_version() {
  awk '/^NVRM/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+(\.[0-9]+)?$/) { print $i; exit } }' "$PROC_VERSION" 2>/dev/null
}
# installed_version: what nvidia-smi reports, else the version recorded after the last install.
installed_version() {
  _iv=
  if have nvidia-smi; then
    _iv=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' ') || _iv=
  fi
  if [ -z "$_iv" ] && have nvidia-smi && [ -f "$RECORD" ]; then _iv=$(cat "$RECORD"); fi
  printf '%s' "$_iv"
}

if [ "$KMOD" = no ]; then
  [ -r "$PROC_VERSION" ] ||
    die "no NVIDIA kernel driver visible ($PROC_VERSION is missing): the host needs the driver loaded and the container its GPUs"
  host=$(kernel_version)
  [ "$host" = "$VERSION" ] ||
    die "the host's NVIDIA kernel module is ${host:-unknown} but $VERSION was asked for: the user space must match the host"
fi

have_version=$(installed_version)
if [ "$have_version" != "$VERSION" ]; then
  say "driver ${have_version:-none} -> $VERSION"
  if [ "$KMOD" = yes ]; then
    apt_install build-essential dkms "linux-headers-$(uname -r)"
    set -- --dkms
  else
    set -- --no-kernel-module --no-nvidia-modprobe
  fi
  cache=/var/lib/phoenix/cache
  mkdir -p "$cache"
  runfile=$cache/$(basename "$RUNFILE_URL")
  fetch "$RUNFILE_URL" "$runfile"
  sh "$runfile" --silent --no-questions --ui=none --no-x-check --no-nouveau-check "$@" ||
    { rc=$?; rm -f "$runfile"; die "the NVIDIA installer $(basename "$RUNFILE_URL") failed (exit $rc; see /var/log/nvidia-installer.log)"; }
  rm -f "$runfile"
  have nvidia-smi || die "the NVIDIA installer left no nvidia-smi"
  put_file "$RECORD" 0644 "$VERSION" || :
  now=$(installed_version)
  [ "$now" = "$VERSION" ] || die "after installing $VERSION, nvidia-smi reports ${now:-nothing}"
fi

if [ -n "${PHOENIX_NVIDIA_CUDA_VERSION:-}" ]; then
  cuda=$PHOENIX_NVIDIA_CUDA_VERSION
  case $cuda in
    [0-9]*.[0-9]*) ;;
    *) die "PHOENIX_NVIDIA_CUDA_VERSION '$cuda' is not major.minor (like 12.8)" ;;
  esac
  major=${cuda%%.*}
  minor=${cuda#*.}
  minor=${minor%%.*}
  toolkit=cuda-toolkit-$major-$minor
  if ! pkg_ok "$toolkit"; then
    if ! pkg_ok cuda-keyring; then
      id=$(os_field ID)
      ver=$(os_field VERSION_ID | tr -d '.')
      case $(uname -m) in aarch64) march=sbsa ;; *) march=$(uname -m) ;; esac
      repo=${PHOENIX_NVIDIA_REPO_URL:-https://developer.download.nvidia.com/compute/cuda/repos/$id$ver/$march/}
      mkdir -p /var/lib/phoenix/cache
      deb=/var/lib/phoenix/cache/cuda-keyring_1.1-1_all.deb
      fetch "${repo%/}/cuda-keyring_1.1-1_all.deb" "$deb"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" || die "apt-get install $deb failed (exit $?)"
      rm -f "$deb"
      APT_FRESH=
    fi
    apt_install "$toolkit"
  fi
fi
say "done (driver $VERSION, kernel module: $KMOD)"
