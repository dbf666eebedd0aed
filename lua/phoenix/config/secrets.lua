-- Secrets: a string value written as {"secret": "env:NAME"} or
-- {"secret": "file:/path"} is replaced by the value it names, which is
-- registered with px.log.redact so it is never printed.
--
-- The schemas mark where a secret may stand ("x-collect": "secret"), so
-- px.schema hands over the pointers of the references it accepted: no walk
-- over the documents. Plain-text passwords are warnings from the schemas
-- ("x-warning" on the plain-string form).
local fs = require "px.fs"
local log = require "px.log"
local sys = require "px.sys"
local util = require "phoenix.config.util"

local M = {}

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

-- The table holding ptr's last token in doc, and that key (lists: Lua index).
local function locate(doc, ptr)
  local node, key = nil, nil
  for tok in ptr:gmatch("/([^/]*)") do
    node = node == nil and doc or node[key]
    if type(node) ~= "table" then return nil end
    tok = tok:gsub("~1", "/"):gsub("~0", "~")
    key = util.is_list(node) and (tonumber(tok) or -1) + 1 or tok
  end
  return node, key
end

-- resolve(doc, pointers, file, problems, opts [, keep]): replaces the
-- references at pointers (px.schema's `collected` entries named "secret")
-- by their values. keep(pointer) may skip some (stack environments no VM
-- deploys). Errors name the file and pointer.
M.MIN_LENGTH = 6

function M.resolve(doc, collected, file, problems, opts, keep)
  for _, c in ipairs(collected or {}) do
    if c.name == "secret" and (not keep or keep(c.pointer)) then
      local node, key = locate(doc, c.pointer)
      local ref = node and node[key]
      if type(ref) == "table" and type(ref.secret) == "string" then
        local value, err, hint = read(ref.secret, opts)
        if value then
          log.redact(value)
          node[key] = value
          if #value < M.MIN_LENGTH then
            -- masking a short secret garbles output: "x" would hide every x
            problems:warn(file, c.pointer, string.format("this secret is %d character%s long: phoenix masks every "
              .. "occurrence of it in its output, which makes that output hard to read", #value, #value == 1 and "" or "s"),
              "use a longer secret")
          end
        else
          problems:error(file, c.pointer, err, hint)
        end
      end
    end
  end
end

return M
