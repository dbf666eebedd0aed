-- argv -> API: the pct/qm/pvesh/pvesm command lines the drivers build,
-- as the REST requests Proxmox's own CLI makes for them (the CLI tools are
-- generated from the same API schema: `pct create 101 TPL --memory 512` is
-- POST /nodes/{node}/lxc vmid=101 ostemplate=TPL memory=512). A command
-- with no API (pct exec/push/pull, qm importdisk, zfs) maps to nothing and
-- needs the node's shell.
local segment = require("phoenix.target.pve_api.client").segment

local M = {}

-- split(args) -> positional words, options {key = value | list}, words after "--"
local function split(args)
  local pos, opts, rest = {}, {}, nil
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      rest = table.move(args, i + 1, #args, 1, {})
      break
    end
    local key = a:match("^%-%-?([%a][%w_%-]*)$")
    if key then
      local v = args[i + 1]
      if v == nil then return nil, "option --" .. key .. " has no value" end
      if opts[key] == nil then
        opts[key] = v
      elseif type(opts[key]) == "table" then
        table.insert(opts[key], v)
      else
        opts[key] = { opts[key], v }
      end
      i = i + 2
    else
      pos[#pos + 1] = a
      i = i + 1
    end
  end
  return pos, opts, rest
end

local function vmid_of(s)
  local n = math.tointeger(tonumber(s))
  if not n or tostring(n) ~= s then return nil end
  return n
end

local TASK, SYNC = true, false

-- [tool][verb] = {positional parameter names, method, path (after the
-- guest's /nodes/{node}/{kind}/{vmid}, or absolute with {node}), task?}
local GUEST = {
  create = { { "vmid", "ostemplate" }, "POST", "", TASK, new = true },
  clone = { { "vmid", "newid" }, "POST", "/clone", TASK },
  set = { { "vmid" }, "PUT", "/config", SYNC },
  start = { { "vmid" }, "POST", "/status/start", TASK },
  stop = { { "vmid" }, "POST", "/status/stop", TASK },
  shutdown = { { "vmid" }, "POST", "/status/shutdown", TASK },
  reboot = { { "vmid" }, "POST", "/status/reboot", TASK },
  suspend = { { "vmid" }, "POST", "/status/suspend", TASK },
  resume = { { "vmid" }, "POST", "/status/resume", TASK },
  snapshot = { { "vmid", "snapname" }, "POST", "/snapshot", TASK },
  rollback = { { "vmid", "snapname" }, "POST", "/snapshot/{snapname}/rollback", TASK },
  delsnapshot = { { "vmid", "snapname" }, "DELETE", "/snapshot/{snapname}", TASK },
  resize = { { "vmid", "disk", "size" }, "PUT", "/resize", TASK },
  template = { { "vmid" }, "POST", "/template", SYNC },
  destroy = { { "vmid" }, "DELETE", "", TASK },
}

local QM_CREATE = { { "vmid" }, "POST", "", TASK, new = true }

-- guest(kind, verb, args, node_of) -> request | nil, why
local function guest_call(tool, kind, verb, args, node_of)
  local spec = GUEST[verb]
  if kind == "qemu" and verb == "create" then spec = QM_CREATE end
  if not spec then return nil end
  local pos, opts, rest = split(args)
  if not pos then return nil, opts end
  if rest then return nil, "`" .. tool .. " " .. verb .. "` takes no command words" end
  local names = spec[1]
  if #pos ~= #names then
    return nil, string.format("`%s %s` expects %d positional argument%s (%s), got %d", tool, verb, #names,
      #names == 1 and "" or "s", table.concat(names, ", "), #pos)
  end
  local vmid = vmid_of(pos[1])
  if not vmid then return nil, string.format("`%s %s`: '%s' is not a guest ID", tool, verb, pos[1]) end
  local params = {}
  for k, v in pairs(opts) do params[k] = v end
  local path = spec[3]:gsub("{(%w+)}", function(name)
    for i, n in ipairs(names) do
      if n == name then return segment(pos[i]) end
    end
  end)
  for i = 2, #names do
    if not spec[3]:find("{" .. names[i] .. "}", 1, true) then params[names[i]] = pos[i] end
  end
  local node = node_of(vmid)
  local req = { method = spec[2], task = spec[4], node = node, vmid = vmid, kind = kind }
  if spec.new then
    params.vmid = pos[1]
    req.path = string.format("/nodes/%s/%s", node, kind)
  else
    req.path = string.format("/nodes/%s/%s/%d%s", node, kind, vmid, path)
  end
  req.params = params
  return req
end

-- qm guest cmd VMID COMMAND / qm guest exec VMID [--timeout S] [--pass-stdin 1] -- argv
local AGENT_POST = { ping = true, ["fsfreeze-freeze"] = true, ["fsfreeze-thaw"] = true, ["fstrim"] = true,
  shutdown = true, suspend_disk = true, suspend_ram = true, suspend_hybrid = true }

local function qm_guest(args, node_of)
  local sub = args[1]
  local pos, opts, rest = split(table.move(args, 2, #args, 1, {}))
  if not pos then return nil, opts end
  local vmid = vmid_of(pos[1] or "")
  if not vmid then return nil, "`qm guest " .. tostring(sub) .. "`: expected a VMID" end
  local base = string.format("/nodes/%s/qemu/%d/agent", node_of(vmid), vmid)
  if sub == "cmd" then
    local cmd = pos[2]
    if not cmd or not cmd:match("^[%w_%-]+$") then return nil, "`qm guest cmd`: expected an agent command" end
    return { method = AGENT_POST[cmd] and "POST" or "GET", path = base .. "/" .. cmd, params = {}, node = node_of(vmid),
      vmid = vmid, output = "agent" }
  elseif sub == "exec" then
    if not rest or #rest == 0 then return nil, "`qm guest exec` needs a command after --" end
    for k in pairs(opts) do
      if k ~= "timeout" and k ~= "pass-stdin" and k ~= "synchronous" then
        return nil, "`qm guest exec`: unknown option --" .. k
      end
    end
    return { special = "guest_exec", path = base, node = node_of(vmid), vmid = vmid, command = rest,
      timeout_s = tonumber(opts.timeout) or 30, pass_stdin = opts["pass-stdin"] == "1" }
  end
  return nil
end

-- pvesh get|create|set|delete PATH [--k v] [--output-format json]
local PVESH = { get = "GET", create = "POST", set = "PUT", delete = "DELETE" }

local function pvesh(args)
  local method = PVESH[args[1] or ""]
  if not method then return nil end
  local pos, opts = split(table.move(args, 2, #args, 1, {}))
  if not pos then return nil, opts end
  if #pos ~= 1 or pos[1]:sub(1, 1) ~= "/" then return nil, "`pvesh " .. args[1] .. "` expects one API path" end
  local params = {}
  for k, v in pairs(opts) do
    if k ~= "output-format" and k ~= "quiet" and k ~= "noborder" and k ~= "noheader" then params[k] = v end
  end
  local path = "/" .. pos[1]:gsub("^/+", ""):gsub("/+$", "")
  return { method = method, path = path, params = params, output = "json", task = "auto" }
end

-- pvesm add TYPE STORAGE --opts | set STORAGE --opts | remove STORAGE
local function pvesm(args)
  local pos, opts = split(table.move(args, 2, #args, 1, {}))
  if not pos then return nil, opts end
  local verb = args[1]
  if verb == "add" and #pos == 2 then
    opts.type, opts.storage = pos[1], pos[2]
    return { method = "POST", path = "/storage", params = opts }
  elseif verb == "set" and #pos == 1 then
    return { method = "PUT", path = "/storage/" .. segment(pos[1]), params = opts }
  elseif verb == "remove" and #pos == 1 then
    return { method = "DELETE", path = "/storage/" .. segment(pos[1]), params = opts }
  end
  return nil
end

-- map(tool, args, node_of) -> request | nil (no API for it) | nil, msg (malformed).
-- node_of(vmid) names the node a guest lives on (new guests: the target's).
function M.map(tool, args, node_of)
  if tool == "pct" then
    return guest_call("pct", "lxc", args[1], table.move(args, 2, #args, 1, {}), node_of)
  elseif tool == "qm" then
    if args[1] == "guest" or args[1] == "agent" then return qm_guest(table.move(args, 2, #args, 1, {}), node_of) end
    return guest_call("qm", "qemu", args[1], table.move(args, 2, #args, 1, {}), node_of)
  elseif tool == "pvesh" then
    return pvesh(args)
  elseif tool == "pvesm" then
    return pvesm(args)
  end
  return nil
end

return M
