-- A YAML writer for generated configuration (Traefik's file provider):
-- block style, map keys sorted, every string double-quoted with JSON
-- escapes (valid YAML), so a value can never turn into YAML syntax.
local json = require "px.json"

local M = {}

local function is_list(t)
  if json.is_array(t) then return true end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n > 0 and n == #t
end

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r" }

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return ESC[c] or string.format("\\x%02X", c:byte()) end) .. '"'
end

local function scalar(v)
  local t = type(v)
  if t == "string" then return quote(v) end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if math.type(v) == "float" and math.tointeger(v) then return tostring(math.tointeger(v)) end
    return tostring(v)
  end
  error("yaml: cannot write a " .. t, 3)
end

local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out, function(a, b) return tostring(a) < tostring(b) end)
  return out
end

local function key(k)
  k = tostring(k)
  if k:match("^[%a_][%w_%-]*$") then return k end
  return quote(k)
end

local function emit(out, v, indent)
  local pad = string.rep("  ", indent)
  if is_list(v) then
    for _, x in ipairs(v) do
      if type(x) == "table" and next(x) ~= nil then
        local sub = {}
        emit(sub, x, indent + 1)
        -- the first line of the item goes after "- "
        sub[1] = pad .. "- " .. sub[1]:sub(#pad + 3)
        for _, l in ipairs(sub) do out[#out + 1] = l end
      else
        out[#out + 1] = pad .. "- " .. (type(x) == "table" and (json.is_array(x) and "[]" or "{}") or scalar(x))
      end
    end
    return
  end
  for _, k in ipairs(keys(v)) do
    local x = v[k]
    if type(x) == "table" then
      if next(x) == nil then
        out[#out + 1] = pad .. key(k) .. ": " .. (json.is_array(x) and "[]" or "{}")
      else
        out[#out + 1] = pad .. key(k) .. ":"
        emit(out, x, indent + 1)
      end
    else
      out[#out + 1] = pad .. key(k) .. ": " .. scalar(x)
    end
  end
end

-- encode(table) -> YAML text (a mapping at the top)
function M.encode(v)
  local out = {}
  emit(out, v, 0)
  return table.concat(out, "\n") .. "\n"
end

return M
