-- Host-setup specs: a temporary target root, a bin directory of recording
-- stand-ins for host tools, and the engine run on built-in recipes.
local engine = require "phoenix.engine"
local recipes = require "phoenix.recipes"
local targets = require "phoenix.target"
local fs = require "px.fs"
local json = require "px.json"
local kit = require "testkit"

local M = {}

-- A stand-in tool: appends its name and arguments (and stdin, when
-- PHOENIX_STUB_STDIN is set in the tool's file) as a JSON line to
-- <dir>/calls.log, then exits with the code in <dir>/exit.<tool> (default 0)
-- after printing <dir>/stdout.<tool> if present.
local STUB = [[#!/bin/sh
d=%q
name=$(basename "$0")
/usr/bin/python3 -S -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$name" "$@" >> "$d/calls.log"
[ -f "$d/stdout.$name" ] && cat "$d/stdout.$name"
[ -f "$d/stderr.$name" ] && cat "$d/stderr.$name" >&2
[ -f "$d/exit.$name" ] && exit "$(cat "$d/exit.$name")"
exit 0
]]

-- A stand-in that records, then runs the real tool (so real checks happen).
local WRAP = [[#!/bin/sh
d=%q
name=$(basename "$0")
/usr/bin/python3 -S -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$name" "$@" >> "$d/calls.log"
exec %q "$@"
]]

-- new() -> h with h.dir, h.root, h.bin
function M.new()
  local dir = kit.tmpdir()
  local h = setmetatable({ dir = dir, root = dir .. "/root", bin = dir .. "/bin" }, { __index = M })
  assert(fs.mkdir(h.root))
  assert(fs.mkdir(h.bin))
  return h
end

function M:cleanup() kit.cleanup(self.dir) end

-- stub(name, {exit=, stdout=, stderr=}) installs a recording stand-in.
function M:stub(name, o)
  o = o or {}
  assert(fs.write(self.bin .. "/" .. name, STUB:format(self.dir), { mode = "0755" }))
  if o.exit then assert(fs.write(self.dir .. "/exit." .. name, tostring(o.exit))) end
  if o.stdout then assert(fs.write(self.dir .. "/stdout." .. name, o.stdout)) end
  if o.stderr then assert(fs.write(self.dir .. "/stderr." .. name, o.stderr)) end
end

-- wrap(name, real) records calls and runs the real program.
function M:wrap(name, real)
  assert(fs.write(self.bin .. "/" .. name, WRAP:format(self.dir, real), { mode = "0755" }))
end

-- calls(name) -> list of argv (without the tool name) of that tool's calls
function M:calls(name)
  local out = {}
  for line in (fs.read(self.dir .. "/calls.log") or ""):gmatch("[^\n]+") do
    local argv = json.decode(line)
    if name == nil or argv[1] == name then out[#out + 1] = { table.unpack(argv, name and 2 or 1) } end
  end
  return out
end

function M:clear_calls() fs.write(self.dir .. "/calls.log", "") end

function M:write(p, text) kit.write(self.root .. p, text) end
function M:read(p) return fs.read(self.root .. p) end

function M:target(extra)
  local spec = { type = "lxc", root = self.root, bin = self.bin }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return assert(targets.open(spec))
end

local registry
function M.registry()
  if not registry then
    registry = assert(recipes.load({ dirs = { { dir = kit.source_dir .. "/recipes", origin = "built-in" } } }))
  end
  return registry
end

-- resource(id, want, extra) -> a resource table as the loader makes
function M.resource(id, want, extra)
  local t, name = id:match("^([^:]+):(.+)$")
  local r = { id = id, type = t, name = name, want = want, deps = {}, scope = "host",
    source = { file = "phoenix_hypervisor_config.json", pointer = "/" .. t } }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

-- site(resources) -> a minimal site (resources + by_id)
function M.site(resources)
  local by_id = {}
  for _, r in ipairs(resources) do by_id[r.id] = r end
  return { resources = resources, by_id = by_id, dir = "/nonexistent" }
end

-- run(resources, {mode=, target=, site=, allow_restart=}) -> report
function M:run(resources, o)
  o = o or {}
  local site = o.site or M.site(resources)
  return assert(engine.run({ site = site, resources = resources, recipes = M.registry(),
    target = o.target or self:target(), mode = o.mode or "apply", jobs = o.jobs or 4,
    allow_restart = o.allow_restart }))
end

-- result(report, id) and a short text of its changes for assertion messages
function M.result(rep, id) return rep.results[id] end

function M.why(res)
  local parts = { tostring(res.status) }
  if res.error then parts[#parts + 1] = res.error end
  for _, c in ipairs(res.changes or {}) do parts[#parts + 1] = tostring(c.field) .. ":" .. tostring(c.action) end
  for _, c in ipairs(res.held or {}) do parts[#parts + 1] = "held " .. tostring(c.field) end
  return table.concat(parts, " | ")
end

return M
