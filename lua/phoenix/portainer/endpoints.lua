-- Portainer environments (endpoints): list once per run, find by name,
-- create an Agent environment. Methods of the client (phoenix.portainer).
local M = {}

-- Portainer's environment types (portainer.EndpointType).
M.TYPE_AGENT = 2

-- endpoints() -> list | nil, msg (GET /api/endpoints, once per run)
function M:endpoints()
  if self.fresh then return {} end
  return self:memo("endpoints", function()
    local list, err = self:call { path = "/api/endpoints", query = { excludeSnapshots = "true" } }
    if not list then return nil, err end
    if type(list) ~= "table" then return nil, "GET /api/endpoints: expected a list" end
    return list
  end)
end

-- find_endpoint(name) -> environment | false | nil, msg
function M:find_endpoint(name)
  local list, err = self:endpoints()
  if not list then return nil, err end
  for _, e in ipairs(list) do
    if e.Name == name then return e end
  end
  return false
end

-- create_agent_endpoint(name, url) -> environment | nil, msg
-- POST /api/endpoints takes multipart/form-data in every version (2.18 to
-- 2.23). An agent speaks TLS with its own certificate, so Portainer wants
-- TLS with verification off in both directions.
function M:create_agent_endpoint(name, url)
  local ok, werr = self:writable()
  if not ok then return nil, werr end
  local e, err = self:call { method = "POST", path = "/api/endpoints", form = {
    { "Name", name }, { "EndpointCreationType", M.TYPE_AGENT }, { "URL", url }, { "GroupID", 1 },
    { "TLS", "true" }, { "TLSSkipVerify", "true" }, { "TLSSkipClientVerify", "true" },
  } }
  self:forget("endpoints")
  if not e then return nil, err end
  return e
end

-- update_endpoint_url(e, url) -> environment | nil, msg (PUT /api/endpoints/{id}, JSON)
function M:update_endpoint_url(e, url)
  local ok, werr = self:writable()
  if not ok then return nil, werr end
  local r, err = self:call { method = "PUT", path = "/api/endpoints/" .. string.format("%d", e.Id), json = { URL = url } }
  self:forget("endpoints")
  return r, err
end

return M
