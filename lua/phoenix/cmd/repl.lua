-- phoenix repl: an interactive Lua prompt inside the phoenix runtime.
local repl = require "phoenix.repl"

return {
  summary = "Interactive Lua prompt with the phoenix primitives (px.*) and engine modules (phoenix.*) loaded.",
  usage = "[options]",
  description = table.concat({
    "Type an expression to see its value (tables are pretty-printed) or a statement to run it;",
    "an unfinished chunk continues on the next line. Errors are printed and the prompt goes on.",
    "On a terminal: line editing, Tab completion of names, history in $HOME/.phoenix_history;",
    "Ctrl-D quits. With stdin not a terminal, lines are read from it without prompts and the",
    "exit code is 1 if any line failed.",
  }, "\n"),
  options = {
    { "no-history", help = "neither read nor write the history file" },
  },
  run = function(opts)
    return repl.start{ history = not opts["no-history"] }
  end,
}
