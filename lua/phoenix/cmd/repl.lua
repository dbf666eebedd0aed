-- phoenix repl: an interactive Lua prompt inside the phoenix runtime.
local cli = require "phoenix.cli"
local repl = require "phoenix.repl"
local repl_engine = require "phoenix.repl_engine"
local run = require "phoenix.run"

local ENGINE_OPTS = { ["config-dir"] = true, target = true, ["target-opt"] = true, recipes = true, jobs = true, debug = true }
local engine_options = {}
for _, o in ipairs(run.options) do
  if ENGINE_OPTS[o[1]] then engine_options[#engine_options + 1] = o end
end

return {
  summary = "Interactive Lua prompt with the phoenix primitives (px.*) and engine modules (phoenix.*) loaded.",
  usage = "[options]",
  description = table.concat({
    "Type an expression to see its value (tables are pretty-printed) or a statement to run it;",
    "an unfinished chunk continues on the next line. Errors are printed and the prompt goes on.",
    "On a terminal: line editing, Tab completion of names, history in $HOME/.phoenix_history;",
    "Ctrl-D quits. With stdin not a terminal, lines are read from it without prompts and the",
    "exit code is 1 if any line failed.",
    "",
    "The engine is at hand: site() loads the site files (--config-dir), inspect(id) and diff(id)",
    "show one resource, plan([id]) prints a plan, converge([id]) converges id and what it depends",
    "on (or everything), reload() reads the files again. IDs as in plans: lxc:101, vm:9000, 101.",
  }, "\n"),
  options = cli.concat({
    { "no-history", help = "neither read nor write the history file" },
  }, engine_options, run.apply_options),
  run = function(opts)
    return repl.start{ history = not opts["no-history"], env = repl_engine.env(opts) }
  end,
}
