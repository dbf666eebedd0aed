-- Command-line parsing for `phoenix <verb> [options] [args]`.
--
-- A verb is a module `phoenix.cmd.<verb>` returning
--   { summary = "...", usage = "...", options = { spec... }, run = function(opts, args) -> exit code }
-- An option spec is
--   { "name", short = "j", arg = "N", type = "string"|"int"|"flag"|"list", default = ..., help = "..." }
-- Option tables may include shared groups (cli.common.engine ...) by listing their specs.

local M = {}

M.EXIT_OK, M.EXIT_FAILED, M.EXIT_USAGE, M.EXIT_CHANGES = 0, 1, 2, 3

-- Verbs in the order `phoenix --help` lists them.
M.verbs = {
  { "converge", "bring the host to the declared state" },
  { "plan", "show what converge would change, change nothing" },
  { "setup", "converge the host resources only (ZFS, storage, network ...)" },
  { "create", "converge the named guests and what they depend on" },
  { "sync", "converge stacks and edge services (all | stack NAME to VMID)" },
  { "status", "one line per resource: in sync, drift, missing, failed" },
  { "delete", "delete a guest phoenix created (with --yes)" },
  { "test", "run a guest's declared tests" },
  { "validate", "check the site files and print every problem" },
  { "repl", "interactive Lua prompt with the engine loaded" },
  { "lua", "run a Lua file in the phoenix runtime" },
}

local function usage_error(prefix, msg)
  return nil, string.format("%s: %s (see '%s --help')", prefix, msg, prefix)
end

local function find_spec(specs, name, short)
  for _, s in ipairs(specs) do
    if (name and s[1] == name) or (short and s.short == short) then return s end
  end
end

local function convert(prefix, spec, value)
  local t = spec.type or (spec.arg and "string" or "flag")
  if t == "int" then
    local n = math.tointeger(tonumber(value))
    if not n then return usage_error(prefix, string.format("--%s expects an integer, got '%s'", spec[1], value)) end
    if spec.min and n < spec.min then
      return usage_error(prefix, string.format("--%s must be at least %d", spec[1], spec.min))
    end
    return n
  end
  return value
end

-- parse(prefix, specs, argv, first) -> opts, positional | nil, message
-- `prefix` names the command in messages ("phoenix plan").
function M.parse(prefix, specs, argv, first)
  local opts, args = {}, {}
  for _, s in ipairs(specs) do
    local t = s.type or (s.arg and "string" or "flag")
    if t == "list" then opts[s[1]] = {} elseif s.default ~= nil then opts[s[1]] = s.default end
  end
  local i = first or 1
  local only_args = false
  while i <= #argv do
    local a = argv[i]
    if only_args or a == "-" or a:sub(1, 1) ~= "-" then
      args[#args + 1] = a
    elseif a == "--" then
      only_args = true
    else
      local name, value, spec
      if a:sub(1, 2) == "--" then
        name, value = a:match("^%-%-([^=]+)=(.*)$")
        name = name or a:sub(3)
        spec = find_spec(specs, name)
      else
        local short = a:sub(2, 2)
        spec = find_spec(specs, nil, short)
        if #a > 2 then value = a:sub(3) end
        name = short
      end
      if not spec then return usage_error(prefix, "unknown option " .. a) end
      local t = spec.type or (spec.arg and "string" or "flag")
      if t == "flag" then
        if value ~= nil then return usage_error(prefix, "--" .. spec[1] .. " takes no value") end
        opts[spec[1]] = true
      else
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then return usage_error(prefix, "--" .. spec[1] .. " needs a value") end
        end
        local v, err = convert(prefix, spec, value)
        if v == nil then return nil, err end
        if t == "list" then table.insert(opts[spec[1]], v) else opts[spec[1]] = v end
      end
    end
    i = i + 1
  end
  return opts, args
end

-- help(prefix, cmd) -> text for `phoenix <verb> --help`.
function M.help(prefix, cmd)
  local out = { string.format("usage: %s %s", prefix, cmd.usage or "[options]"), "" }
  if cmd.summary then out[#out + 1] = cmd.summary; out[#out + 1] = "" end
  if cmd.description then out[#out + 1] = cmd.description; out[#out + 1] = "" end
  local specs = cmd.options or {}
  if #specs > 0 then
    out[#out + 1] = "options:"
    local rows, width = {}, 0
    for _, s in ipairs(specs) do
      local left = (s.short and ("-" .. s.short .. ", ") or "    ") .. "--" .. s[1] .. (s.arg and (" " .. s.arg) or "")
      rows[#rows + 1] = { left, s.help or "" }
      if #left > width then width = #left end
    end
    for _, r in ipairs(rows) do
      out[#out + 1] = string.format("  %-" .. width .. "s  %s", r[1], r[2])
    end
  end
  return table.concat(out, "\n") .. "\n"
end

-- Options every verb accepts.
M.common = {
  { "help", short = "h", help = "show this help" },
}

-- concat(a, b, ...) -> one spec list (verbs combine shared groups this way).
function M.concat(...)
  local out = {}
  for _, list in ipairs({ ... }) do
    for _, s in ipairs(list) do out[#out + 1] = s end
  end
  return out
end

return M
