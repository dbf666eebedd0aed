-- Memory, swap and CPU limits of a running container, set live through
-- lxc-cgroup (the config file holds them for the next start).
local tool = require "phoenix.target.lxc.tool"

local M = {}

local LIVE_KEYS = {
  [1] = { mem = "memory.limit_in_bytes", memsw = "memory.memsw.limit_in_bytes", cpus = "cpuset.cpus" },
  [2] = { mem = "memory.max", swap = "memory.swap.max", cpus = "cpuset.cpus" },
}

-- live limits through lxc-cgroup, in an order the kernel accepts (v1:
-- memory+swap never below memory)
function M.set_live(d, id, old, m)
  local k = LIVE_KEYS[d.cgroup]
  local steps = {}
  if m.memory_mb and (m.memory_mb ~= old.memory_mb or m.swap_mb ~= old.swap_mb) then
    local mem = tostring(m.memory_mb * 1024 * 1024)
    if d.cgroup == 2 then
      steps[#steps + 1] = { k.mem, mem }
      if m.swap_mb then steps[#steps + 1] = { k.swap, tostring(m.swap_mb * 1024 * 1024) } end
    elseif m.swap_mb then
      local memsw = { k.memsw, tostring((m.memory_mb + m.swap_mb) * 1024 * 1024) }
      if (old.memory_mb or math.huge) > m.memory_mb then
        steps[#steps + 1] = { k.mem, mem }; steps[#steps + 1] = memsw
      else
        steps[#steps + 1] = memsw; steps[#steps + 1] = { k.mem, mem }
      end
    else
      steps[#steps + 1] = { k.mem, mem }
    end
  end
  if m.cores and m.cores ~= old.cores then
    steps[#steps + 1] = { k.cpus, m.cores == 1 and "0" or ("0-" .. (m.cores - 1)) }
  end
  for _, s in ipairs(steps) do
    local ok, err = tool.run(d, "lxc-cgroup", id, { s[1], s[2] })
    if not ok then return nil, err end
  end
  return true
end

return M
