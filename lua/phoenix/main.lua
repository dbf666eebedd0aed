-- Entry point: src/main.c calls main(argv) and exits with what it returns.
local px = require "px"
local cli = require "phoenix.cli"

local M = {}

local function top_help()
  local out = {
    "usage: phoenix [--lua-dir DIR] <verb> [options] [args]",
    "",
    "phoenix converges a declared Proxmox VE site (four JSON files) onto a live host.",
    "",
    "verbs:",
  }
  for _, v in ipairs(cli.verbs) do
    out[#out + 1] = string.format("  %-10s %s", v[1], v[2])
  end
  out[#out + 1] = ""
  out[#out + 1] = "global options:"
  out[#out + 1] = "  --version       print the version and exit"
  out[#out + 1] = "  --list-recipes  say which file serves each resource type"
  out[#out + 1] = "  --lua-dir DIR   run the Lua engine found in DIR"
  out[#out + 1] = ""
  out[#out + 1] = "'phoenix <verb> --help' describes a verb. Exit codes: 0 ok / in sync, 1 a resource failed,"
  out[#out + 1] = "2 bad input or usage, 3 changes pending (plan --exit-code)."
  return table.concat(out, "\n") .. "\n"
end

local function known_verb(name)
  for _, v in ipairs(cli.verbs) do
    if v[1] == name then return true end
  end
  return false
end

function M.main(argv)
  local verb = argv[1]
  if verb == nil or verb == "--help" or verb == "-h" or verb == "help" then
    io.stdout:write(top_help())
    return verb == nil and cli.EXIT_USAGE or cli.EXIT_OK
  end
  if verb == "--version" or verb == "version" then
    io.stdout:write("phoenix ", px.version, "\n")
    return cli.EXIT_OK
  end
  if verb == "--list-recipes" then verb = "list-recipes" end
  if not known_verb(verb) and verb ~= "list-recipes" then
    io.stderr:write(string.format("phoenix: unknown verb '%s' (see 'phoenix --help')\n", verb))
    return cli.EXIT_USAGE
  end
  local modname = "phoenix.cmd." .. verb:gsub("-", "_")
  local ok, cmd = pcall(require, modname)
  if not ok then
    if tostring(cmd):find("module '" .. modname .. "' not found", 1, true) then
      io.stderr:write(string.format("phoenix: '%s' is not available yet in this version\n", verb))
      return cli.EXIT_USAGE
    end
    error(cmd, 0)
  end
  local prefix = "phoenix " .. verb
  local specs = cli.concat(cli.common, cmd.options or {})
  local opts, args
  if cmd.raw_args then
    -- `phoenix lua FILE args...`: everything after FILE belongs to the script.
    if argv[2] == "--help" or argv[2] == "-h" then
      opts, args = { help = true }, {}
    else
      opts, args = {}, { table.unpack(argv, 2) }
    end
  else
    opts, args = cli.parse(prefix, specs, argv, 2)
  end
  if not opts then
    io.stderr:write(args, "\n")
    return cli.EXIT_USAGE
  end
  if opts.help then
    io.stdout:write(cli.help(prefix, { usage = cmd.usage, summary = cmd.summary, description = cmd.description, options = specs }))
    return cli.EXIT_OK
  end
  local code = cmd.run(opts, args, prefix)
  return math.tointeger(code) or cli.EXIT_OK
end

return M
