-- portainer_endpoint:<vmid>: the Portainer Agent environment of a VM with
-- portainer_role "agent", found by name (portainer_environment_name)
-- before anything is created; its URL is tcp://<agent host>:<agent port>.
local portainer = require "phoenix.portainer"

local function client(ctx, want)
  local conn, err = portainer.conn_for(want, ctx.options)
  if not conn then return nil, err end
  return portainer.connect(ctx.target, conn)
end

return {
  type = "portainer_endpoint",

  describe = function(want)
    return string.format("Portainer environment '%s' (%s)", tostring(want.name), tostring(want.url))
  end,

  inspect = function(ctx, want)
    if not want.url then return nil, "no agent address: the VM has no IP and no portainer_agent_hostname" end
    local c, err = client(ctx, want)
    if not c then return nil, err end
    local e, ferr = c:find_endpoint(want.name)
    if e == nil then return nil, ferr end
    if not e then return { exists = false } end
    return { exists = true, id = e.Id, url = e.URL, type = e.Type }
  end,

  diff = function(_, want, have)
    if not have.exists then
      return { { action = "create", field = "environment", to = want.name .. " " .. want.url } }
    end
    if have.type ~= 2 then
      return { { action = "update", field = "type", from = have.type, to = 2,
        unsupported = "an environment named '" .. want.name .. "' exists and is not an Agent environment: "
          .. "phoenix leaves it alone (rename one of them)" } }
    end
    if have.url ~= want.url then
      return { { action = "update", field = "url", from = have.url, to = want.url } }
    end
    return {}
  end,

  apply = function(ctx, want, have)
    local c, err = client(ctx, want)
    if not c then return nil, err end
    local ok
    if have.exists then
      ok, err = c:update_endpoint_url({ Id = have.id }, want.url)
    else
      ok, err = c:create_agent_endpoint(want.name, want.url)
    end
    if not ok then return nil, err end
    return true
  end,
}
