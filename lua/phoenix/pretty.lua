-- pretty(value, opts) -> text: a Lua value as a person reads it.
-- Tables are expanded with sorted keys (numbers, then strings, then the rest)
-- and indented when they do not fit on one line; a table met again inside
-- itself prints as <cycle: table: 0x...>; long tables and deep nesting are
-- cut with a note saying how much was left out. The REPL prints with it.
--
-- opts: indent ("  "), width (72: longest line kept inline),
--       max_items (100 per table), max_depth (8).

local M = {}

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do keywords[w] = true end

local function quote(s)
  -- %q escapes a newline as a backslash + newline; \n reads better.
  return (string.format("%q", s):gsub("\\\n", "\\n"))
end

local type_rank = { number = 1, string = 2, boolean = 3 }

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  local ra, rb = type_rank[ta] or 4, type_rank[tb] or 4
  if ra ~= rb then return ra < rb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function key_text(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not keywords[k] then return k end
  if type(k) == "string" then return "[" .. quote(k) .. "]" end
  return "[" .. tostring(k) .. "]"
end

local function scalar(v)
  local t = type(v)
  if t == "string" then return quote(v) end
  if t == "table" then
    local mt = getmetatable(v)
    if mt and mt.__tostring then return tostring(v) end
    return nil
  end
  return tostring(v)
end

local function render(v, o, depth, path)
  local s = scalar(v)
  if s then return s end
  if path[v] then return "<cycle: " .. tostring(v) .. ">" end
  if depth >= o.max_depth then return "{...}" end
  -- The array part first (1..n without keys), then the other keys sorted.
  local n = rawlen(v)
  local keys = {}
  for k in next, v do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_less)
  local total = n + #keys
  if total == 0 then return "{}" end
  path[v] = true
  local items = {}
  local shown = math.min(total, o.max_items)
  for i = 1, shown do
    if i <= n then
      items[i] = render(v[i], o, depth + 1, path)
    else
      local k = keys[i - n]
      items[i] = key_text(k) .. " = " .. render(rawget(v, k), o, depth + 1, path)
    end
  end
  path[v] = nil
  if total > shown then items[#items + 1] = string.format("... (%d more)", total - shown) end
  local inline = "{ " .. table.concat(items, ", ") .. " }"
  if #inline <= o.width and not inline:find("\n", 1, true) then return inline end
  -- One item per line, except that one-line array items share lines up to
  -- the width (a list of 200 numbers stays readable).
  local pad = o.indent:rep(depth + 1)
  local lines, cur = {}, nil
  for i, item in ipairs(items) do
    local packable = i <= n and not item:find("\n", 1, true)
    if cur and packable and #cur + #item + 2 <= o.width then
      cur = cur .. ", " .. item
    else
      if cur then lines[#lines + 1] = cur end
      cur = pad .. item
    end
    if not packable then
      lines[#lines + 1] = cur
      cur = nil
    end
  end
  if cur then lines[#lines + 1] = cur end
  return "{\n" .. table.concat(lines, ",\n") .. "\n" .. o.indent:rep(depth) .. "}"
end

function M.pretty(value, opts)
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "indent" and k ~= "width" and k ~= "max_items" and k ~= "max_depth" then
      error("pretty: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  local o = {
    indent = opts.indent or "  ",
    width = opts.width or 72,
    max_items = opts.max_items or 100,
    max_depth = opts.max_depth or 8,
  }
  return render(value, o, 0, {})
end

return M
