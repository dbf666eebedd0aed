local cli = require "phoenix.cli"
local run = require "phoenix.run"

return {
  summary = "Converge the host only: ZFS, storage, network, users, NFS, Samba, firewall, DNS, drivers.",
  usage = "[options]",
  options = cli.concat(run.options, run.apply_options, { { "plan", help = "show the plan instead" } }),
  run = function(opts)
    local env, code = run.prepare(opts)
    if not env then return code end
    local resources = run.select(env.site, "host")
    return run.execute("setup", opts, env, resources, opts.plan and "plan" or "apply")
  end,
}
