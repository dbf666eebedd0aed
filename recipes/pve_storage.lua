-- pve_storage: a Proxmox storage on a dataset (`zfspool` or `dir`) with its
-- content types, added or set with pvesm. State: one `pvesm status` per run
-- (active or not) plus /etc/pve/storage.cfg (type, pool/path, content).
local util = require "phoenix.util"

local CFG = "/etc/pve/storage.cfg"

-- storage.cfg: "type: id" headers, then indented "key value" lines (a
-- bare key is a flag).
local function parse_cfg(text)
  local out, cur = {}, nil
  for line in (text or ""):gmatch("[^\n]*") do
    local ty, id = line:match("^(%w+):%s*(%S+)%s*$")
    if ty then
      cur = { type = ty, id = id, props = {} }
      out[id] = cur
    elseif cur and line:match("^%s+%S") then
      local k, v = line:match("^%s+(%S+)%s*(.-)%s*$")
      cur.props[k] = v ~= "" and v or "1"
    elseif not line:match("^%s*#") and not line:match("^%s*$") then
      cur = nil
    end
  end
  return out
end

local function cfg(ctx)
  return ctx.target:memo("phoenix.host.storage_cfg", function()
    return parse_cfg(ctx.target:read(CFG) or "")
  end)
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function same_set(a, b)
  local sa, sb = set_of(a), set_of(b)
  for k in pairs(sa) do if not sb[k] then return false end end
  for k in pairs(sb) do if not sa[k] then return false end end
  return true
end

local function pvesm(ctx, args)
  local t = ctx.target
  if t.pve then return t:pve("pvesm", args) end
  local argv = { "pvesm" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return ctx:run({ argv = argv })
end

return {
  type = "pve_storage",
  describe = function(want) return "Proxmox storage " .. want.storage .. " (" .. want.type .. " on " .. want.dataset .. ")" end,

  inspect = function(ctx, want)
    local t = ctx.target
    if not t.storages then
      return { exists = false, unsupported = "the " .. t.type .. " target has no Proxmox storage" }
    end
    local rows, err = t:storages()
    if not rows then return nil, err end
    local c = cfg(ctx)[want.storage]
    if not c then return { exists = false } end
    local row
    for _, r in ipairs(rows) do if r.name == want.storage then row = r end end
    if row and row.status ~= "active" then ctx.log:warn("storage %s is %s", want.storage, tostring(row.status)) end
    local content = {}
    for v in (c.props.content or ""):gmatch("[^,%s]+") do content[#content + 1] = v end
    table.sort(content)
    return { exists = true, type = c.type, pool = c.props.pool, path = c.props.path, content = content,
      status = row and row.status }
  end,

  diff = function(_, want, have)
    local content = util.copy(want.content)
    table.sort(content)
    local wanted = table.concat(content, ",")
    if not have.exists then
      local where = want.type == "zfspool" and ("pool " .. want.pool) or ("path " .. want.path)
      return { { action = "create", field = "storage", to = want.type .. ", " .. where .. ", content " .. wanted,
        unsupported = have.unsupported } }
    end
    local out = {}
    if have.type ~= want.type then
      return { { action = "update", field = "type", from = have.type, to = want.type,
        unsupported = "a storage's type cannot change: remove storage " .. want.storage .. " by hand first" } }
    end
    local key = want.type == "zfspool" and "pool" or "path"
    if have[key] ~= want[key] then
      out[#out + 1] = { action = "update", field = key, from = have[key], to = want[key],
        unsupported = "Proxmox cannot change a storage's " .. key .. ": remove storage " .. want.storage .. " by hand first" }
    end
    if not same_set(have.content, want.content) then
      out[#out + 1] = { action = "update", field = "content", from = table.concat(have.content, ","), to = wanted }
    end
    return out
  end,

  apply = function(ctx, want, _, changes)
    local content = table.concat(want.content, ",")
    for _, c in ipairs(changes) do
      local args
      if c.field == "storage" then
        args = { "add", want.type, want.storage }
        if want.type == "zfspool" then
          args[#args + 1] = "--pool"
          args[#args + 1] = want.pool
        else
          args[#args + 1] = "--path"
          args[#args + 1] = want.path
        end
        args[#args + 1] = "--content"
        args[#args + 1] = content
      elseif c.field == "content" then
        args = { "set", want.storage, "--content", content }
      end
      if args then
        local ok, err = pvesm(ctx, args)
        ctx.target:forget("storages")
        ctx.target:forget("phoenix.host.storage_cfg")
        if not ok then return nil, err end
      end
    end
    return true
  end,
}
