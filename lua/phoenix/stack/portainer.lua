-- Stacks deployed through Portainer on an agent environment. What was
-- deployed is read back from Portainer: GitConfig.ConfigHash (the commit
-- Portainer checked out) for git stacks, the PHOENIX_CONTENT_SHA256 marker
-- in Env for compose-content stacks; PHOENIX_MANAGED=1 marks stacks
-- phoenix created, the only ones it changes.
local portainer = require "phoenix.portainer"
local env = require "phoenix.stack.env"
local source = require "phoenix.stack.source"

local M = {}

local function client(ctx, want)
  local ep = ctx.site and ctx.site.by_id and ctx.site.by_id[want.endpoint]
  if not ep then return nil, "no resource " .. tostring(want.endpoint) .. " in the site" end
  local conn, err = portainer.conn_for(ep.want, ctx.options)
  if not conn then return nil, err end
  local c, cerr = portainer.connect(ctx.target, conn)
  if not c then return nil, cerr end
  return c, ep.want.name
end

-- inspect(ctx, want) -> have | nil, msg
function M.inspect(ctx, want)
  local c, name = client(ctx, want)
  if not c then return nil, name end
  local ep, err = c:find_endpoint(name)
  if ep == nil then return nil, err end
  local have = { exists = false, environment = name }
  if not ep then
    have.endpoint_missing = true
    return have
  end
  have.endpoint_id = ep.Id
  local st, serr = c:find_stack(want.stack, ep.Id)
  if st == nil then return nil, serr end
  if not st then return have end
  local user, marks = env.split(st.Env)
  have.exists, have.stack, have.env = true, st, user
  have.managed = marks[env.MANAGED] == "1"
  local g = st.GitConfig
  if type(g) == "table" then
    have.kind, have.url, have.ref, have.commit, have.compose_file = "git", g.URL, g.ReferenceName, g.ConfigHash,
      g.ConfigFilePath
  else
    have.kind, have.sha256 = "compose", marks[env.CONTENT]
  end
  return have
end

local function has(changes, pred)
  for _, ch in ipairs(changes) do
    if pred(ch) then return true end
  end
  return false
end

-- apply(ctx, want, have, changes) -> true | nil, msg
function M.apply(ctx, want, have, changes)
  local c, name = client(ctx, want)
  if not c then return nil, name end
  local src = have.src
  local eid = have.endpoint_id
  if not eid then
    local ep, err = c:find_endpoint(name)
    if not ep then return nil, err or ("Portainer has no environment named '" .. name .. "'") end
    eid = ep.Id
  end
  local vars, order = env.wanted(want.variables)
  local marks = { [env.MANAGED] = "1" }
  if src.kind == "compose" then marks[env.CONTENT] = src.sha256 end
  local list = env.list(vars, order, marks)
  local recreate = has(changes, function(ch) return ch.disruptive == "recreate" end)
  -- Before Portainer clones a commit phoenix has not seen, check the
  -- compose file is there: a clear error instead of a failed deploy.
  if src.kind == "git" and (not have.exists or recreate or have.commit ~= src.commit) then
    local ok, err = source.git_file(ctx, src)
    if not ok then return nil, err end
  end
  local spec = { name = want.stack, env = list }
  if src.kind == "git" then spec.git = src else spec.content = src.content end
  local ok, err
  if not have.exists then
    ok, err = c:create_stack(eid, spec)
  elseif recreate then
    ok, err = c:delete_stack(have.stack, eid)
    if ok then ok, err = c:create_stack(eid, spec) end
  elseif src.kind == "git" then
    ok, err = c:redeploy_stack(have.stack, eid, { ref = src.ref, env = list, prune = true, pull = true,
      username = src.username, password = src.password })
  else
    ok, err = c:update_stack(have.stack, eid, { content = src.content, env = list, prune = true, pull = true })
  end
  if not ok then return nil, err end
  return true
end

return M
