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
  return nil
end

-- read(dir, problems, opts) -> docs
-- docs[key] = { name, value, order, defaults } for each file present.
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
    local text, rerr = fs.read(path)
    if not text then
      if fs.exists(path) or f.required then
        problems:error(f.name, "", (fs.exists(path) and "cannot read the file: " or "missing: ") .. rerr,
          not fs.exists(path) and ("every site has " .. f.name) or nil)
      end
    else
      local c, serr = schema_for(sdir, f.name)
      if not c then
        problems:error(f.name, "", serr, "the phoenix installation is incomplete (schemas/)")
      else
        local r = c:validate(text, { unknown = "warning", value = true, order = true })
        for _, e in ipairs(r.errors) do
          problems:add("error", f.name, e.pointer, e.message, hint_for(e), e.line)
        end
        for _, w in ipairs(r.warnings) do
          problems:add("warning", f.name, w.pointer, w.message, hint_for(w), w.line)
        end
        if r.value ~= nil then
          docs[f.key] = { name = f.name, value = r.value, order = r.order, defaults = r.defaults, valid = r.valid }
        end
      end
    end
  end
  return docs
end

return M
