-- A guest driver for tests (the exec/push/pull contract of
-- docs/internals.md "Guest drivers"): each guest's files live under
-- <root>/<id>/; commands run on this machine with absolute paths moved
-- under the guest's directory, except programs a test scripts with
-- handlers[name] = function(id, argv, opts) -> {code, stdout, stderr}.
-- Every call is logged in d.calls as "exec 101 nginx -s reload",
-- "push 101 /path", "pull 101 /path".
local exec = require "px.exec"
local fs = require "px.fs"

local M = {}

local Driver = {}
Driver.__index = Driver

function M.new(root)
  return setmetatable({ root = root, handlers = {}, calls = {}, fail = {} }, Driver)
end

function Driver:path(id, p)
  assert(type(p) == "string" and p:sub(1, 1) == "/", "guest path must be absolute: " .. tostring(p))
  return self.root .. "/" .. tostring(id) .. p
end

-- Test access to a guest's files.
function Driver:read(id, p) return fs.read(self:path(id, p)) end
function Driver:write(id, p, data)
  local full = self:path(id, p)
  assert(fs.mkdir(full:match("^(.*)/[^/]*$"), { parents = true }))
  assert(fs.write(full, data))
end

function Driver:log(what) self.calls[#self.calls + 1] = what end

-- calls_matching(pattern) -> the logged calls that match
function Driver:calls_matching(pat)
  local out = {}
  for _, c in ipairs(self.calls) do
    if c:find(pat) then out[#out + 1] = c end
  end
  return out
end

function Driver:exec(id, argv, opts)
  self:log("exec " .. tostring(id) .. " " .. table.concat(argv, " "))
  if self.fail.exec then return nil, self.fail.exec end
  local h = self.handlers[argv[1]]
  if h then return h(id, argv, opts or {}) end
  local local_argv = {}
  for i, a in ipairs(argv) do
    local_argv[i] = (i > 1 and a:sub(1, 1) == "/") and self:path(id, a) or a
  end
  assert(fs.mkdir(self.root .. "/" .. tostring(id), { parents = true }))
  local r, err = exec.run { argv = local_argv, stdin = opts and opts.stdin }
  if not r then return nil, err end
  return { code = r.code, stdout = r.stdout, stderr = r.stderr }
end

function Driver:push(id, p, content, opts)
  self:log("push " .. tostring(id) .. " " .. p)
  if self.fail.push then return nil, self.fail.push end
  local full = self:path(id, p)
  local ok, err = fs.mkdir(full:match("^(.*)/[^/]*$"), { parents = true })
  if not ok then return nil, err end
  return fs.write(full, content, { mode = opts and opts.mode })
end

function Driver:pull(id, p)
  self:log("pull " .. tostring(id) .. " " .. p)
  if self.fail.pull then return nil, self.fail.pull end
  return fs.read(self:path(id, p))
end

return M
