-- Portainer stacks: list once per run, create (from git or from compose
-- content), update, redeploy, delete. Methods of the client; the route
-- depends on the version found at connect time.
local portainer_version = require "phoenix.portainer.version"

local M = {}

-- Identifiers decode as floats (3.0); paths need "3".
local function id(v) return string.format("%d", v) end

local COMPOSE = 2 -- portainer.StackType: 1 swarm, 2 compose, 3 kubernetes
-- Deploys pull images: allow them minutes, not the default 30 s.
local DEPLOY_MS = 600000

-- stacks() -> list | nil, msg (GET /api/stacks, once per run)
function M:stacks()
  if self.fresh then return {} end
  return self:memo("stacks", function()
    local list, err = self:call { path = "/api/stacks" }
    if not list then return nil, err end
    if type(list) ~= "table" then return nil, "GET /api/stacks: expected a list" end
    return list
  end)
end

-- find_stack(name, endpoint_id) -> stack | false | nil, msg
-- Compose stack names are unique per environment, not across them.
function M:find_stack(name, endpoint_id)
  local list, err = self:stacks()
  if not list then return nil, err end
  for _, s in ipairs(list) do
    if s.Name == name and s.EndpointId == endpoint_id then return s end
  end
  return false
end

-- A route that does not exist answers Go's plain "404 page not found";
-- a missing object answers 404 with Portainer's JSON error.
local function route_missing(res)
  return res and res.status == 404 and not (res.body or ""):find("^%s*{")
end

-- create_stack(endpoint_id, spec) -> stack | nil, msg
-- spec = { name, env = {{name, value}...}, content = "compose text" }
--      | { name, env, git = { url, ref, compose_file, username, password, tls_skip_verify } }
-- 2.19 and later: POST /api/stacks/create/standalone/{repository|string};
-- 2.18 and earlier: POST /api/stacks?type=2&method=...  (2.19.0 removed that
-- route; 2.19.1 restored it as a deprecated alias). An unknown version
-- tries the new route and falls back when it does not exist.
function M:create_stack(endpoint_id, spec)
  local ok0, werr = self:writable()
  if not ok0 then return nil, werr end
  local method, body = "string", { Name = spec.name, Env = spec.env }
  if spec.git then
    local g = spec.git
    method = "repository"
    body.RepositoryURL, body.RepositoryReferenceName = g.url, g.ref
    body.ComposeFile = g.compose_file -- "ComposeFilePathInRepository" before 2.9.0
    body.TLSSkipVerify = g.tls_skip_verify == true
    if g.username or g.password then
      body.RepositoryAuthentication = true
      body.RepositoryUsername, body.RepositoryPassword = g.username, g.password
    end
  else
    body.StackFileContent = spec.content
  end
  local new = portainer_version.new_stack_routes(self.version)
  local s, err, res
  if new ~= false then
    s, err, res = self:call { method = "POST", path = "/api/stacks/create/standalone/" .. method,
      query = { endpointId = endpoint_id }, json = body, timeout_ms = DEPLOY_MS }
  end
  if new == false or (new == nil and route_missing(res)) then
    s, err = self:call { method = "POST", path = "/api/stacks",
      query = { type = COMPOSE, method = method, endpointId = endpoint_id }, json = body, timeout_ms = DEPLOY_MS }
  end
  self:forget("stacks")
  return s, err
end

-- update_stack(stack, endpoint_id, { content, env, prune, pull }) -> stack | nil, msg
function M:update_stack(stack, endpoint_id, o)
  local ok0, werr = self:writable()
  if not ok0 then return nil, werr end
  local s, err = self:call { method = "PUT", path = "/api/stacks/" .. id(stack.Id), query = { endpointId = endpoint_id },
    json = { StackFileContent = o.content, Env = o.env, Prune = o.prune == true, PullImage = o.pull == true }, timeout_ms = DEPLOY_MS }
  self:forget("stacks")
  return s, err
end

-- redeploy_stack(stack, endpoint_id, { ref, env, prune, pull, username, password }) -> stack | nil, msg
-- Portainer pulls the ref again and redeploys with the given Env.
function M:redeploy_stack(stack, endpoint_id, o)
  local ok0, werr = self:writable()
  if not ok0 then return nil, werr end
  local body = { RepositoryReferenceName = o.ref, Env = o.env, Prune = o.prune == true, PullImage = o.pull == true }
  if o.username or o.password then
    body.RepositoryAuthentication = true
    body.RepositoryUsername, body.RepositoryPassword = o.username, o.password
  end
  local s, err = self:call { method = "PUT", path = "/api/stacks/" .. id(stack.Id) .. "/git/redeploy",
    query = { endpointId = endpoint_id }, json = body, timeout_ms = DEPLOY_MS }
  self:forget("stacks")
  return s, err
end

-- delete_stack(stack, endpoint_id) -> true | nil, msg
function M:delete_stack(stack, endpoint_id)
  local ok0, werr = self:writable()
  if not ok0 then return nil, werr end
  local ok, err = self:call { method = "DELETE", path = "/api/stacks/" .. id(stack.Id),
    query = { endpointId = endpoint_id }, expect = { 200, 204 } }
  self:forget("stacks")
  if ok == nil then return nil, err end
  return true
end

return M
