-- The one place that knows about the scheduler. Inside a scheduler task a
-- wait yields to the scheduler, which resumes the task when px.exec.wait_any
-- reports the handle finished; outside a task the same calls block. So
-- recipes and targets are straight-line code either way.
local exec = require "px.exec"
local sys = require "px.sys"

local M = {}

-- Coroutines that are scheduler tasks (weak: a dead task is collected).
local tasks = setmetatable({}, { __mode = "k" })

function M.mark_task(co) tasks[co] = true end

function M.in_task()
  local co, is_main = coroutine.running()
  return not is_main and tasks[co] == true
end

-- wait(handle) -> handle:result() once the waitable has finished.
function M.wait(handle)
  if M.in_task() then
    coroutine.yield({ wait = handle })
  else
    handle:wait()
  end
  return handle:result()
end

-- run(opts) -> result | nil, msg   (px.exec options)
function M.run(opts)
  local h, err = exec.spawn(opts)
  if not h then return nil, err end
  return M.wait(h)
end

function M.sleep(seconds)
  if M.in_task() then
    coroutine.yield({ sleep = seconds })
  else
    sys.sleep(seconds)
  end
end

return M
