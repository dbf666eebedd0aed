-- stack:<stack>@<vmid>: a Docker stack from phoenix_stacks_config.json on
-- a VM. On a VM with a Portainer agent it is a Portainer stack (from git,
-- or from the compose file's content); elsewhere (the Portainer server's
-- own VM) it runs with docker compose inside the VM. Created when
-- missing; redeployed when the commit, the compose content or the
-- environment differs. Stacks phoenix did not create are left alone.
local env = require "phoenix.stack.env"
local source = require "phoenix.stack.source"
local via_portainer = require "phoenix.stack.portainer"
local via_compose = require "phoenix.stack.compose"

local function backend(want)
  return want.endpoint and via_portainer or via_compose
end

local function short(s) return s and tostring(s):sub(1, 12) or nil end

return {
  type = "stack",

  describe = function(want)
    return string.format("stack %s on VM %s (%s)", want.stack, tostring(want.vmid), want.environment or "production")
  end,

  inspect = function(ctx, want)
    local src, err = source.wanted(ctx, want)
    if not src then return nil, err end
    local have, herr = backend(want).inspect(ctx, want)
    if not have then return nil, herr end
    have.src = src
    return have
  end,

  diff = function(_, want, have)
    local src = have.src
    if not have.exists then
      local where = want.endpoint and ("on Portainer environment '" .. tostring(have.environment) .. "'")
        or "with docker compose in the VM"
      return { { action = "create", field = "stack", to = src.label, note = where
        .. (have.endpoint_missing and ", created first" or "") } }
    end
    if not have.managed then
      return { { action = "update", field = "stack", from = "(not phoenix's)", to = src.label,
        unsupported = string.format("Portainer stack '%s' on '%s' was not created by phoenix (its Env has no %s=1): "
          .. "phoenix leaves it alone; delete it, or add that variable to hand it over", want.stack,
          tostring(have.environment), env.MANAGED) } }
    end
    local changes = {}
    local function add(c) changes[#changes + 1] = c end
    if have.kind ~= src.kind then
      -- Nothing else can be applied to a stack of the other kind.
      return { { action = "update", field = "source", from = have.kind, to = src.kind, disruptive = "recreate",
        note = "a stack cannot switch between git and compose content in place" } }
    end
    if src.kind == "git" then
      if have.url ~= src.url then
        add { action = "update", field = "git.url", from = source.shown_url(have.url), to = source.shown_url(src.url),
          disruptive = "recreate" }
      end
      if have.compose_file ~= src.compose_file then
        add { action = "update", field = "git.compose_file", from = have.compose_file, to = src.compose_file,
          disruptive = "recreate" }
      end
      if have.ref ~= src.ref then add { action = "update", field = "git.ref", from = have.ref, to = src.ref } end
      if have.commit ~= src.commit then
        add { action = "update", field = "commit", from = short(have.commit), to = short(src.commit),
          note = "redeploy" }
      end
    elseif have.sha256 ~= src.sha256 then
      add { action = "update", field = "compose", from = short(have.sha256), to = short(src.sha256),
        note = "sha256 of " .. tostring(src.path) }
    end
    local vars, order = env.wanted(want.variables)
    for _, c in ipairs(env.changes(vars, order, have.env or {})) do add(c) end
    return changes
  end,

  apply = function(ctx, want, have, changes)
    return backend(want).apply(ctx, want, have, changes)
  end,
}
