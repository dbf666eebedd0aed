-- One converge per host at a time: an exclusive flock on a lock file that
-- also records who holds it, so a second run can say whom it waited for.
local fs = require "px.fs"
local sys = require "px.sys"

local M = {}

M.default_path = "/run/lock/phoenix.lock"

-- acquire(path, timeout_seconds, what) -> lock | nil, msg
function M.acquire(path, timeout, what)
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" and not fs.exists(dir) then fs.mkdir(dir) end
  local lock, err, why = fs.flock(path, { mode = "exclusive", timeout_ms = math.floor((timeout or 0) * 1000) })
  if not lock then
    if why == "busy" then
      local info = fs.read(path) or ""
      local pid = info:match("pid=(%d+)")
      local started = info:match("started=(%S+)")
      local cmd = info:match("command=([^\n]*)")
      return nil, string.format("another phoenix run holds %s (pid %s, started %s%s); waited %g s (--lock-timeout)",
        path, pid or "?", started or "?", cmd and (", " .. cmd) or "", timeout or 0)
    end
    return nil, "cannot take the run lock: " .. tostring(err)
  end
  lock:write(string.format("pid=%d\nstarted=%s\nhost=%s\ncommand=%s\n", sys.pid(),
    os.date("!%Y-%m-%dT%H:%M:%SZ"), sys.hostname() or "?", what or "phoenix"))
  return lock
end

return M
