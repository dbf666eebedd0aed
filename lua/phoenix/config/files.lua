-- Reads the four site files and validates each against its schema.
--
-- The JSON text is validated by px.schema (which also decodes it, telling
-- [] from {} and keeping key order); unknown fields are warnings.
local px = require "px"
local fs = require "px.fs"
local schema = require "px.schema"

local M = {}

M.FILES = {
  { key = "hypervisor", name = "phoenix_hypervisor_config.json", required = true },
  { key = "lxc", name = "phoenix_lxc_configs.json" },
  { key = "vm", name = "phoenix_vm_configs.json" },
  { key = "stacks", name = "phoenix_stacks_config.json" },
}

local compiled = {} -- schema path -> compiled schema (compiled once per process)

function M.schemas_dir()
  return px.home .. "/schemas"
end

local function schema_for(dir, name)
  local path = dir .. "/" .. name:gsub("%.json$", ".schema.json")
  if compiled[path] then return compiled[path] end
  local text, err = fs.read(path)
  if not text then return nil, "cannot read the schema: " .. err end
  local c, cerr = schema.compile(text, { name = path })
  if not c then return nil, cerr end
  compiled[path] = c
  return c
end

local function hint_for(issue)
  if issue.keyword == "json" then return "fix the JSON syntax (a missing comma, quote or bracket?)" end
  if issue.keyword == "additionalProperties" then return "check the spelling; phoenix ignores this field" end
  if issue.keyword == "required" then return "add the field" end
  if issue.keyword == "x-warning" and issue.message:find("^plain%-text") then
    return 'replace it with {"secret": "env:NAME"} or {"secret": "file:/path"}'
  end
  return nil
end

-- read(dir, problems, opts) -> docs
-- docs[key] = { name, text, value, order, defaults, collected } for each file present.
function M.read(dir, problems, opts)
  local docs = {}
  local sdir = opts.schemas_dir or M.schemas_dir()
  local st = fs.stat(dir)
  if not st or st.type ~= "dir" then
    problems:error(dir, "", "the config directory does not exist", "give the site directory with --config-dir DIR")
    return docs
  end
  for _, f in ipairs(M.FILES) do
    local path = dir .. "/" .. f.name
    if not fs.exists(path) then
      if f.required then problems:error(f.name, "", "missing: " .. path, "every site has " .. f.name) end
    else
      local c, serr = schema_for(sdir, f.name)
      if not c then
        problems:error(f.name, "", serr, "the phoenix installation is incomplete (schemas/)")
      else
        -- validate_file maps the file: no copy of a large file into a Lua string
        local r, rerr = c:validate_file(path, { unknown = "warning", value = true, order = 1, text = true })
        if not r then
          problems:error(f.name, "", "cannot read the file: " .. rerr)
        else
          for _, e in ipairs(r.errors) do
            problems:add("error", f.name, e.pointer, e.message, hint_for(e), e.line)
          end
          for _, w in ipairs(r.warnings) do
            problems:add("warning", f.name, w.pointer, w.message, hint_for(w), w.line)
          end
          if r.value ~= nil then
            docs[f.key] = { name = f.name, text = r.text, value = r.value, order = r.order, defaults = r.defaults,
              collected = r.collected, valid = r.valid }
          end
        end
      end
    end
  end
  return docs
end

-- as_written(docs) -> the files' decoded values, decoded again (from the
-- text that was validated) on first access: the loader normalises the
-- values px.schema returned in place, so pristine copies are made only
-- when someone looks at them.
function M.as_written(docs)
  local texts = {}
  for key, d in pairs(docs) do texts[key] = d.text end
  local files = {}
  local function get(t, key)
    local text = texts[key]
    if text == nil then return nil end
    local v = assert(schema.decode(text))
    rawset(t, key, v)
    return v
  end
  return setmetatable(files, {
    __index = get,
    __pairs = function(t)
      for key in pairs(texts) do
        if rawget(t, key) == nil then get(t, key) end
      end
      return next, t, nil
    end,
  })
end

return M
