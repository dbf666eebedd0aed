local run = require "phoenix.run"

return {
  summary = "One line per resource: in sync, drift, missing, failed. Changes nothing.",
  usage = "[options] [ID...]",
  options = run.options,
  run = function(opts, args)
    local env, code = run.prepare(opts)
    if not env then return code end
    local resources, err = env.site.resources, nil
    if #args > 0 then resources, err = run.select(env.site, "guest", args) end
    if not resources then io.stderr:write("phoenix status: ", err, "\n") return run.EXIT_USAGE end
    return run.execute("status", opts, env, resources, "plan")
  end,
}
