-- step-ca helpers: the ACME provisioner in ca.json, and certificate
-- lifetimes from `openssl x509 -noout -dates`.
local json = require "px.json"

local M = {}

-- acme(doc, name) -> the ACME provisioner called name in a decoded ca.json, or nil
function M.acme(doc, name)
  local a = type(doc) == "table" and doc.authority
  for _, p in ipairs(type(a) == "table" and type(a.provisioners) == "table" and a.provisioners or {}) do
    if type(p) == "table" and tostring(p.type):upper() == "ACME" and p.name == name then return p end
  end
end

-- add_acme(text, name) -> new ca.json text | nil, msg
-- Inserts {"type":"ACME","name":name} into authority.provisioners by
-- editing the text, so the rest of the file (key material, the difference
-- between {} and [] that a decode/encode round trip would lose, the
-- layout) stays exactly as step-ca wrote it.
function M.add_acme(text, name)
  local ok, doc = pcall(json.decode, text)
  if not ok or type(doc) ~= "table" then return nil, "ca.json is not JSON: " .. tostring(doc) end
  if type(doc.authority) ~= "table" then return nil, "ca.json has no \"authority\" object" end
  local entry = json.canonical { type = "ACME", name = name }
  local out
  local s, e = text:find('"provisioners"%s*:%s*%[')
  if s then
    local rest = text:sub(e + 1)
    local empty = rest:match("^%s*%]") ~= nil
    out = text:sub(1, e) .. entry .. (empty and "" or ",") .. rest
  else
    local _, ae = text:find('"authority"%s*:%s*{')
    if not ae then return nil, "ca.json: cannot find the authority object" end
    local rest = text:sub(ae + 1)
    local empty = rest:match("^%s*}") ~= nil
    out = text:sub(1, ae) .. '"provisioners":[' .. entry .. "]" .. (empty and "" or ",") .. rest
  end
  local ok2, check = pcall(json.decode, out)
  if not ok2 or not M.acme(check, name) then return nil, "ca.json: could not add the ACME provisioner" end
  return out
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
  Nov = 11, Dec = 12 }

-- Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
local function days(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- "Nov 24 02:05:00 2025 GMT" -> seconds since the epoch | nil
function M.parse_time(s)
  local mon, d, hh, mm, ss, y = tostring(s):match("^(%a%a%a)%s+(%d+)%s+(%d+):(%d+):(%d+)%s+(%d+)%s+GMT$")
  if not mon or not MONTHS[mon] then return nil end
  return days(tonumber(y), MONTHS[mon], tonumber(d)) * 86400 + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
end

-- dates(openssl output) -> not_before, not_after | nil, msg
function M.dates(out)
  local nb = M.parse_time(out:match("notBefore=([^\n]+)"))
  local na = M.parse_time(out:match("notAfter=([^\n]+)"))
  if not nb or not na then return nil, "cannot read the dates in: " .. out:sub(1, 200) end
  return nb, na
end

-- due(not_before, not_after, now) -> true when less than a third of the
-- lifetime is left (step's own renewal rule of thumb).
function M.due(nb, na, now)
  return now >= na - (na - nb) / 3
end

return M
