-- The remote side of the ssh transport: CONSTANT sh scripts. Values never
-- become script text; they arrive as positional parameters ($1 ...), each
-- one single-quoted by util.sh_quote on the way.
local M = {}

-- run: $1 token, $2 PATH prefix, $3 cwd, $4 program, then env words
-- (K=V) and argv. Started with `exec`, this shell is the session leader
-- sshd made, so its pid is the process group a timeout kills (kill script).
-- The pid file is taken with noclobber: if the kill script took it first,
-- the command never starts. Markers on stderr tell the local side that the
-- command started and how it ended; it strips them.
M.run = [[
t=$1 p=$2 d=$3 c=$4
shift 4
f=${TMPDIR:-/tmp}/.phoenix-ssh-$t
set -C
if ! { echo "$$" >"$f"; } 2>/dev/null; then
  if [ -e "$f" ]; then rm -f -- "$f"; else printf '%s-nopid\n' "$t" >&2; fi
  exit 125
fi
set +C
printf '%s-start\n' "$t" >&2
LC_ALL=C
export LC_ALL
if [ -n "$p" ]; then PATH=$p:$PATH; export PATH; fi
r=
if [ -n "$d" ] && ! cd -- "$d" 2>/dev/null; then
  r=nocwd
else
  case $c in
    */*) [ -f "$c" ] && [ -x "$c" ] || r=nocmd ;;
    *) command -v -- "$c" >/dev/null 2>&1 || r=nocmd ;;
  esac
fi
if [ -z "$r" ]; then
  env -- "$@"
  r=$?
fi
rm -f -- "$f"
printf '%s-end %s\n' "$t" "$r" >&2
case $r in *[!0-9]*) exit 127 ;; esac
exit "$r"
]]

-- kill: $1 token, $2 grace in tenths of a second. TERM to the group, KILL
-- after the grace. If the run script has not started yet, taking its pid
-- file first keeps it from ever starting.
M.kill = [[
f=${TMPDIR:-/tmp}/.phoenix-ssh-$1
g=$2
set -C
if { echo 0 >"$f"; } 2>/dev/null; then exit 0; fi
set +C
pid=$(cat -- "$f" 2>/dev/null)
case $pid in ''|*[!0-9]*|0|1) exit 0 ;; esac
if kill -s TERM -- "-$pid" 2>/dev/null; then
  i=0
  while kill -s 0 -- "-$pid" 2>/dev/null; do
    if [ "$i" -ge "$g" ]; then kill -s KILL -- "-$pid" 2>/dev/null; break; fi
    sleep 0.1
    i=$((i + 1))
  done
fi
rm -f -- "$f"
]]

-- list: $1 directory. NUL-terminated names (any byte but NUL and '/' can
-- be in a name); a symlink to a directory is listed through.
M.list = [[
p=$1
case $p in -*) p=./$p ;; esac
if [ -d "$p" ]; then exec find -H "$p" -mindepth 1 -maxdepth 1 -printf '%f\0'; fi
if [ -e "$p" ]; then echo "list: Not a directory" >&2; exit 1; fi
exec find -H "$p" -maxdepth 0
]]

-- remove: $1 path. A file, a link or an empty directory; absent is fine.
M.remove = [[
if [ -d "$1" ] && [ ! -L "$1" ]; then exec rmdir -- "$1"; fi
exec rm -f -- "$1"
]]

-- write: $1 path, $2 mode (octal), $3 uid, $4 gid, $5 backup suffix (each
-- may be empty); the data on stdin. As px.fs.write: written through a
-- symlink, a temp file in the same directory gets the data, the old file's
-- mode and owner unless told otherwise, is synced and renamed over the
-- path; backup hard-links the old file first (copies where links fail).
M.write = [[
p=$1 m=$2 u=$3 g=$4 b=$5
if [ -L "$p" ]; then p=$(readlink -f -- "$p") || exit 1; fi
if [ -d "$p" ]; then echo "write: Is a directory" >&2; exit 1; fi
if [ -e "$p" ] && [ ! -f "$p" ]; then echo "write: Invalid argument" >&2; exit 1; fi
case $p in
  */*) d=${p%/*} n=${p##*/} ;;
  *) d=. n=$p ;;
esac
[ -n "$d" ] || d=/
t=$(mktemp -- "$d/.$n.pxtmp.XXXXXX") || exit 1
trap 'rm -f -- "$t"' EXIT
cat >"$t" || exit 1
if [ -e "$p" ]; then
  o=$(stat -c '%a %u %g' -- "$p") || exit 1
  set -- $o
  m=${m:-$1} u=${u:-$2} g=${g:-$3}
fi
m=${m:-644}
o=$(stat -c '%u %g' -- "$t") || exit 1
set -- $o
# chown before chmod: chown clears set-user/group-ID bits.
if [ -n "$u" ] && [ "$u" != "$1" ]; then chown -- "+$u" "$t" || exit 1; fi
if [ -n "$g" ] && [ "$g" != "$2" ]; then chgrp -- "+$g" "$t" || exit 1; fi
chmod -- "$m" "$t" || exit 1
sync -- "$t" || exit 1
if [ -n "$b" ] && [ -e "$p" ]; then
  rm -f -- "$p$b" || exit 1
  ln -- "$p" "$p$b" 2>/dev/null || cp -p -- "$p" "$p$b" || exit 1
fi
mv -f -- "$t" "$p" || exit 1
trap - EXIT
sync -- "$d" 2>/dev/null
exit 0
]]

return M
