-- phoenix test ID: run a guest's declared `tests` (named lists of scripts),
-- each inside the guest (default) or on the host (`run_on: host`), print a
-- line per test and a summary; exit 1 when any failed.
local async = require "phoenix.async"
local cli = require "phoenix.cli"
local run = require "phoenix.run"
local util = require "phoenix.util"
local fs = require "px.fs"
local sys = require "px.sys"

local DIR = "/var/lib/phoenix/tests"

-- Where a test's path is looked up: the site's tests/ directory, the
-- original layout's bin/tests beside etc/, then the site directory.
local function locate(site, rel)
  local tried = {}
  for _, base in ipairs({ site.dir .. "/tests", site.dir .. "/../bin/tests", site.dir }) do
    local p = base .. "/" .. rel
    if fs.exists(p) then return p end
    tried[#tried + 1] = p
  end
  return nil, "not found (looked for " .. table.concat(tried, ", ") .. ")"
end

local function interpreter(path)
  if path:match("%.py$") then return { "python3", path } end
  if path:match("%.sh$") then return { "sh", path } end
  return { path }
end

local function guest_env(r)
  local w = r.want
  local ip = w.network_config and w.network_config.ip
  return {
    PHOENIX_GUEST_ID = tostring(w.ctid or w.vmid), PHOENIX_HOSTNAME = tostring(w.name),
    PHOENIX_GUEST_IP = ip and ip ~= "dhcp" and ip:match("^[^/]+") or nil,
  }
end

-- state(d, id) -> "running" | "stopped" | "absent" | nil, msg: through
-- the container driver's inspect, or a VM driver's inventory entry
local function state(d, id)
  if d.inspect then
    local have, err = d:inspect(id)
    if not have then return nil, err end
    return have.exists and have.status or "absent"
  end
  local g, err = d:guest(id)
  if g == nil and err then return nil, err end
  return g and g.status or "absent"
end

-- one(d, r, t, file, timeout) -> result | nil, msg
local function one(d, r, t, file, timeout_ms)
  local env = guest_env(r)
  env.PHOENIX_TEST = t.name
  if t.run_on == "host" then
    return async.run({ argv = interpreter(file), env = env, inherit_env = true, timeout_ms = timeout_ms })
  end
  local id = r.want.ctid or r.want.vmid
  local text, err = fs.read(file)
  if not text then return nil, err end
  local dest = DIR .. "/" .. t.path:gsub("[^%w._-]", "_")
  local ok, perr = d:push(id, dest, text, { mode = "0700" })
  if not ok then return nil, perr end
  return d:exec(id, interpreter(dest), { env = env, timeout_ms = timeout_ms })
end

return {
  summary = "Run a guest's declared tests: scripts inside the guest or on the host.",
  usage = "[options] ID",
  description = "The guest's `tests` (named lists of {name, type: script, path, run_on?}) run in name order.\n"
    .. "A path is looked up in <config-dir>/tests, <config-dir>/../bin/tests, then <config-dir>.\n"
    .. "Exit codes: 0 all passed (or none declared), 1 a test failed, 2 bad input.",
  options = cli.concat(run.options, {
    { "suite", arg = "NAME", help = "run only this list of tests" },
    { "test-timeout", arg = "SECONDS", type = "int", min = 1, default = 600, help = "time limit of one test (default 600)" },
  }),
  run = function(opts, args)
    if #args ~= 1 then
      io.stderr:write("phoenix test: name exactly one guest ID (see 'phoenix test --help')\n")
      return run.EXIT_USAGE
    end
    local env, code = run.prepare(opts)
    if not env then return code end
    local r, err = run.find_guest(env.site, args[1])
    if not r then io.stderr:write("phoenix test: ", err, "\n") return run.EXIT_USAGE end
    local suites = util.sorted_keys(r.want.tests or {})
    if opts.suite then
      if not (r.want.tests or {})[opts.suite] then
        io.stderr:write("phoenix test: ", r.id, " has no test list '", opts.suite, "' (it has: ",
          #suites > 0 and table.concat(suites, ", ") or "none", ")\n")
        return run.EXIT_USAGE
      end
      suites = { opts.suite }
    end
    if #suites == 0 then
      io.stdout:write(r.id, " declares no tests\n")
      return run.EXIT_OK
    end
    local d, derr = env.target:driver(r.type == "lxc" and "ct" or "vm")
    if not d then io.stderr:write("phoenix test: ", derr, "\n") return run.EXIT_USAGE end
    local id = r.want.ctid or r.want.vmid
    local status, serr = state(d, id)
    if not status then io.stderr:write("phoenix test: ", r.id, ": ", tostring(serr), "\n") return run.EXIT_FAILED end
    if status ~= "running" then
      io.stderr:write("phoenix test: ", r.id, " is ", status == "absent" and "not created" or status,
        ": converge it first\n")
      return run.EXIT_FAILED
    end
    local passed, failed = 0, 0
    for _, suite in ipairs(suites) do
      for _, t in ipairs(r.want.tests[suite]) do
        local t0 = sys.monotonic()
        local file, ferr = locate(env.site, t.path)
        local res, xerr
        if file then res, xerr = one(d, r, t, file, opts["test-timeout"] * 1000) else xerr = ferr end
        local secs = sys.monotonic() - t0
        local label = string.format("%s / %s (%s, %s)", suite, t.name, t.path, t.run_on == "host" and "host" or "guest")
        if res and res.code == 0 then
          passed = passed + 1
          io.stdout:write(string.format("PASS  %s  %.2f s\n", label, secs))
        else
          failed = failed + 1
          local why = res and (res.timed_out and "timed out" or ("exit " .. tostring(res.code))) or tostring(xerr)
          local tail = res and util.tail((res.stdout or "") .. "\n" .. (res.stderr or ""), 5) or ""
          io.stdout:write(string.format("FAIL  %s  %.2f s: %s\n", label, secs, why))
          for line in tail:gmatch("[^\n]+") do io.stdout:write("      | ", line, "\n") end
        end
      end
    end
    io.stdout:write(string.format("%s: %d passed, %d failed\n", r.id, passed, failed))
    return failed > 0 and run.EXIT_FAILED or run.EXIT_OK
  end,
}
