-- Test helper: builds site directories from the fixtures in
-- tests/fixtures/site/, optionally patched (JSON pointer set/remove).
local fs = require "px.fs"
local json = require "px.json"
local schema = require "px.schema"
local sys = require "px.sys"

local M = {}

M.SRC = os.getenv("PHOENIX_SOURCE_DIR") or require("px").home
M.FIXTURES = M.SRC .. "/tests/fixtures/site"
M.FILES = {
  hypervisor = "phoenix_hypervisor_config.json",
  lxc = "phoenix_lxc_configs.json",
  vm = "phoenix_vm_configs.json",
  stacks = "phoenix_stacks_config.json",
}

-- The secrets the good site and etc/ reference.
M.ENV = {
  PHOENIX_ADMIN_PASSWORD_HASH = "$6$rounds=5000$examplesalt$hash",
  PORTAINER_ADMIN_PASSWORD = "portainer-admin-secret",
  POSTGRES_PASSWORD = "postgres-production-secret",
  POSTGRES_TEST_PASSWORD = "postgres-testing-secret",
}

function M.getenv(unset)
  local skip = {}
  for _, k in ipairs(unset or {}) do skip[k] = true end
  return function(name)
    if skip[name] then return nil end
    return M.ENV[name]
  end
end

local counter = 0
function M.tmpdir()
  counter = counter + 1
  local dir = string.format("/tmp/phoenix-test-%d-%d", sys.pid(), counter)
  assert(fs.mkdir(dir, { parents = true }))
  return dir
end

function M.rmdir(dir)
  for _, f in ipairs(fs.list(dir) or {}) do
    local p = dir .. "/" .. f
    local st = fs.stat(p, { follow = false })
    if st and st.type == "dir" then M.rmdir(p) else fs.remove(p) end
  end
  fs.remove(dir)
end

local function tokens(ptr)
  local out = {}
  for t in ptr:gmatch("/([^/]*)") do out[#out + 1] = t:gsub("~1", "/"):gsub("~0", "~") end
  return out
end

-- Sets (value ~= nil) or removes the value at ptr in doc.
local function patch(doc, ptr, value, remove)
  local toks = tokens(ptr)
  local node = doc
  for i = 1, #toks - 1 do
    local t = toks[i]
    local key = json.is_array(node) and tonumber(t) + 1 or t
    if node[key] == nil then node[key] = {} end
    node = node[key]
  end
  local last = toks[#toks]
  if json.is_array(node) then
    local idx = last == "-" and #node + 1 or tonumber(last) + 1
    if remove then table.remove(node, idx) else node[idx] = value end
  else
    if remove then node[last] = nil else node[last] = value end
  end
end

-- Converts decoded JSON from a variant file so arrays stay arrays.
local function jsonify(v)
  if v == nil then return nil end
  return schema.decode(json.canonical(v))
end

-- site(base, patches) -> dir: a copy of fixtures/site/<base> with patches applied.
function M.site(base, patches)
  local dir = M.tmpdir()
  local texts = {}
  for key, name in pairs(M.FILES) do texts[key] = fs.read(M.FIXTURES .. "/" .. base .. "/" .. name) end
  for _, p in ipairs(patches or {}) do
    if p.op == "text" then
      texts[p.file] = p.text
    elseif p.op == "delete" then
      texts[p.file] = nil
    else
      local doc = assert(schema.decode(texts[p.file]))
      patch(doc, p.pointer, jsonify(p.value), p.op == "remove")
      texts[p.file] = json.canonical(doc, { pretty = true })
    end
  end
  for key, text in pairs(texts) do assert(fs.write(dir .. "/" .. M.FILES[key], text)) end
  return dir
end

-- Reads a variant description (tests/fixtures/site/bad/<name>.json).
function M.variant(path)
  return assert(schema.decode(assert(fs.read(path))))
end

return M
