-- firewall: the Proxmox firewall files — cluster.fw (enable, default
-- policies), the node's host.fw (the site's global rules) and <vmid>.fw for
-- each guest with `firewall` rules. Only the managed option lines and the
-- rules of [RULES] change; comments, aliases, IP sets, security groups and
-- other options stay, and files of guests the site does not name are not
-- touched. pve-firewall picks up changed files by itself (no reload).
local files = require "phoenix.host.files"
local fw = require "phoenix.host.fwfile"

local function path_of(ctx, name)
  if name == "cluster" then return "/etc/pve/firewall/cluster.fw" end
  if name == "host" then
    local node = ctx.target.node
    return node and ("/etc/pve/nodes/" .. node .. "/host.fw") or "/etc/pve/local/host.fw"
  end
  return "/etc/pve/firewall/" .. name .. ".fw"
end

local function truthy(v) return v ~= nil and v ~= "" and v ~= "0" end

-- render(ctx, want, name, text) -> new text | nil, msg
local function render(ctx, want, name, text)
  local doc = fw.parse(text)
  if name ~= "host" then
    local opts = fw.options(doc)
    -- `enable` may hold a timestamp (Proxmox writes one): any non-zero is on
    if want.enabled ~= truthy(opts.enable) then fw.set_option(doc, "enable", want.enabled and "1" or "0") end
    if want.policy_in and opts.policy_in ~= want.policy_in then fw.set_option(doc, "policy_in", want.policy_in) end
    if want.policy_out and opts.policy_out ~= want.policy_out then fw.set_option(doc, "policy_out", want.policy_out) end
  end
  if want.rules then
    local lines = {}
    for i, sr in ipairs(want.rules) do
      local r, err = fw.from_site(sr)
      if not r then
        local src = ctx.resource and ctx.resource.source
        local where = src and string.format("%s: %s/%s/%d: ", src.file, src.pointer,
          name == "host" and "global_firewall_rules" or "rules", i - 1) or ""
        return nil, where .. err
      end
      lines[i] = fw.format_rule(r)
    end
    fw.set_rules(doc, lines)
  end
  return fw.format(doc)
end

return {
  type = "firewall",
  describe = function(want)
    if want.vmid then return "firewall of guest " .. want.vmid end
    if want.rules then return "host firewall rules (" .. #want.rules .. ")" end
    return "cluster firewall " .. (want.enabled and "on" or "off")
  end,

  inspect = function(ctx, want)
    local name = ctx.resource and ctx.resource.name or (want.vmid and tostring(want.vmid)) or
      (want.rules and "host" or "cluster")
    local path = path_of(ctx, name)
    local text = ctx.target:read(path)
    local new, err = render(ctx, want, name, text)
    if not new then return nil, err end
    if text == nil and new == "" then new = nil end -- nothing to write
    return { exists = text ~= nil, path = path, text = text, new = new }
  end,

  diff = function(_, _, have)
    return { files.change(have.path, have.text, have.new) }
  end,

  apply = function(ctx, _, have)
    local changed, err = files.put(ctx.target, have.path, have.new)
    if changed == nil then return nil, err end
    return true
  end,
}
