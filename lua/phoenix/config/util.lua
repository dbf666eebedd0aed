-- Small helpers shared by the config loader: problems, JSON pointers,
-- deep copies and list construction.
local json = require "px.json"

local M = {}

-- A list that px.json.canonical writes as [] even when empty.
function M.list(t)
  return setmetatable(t or {}, json.array_mt)
end

function M.is_list(t)
  return type(t) == "table" and getmetatable(t) == json.array_mt
end

-- Deep copy that keeps list marks.
function M.copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = M.copy(x) end
  return setmetatable(out, getmetatable(v))
end

-- RFC 6901 escaping of one reference token.
function M.escape(token)
  if type(token) ~= "string" then return tostring(token) end
  if not token:find("[~/]") then return token end
  return (token:gsub("~", "~0"):gsub("/", "~1"))
end

-- pointer("/lxc_configs", "101", "features", 2) -> "/lxc_configs/101/features/2"
function M.pointer(...)
  local out = {}
  for i = 1, select("#", ...) do
    local t = select(i, ...)
    if i == 1 then out[1] = t else out[#out + 1] = "/" .. M.escape(t) end
  end
  return table.concat(out)
end

-- Sets doc[ptr] = value unless something is there already (list indices
-- are 0-based in pointers, 1-based in Lua). Walks the pointer without
-- building a token list: the loader calls this for every schema default.
function M.set_default(doc, ptr, value)
  local node, key = nil, nil
  for tok in ptr:gmatch("/([^/]*)") do
    if node == nil then
      node = doc
    else
      node = node[key]
    end
    if type(node) ~= "table" then return end
    if tok:find("~", 1, true) then tok = tok:gsub("~1", "/"):gsub("~0", "~") end
    key = getmetatable(node) == json.array_mt and (tonumber(tok) or -1) + 1 or tok
  end
  if node ~= nil and node[key] == nil then node[key] = M.copy(value) end
end

-- Problems: { severity, file, pointer, message, hint, line }.
local Problems = {}
Problems.__index = Problems

function M.problems()
  return setmetatable({ list = {} }, Problems)
end

function Problems:add(severity, file, pointer, message, hint, line)
  self.list[#self.list + 1] = {
    severity = severity, file = file, pointer = pointer or "", message = message, hint = hint, line = line,
  }
end

function Problems:error(file, pointer, message, hint) self:add("error", file, pointer, message, hint) end
function Problems:warn(file, pointer, message, hint) self:add("warning", file, pointer, message, hint) end

function Problems:count(severity)
  local n = 0
  for _, p in ipairs(self.list) do
    if p.severity == severity then n = n + 1 end
  end
  return n
end

function Problems:has_errors() return self:count("error") > 0 end

function Problems:warnings()
  local out = M.list()
  for _, p in ipairs(self.list) do
    if p.severity == "warning" then out[#out + 1] = p end
  end
  return out
end

-- Strips the prefix length: "10.0.0.5/24" -> "10.0.0.5"; "dhcp" -> nil.
function M.address(ip)
  if type(ip) ~= "string" or ip == "dhcp" then return nil end
  return (ip:match("^([^/]+)"))
end

-- Splits "a, b c" on commas and spaces.
function M.split_list(s)
  local out = M.list()
  if type(s) == "table" then
    for _, x in ipairs(s) do out[#out + 1] = x end
    return out
  end
  if type(s) ~= "string" then return out end
  for part in s:gmatch("[^,%s]+") do out[#out + 1] = part end
  return out
end

-- Keys of an object in file order when known (order from px.schema), else sorted.
function M.keys(obj, order)
  local keys = order and order[obj]
  if keys then return keys end
  keys = {}
  for k in pairs(obj or {}) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local na, nb = tonumber(a), tonumber(b)
    if na and nb then return na < nb end
    return tostring(a) < tostring(b)
  end)
  return keys
end

return M
