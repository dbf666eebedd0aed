-- Reaching a guest through the target's drivers from a resource ID such
-- as "lxc:101" or "vm:1002" (the form the site loader uses in `want`).
local util = require "phoenix.util"

local M = {}

local KIND = { lxc = "ct", vm = "vm" }

-- driver(ctx, guest) -> driver, vmid | nil, msg
function M.driver(ctx, guest)
  local t, name = tostring(guest):match("^(%a+):(%d+)$")
  local kind = KIND[t or ""]
  if not kind then return nil, "not a guest: " .. tostring(guest) end
  local d, err = ctx.target:driver(kind)
  if not d then return nil, err end
  return d, tonumber(name)
end

-- exec(ctx, guest, argv, opts) -> result | nil, msg; a non-zero exit is a
-- failure unless opts.ok_codes lists it.
function M.exec(ctx, guest, argv, opts)
  local d, id = M.driver(ctx, guest)
  if not d then return nil, id end
  opts = opts or {}
  local r, err = d:exec(id, argv, { stdin = opts.stdin, env = opts.env, timeout_ms = opts.timeout_ms })
  if not r then return nil, guest .. ": " .. util.command_error(argv, nil, err) end
  for _, c in ipairs(opts.ok_codes or { 0 }) do
    if r.code == c then return r end
  end
  return nil, guest .. ": " .. util.command_error(argv, r), r
end

-- pull(ctx, guest, path) -> content | nil, msg
function M.pull(ctx, guest, path)
  local d, id = M.driver(ctx, guest)
  if not d then return nil, id end
  local data, err = d:pull(id, path)
  if data == nil then return nil, guest .. ": " .. path .. ": " .. tostring(err) end
  return data
end

-- push(ctx, guest, path, content, opts) -> true | nil, msg
function M.push(ctx, guest, path, content, opts)
  local d, id = M.driver(ctx, guest)
  if not d then return nil, id end
  local ok, err = d:push(id, path, content, opts or {})
  if not ok then return nil, guest .. ": " .. path .. ": " .. tostring(err) end
  return true
end

-- exists(ctx, guest, path) -> true | false | nil, msg (test -e inside the guest)
function M.exists(ctx, guest, path)
  local r, err = M.exec(ctx, guest, { "test", "-e", path }, { ok_codes = { 0, 1 } })
  if not r then return nil, err end
  return r.code == 0
end

return M
