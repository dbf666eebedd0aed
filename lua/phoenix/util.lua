-- Small helpers shared by the engine, targets and recipes.
local log = require "px.log"
local json = require "px.json"

local M = {}

-- A command line for messages: words with spaces or quotes are quoted.
function M.argv_string(argv)
  local out = {}
  for i, a in ipairs(argv) do
    a = tostring(a)
    if a == "" or a:find("[%s'\"\\$`]") then a = "'" .. a:gsub("'", "'\\''") .. "'" end
    out[i] = a
  end
  return log.scrub(table.concat(out, " "))
end

-- A word POSIX-single-quoted for a shell (it's -> 'it'\''s'): the
-- shell reads it back byte for byte, whatever it contains (ssh sends its
-- remote command to a shell as one string). Raises on a non-string or NUL.
function M.sh_quote(word)
  if type(word) == "number" then word = tostring(word) end
  if type(word) ~= "string" then error("sh_quote: a string expected, got " .. type(word), 2) end
  if word:find("\0", 1, true) then error("sh_quote: a word cannot contain a NUL byte", 2) end
  return "'" .. word:gsub("'", "'\\''") .. "'"
end

-- The last n non-empty lines of text, for error messages.
function M.tail(text, n)
  n = n or 5
  local lines = {}
  for line in (text or ""):gmatch("[^\n]+") do
    if line:find("%S") then lines[#lines + 1] = line end
  end
  local first = math.max(1, #lines - n + 1)
  return table.concat(lines, "\n", first)
end

-- "`pct set 101 --memory 2048` exited 2: <stderr tail>"
function M.command_error(argv, res, err)
  local cmd = "`" .. M.argv_string(argv) .. "`"
  if not res then return log.scrub(cmd .. ": " .. tostring(err)) end
  local what
  if res.timed_out then
    what = string.format("timed out after %.0f ms", res.duration_ms or 0)
  elseif res.signal then
    what = "was killed by " .. res.signal
  else
    what = "exited " .. tostring(res.code)
  end
  local tail = M.tail(res.stderr ~= "" and res.stderr or res.stdout)
  return log.scrub(cmd .. " " .. what .. (tail ~= "" and (": " .. tail) or ""))
end

-- A value as plans show it: strings bare, tables as compact canonical JSON.
function M.show(v)
  if v == nil or v == json.null then return "(none)" end
  if type(v) == "table" then return json.canonical(v) end
  return tostring(v)
end

-- Deep equality of plain values (tables compared by content).
function M.equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do
    if not M.equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

function M.copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = M.copy(x) end
  return setmetatable(t, getmetatable(v))
end

function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

return M
