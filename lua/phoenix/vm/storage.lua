-- The node's storages as /etc/pve/storage.cfg declares them (read as a
-- file, no tool call): where a cloud image or a cloud-init snippet lives.
local M = {}

-- parse(text) -> { [id] = { id, type, path?, pool?, content = {iso = true, ...} } }
function M.parse(text)
  local out, cur = {}, nil
  for line in (text or ""):gmatch("[^\n]*") do
    local typ, id = line:match("^(%w+):%s*(%S+)%s*$")
    if typ then
      cur = { id = id, type = typ, content = {} }
      out[id] = cur
    elseif cur then
      local k, v = line:match("^%s+(%S+)%s*(.-)%s*$")
      if k == "content" then
        for c in v:gmatch("[^,%s]+") do cur.content[c] = true end
      elseif k then
        cur[k] = v
      end
    end
  end
  return out
end

-- read(t) -> storages (memoised per run) | nil, msg
function M.read(t)
  return t:memo("vm:storage.cfg", function()
    local text, err = t:read("/etc/pve/storage.cfg")
    if not text then return nil, t:path("/etc/pve/storage.cfg") .. ": " .. tostring(err) end
    return M.parse(text)
  end)
end

-- Directories a file-based storage keeps `content` in (pve-storage's layout).
local SUBDIR = { iso = "template/iso", import = "import", snippets = "snippets" }

-- dirs(storages, content) -> sorted list of { id, dir } of dir storages holding content
function M.dirs(storages, content)
  local out = {}
  for id, s in pairs(storages) do
    if s.path and s.content[content] and s.disable == nil then
      out[#out + 1] = { id = id, dir = s.path .. "/" .. SUBDIR[content] }
    end
  end
  table.sort(out, function(a, b) return a.id < b.id end)
  return out
end

-- snippet(storages, id, file) -> host path, volume ID | nil, msg (with the fix)
function M.snippet(storages, id, file)
  local s = storages[id]
  if not s then return nil, "cloud-init snippets storage '" .. id .. "' does not exist (/etc/pve/storage.cfg)" end
  if not s.path then
    return nil, string.format("storage '%s' (%s) cannot hold cloud-init snippets: choose a dir storage", id, s.type)
  end
  if not s.content.snippets then
    local have = {}
    for c in pairs(s.content) do have[#have + 1] = c end
    table.sort(have)
    have[#have + 1] = "snippets"
    return nil, string.format("storage '%s' does not hold snippets: allow them with "
      .. "`pvesm set %s --content %s`", id, id, table.concat(have, ","))
  end
  return s.path .. "/snippets/" .. file, id .. ":snippets/" .. file
end

return M
