-- Proxmox firewall files (cluster.fw, host.fw, <vmid>.fw): a parser that
-- keeps every line as written, and edits that touch only what phoenix
-- manages — option lines and the rules of [RULES]. Comments, blank lines,
-- [ALIASES], [IPSET], [group] sections and unknown options stay as they are.
-- Rule syntax as pve-firewall reads and writes it:
--   [|]TYPE ACTION|Macro(ACTION) [-i IF] [-source S] [-dest D] [-p PROTO]
--   [-icmp-type T] [-dport P] [-sport P] [-log LEVEL] [# comment]
local M = {}

local OPTS = { i = "iface", source = "source", dest = "dest", p = "proto", ["icmp-type"] = "icmp_type",
  dport = "dport", sport = "sport", log = "log" }
local ORDER = { { "i", "iface" }, { "source", "source" }, { "dest", "dest" }, { "p", "proto" },
  { "icmp-type", "icmp_type" }, { "dport", "dport" }, { "sport", "sport" }, { "log", "log" } }
local ACTIONS = { ACCEPT = true, DROP = true, REJECT = true }

-- parse(text) -> doc: { sections = { {kind = nil|"options"|"rules"|..., name, lines = {...}} } }
-- The first section (kind nil) holds what comes before any header.
function M.parse(text)
  local doc = { sections = { { lines = {} } } }
  local cur = doc.sections[1]
  text = text or ""
  if text ~= "" and text:sub(-1) ~= "\n" then text = text .. "\n" end
  for line in text:gmatch("([^\n]*)\n") do
    local inner = line:match("^%s*%[([^%]]+)%]")
    if inner then
      local kind, name = inner:match("^%s*(%S+)%s*(.-)%s*$")
      cur = { kind = kind:lower(), name = name ~= "" and name or nil, header = line, lines = {} }
      doc.sections[#doc.sections + 1] = cur
    else
      cur.lines[#cur.lines + 1] = line
    end
  end
  return doc
end

function M.format(doc)
  local out = {}
  for _, s in ipairs(doc.sections) do
    if s.header then out[#out + 1] = s.header end
    for _, l in ipairs(s.lines) do out[#out + 1] = l end
  end
  if #out == 0 then return "" end
  return table.concat(out, "\n") .. "\n"
end

local function section(doc, kind)
  for _, s in ipairs(doc.sections) do
    if s.kind == kind then return s end
  end
end

-- Options ------------------------------------------------------------------

local function option_of(line)
  if line:match("^%s*#") then return nil end
  local k, v = line:match("^%s*([%w_]+)%s*:%s*(.-)%s*$")
  return k and k:lower(), v
end

-- options(doc) -> { key = value } of [OPTIONS]
function M.options(doc)
  local out = {}
  local s = section(doc, "options")
  for _, l in ipairs(s and s.lines or {}) do
    local k, v = option_of(l)
    if k then out[k] = v end
  end
  return out
end

-- set_option(doc, key, value): the option's line is replaced where it is,
-- else added after the last option (an absent [OPTIONS] section is made
-- first in the file).
function M.set_option(doc, key, value)
  local s = section(doc, "options")
  if not s then
    s = { kind = "options", header = "[OPTIONS]", lines = { "" } }
    local at = 2
    local pre = doc.sections[1].lines
    if #pre > 0 and pre[#pre] ~= "" then pre[#pre + 1] = "" end
    table.insert(doc.sections, at, s)
    -- keep a blank line between this section and the next
    if doc.sections[at + 1] then s.lines[#s.lines + 1] = "" end
  end
  local last
  for i, l in ipairs(s.lines) do
    local k = option_of(l)
    if k == key then
      s.lines[i] = key .. ": " .. value
      return
    end
    if k then last = i end
  end
  local at = last and last + 1 or (s.lines[1] == "" and 2 or 1)
  table.insert(s.lines, at, key .. ": " .. value)
end

-- Rules --------------------------------------------------------------------

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- parse_rule(line) -> rule | nil, msg. A rule: { enabled, type = "in"|
-- "out"|"group", action, macro?, iface?, source?, ... comment? }
function M.parse_rule(line)
  local body, comment = line, nil
  local hash = line:find("#", 1, true)
  if hash then
    body, comment = line:sub(1, hash - 1), trim(line:sub(hash + 1))
    if comment == "" then comment = nil end
  end
  body = trim(body)
  local r = { enabled = true, comment = comment }
  if body:sub(1, 1) == "|" then
    r.enabled = false
    body = trim(body:sub(2))
  end
  local ty, act, rest = body:match("^(%S+)%s+(%S+)%s*(.*)$")
  if not ty then return nil, "not a rule: " .. line end
  r.type = ty:lower()
  if r.type ~= "in" and r.type ~= "out" and r.type ~= "group" then return nil, "unknown rule type " .. ty end
  if r.type == "group" then
    r.action = act
  else
    local macro, inner = act:match("^([%w_]+)%((%w+)%)$")
    if macro then r.macro, r.action = macro, inner:upper() else r.action = act:upper() end
  end
  local words = {}
  for w in rest:gmatch("%S+") do words[#words + 1] = w end
  local i = 1
  while i <= #words do
    local opt = words[i]:match("^%-(.+)$")
    local field = opt and OPTS[opt]
    if not field or not words[i + 1] then return nil, "unknown rule option " .. words[i] .. ": " .. line end
    r[field] = words[i + 1]
    i = i + 2
  end
  return r
end

-- format_rule(rule) -> the line as pve-firewall writes it
function M.format_rule(r)
  local out = { (r.enabled == false and "|" or "") .. r.type:upper() }
  if r.macro then out[#out + 1] = r.macro .. "(" .. r.action .. ")" else out[#out + 1] = r.action end
  for _, o in ipairs(ORDER) do
    if r[o[2]] ~= nil and r[o[2]] ~= "" and (r.type ~= "group" or o[1] == "i") then
      out[#out + 1] = "-" .. o[1] .. " " .. tostring(r[o[2]])
    end
  end
  local line = table.concat(out, " ")
  if r.comment and r.comment:find("%S") then line = line .. " # " .. trim(r.comment) end
  return line
end

-- from_site(rule) -> rule | nil, msg: a rule as sites write it (type,
-- action, source, dest, proto, port|dport, sport, iface, macro, log,
-- enable, comment).
function M.from_site(s)
  local ty = tostring(s.type or ""):lower()
  if ty ~= "in" and ty ~= "out" and ty ~= "group" then return nil, "rule type must be in, out or group" end
  local r = { type = ty, enabled = s.enable ~= false and s.enable ~= 0, comment = s.comment, macro = s.macro,
    iface = s.iface, source = s.source, dest = s.dest, proto = s.proto, dport = s.dport or s.port,
    sport = s.sport, log = s.log }
  if ty == "group" then
    r.action = s.action
  else
    r.action = tostring(s.action or ""):upper()
    if not ACTIONS[r.action] then return nil, "rule action must be ACCEPT, DROP or REJECT" end
  end
  for k, v in pairs(r) do
    if type(v) == "number" then r[k] = tostring(v) end
    if type(v) == "string" and k ~= "comment" and (v:find("%s") or v:find("#", 1, true)) then
      return nil, string.format("rule %s '%s' may not contain blanks or '#'", k, v)
    end
  end
  if r.comment and r.comment:find("\n", 1, true) then return nil, "rule comment must be one line" end
  return r
end

local function is_rule_line(l)
  return not l:match("^%s*#") and l:find("%S") ~= nil
end

-- rules(doc) -> the [RULES] rule lines as { {index, line, rule|nil, err} }
function M.rules(doc)
  local s = section(doc, "rules")
  local out = {}
  for i, l in ipairs(s and s.lines or {}) do
    if is_rule_line(l) then
      local r, err = M.parse_rule(l)
      out[#out + 1] = { index = i, line = l, rule = r, err = err }
    end
  end
  return out
end

-- set_rules(doc, lines) -> doc: [RULES] holds exactly `lines` (formatted
-- rules) in order. An existing rule equal to the wanted one (compared as
-- pve-firewall reads it, so spacing does not matter) keeps its text, one
-- that differs is replaced in place, extra ones are removed, missing ones
-- follow the last rule. Comment and blank lines stay.
function M.set_rules(doc, lines)
  local s = section(doc, "rules")
  if not s then
    if #lines == 0 then return doc end
    local prev = doc.sections[#doc.sections].lines
    if #prev > 0 and prev[#prev] ~= "" then prev[#prev + 1] = "" end
    s = { kind = "rules", header = "[RULES]", lines = { "" } }
    doc.sections[#doc.sections + 1] = s
  end
  local have = M.rules(doc)
  local drop = {}
  for i, h in ipairs(have) do
    local want = lines[i]
    if want == nil then
      drop[h.index] = true
    elseif not (h.rule and M.format_rule(h.rule) == want) then
      s.lines[h.index] = want
    end
  end
  local kept = {}
  for i, l in ipairs(s.lines) do
    if not drop[i] then kept[#kept + 1] = l end
  end
  s.lines = kept
  if #lines > #have then
    -- (nothing was dropped: there are fewer rules than wanted)
    local at = #have > 0 and have[#have].index or nil
    if not at then
      at = #s.lines
      while at > 0 and s.lines[at] == "" do at = at - 1 end
      if at == 0 and s.lines[1] == "" then at = 1 end -- after the blank line under the header
    end
    for i = #have + 1, #lines do
      at = at + 1
      table.insert(s.lines, at, lines[i])
    end
  end
  return doc
end

return M
