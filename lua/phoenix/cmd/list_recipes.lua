-- phoenix --list-recipes: which file serves each resource type.
local px = require "px"
local recipes = require "phoenix.recipes"
local run = require "phoenix.run"

return {
  summary = "Say which file serves each resource type (built-in or the site's own).",
  usage = "[--config-dir DIR] [--recipes DIR]",
  options = {
    { "config-dir", arg = "DIR", help = "site files directory (its recipes_dir is included)" },
    { "recipes", arg = "DIR", help = "a directory of site recipes" },
  },
  run = function(opts)
    local dirs = { { dir = px.home .. "/recipes", origin = "built-in" } }
    local cfgdir = opts["config-dir"]
    if cfgdir then
      local site, problems = require("phoenix.config").load(cfgdir)
      if not site then
        for _, p in ipairs(problems) do io.stderr:write((p.file or ""), ": ", (p.pointer or ""), ": ", p.message, "\n") end
        return run.EXIT_USAGE
      end
      if site.recipes_dir then dirs[#dirs + 1] = { dir = site.recipes_dir, origin = "site", required = true } end
    end
    if opts.recipes then dirs[#dirs + 1] = { dir = opts.recipes, origin = "site", required = true } end
    local reg, err = recipes.load({ dirs = dirs })
    if not reg then io.stderr:write("phoenix: ", err, "\n") return run.EXIT_USAGE end
    for _, e in ipairs(reg:list()) do
      io.stdout:write(string.format("%-20s %s (%s%s)\n", e.type, e.file, e.origin,
        e.overrides and (", overrides " .. e.overrides) or ""))
    end
    return run.EXIT_OK
  end,
}
