-- Secrets: a string value written as {"secret": "env:NAME"} or
-- {"secret": "file:/path"} is replaced by the value it names, which is
-- registered with px.log.redact so it is never printed. Plain-text
-- passwords still work but are reported as warnings.
local fs = require "px.fs"
local log = require "px.log"
local sys = require "px.sys"
local util = require "phoenix.config.util"

local M = {}

local function is_ref(v)
  if type(v) ~= "table" or type(v.secret) ~= "string" then return false end
  return next(v, next(v)) == nil and next(v) == "secret"
end
M.is_ref = is_ref

local function read(ref, opts)
  local kind, what = ref:match("^(%a+):(.+)$")
  if kind == "env" then
    local v = (opts.getenv or sys.getenv)(what)
    if v == nil then return nil, "secret env:" .. what .. " is not set", "export " .. what .. " before running phoenix" end
    if v == "" then return nil, "secret env:" .. what .. " is empty" end
    return v
  elseif kind == "file" then
    local v, err = fs.read(what)
    if not v then return nil, "cannot read secret file: " .. err end
    v = v:gsub("\r?\n$", "")
    if v == "" then return nil, "secret file " .. what .. " is empty" end
    return v
  end
  return nil, "unknown secret reference \"" .. ref .. "\"", 'use {"secret": "env:NAME"} or {"secret": "file:/path"}'
end

-- resolve(doc, file, problems, opts, prefix): replaces every reference in
-- doc (in place) by its value; errors name the file and pointer (doc is at
-- pointer prefix, default the root).
function M.resolve(doc, file, problems, opts, prefix)
  local function walk(node, ptr)
    for _, k in ipairs(util.keys(node)) do
      local v = node[k]
      local key = util.is_list(node) and k - 1 or k
      local p = ptr .. "/" .. util.escape(key)
      if is_ref(v) then
        local value, err, hint = read(v.secret, opts)
        if value then
          log.redact(value)
          node[k] = value
        else
          problems:error(file, p, err, hint)
        end
      elseif type(v) == "table" then
        walk(v, p)
      end
    end
  end
  if type(doc) == "table" then walk(doc, prefix or "") end
end

-- Names whose plain string value is a secret: a word of the name (split on
-- '_', '-' and case) is pass/password/passwd/pwd/secret/token, or the name
-- has api_key / private_key; a name ending in _hash/_file/_path/_url/_id
-- names something about a secret, not the secret.
local SECRET_WORDS = { pass = true, password = true, passwd = true, pwd = true, secret = true, token = true,
  apikey = true }
local NOT_SECRET_LAST = { hash = true, file = true, path = true, url = true, id = true }

local function secret_name(name)
  local words = {}
  for w in tostring(name):gsub("(%l)(%u)", "%1_%2"):lower():gmatch("[^_%-.]+") do words[#words + 1] = w end
  if #words == 0 or NOT_SECRET_LAST[words[#words]] or (#words == 1 and words[1] == "secret") then return false end
  for i, w in ipairs(words) do
    if SECRET_WORDS[w] then return true end
    if w == "key" and (words[i - 1] == "api" or words[i - 1] == "private") then return true end
  end
  return false
end
M.secret_name = secret_name

local HINT = 'replace it with {"secret": "env:NAME"} or {"secret": "file:/path"}'

-- plain_text(doc, file, problems): warns about passwords written in clear.
function M.plain_text(doc, file, problems)
  local function walk(node, ptr)
    -- stack variables: {name = "DB_PASSWORD", value = "..."}
    if type(node.name) == "string" and type(node.value) == "string" and node.value ~= ""
      and secret_name(node.name) then
      problems:warn(file, ptr .. "/value", "plain-text secret in variable " .. node.name, HINT)
    end
    for _, k in ipairs(util.keys(node)) do
      local v = node[k]
      local key = util.is_list(node) and k - 1 or k
      local p = ptr .. "/" .. util.escape(key)
      if type(v) == "string" and v ~= "" and type(k) == "string" and secret_name(k) then
        problems:warn(file, p, "plain-text password", HINT)
      elseif type(v) == "table" and not is_ref(v) then
        walk(v, p)
      end
    end
  end
  if type(doc) == "table" then walk(doc, "") end
end

return M
