-- Runs tasks as coroutines, up to `jobs` at once. A task that waits on a
-- process or HTTP request yields (see phoenix.async); the scheduler polls
-- every pending wait in one px.exec.wait_any and resumes whoever finished.
local async = require "phoenix.async"
local exec = require "px.exec"
local sys = require "px.sys"

local M = {}

-- run{ jobs=, timeout=, next=fn() -> task|nil, done=fn(task, ok, value), on_interrupt=fn() }
-- task = { id = ..., fn = function() ... end } (fields added: started, duration)
-- done(task, true, results...) on return; done(task, false, message, traceback) on
-- error or timeout. Returns true when it ran to the end, false if interrupted.
function M.run(o)
  local jobs = o.jobs or 4
  local timeout = o.timeout
  local running = {}
  local interrupted = false

  local function finish(t, ok, a, b)
    for i, r in ipairs(running) do
      if r == t then table.remove(running, i) break end
    end
    t.duration = sys.monotonic() - t.started
    o.done(t, ok, a, b)
  end

  local function resume(t)
    t.wait, t.wake_at = nil, nil
    local ok, req = coroutine.resume(t.co)
    if not ok then
      finish(t, false, req, debug.traceback(t.co, tostring(req)))
    elseif coroutine.status(t.co) == "dead" then
      finish(t, true, req)
    elseif type(req) == "table" and req.wait then
      t.wait = req.wait
    elseif type(req) == "table" and req.sleep then
      t.wake_at = sys.monotonic() + req.sleep
    else
      coroutine.close(t.co)
      finish(t, false, "yielded to the scheduler without a wait (a coroutine.yield in a recipe?)")
    end
  end

  local function start(t)
    t.co = coroutine.create(t.fn)
    async.mark_task(t.co)
    t.started = sys.monotonic()
    t.deadline = timeout and (t.started + timeout) or nil
    running[#running + 1] = t
    resume(t)
  end

  local function expire(t)
    if t.wait then
      if t.wait.kill then t.wait:kill("KILL") elseif t.wait.cancel then t.wait:cancel() end
    end
    coroutine.close(t.co)
    finish(t, false, string.format("timed out after %d s", math.floor(timeout + 0.5)))
  end

  while true do
    if not interrupted then
      while #running < jobs do
        local t = o.next()
        if not t then break end
        start(t)
      end
    end
    if #running == 0 then break end

    local handles, owners, nearest = {}, {}, nil
    for _, t in ipairs(running) do
      if t.wait then
        handles[#handles + 1] = t.wait
        owners[#handles] = t
      end
      local at = t.wake_at
      if t.deadline and (not at or t.deadline < at) then at = t.deadline end
      if at and (not nearest or at < nearest) then nearest = at end
    end
    local ms = nearest and math.max(0, math.ceil((nearest - sys.monotonic()) * 1000)) or -1
    local finished, intr = exec.wait_any(handles, ms)
    if intr and not interrupted then
      interrupted = true
      if o.on_interrupt then o.on_interrupt() end
    end
    for _, i in ipairs(finished) do resume(owners[i]) end
    local now = sys.monotonic()
    for _, t in ipairs({ table.unpack(running) }) do
      if t.wake_at and t.wake_at <= now then resume(t) end
    end
    for _, t in ipairs({ table.unpack(running) }) do
      if t.deadline and t.deadline <= now then expire(t) end
    end
  end
  return not interrupted
end

return M
