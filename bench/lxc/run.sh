#!/bin/sh
# Containers bench (issue 6): no-op converge of 10 real containers on the
# lxc target beside Ansible's community.general.lxc_container over the
# same containers, and cold creation of 20 containers on the Proxmox
# simulator at 300 ms per tool call, -j 4 against -j 1.
# Usage (root, with lxc and busybox): bench/lxc/run.sh [BUILD_DIR]
# Installs ansible and python3-lxc with apt-get when they are missing.
# KEEP=1 keeps the containers and files in $WORK (default /var/tmp/phoenix-bench-lxc).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-$top/build}
phoenix="$build/phoenix"
work=${WORK:-/var/tmp/phoenix-bench-lxc}
n=10
[ "$(id -u)" = 0 ] || { echo "bench/lxc: needs root (real containers)" >&2; exit 2; }
command -v lxc-create >/dev/null || { echo "bench/lxc: needs lxc (apt-get install lxc busybox)" >&2; exit 2; }
if ! command -v ansible-playbook >/dev/null || ! /usr/bin/python3 -c "import lxc" 2>/dev/null; then
  echo "bench/lxc: installing ansible and python3-lxc (for the comparison)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ansible python3-lxc >/dev/null
fi

# Ansible's module opens containers in the default lxcpath whatever its
# lxc_path says, so the bench uses /var/lib/lxc, with names 8001..8010.
lxcpath=/var/lib/lxc
i=1
while [ $i -le $n ]; do
  if [ -e "$lxcpath/$((8000 + i))" ] && [ "${KEEP:-0}" != 1 ]; then
    echo "bench/lxc: $lxcpath/$((8000 + i)) exists: remove it or choose another host" >&2; exit 2
  fi
  i=$((i + 1))
done
cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then
    i=1
    while [ $i -le $n ]; do
      lxc-stop -n "$((8000 + i))" -k >/dev/null 2>&1 || true
      lxc-destroy -n "$((8000 + i))" -s >/dev/null 2>&1 || true
      i=$((i + 1))
    done
    rm -rf "$work"
  fi
}
trap cleanup EXIT
mkdir -p "$work"
"$phoenix" lua "$here/gen_site.lua" "$work" "$lxcpath" "$n"
site="$work/site"
lock="$work/lock"

# median_ms CMD...: median wall time of 15 runs (3 warm-up), in ms
median_ms() {
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 3 --runs 15 --export-json "$work/hf.json" "$*" >/dev/null 2>&1
    /usr/bin/python3 -c "import json,sys; print('%.1f' % (json.load(open(sys.argv[1]))['results'][0]['median']*1000))" "$work/hf.json"
  else
    i=0; : > "$work/times"
    while [ $i -lt 15 ]; do
      s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
      echo $(( (e - s) / 1000 )) >> "$work/times"; i=$((i + 1))
    done
    sort -n "$work/times" | awk '{a[NR]=$1} END {printf "%.1f\n", a[int((NR+1)/2)]/1000}'
  fi
}

echo "== creating $n containers (phoenix converge, -j 4)"
start=$(date +%s%N)
"$phoenix" converge -q --config-dir "$site" --lock-file "$lock"
create_s=$(( ($(date +%s%N) - start) / 1000000 ))
changes=$("$phoenix" converge --json --config-dir "$site" --lock-file "$lock" |
  /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['summary']['changes'])")
[ "$changes" = 0 ] || { echo "bench/lxc: the second converge changed $changes things" >&2; exit 1; }

echo "== no-op converge: phoenix"
px_ms=$(median_ms "$phoenix" converge -q --config-dir "$site" --lock-file "$lock")

echo "== no-op: ansible community.general.lxc_container"
ANSIBLE_NOCOWS=1 ANSIBLE_STDOUT_CALLBACK=default ansible-playbook -i "$work/inventory" "$work/playbook.yml" > "$work/ansible.out" 2>&1 ||
  { cat "$work/ansible.out"; exit 1; }
grep -q "changed=0" "$work/ansible.out" || { echo "bench/lxc: ansible changed something on its no-op run:"; tail -5 "$work/ansible.out"; }
ans_ms=$(median_ms ansible-playbook -i "$work/inventory" "$work/playbook.yml")
"$phoenix" plan --config-dir "$site" | tail -n 1

echo "== cold creation of 20 containers on pve-sim, 300 ms per tool call"
simsite="$work/simsite"
mkdir -p "$simsite"
"$phoenix" lua "$here/gen_sim_site.lua" "$simsite" 20
sim_run() {
  rm -rf "$work/node"
  "$top/tests/pve-sim/pve-sim" init "$work/node" --template debian-12-standard_12.7-1_amd64.tar.zst \
    --latency-ms 300 >/dev/null
  s=$(date +%s%N)
  "$phoenix" converge -q -j "$1" --config-dir "$simsite" --target pve \
    --target-opt "root=$work/node/root" --target-opt "bin=$work/node/bin" --lock-file "$lock" \
    > "$work/sim-j$1.log" 2>&1 || { cat "$work/sim-j$1.log" >&2; exit 1; }
  sim_ms=$(( ($(date +%s%N) - s) / 1000000 ))
}
sim_run 4
j4=$sim_ms
calls=$(wc -l < "$work/node/sim/calls.log")
sim_run 1
j1=$sim_ms

echo
printf '%-58s %10s\n' "measure" "figure"
printf '%-58s %8s s\n' "create $n busybox containers (lxc target, -j 4)" "$(echo "$create_s" | awk '{printf "%.1f", $1/1000}')"
printf '%-58s %7s ms   (budget < 150 ms)\n' "no-op converge, $n containers: phoenix (median)" "$px_ms"
printf '%-58s %7s ms\n' "no-op, same containers: ansible lxc_container (median)" "$ans_ms"
printf '%-58s %8sx   (budget >= 30x)\n' "ratio ansible / phoenix" "$(echo "$ans_ms $px_ms" | awk '{printf "%.0f", $1/$2}')"
printf '%-58s %8s s   (%s tool calls)\n' "pve-sim: create 20 containers, 300 ms/call, -j 4" "$(echo "$j4" | awk '{printf "%.1f", $1/1000}')" "$calls"
printf '%-58s %8s s\n' "pve-sim: create 20 containers, 300 ms/call, -j 1" "$(echo "$j1" | awk '{printf "%.1f", $1/1000}')"
printf '%-58s %8sx\n' "speed-up -j 4 over -j 1" "$(echo "$j1 $j4" | awk '{printf "%.1f", $1/$2}')"
