#!/bin/sh
# phoenix feature: vllm — a vLLM OpenAI-compatible server as the systemd service vllm.
#
# Run inside the guest as root by the lxc recipe:
#   env PHOENIX_FEATURE=vllm PHOENIX_VLLM_ENGINE_CONFIG='{"ModelConfig":{"model":"Qwen/Qwen2-7B"},...}' sh vllm.sh
#
# Settings (environment):
#   PHOENIX_VLLM_ENGINE_CONFIG  required: the guest's vllm_engine_config as JSON text, written as-is to
#                               /etc/vllm/engine_config.json. Sections (ModelConfig, CacheConfig,
#                               ParallelConfig, ServerConfig, ...) are merged; each key becomes a
#                               `vllm serve` option (max_model_len -> --max-model-len), `model` the model
#   PHOENIX_VLLM_VERSION        the vllm release to pip-install (default: the newest, installed once)
#   PHOENIX_VLLM_VENV           the virtualenv (default /opt/vllm)
#   PHOENIX_VLLM_MODELS_DIR     the model cache, HF_HOME (default /var/lib/vllm)
#   PHOENIX_VLLM_HF_TOKEN       a Hugging Face token (secret: only written to /etc/vllm/env, mode 0600)
#
# Checks before acting: python3/python3-venv by dpkg status; the venv by its
# bin/python; vllm by `pip show vllm` (and its version when one is pinned);
# the config, launcher, token file and unit by content. The service is
# restarted only when one of those changed, else started when not running.
set -euf
FEATURE=${PHOENIX_FEATURE:-vllm}
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

CONFIG=${PHOENIX_VLLM_ENGINE_CONFIG:-}
VENV=${PHOENIX_VLLM_VENV:-/opt/vllm}
MODELS=${PHOENIX_VLLM_MODELS_DIR:-/var/lib/vllm}
WANT=${PHOENIX_VLLM_VERSION:-}
[ -n "$CONFIG" ] || die "PHOENIX_VLLM_ENGINE_CONFIG is required (the guest's vllm_engine_config)"
case $(printf '%s' "$CONFIG" | tr -d ' \t\n\r') in
  \{*\}) ;;
  *) die "PHOENIX_VLLM_ENGINE_CONFIG must be a JSON object" ;;
esac
case $VENV$MODELS in *[!A-Za-z0-9_./-]*) die "PHOENIX_VLLM_VENV and PHOENIX_VLLM_MODELS_DIR must be plain paths" ;; esac
case $VENV in /*) ;; *) die "PHOENIX_VLLM_VENV must be an absolute path" ;; esac
case $MODELS in /*) ;; *) die "PHOENIX_VLLM_MODELS_DIR must be an absolute path" ;; esac
case $WANT in *[!0-9A-Za-z.+-]*) die "PHOENIX_VLLM_VERSION '$WANT' is not a version" ;; esac

apt_install python3 python3-venv
if [ ! -x "$VENV/bin/python" ]; then
  say "creating the virtualenv $VENV"
  python3 -m venv "$VENV" || die "python3 -m venv $VENV failed (exit $?)"
fi
have_version=$("$VENV/bin/pip" show vllm 2>/dev/null | sed -n 's/^Version: *//p') || have_version=
restart=no
if [ -z "$have_version" ] || { [ -n "$WANT" ] && [ "$have_version" != "$WANT" ]; }; then
  spec=vllm
  [ -z "$WANT" ] || spec="vllm==$WANT"
  say "pip install $spec (was ${have_version:-not installed})"
  "$VENV/bin/pip" install --quiet "$spec" || die "pip install $spec failed (exit $?)"
  restart=yes
fi

mkdir -p "$MODELS" || die "cannot create $MODELS"
put_file /etc/vllm/engine_config.json 0644 "$CONFIG" && restart=yes
if [ -n "${PHOENIX_VLLM_HF_TOKEN:-}" ]; then
  put_file /etc/vllm/env 0600 "HF_TOKEN=$PHOENIX_VLLM_HF_TOKEN" && restart=yes
elif [ -e /etc/vllm/env ]; then
  rm -f /etc/vllm/env
  restart=yes
fi

# shellcheck disable=SC2016 # Python source, nothing to expand
put_file /usr/local/lib/phoenix/vllm-serve.py 0755 '#!/usr/bin/env python3
"""Start `vllm serve` from an engine config (JSON) written by phoenix.

Sections whose name starts with a capital (ModelConfig, CacheConfig, ...)
are merged; every key becomes an option: max_model_len: 4096 is
--max-model-len 4096, true a bare flag, false left out, a list repeated
values, an object JSON text. The key "model" is the model to serve.
"""
import json
import os
import sys


def options(cfg):
    flat = {}
    for key, value in cfg.items():
        if isinstance(value, dict) and key[:1].isupper():
            flat.update(value)
        else:
            flat[key] = value
    return flat


def main():
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    if not isinstance(cfg, dict):
        sys.exit(f"{path}: the engine config must be a JSON object")
    opts = options(cfg)
    model = opts.pop("model", None)
    if not model:
        sys.exit(f"{path}: no model (ModelConfig.model)")
    argv = [os.path.join(os.path.dirname(sys.executable), "vllm"), "serve", str(model)]
    for key, value in opts.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            argv += [flag] + [str(v) for v in value]
        elif isinstance(value, dict):
            argv += [flag, json.dumps(value)]
        else:
            argv += [flag, str(value)]
    print(" ".join(argv), flush=True)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()' && restart=yes

unit_file vllm "[Unit]
Description=vLLM OpenAI-compatible server (phoenix vllm feature)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
Environment=HF_HOME=$MODELS
EnvironmentFile=-/etc/vllm/env
ExecStart=$VENV/bin/python /usr/local/lib/phoenix/vllm-serve.py /etc/vllm/engine_config.json
Restart=on-failure
RestartSec=10

[Install]
WantedBy=multi-user.target" && restart=yes
service_up vllm "$restart"
say "done"
