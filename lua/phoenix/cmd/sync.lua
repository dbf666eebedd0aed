local cli = require "phoenix.cli"
local run = require "phoenix.run"

return {
  summary = "Converge Docker stacks and edge services: DNS, firewall, Traefik, Portainer, gateway, Step-CA.",
  usage = "[options] [all | stack NAME to VMID]",
  options = cli.concat(run.options, run.apply_options, { { "plan", help = "show the plan instead" } }),
  run = function(opts, args)
    local scope, ids = "sync", nil
    if #args == 0 or (#args == 1 and args[1] == "all") then
      scope = "sync"
    elseif #args == 4 and args[1] == "stack" and args[3] == "to" then
      scope, ids = "ids", { "stack:" .. args[2] .. "@" .. args[4] }
    else
      io.stderr:write("phoenix sync: expected 'all' or 'stack NAME to VMID' (see 'phoenix sync --help')\n")
      return run.EXIT_USAGE
    end
    local env, code = run.prepare(opts)
    if not env then return code end
    local resources, err = run.select(env.site, scope, ids)
    if not resources then io.stderr:write("phoenix sync: ", err, "\n") return run.EXIT_USAGE end
    return run.execute("sync", opts, env, resources, opts.plan and "plan" or "apply")
  end,
}
