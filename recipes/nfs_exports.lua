-- nfs_exports: /etc/exports.d/phoenix.exports (a file phoenix owns), made
-- live with `exportfs -ra` only when it changed.
local files = require "phoenix.host.files"

local FILE = "/etc/exports.d/phoenix.exports"
-- exportfs's own defaults, written out (and no_subtree_check, which it
-- warns about when absent)
local DEFAULT_OPTIONS = { "ro", "sync", "no_subtree_check" }

-- exports(5) quotes a path with blanks in double quotes.
local function path_word(p)
  if p:find("[%s\"]") then return '"' .. p:gsub('"', '\\"') .. '"' end
  return p
end

local function render(want)
  local out = { files.header("nfs.exports in phoenix_hypervisor_config.json") }
  for _, e in ipairs(want.exports) do
    local opts = table.concat(e.options and #e.options > 0 and e.options or DEFAULT_OPTIONS, ",")
    local line = { path_word(e.path) }
    for _, c in ipairs(e.clients) do line[#line + 1] = c .. "(" .. opts .. ")" end
    out[#out + 1] = table.concat(line, " ") .. "\n"
  end
  return table.concat(out)
end

return {
  type = "nfs_exports",
  describe = function(want) return #want.exports .. " NFS export(s)" end,

  inspect = function(ctx)
    return { exists = true, text = ctx.target:read(FILE) }
  end,

  diff = function(_, want, have)
    local c = files.change(FILE, have.text, render(want))
    return { c }
  end,

  apply = function(ctx, want)
    local t = ctx.target
    for _, e in ipairs(want.exports) do
      local st = t:stat(e.path)
      if not st or st.type ~= "dir" then
        return nil, "NFS export " .. e.path .. " is not a directory on the host"
      end
    end
    local changed, err = files.put(t, FILE, render(want))
    if changed == nil then return nil, err end
    if changed then
      local ok, rerr = ctx:run({ argv = { "exportfs", "-ra" } })
      if not ok then return nil, rerr end
    end
    return true
  end,
}
