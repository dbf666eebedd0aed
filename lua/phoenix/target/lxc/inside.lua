-- Inside a plain LXC container: commands through lxc-attach (a clean
-- environment), files written through a fixed sh script whose path and
-- mode are arguments, and feature markers read from the root filesystem on
-- the host.
local conf = require "phoenix.target.lxc.conf"
local tool = require "phoenix.target.lxc.tool"
local util = require "phoenix.util"
local fs = require "px.fs"

local M = {}

-- markers(id, names) -> { name = hash }: read from the root filesystem on
-- the host (no process), refusing symlinks on the way so a guest cannot
-- point phoenix at host files.
function M.markers(d, id, names)
  local text = d.t:read(tool.dir(d, id) .. "/config")
  if not text then return {} end
  local root = conf.model(conf.parse(text)).rootfs_path
  if root == "" then return {} end
  local dir = root
  for part in ("var/lib/phoenix/features"):gmatch("[^/]+") do
    dir = dir .. "/" .. part
    local st = fs.stat(dir, { follow = false })
    if not st then return {} end
    if st.type ~= "dir" then return nil, dir .. " is not a directory inside container " .. id end
  end
  local out = {}
  for _, name in ipairs(names) do
    local p = dir .. "/" .. name .. ".done"
    local st = fs.stat(p, { follow = false })
    if st and st.type == "file" then
      local h = (fs.read(p) or ""):match("^(%x+) " .. name:gsub("%p", "%%%0") .. "\n?$")
      out[name] = h
    end
  end
  return out
end


-- exec(id, argv, {stdin=, env=, timeout_ms=}) -> result | nil, msg
function M.exec(d, id, argv, o)
  o = o or {}
  local args = { "--clear-env" }
  local keys = util.sorted_keys(o.env or {})
  for _, k in ipairs(keys) do
    args[#args + 1] = "-v"
    args[#args + 1] = k .. "=" .. tostring(o.env[k])
  end
  args[#args + 1] = "--"
  for _, a in ipairs(argv) do args[#args + 1] = a end
  return tool.run(d, "lxc-attach", id, args, { check = false, stdin = o.stdin, timeout_ms = o.timeout_ms or 600000 })
end

-- The file is written next to its place and renamed, so a reader never
-- sees half of it; path and mode are arguments, never part of the script.
local PUSH = 'umask 077 && mkdir -p "${1%/*}" && cat > "$1.phoenix-new" && chmod "$2" "$1.phoenix-new" '
  .. '&& { [ -z "$3" ] || chown "$3" "$1.phoenix-new"; } && mv -f "$1.phoenix-new" "$1"'

-- push(id, path, content, {mode=, uid=, gid=}) -> true | nil, msg
function M.push(d, id, path, content, o)
  o = o or {}
  local owner = o.uid and (tostring(o.uid) .. ":" .. tostring(o.gid or o.uid)) or ""
  local res, err = M.exec(d, id, { "sh", "-c", PUSH, "sh", path, o.mode or "0644", owner }, { stdin = content })
  if not res then return nil, err end
  if res.code ~= 0 then return nil, string.format("writing %s in container %s: %s", path, id, util.tail(res.stderr)) end
  return true
end

-- pull(id, path) -> content | nil, msg
function M.pull(d, id, path)
  local res, err = M.exec(d, id, { "cat", path })
  if not res then return nil, err end
  if res.code ~= 0 then return nil, string.format("reading %s in container %s: %s", path, id, util.tail(res.stderr)) end
  return res.stdout
end

return M
