-- Shared helpers for specs: temp dirs, running the phoenix binary, and
-- small recipes for engine tests.
local exec = require "px.exec"
local fs = require "px.fs"
local sys = require "px.sys"

local M = {}

M.source_dir = sys.getenv("PHOENIX_SOURCE_DIR") or "."
M.bin = sys.getenv("PHOENIX_BIN") or "build/phoenix"

local counter = 0
-- tmpdir() -> a fresh directory, removed by cleanup()
function M.tmpdir()
  counter = counter + 1
  local d = string.format("/tmp/phoenix-test-%d-%d-%d", sys.pid(), os.time(), counter)
  assert(exec.run({ argv = { "rm", "-rf", d } }))
  assert(fs.mkdir(d))
  return d
end

function M.cleanup(d)
  if d and d:match("^/tmp/phoenix%-test%-") then exec.run({ argv = { "rm", "-rf", d } }) end
end

-- phoenix(args, opts) -> result of running the phoenix binary
function M.phoenix(args, opts)
  opts = opts or {}
  local argv = { M.bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return assert(exec.run({ argv = argv, stdin = opts.stdin, timeout_ms = opts.timeout_ms or 120000,
    env = opts.env, inherit_env = opts.env == nil, cwd = opts.cwd }))
end

function M.write(path, text)
  local dir = path:match("^(.*)/[^/]*$")
  if dir then fs.mkdir(dir) end
  assert(fs.write(path, text))
end

-- A recipe keeping want.content in the file want.path under the target root.
function M.file_recipe(type_)
  return {
    type = type_ or "testfile",
    inspect = function(ctx, want)
      local data = ctx.target:read(want.path)
      return { exists = data ~= nil, content = data }
    end,
    diff = function(_, want, have)
      if not have.exists then return { { action = "create", field = "content", to = want.content } } end
      if have.content ~= want.content then
        return { { action = "update", field = "content", from = have.content, to = want.content,
          disruptive = want.disruptive } }
      end
      return {}
    end,
    apply = function(ctx, want)
      if want.fail then return nil, want.fail end
      if want.sleep then assert(ctx:run({ argv = { "sleep", tostring(want.sleep) } })) end
      if want.log then
        local old = ctx.target:read(want.log) or ""
        ctx.target:write(want.log, old .. ctx.id .. "\n")
      end
      if want.broken then return true end -- claims success, changes nothing
      assert(ctx.target:write(want.path, want.content))
      return true
    end,
  }
end

function M.resource(id, want, deps)
  local t, name = id:match("^([^:]+):(.+)$")
  return { id = id, type = t, name = name, want = want, deps = deps or {}, scope = "host" }
end

return M
