-- Raw `lxc.*` lines and id maps, shared by the container spec (from the
-- site) and the drivers (from a config file), so both sides normalise the
-- same way: `lxc.apparmor.profile` and `lxc.idmap` lines become the
-- apparmor_profile and id_maps fields, the rest stays a list of raw lines.
local M = {}

-- parse(line) -> key, value | nil: "lxc.k=v", "lxc.k = v", "lxc.k: v"
function M.parse(line)
  local k, v = line:match("^%s*(lxc%.[%w_.%-]+)%s*[:=]%s*(.-)%s*$")
  if not k then return nil end
  return k, v
end

-- split(pairs) -> { lxc = {{k, v}...}, apparmor_profile = v|nil, id_maps = {lines}|nil }
-- pairs: a list of {key, value}.
function M.split(list)
  local out = { lxc = {} }
  for _, kv in ipairs(list) do
    local k, v = kv[1], kv[2]
    if k == "lxc.apparmor.profile" then
      out.apparmor_profile = v
    elseif k == "lxc.idmap" then
      out.id_maps = out.id_maps or {}
      out.id_maps[#out.id_maps + 1] = M.norm_idmap(v)
    else
      out.lxc[#out.lxc + 1] = { k, v }
    end
  end
  return out
end

-- "u 0  100000 65536" -> "u 0 100000 65536"
function M.norm_idmap(v)
  local words = {}
  for w in v:gmatch("%S+") do words[#words + 1] = w end
  return table.concat(words, " ")
end

-- The map Proxmox gives an unprivileged container: ids 0..65535 of the
-- container are 100000.. on the host.
M.DEFAULT_BASE, M.DEFAULT_SIZE = 100000, 65536

-- expand(maps) -> lines: a site's id_maps ({type, host_id, container_id,
-- size}) made into complete lxc.idmap lines as an unprivileged container
-- needs them: the ranges not named keep the default 100000 offset.
function M.expand(maps)
  local out = {}
  for _, kind in ipairs({ "uid", "gid" }) do
    local ranges = {}
    for _, m in ipairs(maps) do
      if m.type == kind then ranges[#ranges + 1] = m end
    end
    table.sort(ranges, function(a, b) return a.container_id < b.container_id end)
    local letter = kind:sub(1, 1)
    local next_id = 0
    local function fill(to)
      if to > next_id then
        out[#out + 1] = string.format("%s %d %d %d", letter, next_id, M.DEFAULT_BASE + next_id, to - next_id)
      end
    end
    for _, r in ipairs(ranges) do
      fill(r.container_id)
      out[#out + 1] = string.format("%s %d %d %d", letter, r.container_id, r.host_id, r.size)
      next_id = r.container_id + r.size
    end
    fill(M.DEFAULT_SIZE)
  end
  return out
end

-- default_map() -> the two lines of the default unprivileged map
function M.default_map()
  return {
    string.format("u 0 %d %d", M.DEFAULT_BASE, M.DEFAULT_SIZE),
    string.format("g 0 %d %d", M.DEFAULT_BASE, M.DEFAULT_SIZE),
  }
end

-- host_ranges(lines) -> { uid = {{first, count}...}, gid = {...} }: the
-- host ids a map uses (what /etc/subuid and /etc/subgid must grant root).
function M.host_ranges(lines)
  local out = { uid = {}, gid = {} }
  for _, l in ipairs(lines) do
    local t, _, host, size = l:match("^([ug]) (%d+) (%d+) (%d+)$")
    if t then
      local list = t == "u" and out.uid or out.gid
      list[#list + 1] = { tonumber(host), tonumber(size) }
    end
  end
  return out
end

return M
