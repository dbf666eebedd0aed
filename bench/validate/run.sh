#!/bin/sh
# Times `phoenix validate` on a generated site: best wall time and peak RSS
# of RUNS runs (default 10). Usage: bench/validate/run.sh [BUILD_DIR] [GUESTS] [RUNS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
guests=${2:-1000}
runs=${3:-10}
site=$(mktemp -d /tmp/phoenix-bench-XXXXXX)
trap 'rm -rf "$site"' EXIT
"$build/phoenix" lua "$here/gen_site.lua" "$site" "$guests"
export BENCH_HASH='$6$bench$hash' BENCH_PORTAINER=bench-portainer-pw BENCH_DB=bench-db-pw
"$build/phoenix" validate --config-dir "$site" | tail -n 1
best_wall=999; best_cpu=999; peak=0
i=0
while [ "$i" -lt "$runs" ]; do
  out=$( { /usr/bin/time -f "%e %U %S %M" "$build/phoenix" validate --config-dir "$site" >/dev/null; } 2>&1 | tail -n 1)
  set -- $out
  best_wall=$(echo "$1 $best_wall" | awk '{print ($1 < $2) ? $1 : $2}')
  best_cpu=$(echo "$2 $3 $best_cpu" | awk '{c = $1 + $2; print (c < $3) ? c : $3}')
  peak=$(echo "$4 $peak" | awk '{print ($1 > $2) ? $1 : $2}')
  i=$((i + 1))
done
echo "validate, $guests guests, best of $runs: wall ${best_wall}s, user+sys ${best_cpu}s, peak RSS ${peak} KB"
