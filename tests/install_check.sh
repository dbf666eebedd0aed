#!/bin/sh
# ctest install/tree: `cmake --install` gives a tree whose binary finds its
# own Lua files (also after the tree is moved), honours --lua-dir, and says
# what is wrong when the files are missing.
# Usage: install_check.sh BUILD_DIR CMAKE
set -eu
build=$1
cmake=${2:-cmake}
work=$(mktemp -d /tmp/pxinstall.XXXXXX)
trap 'rm -rf "$work"' EXIT
unset PHOENIX_HOME
fail() { echo "install_check: $*" >&2; exit 1; }

"$cmake" --install "$build" --prefix "$work/prefix" >/dev/null
want="phoenix $(sed -n 's/^return "\(.*\)"$/\1/p' "$work/prefix/share/phoenix/lua/phoenix/version.lua")"
got=$("$work/prefix/bin/phoenix" --version) || fail "installed --version failed"
[ "$got" = "$want" ] || fail "installed --version printed '$got', expected '$want'"

printf 'print(require("px").lua_dir)\n' > "$work/where.lua"
dir=$("$work/prefix/bin/phoenix" lua "$work/where.lua")
[ "$dir" = "$work/prefix/share/phoenix/lua" ] || fail "installed binary runs the Lua files in '$dir'"

mv "$work/prefix" "$work/moved"
dir=$("$work/moved/bin/phoenix" lua "$work/where.lua")
[ "$dir" = "$work/moved/share/phoenix/lua" ] || fail "moved tree runs the Lua files in '$dir'"

# the loadable modules (px.http, px.git) come from the moved tree's lib/
printf 'print(package.searchpath("px.http", package.cpath)); print(type(require("px.http").request))\n' > "$work/mods.lua"
mods=$("$work/moved/bin/phoenix" lua "$work/mods.lua") || fail "installed px.http does not load"
case "$mods" in
  "$work/moved/"*"/phoenix/px/http.so"*function) ;;
  *) fail "px.http loaded from the wrong place: $mods" ;;
esac

cp -r "$work/moved/share/phoenix/lua" "$work/other"
dir=$("$work/moved/bin/phoenix" --lua-dir "$work/other" lua "$work/where.lua")
[ "$dir" = "$work/other" ] || fail "--lua-dir ran the Lua files in '$dir'"

rm -rf "$work/moved/share"
if msg=$("$work/moved/bin/phoenix" --version 2>&1); then fail "ran without its Lua files"; fi
case $msg in
  *"cannot find the phoenix Lua files"*) ;;
  *) fail "unclear message without Lua files: $msg" ;;
esac
echo "install_check: ok"
