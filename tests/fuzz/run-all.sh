#!/bin/sh
# Builds the libFuzzer targets with clang in their own tree and runs each
# for a short while (ctest's fuzz/all). Longer runs by hand:
#   build-fuzz/tests/fuzz/fuzz_<name> -max_total_time=600 tests/fuzz/corpus/fuzz_<name>
# usage: run-all.sh SOURCE_DIR BUILD_DIR SECONDS
set -eu
src=$1 out=$2 secs=${3:-20}
command -v clang >/dev/null || { echo "SKIP: clang is not installed (scripts/install-deps --tests)"; exit 0; }
CC=clang cmake -S "$src" -B "$out" -DPHOENIX_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$out" -j2 >/dev/null
found=0
for f in "$out"/tests/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  found=1
  name=$(basename "$f")
  mkdir -p "$out/corpus-$name"
  echo "== $name ($secs s)"
  if ! "$f" -max_total_time="$secs" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
      "$out/corpus-$name" "$src/tests/fuzz/corpus/$name" >"$out/$name.log" 2>&1; then
    tail -n 40 "$out/$name.log"
    echo "FAIL: $name (log: $out/$name.log)"
    exit 1
  fi
  grep -E "stat::number_of_executed_units" "$out/$name.log" || true
done
[ "$found" = 1 ] || echo "no fuzz targets"
