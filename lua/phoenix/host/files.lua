-- Managed files for host recipes: whole files phoenix owns (written only
-- when the content differs, the previous version kept), and marked blocks
-- inside files the user also edits (/etc/network/interfaces, smb.conf).
local M = {}

M.BACKUP = ".phoenix.bak"

-- A header for files phoenix owns; `what` names where the content comes from.
function M.header(what, comment)
  comment = comment or "#"
  return string.format("%s Managed by phoenix from %s: edits here are replaced on the next run.\n", comment, what)
end

local function lines(text)
  local out = {}
  for line in (text or ""):gmatch("([^\n]*)\n?") do out[#out + 1] = line end
  if out[#out] == "" then out[#out] = nil end
  return out
end
M.lines = lines

-- summary(old, new) -> "+a -r lines": lines added and removed (as multisets,
-- so a moved line counts once each way).
function M.summary(old, new)
  local count = {}
  for _, l in ipairs(lines(old)) do count[l] = (count[l] or 0) + 1 end
  local added = 0
  for _, l in ipairs(lines(new)) do
    if (count[l] or 0) > 0 then count[l] = count[l] - 1 else added = added + 1 end
  end
  local removed = 0
  for _, n in pairs(count) do removed = removed + n end
  return string.format("+%d -%d lines", added, removed)
end

-- change(path, old, new [, extra]) -> a change record, or nil when equal.
-- Plans show the file and a line count, not the whole text.
local function count(text)
  local n = #lines(text)
  return n .. (n == 1 and " line" or " lines")
end

function M.change(path, old, new, extra)
  if old == new then return nil end
  local c
  if new == nil then
    c = { action = "delete", field = path, from = count(old) }
  elseif old == nil then
    c = { action = "create", field = path, to = count(new) }
  else
    c = { action = "update", field = path, from = count(old), to = count(new),
      note = M.summary(old, new) }
  end
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

-- put(target, path, content [, opts]) -> changed | nil, msg. Atomic, only
-- when the content (or mode) differs; the previous version is kept as
-- path .. ".phoenix.bak" (opts.backup = false: none); parents are made.
-- opts.keep = "/var/lib/phoenix/backup": the previous version goes there
-- instead, for directories whose every file the service reads
-- (/etc/dnsmasq.d, /etc/apparmor.d).
function M.put(target, path, content, opts)
  opts = opts or {}
  local backup = opts.backup
  if backup == nil then backup = M.BACKUP end
  if opts.keep then
    backup = false
    local old = target:read(path)
    if old ~= nil and old ~= content then
      local ok, err = target:write(opts.keep .. "/" .. path:match("([^/]+)$"), old, { mkdir = true, mode = "0600" })
      if ok == nil then return nil, err end
    end
  end
  return target:write(path, content, { backup = backup or nil, mkdir = true, mode = opts.mode,
    uid = opts.uid, gid = opts.gid })
end

-- stage(target, name, content) -> real path | nil, msg: a candidate file
-- under <root>/var/lib/phoenix/staging for a check (testparm, dnsmasq
-- --test, apparmor_parser -Q) before anything live changes.
function M.stage(target, name, content)
  local p = "/var/lib/phoenix/staging/" .. name
  local ok, err = target:write(p, content, { mkdir = true, mode = "0600" })
  if ok == nil then return nil, err end
  return target:path(p)
end

-- Marked blocks ------------------------------------------------------------

local function marks(name, comment)
  comment = comment or "#"
  return comment .. " BEGIN phoenix " .. name, comment .. " END phoenix " .. name
end

-- find_block(text, name) -> body, first, last (line numbers of the markers)
-- | nil when absent | nil, msg when a marker is unpaired.
function M.find_block(text, name, comment)
  local b, e = marks(name, comment)
  local ls = lines(text)
  local first, last
  for i, l in ipairs(ls) do
    local t = l:gsub("%s+$", "")
    if t == b or t:sub(1, #b + 1) == b .. " " then
      if first then return nil, "two '" .. b .. "' lines" end
      first = i
    elseif t == e then
      if not first or last then return nil, "an '" .. e .. "' line without its BEGIN line" end
      last = i
    end
  end
  if not first then return nil end
  if not last then return nil, "'" .. b .. "' without its END line" end
  local body = {}
  for i = first + 1, last - 1 do body[#body + 1] = ls[i] end
  return table.concat(body, "\n") .. (#body > 0 and "\n" or ""), first, last
end

-- set_block(text, name, body [, opts]) -> new text | nil, msg.
-- Replaces the block's body (a nil body removes the block); an absent
-- block goes at opts.at (a line number: the lines from there to opts.upto
-- are replaced, e.g. an unmarked stanza being adopted), else at the end.
function M.set_block(text, name, body, opts)
  opts = opts or {}
  local b, e = marks(name, opts.comment)
  local ls = lines(text)
  local found, first, last = M.find_block(text, name, opts.comment)
  if found == nil and first ~= nil then return nil, first end
  local block = {}
  if body ~= nil then
    block[1] = b .. (opts.label and (" " .. opts.label) or "")
    for _, l in ipairs(lines(body)) do block[#block + 1] = l end
    block[#block + 1] = e
  end
  local out = {}
  local from, to
  if first then
    from, to = first, last
  elseif opts.at then
    from, to = opts.at, opts.upto or (opts.at - 1)
  else
    from, to = #ls + 1, #ls
    if body ~= nil and #ls > 0 and ls[#ls] ~= "" then table.insert(block, 1, "") end
  end
  for i = 1, from - 1 do out[#out + 1] = ls[i] end
  for _, l in ipairs(block) do out[#out + 1] = l end
  for i = to + 1, #ls do out[#out + 1] = ls[i] end
  if #out == 0 then return "" end
  return table.concat(out, "\n") .. "\n"
end

return M
