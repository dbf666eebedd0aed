-- guest_ready:<id>: the first step of `phoenix sync`: the guest answers
-- commands through its driver (and, where stacks run, Docker answers).
-- Nothing to change: a guest that does not become ready within the time
-- limit fails this resource, so what depends on it is skipped, not tried.
local guest = require "phoenix.guest"
local sys = require "px.sys"

local function probe(ctx, want)
  local ok, err = guest.exec(ctx, want.guest, { "true" })
  if ok and want.docker then
    ok, err = guest.exec(ctx, want.guest, { "docker", "info", "--format", "{{.ServerVersion}}" })
  end
  return ok ~= nil, err
end

return {
  type = "guest_ready",

  describe = function(want)
    return tostring(want.guest) .. (want.docker and " and its Docker" or "") .. " answering"
  end,

  inspect = function(ctx, want)
    -- A plan looks once; a sync waits for a guest that is still booting.
    local limit = ctx.options.mode == "plan" and 0 or (want.timeout or ctx.options.ready_timeout or 120)
    local deadline = sys.monotonic() + limit
    local ok, err = probe(ctx, want)
    while not ok and sys.monotonic() < deadline do
      ctx:sleep(math.min(2, limit))
      ok, err = probe(ctx, want)
    end
    if not ok then
      return nil, string.format("not ready%s: %s", limit > 0 and string.format(" after %g s", limit) or "", err)
    end
    return { exists = true }
  end,

  diff = function() return {} end,

  apply = function() return true end,
}
