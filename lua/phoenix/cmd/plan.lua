local cli = require "phoenix.cli"
local run = require "phoenix.run"

return {
  summary = "Show what converge would change, and change nothing.",
  usage = "[options] [ID...]",
  description = "With IDs, plan those guests and what they depend on.\n"
    .. "Exit codes: 0 done (with --exit-code: in sync), 1 a resource could not be inspected, 2 bad input, "
    .. "3 changes pending (with --exit-code).",
  options = cli.concat(run.options, {
    { "exit-code", help = "exit 3 when changes are pending" },
    { "allow-restart", help = "plan as if converge had --allow-restart" },
    { "allow-recreate", help = "plan as if converge had --allow-recreate" },
  }),
  run = function(opts, args)
    local env, code = run.prepare(opts)
    if not env then return code end
    local resources, err = env.site.resources, nil
    if #args > 0 then resources, err = run.select(env.site, "guest", args) end
    if not resources then io.stderr:write("phoenix plan: ", err, "\n") return run.EXIT_USAGE end
    return run.execute("plan", opts, env, resources, "plan")
  end,
}
