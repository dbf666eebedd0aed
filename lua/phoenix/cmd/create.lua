local cli = require "phoenix.cli"
local run = require "phoenix.run"

return {
  summary = "Converge the named guests and everything they depend on, in order.",
  usage = "[options] ID...",
  description = "An ID is a CTID or VMID (101) or a resource id (lxc:101, vm:9000).",
  options = cli.concat(run.options, run.apply_options, { { "plan", help = "show the plan instead" } }),
  run = function(opts, args)
    if #args == 0 then
      io.stderr:write("phoenix create: name at least one guest ID (see 'phoenix create --help')\n")
      return run.EXIT_USAGE
    end
    local env, code = run.prepare(opts)
    if not env then return code end
    local resources, err = run.select(env.site, "guest", args)
    if not resources then io.stderr:write("phoenix create: ", err, "\n") return run.EXIT_USAGE end
    return run.execute("create", opts, env, resources, opts.plan and "plan" or "apply")
  end,
}
