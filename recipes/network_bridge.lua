-- network_bridge: the bridge's stanza of /etc/network/interfaces, kept in
-- a marked block (an unmarked stanza for the bridge is adopted: replaced by
-- the block in place), applied with `ifreload -a` only when it changed.
--
-- Changing a bridge that already exists can cut the host off the network
-- (a wrong address or port), so that is disruptive ("restart": it needs
-- --allow-restart); adding a new bridge is not.
local files = require "phoenix.host.files"

local FILE = "/etc/network/interfaces"
local KEYWORDS = { iface = true, mapping = true, auto = true, source = true, ["source-directory"] = true,
  ["source-dir"] = true, rename = true }

local function is_stanza_start(line)
  local w = line:match("^(%S+)")
  return w and (KEYWORDS[w] or w:match("^allow%-"))
end

-- The lines of an unmarked `iface <name> inet` stanza (and its `auto`
-- line right above): first, last | nil.
local function find_stanza(text, name)
  local ls = files.lines(text)
  for i, l in ipairs(ls) do
    local n, fam = l:match("^iface%s+(%S+)%s+(%S+)")
    if n == name and fam == "inet" then
      local first, last = i, i
      local prev = ls[i - 1] and ls[i - 1]:match("^%s*(.-)%s*$")
      if prev == "auto " .. name or prev == "allow-hotplug " .. name then first = i - 1 end
      for j = i + 1, #ls do
        local lj = ls[j]
        if lj:match("^%s*$") or lj:match("^%s*#") or is_stanza_start(lj) then break end
        last = j
      end
      return first, last
    end
  end
end

local function body(want)
  local out = { "auto " .. want.name, "iface " .. want.name .. " inet " .. (want.address and "static" or "manual") }
  local function opt(k, v) out[#out + 1] = "\t" .. k .. " " .. v end
  if want.address then opt("address", want.address) end
  if want.gateway then opt("gateway", want.gateway) end
  opt("bridge-ports", want.ports or "none")
  opt("bridge-stp", "off")
  opt("bridge-fd", "0")
  if want.vlan_aware then
    opt("bridge-vlan-aware", "yes")
    opt("bridge-vids", "2-4094")
  end
  if want.mtu then opt("mtu", tostring(want.mtu)) end
  if want.comment then out[#out + 1] = "#" .. want.comment end
  return table.concat(out, "\n") .. "\n"
end

local function block_name(want) return "network_bridge " .. want.name end

-- render(text, want) -> the whole file | nil, msg
local function render(text, want)
  local name = block_name(want)
  local found, ferr = files.find_block(text or "", name)
  if found == nil and ferr then return nil, FILE .. ": " .. ferr end
  local opts = {}
  if not found then
    local first, last = find_stanza(text or "", want.name)
    if first then opts.at, opts.upto = first, last end
  end
  return files.set_block(text or "", name, body(want), opts)
end

return {
  type = "network_bridge",
  describe = function(want) return "bridge " .. want.name .. (want.address and (" " .. want.address) or "") end,

  inspect = function(ctx, want)
    local text = ctx.target:read(FILE)
    local new, err = render(text, want)
    if not new then return nil, err end
    local marked = files.find_block(text or "", block_name(want)) ~= nil
    return { exists = marked, text = text, new = new,
      live = marked or find_stanza(text or "", want.name) ~= nil }
  end,

  diff = function(_, want, have)
    local c = files.change(FILE, have.text, have.new)
    if not c then return {} end
    c.field = FILE .. " (" .. want.name .. ")"
    -- a bridge that is up may drop the host's connection when it changes
    if have.live then c.disruptive = "restart" end
    return { c }
  end,

  apply = function(ctx, _, have)
    local t = ctx.target
    local changed, err = files.put(t, FILE, have.new)
    if changed == nil then return nil, err end
    if not changed then return true end
    local ok, rerr = ctx:run({ argv = { "ifreload", "-a" } })
    if not ok then
      -- put the previous file back so the next boot or reload finds it
      if have.text then
        files.put(t, FILE, have.text, { backup = false })
        ctx:run({ argv = { "ifreload", "-a" } })
      end
      return nil, rerr .. " (the previous " .. FILE .. " was restored)"
    end
    return true
  end,
}
