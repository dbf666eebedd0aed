-- The interactive Lua prompt of `phoenix repl`.
--
--   repl.start{ env = { name = value, ... }, banner = "...", history = path | false,
--               prompt = "phoenix> " } -> exit code
--   repl.new{ env =, write = function(text, is_error) } -> session
--   session:feed(line) -> "more" while a chunk is incomplete, else "done"
--
-- Each line is compiled as `return <line>` first (so expressions print) and
-- as a statement when that fails, as lua.c does; an incomplete chunk asks for
-- more lines. Results print through phoenix.pretty and px.log.scrub (a
-- registered secret never shows). Globals a line sets live in the session's
-- environment, whose misses fall back to _G. On a terminal, px.readline gives
-- line editing, Tab completion of names and history; otherwise plain lines
-- are read from stdin, so the REPL can be driven by a pipe.
local px = require "px"
local log = require "px.log"
local sys = require "px.sys"
local readline = require "px.readline"
local pretty = require "phoenix.pretty"

local M = {}

local Session = {}
Session.__index = Session

-- A table that loads px.<name> on first use: px.exec.run{...} just works.
local function px_namespace()
  local ns = {}
  for k, v in pairs(px) do ns[k] = v end
  return setmetatable(ns, {
    __index = function(t, k)
      local ok, mod = pcall(require, "px." .. tostring(k))
      if not ok then return nil end
      rawset(t, k, mod)
      return mod
    end,
  })
end

local function base_env(extra)
  local env = setmetatable({}, { __index = _G })
  env.px = px_namespace()
  env.pretty = function(v, opts) return pretty.pretty(v, opts) end
  for k, v in pairs(extra or {}) do env[k] = v end
  return env
end

function M.new(opts)
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "env" and k ~= "write" then error("repl.new: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local s = setmetatable({}, Session)
  s.env = base_env(opts.env)
  s.write = opts.write or function(text, is_error)
    local f = is_error and io.stderr or io.stdout
    f:write(text)
    f:flush()
  end
  s.pending = nil -- the lines of an incomplete chunk
  s.errors = 0
  return s
end

local function is_incomplete(err)
  return err:sub(-5) == "<eof>"
end

-- compile(source) -> fn | nil, err, incomplete
function Session:compile(source)
  local fn, ret_err = load("return " .. source, "=stdin", "t", self.env)
  if fn then return fn end
  local err
  fn, err = load(source, "=stdin", "t", self.env)
  if fn then return fn end
  -- "{" is an unfinished expression, "for" an unfinished statement.
  return nil, err, is_incomplete(err) or is_incomplete(ret_err)
end

local function handler(e)
  if type(e) ~= "string" then
    local mt = getmetatable(e)
    e = (mt and mt.__tostring) and tostring(e) or ("(error object is a " .. type(e) .. " value: " .. pretty.pretty(e) .. ")")
  end
  return e
end

function Session:show(text, is_error)
  self.write(log.scrub(text) .. "\n", is_error)
end

function Session:run(fn)
  local r = table.pack(xpcall(fn, handler))
  if not r[1] then
    self.errors = self.errors + 1
    self:show("error: " .. r[2], true)
    return
  end
  if r.n <= 1 then return end
  local out = {}
  for i = 2, r.n do out[#out + 1] = pretty.pretty(r[i]) end
  rawset(self.env, "_", r[2]) -- the last value, as in many REPLs
  self:show(table.concat(out, "\t"), false)
end

function Session:feed(line)
  local source = self.pending and (self.pending .. "\n" .. line) or line
  if not self.pending and source:match("^%s*$") then return "done" end
  local fn, err, incomplete = self:compile(source)
  if fn then
    self.pending = nil
    self:run(fn)
    return "done"
  end
  if incomplete then
    self.pending = source
    return "more"
  end
  self.pending = nil
  self.errors = self.errors + 1
  self:show("syntax error: " .. err, true)
  return "done"
end

-- Called at end of input: an unfinished chunk is an error, not silence.
function Session:finish()
  if self.pending then
    local _, err = self:compile(self.pending)
    self.pending = nil
    self.errors = self.errors + 1
    self:show("syntax error: " .. (err or "incomplete input"), true)
  end
end

-- Tab completion: "str" -> names in the environment; "string.fo",
-- "px.exec.r", "h:wa" -> fields of the value the dotted path names.
local lua_keywords = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto",
  "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

local function field_names(v, seen)
  local names = {}
  seen = seen or {}
  if seen[v] then return names end
  seen[v] = true
  if type(v) == "table" then
    for k in pairs(v) do
      if type(k) == "string" then names[k] = true end
    end
  end
  local mt = getmetatable(v)
  local idx = type(mt) == "table" and rawget(mt, "__index")
  if type(idx) == "table" then
    for k in pairs(field_names(idx, seen)) do names[k] = true end
  end
  return names
end

function Session:complete(word)
  local path, sep, partial = word:match("^(.-)([.:])([%w_]*)$")
  local out = {}
  if not path or path == "" then
    partial = word
    local names = field_names(self.env)
    for k in pairs(field_names(_G)) do names[k] = true end
    for _, k in ipairs(lua_keywords) do names[k] = true end
    for k in pairs(names) do
      if k:sub(1, #partial) == partial and k:match("^[%a_][%w_]*$") then out[#out + 1] = k end
    end
  else
    local v = self.env
    for name in path:gmatch("[^.]+") do
      local ok, next_v = pcall(function() return v[name] end)
      if not ok or next_v == nil then return {} end
      v = next_v
    end
    for k in pairs(field_names(v)) do
      if k:sub(1, #partial) == partial and k:match("^[%a_][%w_]*$") then
        local ok, fv = pcall(function() return v[k] end)
        if sep == "." or (ok and type(fv) == "function") then out[#out + 1] = path .. sep .. k end
      end
    end
  end
  table.sort(out)
  return out
end

-- history: a path, false (none) or nil/true ($HOME/.phoenix_history).
local function history_path(opt)
  if opt == false then return nil end
  if type(opt) == "string" then return opt end
  local home = sys.getenv("HOME")
  return home and home ~= "" and (home .. "/.phoenix_history") or nil
end

function M.start(opts)
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "env" and k ~= "banner" and k ~= "history" and k ~= "prompt" then
      error("repl.start: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  local session = M.new{ env = opts.env }
  local interactive = sys.isatty("stdin")
  local prompt, more_prompt = opts.prompt or "phoenix> ", ">> "
  local read
  if interactive then
    local hist = history_path(opts.history)
    if hist then readline.load_history(hist) end -- a first run has none yet
    readline.set_completer(function(word) return session:complete(word) end)
    read = function(more)
      local line = readline.readline(more and more_prompt or prompt)
      if line and hist then
        readline.add_history(line)
        readline.save_history(hist)
      end
      return line
    end
    io.stdout:write(opts.banner or string.format(
      "phoenix %s (%s): px.* and phoenix.* are loaded; Ctrl-D quits.\n", px.version, _VERSION))
  else
    read = function() return io.stdin:read("l") end
  end
  local more = false
  while true do
    local line = read(more)
    if line == nil then break end
    more = session:feed(line) == "more"
  end
  session:finish()
  if interactive then
    readline.set_completer(nil)
    io.stdout:write("\n")
    return 0
  end
  return session.errors > 0 and 1 or 0
end

return M
