-- The recipe registry: built-in recipes from <home>/recipes, then a site's
-- own directory, whose recipes add types or override built-in ones.
local fs = require "px.fs"

local M = {}

local FIELDS = {
  type = "string", inspect = "function", diff = "function", apply = "function",
  describe = "function", order = "number", destroy = "function",
}
local REQUIRED = { "type", "inspect", "diff", "apply" }

-- Loads one recipe file in an environment that refuses new globals.
local function load_recipe(file)
  local env = setmetatable({}, {
    __index = _G,
    __newindex = function(_, k)
      error(string.format("%s: assigns the global '%s' (recipes use locals and require)", file, tostring(k)), 2)
    end,
  })
  local chunk, err = loadfile(file, "t", env)
  if not chunk then return nil, err end
  local ok, recipe = pcall(chunk)
  if not ok then return nil, file .. ": " .. tostring(recipe) end
  if type(recipe) ~= "table" then return nil, file .. ": must return a table, returned " .. type(recipe) end
  for _, k in ipairs(REQUIRED) do
    if recipe[k] == nil then return nil, string.format("%s: missing field '%s'", file, k) end
  end
  for k, v in pairs(recipe) do
    local want = FIELDS[k]
    if not want then
      return nil, string.format("%s: unknown field '%s' (a recipe has type, inspect, diff, apply, describe, order, destroy)", file, tostring(k))
    end
    if type(v) ~= want then
      return nil, string.format("%s: field '%s' must be a %s, not a %s", file, k, want, type(v))
    end
  end
  local base = file:match("([^/]+)%.lua$")
  if recipe.type ~= base then
    return nil, string.format("%s: type '%s' does not match the file name (expected '%s')", file, recipe.type, base)
  end
  return recipe
end

local Registry = {}
Registry.__index = Registry

function Registry:get(type_) local e = self.types[type_] return e and e.recipe end
function Registry:file(type_) local e = self.types[type_] return e and e.file end

-- list() -> { {type=, file=, origin="built-in"|"site", overrides=file|nil}, ... } sorted by type
function Registry:list()
  local out = {}
  for t, e in pairs(self.types) do
    out[#out + 1] = { type = t, file = e.file, origin = e.origin, overrides = e.overrides }
  end
  table.sort(out, function(a, b) return a.type < b.type end)
  return out
end

-- add(recipe, file, origin): registers a recipe table directly (tests, REPL).
function Registry:add(recipe, file, origin)
  local prev = self.types[recipe.type]
  self.types[recipe.type] = { recipe = recipe, file = file or "(inline)", origin = origin or "inline",
    overrides = prev and prev.file or nil }
end

-- load{ dirs = { {dir=, origin=}, ... } } -> registry | nil, msg
-- A missing built-in directory is fine (an empty registry); a site
-- directory that is named but missing is an error.
function M.load(o)
  local reg = setmetatable({ types = {} }, Registry)
  for _, d in ipairs(o.dirs or {}) do
    local names, err = fs.list(d.dir)
    if not names then
      if d.required then return nil, "recipes directory " .. err end
    else
      for _, name in ipairs(names) do
        if name:match("^[%w_]+%.lua$") then
          local file = d.dir .. "/" .. name
          local recipe, lerr = load_recipe(file)
          if not recipe then return nil, lerr end
          reg:add(recipe, file, d.origin)
        end
      end
    end
  end
  return reg
end

M.load_file = load_recipe

return M
