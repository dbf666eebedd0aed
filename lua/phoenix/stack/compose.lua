-- Stacks on a VM without a Portainer agent, above all the Portainer
-- server's own stack (Portainer cannot deploy itself): `docker compose`
-- inside the VM through the guest driver. Files live in
-- /opt/phoenix/stacks/<stack>/: docker-compose.yml, .env (mode 0600) and
-- phoenix-stack.json, the record of what was deployed, written last.
local guest = require "phoenix.guest"
local json = require "px.json"
local env = require "phoenix.stack.env"
local source = require "phoenix.stack.source"

local M = {}

M.ROOT = "/opt/phoenix/stacks"

local function paths(want)
  local dir = M.ROOT .. "/" .. want.stack
  return dir, dir .. "/docker-compose.yml", dir .. "/.env", dir .. "/phoenix-stack.json"
end

-- .env lines NAME='value': single quotes keep $ and " literal for compose.
function M.env_file(vars, order)
  local lines = {}
  for _, n in ipairs(order) do
    local v = vars[n]
    if v:find("[\n']") then
      return nil, "variable " .. n .. ": a value with a newline or a single quote cannot go into a compose .env file"
    end
    lines[#lines + 1] = n .. "='" .. v .. "'"
  end
  return table.concat(lines, "\n") .. (#lines > 0 and "\n" or "")
end

function M.parse_env_file(text)
  local out = {}
  for line in (text or ""):gmatch("[^\n]+") do
    local n, v = line:match("^([%w_]+)='(.*)'$")
    if n then out[n] = v end
  end
  return out
end

function M.inspect(ctx, want)
  local _, _, env_path, record = paths(want)
  local present, err = guest.exists(ctx, want.guest, record)
  if present == nil then return nil, err end
  if not present then return { exists = false } end
  local text, perr = guest.pull(ctx, want.guest, record)
  if not text then return nil, perr end
  local ok, rec = pcall(json.decode, text)
  if not ok or type(rec) ~= "table" then return nil, want.guest .. ": " .. record .. ": not phoenix's record" end
  local env_text, eerr = guest.pull(ctx, want.guest, env_path)
  if not env_text then return nil, eerr end
  return { exists = true, managed = true, kind = rec.kind, url = rec.url, ref = rec.ref, commit = rec.commit,
    compose_file = rec.compose_file, sha256 = rec.sha256, env = M.parse_env_file(env_text) }
end

function M.apply(ctx, want, have, changes)
  local src = have.src
  local dir, compose_path, env_path, record = paths(want)
  local vars, order = env.wanted(want.variables)
  local env_text, eerr = M.env_file(vars, order)
  if not env_text then return nil, eerr end
  local recreate = false
  for _, ch in ipairs(changes) do
    if ch.disruptive == "recreate" then recreate = true end
  end
  -- The compose file changes with the content or the commit; env-only
  -- changes leave it (and the git cache) alone.
  local content
  if src.kind == "compose" then
    content = src.content
  elseif not have.exists or recreate or have.commit ~= src.commit then
    local err
    content, err = source.git_file(ctx, src)
    if not content then return nil, err end
  end
  if recreate then
    local ok, err = guest.exec(ctx, want.guest, { "docker", "compose", "--project-name", want.stack, "down" })
    if not ok then return nil, err end
  end
  local steps = {
    function() return guest.exec(ctx, want.guest, { "mkdir", "-p", dir }) end,
    function() return content == nil or guest.push(ctx, want.guest, compose_path, content, { mode = 420 }) end,
    function() return guest.push(ctx, want.guest, env_path, env_text, { mode = 384 }) end,
    function()
      return guest.exec(ctx, want.guest, { "docker", "compose", "--project-name", want.stack, "--file", compose_path,
        "--env-file", env_path, "up", "--detach", "--remove-orphans" }, { timeout_ms = 600000 })
    end,
    function()
      local rec = { kind = src.kind, url = src.url, ref = src.ref, commit = src.commit,
        compose_file = src.compose_file, sha256 = src.sha256, managed_by = "phoenix" }
      return guest.push(ctx, want.guest, record, json.canonical(rec) .. "\n", { mode = 420 })
    end,
  }
  for _, step in ipairs(steps) do
    local ok, err = step()
    if not ok then return nil, err end
  end
  return true
end

return M
