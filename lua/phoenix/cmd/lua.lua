-- phoenix lua FILE [args...]: run a Lua file in the phoenix runtime, with
-- `arg` set as the standalone `lua` interpreter does (arg[0] = FILE).
return {
  summary = "Run a Lua file with the phoenix primitives (px.*) and engine modules (phoenix.*) available.",
  usage = "FILE [args...]",
  description = table.concat({
    "As the standalone lua interpreter: arg[0] is FILE, arg[1..n] the arguments, which the",
    "chunk also gets as '...'. Everything after FILE belongs to the script.",
    "Exit code: the integer the file returns (0 if it returns anything else), 1 if it raises",
    "an error (message and traceback on stderr), 2 if FILE cannot be read or compiled.",
  }, "\n"),
  raw_args = true,
  run = function(_, args)
    local file = args[1]
    if not file then
      io.stderr:write("phoenix lua: missing FILE (see 'phoenix lua --help')\n")
      return 2
    end
    local chunk, err = loadfile(file)
    if not chunk then
      io.stderr:write("phoenix lua: ", err, "\n")
      return 2
    end
    local script_args = { [0] = file }
    for i = 2, #args do script_args[i - 1] = args[i] end
    _G.arg = script_args
    local results = table.pack(xpcall(chunk, debug.traceback, table.unpack(script_args)))
    if not results[1] then
      io.stderr:write("phoenix lua: ", tostring(results[2]), "\n")
      return 1
    end
    if math.type(results[2]) == "integer" then return results[2] end
    return 0
  end,
}
