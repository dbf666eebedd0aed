-- zfs_dataset: creates a dataset and converges its properties. Every
-- dataset of the run is read with one batched `zfs get` (phoenix.host.zfs).
local util = require "phoenix.util"
local zfs = require "phoenix.host.zfs"

local function where(ctx)
  local s = ctx.resource and ctx.resource.source
  return s and (s.file .. ": " .. s.pointer .. "/properties: ") or ""
end

return {
  type = "zfs_dataset",
  describe = function(want) return "ZFS dataset " .. want.name end,

  inspect = function(ctx, want)
    -- a bad value is an error before anything is read or written
    for _, k in ipairs(util.sorted_keys(want.properties or {})) do
      local ok, err = zfs.check(k, want.properties[k])
      if not ok then return nil, where(ctx) .. err end
    end
    local props, err = zfs.dataset(ctx, want.name, want.properties)
    if props == nil then return nil, err end
    if props == false then
      local pools, perr = zfs.pools(ctx)
      if not pools then return nil, perr end
      if not pools[want.pool] then
        local declared = ctx.site and ctx.site.by_id and ctx.site.by_id["zfs_pool:" .. want.pool]
        if not declared then
          return nil, string.format("dataset %s: pool %s does not exist on this host and is not declared in zfs.pools",
            want.name, want.pool)
        end
        if ctx.options.mode ~= "plan" then
          return nil, string.format("dataset %s: pool %s does not exist (zfs_pool:%s did not create it)",
            want.name, want.pool, want.pool)
        end
      end
      return { exists = false }
    end
    local have = { exists = true, properties = {} }
    for k in pairs(want.properties or {}) do have.properties[k] = props[k] and props[k].value end
    return have
  end,

  diff = function(ctx, want, have)
    if not have.exists then
      return { { action = "create", field = "dataset", to = want.name, note = next(want.properties or {}) and
        util.show(want.properties) or nil } }
    end
    local out = {}
    for _, k in ipairs(util.sorted_keys(want.properties or {})) do
      local v = want.properties[k]
      if not zfs.same(k, v, have.properties[k], ctx.target and ctx.target.root) then
        out[#out + 1] = { action = "update", field = k, from = have.properties[k], to = v }
      end
    end
    return out
  end,

  apply = function(ctx, want, _, changes)
    for _, c in ipairs(changes) do
      local argv
      if c.field == "dataset" then
        argv = { "zfs", "create", "-p" }
        for _, k in ipairs(util.sorted_keys(want.properties or {})) do
          argv[#argv + 1] = "-o"
          argv[#argv + 1] = k .. "=" .. want.properties[k]
        end
        argv[#argv + 1] = want.name
      else
        argv = { "zfs", "set", c.field .. "=" .. c.to, want.name }
      end
      local ok, err = ctx:run({ argv = argv })
      zfs.touch(ctx, want.name)
      if not ok then return nil, err end
    end
    return true
  end,
}
