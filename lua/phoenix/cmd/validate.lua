-- phoenix validate [--config-dir D] [--json] [--no-secrets]: check the
-- site files and print every problem (docs/validate.md).
local json = require "px.json"
local log = require "px.log"
local config = require "phoenix.config"

local M = {
  summary = "Check the four site files (schemas and cross-checks) and print every problem.",
  usage = "[--config-dir DIR] [--json] [--no-secrets]",
  description = "Exit status: 0 when the site is valid (warnings allowed), 2 when it is not.",
  options = {
    { "config-dir", short = "c", arg = "DIR", default = config.DEFAULT_DIR, help = "the site directory (default " .. config.DEFAULT_DIR .. ")" },
    { "json", help = "print the result as JSON (see docs/validate.md)" },
    { "no-secrets", help = "check secret references but do not read them" },
  },
}

local function plural(n, word)
  return string.format("%d %s%s", n, word, n == 1 and "" or "s")
end

local function text_report(dir, site, problems)
  local errors, warnings = {}, {}
  for _, p in ipairs(problems) do
    if p.severity == "error" then errors[#errors + 1] = p else warnings[#warnings + 1] = p end
  end
  local out = {}
  local function section(title, list)
    if #list == 0 then return end
    out[#out + 1] = string.format("%s (%d):", title, #list)
    for _, p in ipairs(list) do
      out[#out + 1] = string.format("%s: %s: %s", p.file, p.pointer ~= "" and p.pointer or "/", p.message)
      if p.hint then out[#out + 1] = "  hint: " .. p.hint end
    end
  end
  section("errors", errors)
  section("warnings", warnings)
  if site then
    local n = { lxc = 0, vm = 0 }
    for _, r in ipairs(site.resources) do n[r.type] = (n[r.type] or 0) + 1 end
    out[#out + 1] = string.format("%s: valid: %s, %s, %s, %s", dir, plural(n.lxc, "container"), plural(n.vm, "VM"),
      plural(#site.resources, "resource"), plural(#warnings, "warning"))
  else
    out[#out + 1] = string.format("%s: not valid: %s, %s", dir, plural(#errors, "error"), plural(#warnings, "warning"))
  end
  return table.concat(out, "\n") .. "\n"
end

local function json_report(dir, site, problems)
  local errors, warnings = json.array({}), json.array({})
  for _, p in ipairs(problems) do
    local item = { file = p.file, pointer = p.pointer, message = p.message, hint = p.hint, line = p.line }
    if p.severity == "error" then errors[#errors + 1] = item else warnings[#warnings + 1] = item end
  end
  local doc = { config_dir = dir, valid = site ~= nil, errors = errors, warnings = warnings }
  if site then
    local counts = {}
    for _, r in ipairs(site.resources) do counts[r.type] = (counts[r.type] or 0) + 1 end
    doc.resources = #site.resources
    doc.counts = counts
  end
  return json.canonical(doc, { pretty = true }) .. "\n"
end

function M.run(opts)
  local dir = opts["config-dir"]
  local site, problems = config.load(dir, { resolve_secrets = not opts["no-secrets"] })
  local text = opts.json and json_report(dir, site, problems) or text_report(dir, site, problems)
  io.stdout:write(log.scrub(text))
  return site and 0 or 2
end

return M
