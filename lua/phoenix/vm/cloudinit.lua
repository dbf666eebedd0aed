-- Optional cloud-init user-data: a template from the site's cloud-init/
-- directory (or phoenix's etc/cloud-init/) rendered for one VM and kept as
-- a snippet on the host; the VM's `cicustom` points at it. Proxmox then
-- uses that user-data instead of the one it builds from ciuser/sshkeys, so
-- the built-in templates carry the user and keys themselves.
local fs = require "px.fs"
local json = require "px.json"
local px = require "px"
local config = require "phoenix.vm.config"

local M = {}

function M.file(vmid) return string.format("phoenix-%d-user.yaml", vmid) end

-- template(site, name) -> text, path | nil, msg
function M.template(site, name)
  if name:find("/", 1, true) or name:sub(1, 1) == "." then
    return nil, "cloud_init.user_data '" .. name .. "': a file name in cloud-init/ is expected"
  end
  local tried = {}
  local dirs = {}
  if site and site.dir then dirs[#dirs + 1] = site.dir .. "/cloud-init" end
  if px.home then dirs[#dirs + 1] = px.home .. "/etc/cloud-init" end
  for _, d in ipairs(dirs) do
    local p = d .. "/" .. name
    local text = fs.read(p)
    if text then return text, p end
    tried[#tried + 1] = p
  end
  return nil, "cloud-init template " .. name .. " not found (looked for " .. table.concat(tried, ", ") .. ")"
end

-- YAML flow list of JSON strings (valid YAML).
local function flow(list)
  local parts = {}
  for i, s in ipairs(list) do parts[i] = json.encode(s) end
  return "[" .. table.concat(parts, ", ") .. "]"
end

-- vars(want) -> the names a template may use as {{ name }}
function M.vars(want)
  local nc = want.network_config or {}
  local ip = nc.ip or "dhcp"
  local fqdn = want.domain_name and (want.name .. "." .. want.domain_name) or want.name
  return {
    vmid = tostring(want.vmid),
    name = want.name,
    hostname = want.name,
    fqdn = fqdn,
    domain_name = want.domain_name or "",
    username = want.user_config and want.user_config.username or "",
    ssh_keys = flow(config.ssh_keys(want)),
    ip = ip == "dhcp" and "dhcp" or ip:match("^([^/]+)"),
    cidr = ip,
    gw = nc.gw or "",
    nameservers = flow(nc.nameserver or {}),
  }
end

-- render(text, vars, path) -> text | nil, msg ("path line N: ...")
function M.render(text, vars, path)
  local lineno, err = 0, nil
  local out = {}
  for line in (text .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    out[#out + 1] = line:gsub("{{%s*([%w_]*)%s*}}", function(name)
      local v = vars[name]
      if v == nil and not err then
        local known = {}
        for k in pairs(vars) do known[#known + 1] = k end
        table.sort(known)
        err = string.format("%s line %d: unknown variable {{%s}} (known: %s)", path, lineno, name, table.concat(known, ", "))
      end
      return v or ""
    end)
  end
  if err then return nil, err end
  return table.concat(out, "\n") .. "\n"
end

return M
