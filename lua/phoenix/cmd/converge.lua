local cli = require "phoenix.cli"
local run = require "phoenix.run"

return {
  summary = "Bring the host to the state the site files declare: host setup, guests, stacks.",
  usage = "[options]",
  description = "Exit codes: 0 converged, 1 a resource failed or was skipped, 2 bad input, 130 interrupted.",
  options = cli.concat(run.options, run.apply_options, {
    { "prune", help = "also delete guests phoenix created that the site no longer declares (needs --yes)" },
    { "yes", help = "confirm deletions asked for by --prune" },
  }),
  run = function(opts)
    local env, code = run.prepare(opts)
    if not env then return code end
    code = run.execute("converge", opts, env, env.site.resources, "apply")
    if opts.prune and code == run.EXIT_OK then code = run.prune(env, opts) end
    return code
  end,
}
