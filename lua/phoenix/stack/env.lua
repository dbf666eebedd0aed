-- A stack's environment: the site's variables plus phoenix's own markers,
-- compared by name. Markers (PHOENIX_*) say a stack is phoenix's and what
-- it deployed; they are not the user's variables.
local json = require "px.json"
local log = require "px.log"

local M = {}

M.MANAGED = "PHOENIX_MANAGED"           -- "1": phoenix created this stack
M.CONTENT = "PHOENIX_CONTENT_SHA256"    -- compose stacks: sha256 of the deployed file

-- A word of the name says it holds a secret (the site loader's rule).
local SECRET_WORDS = { pass = true, password = true, passwd = true, pwd = true, secret = true, token = true,
  apikey = true, key = true, credentials = true }

-- A value is secret when it came from a {"secret": ...} reference (the
-- loader registered it with px.log.redact, so scrub changes it) or when
-- the variable's name says so.
function M.is_secret(name, value)
  if type(value) == "string" and value ~= "" and log.scrub(value) ~= value then return true end
  for w in tostring(name):gsub("(%l)(%u)", "%1_%2"):lower():gmatch("[^_%-.]+") do
    if SECRET_WORDS[w] then return true end
  end
  return false
end

-- wanted(variables) -> { name = value }, { name, ... } (site order)
function M.wanted(vars)
  local map, order = {}, {}
  for _, v in ipairs(vars or {}) do
    if map[v.name] == nil then order[#order + 1] = v.name end
    map[v.name] = tostring(v.value)
  end
  return map, order
end

-- split(list) -> user variables { name = value }, markers { name = value }
function M.split(list)
  local user, marks = {}, {}
  for _, v in ipairs(list or {}) do
    if type(v) == "table" and type(v.name) == "string" then
      if v.name:find("^PHOENIX_") then marks[v.name] = v.value else user[v.name] = v.value end
    end
  end
  return user, marks
end

-- list(map, order, markers) -> json array of {name, value}: the site's
-- order, then the markers sorted.
function M.list(map, order, markers)
  local out = json.array {}
  for _, n in ipairs(order) do out[#out + 1] = { name = n, value = map[n] } end
  local names = {}
  for n in pairs(markers or {}) do names[#names + 1] = n end
  table.sort(names)
  for _, n in ipairs(names) do out[#out + 1] = { name = n, value = markers[n] } end
  return out
end

-- changes(want_map, order, have_map) -> changes on fields "env.NAME"
function M.changes(want, order, have)
  local out = {}
  for _, n in ipairs(order) do
    local secret = M.is_secret(n, want[n]) or M.is_secret(n, have[n])
    if have[n] == nil then
      out[#out + 1] = { action = "create", field = "env." .. n, to = want[n], secret = secret or nil }
    elseif have[n] ~= want[n] then
      out[#out + 1] = { action = "update", field = "env." .. n, from = have[n], to = want[n], secret = secret or nil }
    end
  end
  local gone = {}
  for n in pairs(have) do
    if want[n] == nil then gone[#gone + 1] = n end
  end
  table.sort(gone)
  for _, n in ipairs(gone) do
    out[#out + 1] = { action = "delete", field = "env." .. n, from = have[n], secret = M.is_secret(n, have[n]) or nil }
  end
  return out
end

return M
