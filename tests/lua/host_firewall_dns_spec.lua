-- The firewall and dns_server recipes on a temporary root (engine level).
local hostkit = require "hostkit"
local fs = require "px.fs"
local exec = require "px.exec"
local kit = require "testkit"

local R = hostkit.resource

local function status(h, resources, o)
  local rep = h:run(resources, o)
  local out = {}
  for _, r in ipairs(resources) do out[r.id] = rep.results[r.id] end
  return out
end

local function converged(h, resources)
  for id, res in pairs(status(h, resources)) do
    assert(res.status == "changed" or res.status == "ok", id .. ": " .. hostkit.why(res))
  end
  for id, res in pairs(status(h, resources)) do
    assert(res.status == "ok" and #res.changes == 0, id .. " not in sync: " .. hostkit.why(res))
  end
end

local RULES = {
  { type = "in", action = "ACCEPT", source = "192.168.10.0/24", proto = "tcp", port = "22,8006", comment = "SSH and the web UI" },
  { type = "in", action = "ACCEPT", source = "192.168.10.0/24", proto = "tcp", port = "2049", comment = "NFS" },
}

describe("firewall recipe", function()
  local h
  before_each(function() h = hostkit.new() end)
  after_each(function() h:cleanup() end)

  local function resources()
    local cluster = R("firewall:cluster", { enabled = true, policy_in = "DROP", policy_out = "ACCEPT" })
    local host = R("firewall:host", { rules = RULES }, { deps = { "firewall:cluster" } })
    local guest = R("firewall:110", { vmid = 110, guest = "lxc:110", kind = "lxc", enabled = true,
      rules = { { type = "in", action = "ACCEPT", proto = "udp", port = "53", comment = "DNS" } } },
      { source = { file = "phoenix_lxc_configs.json", pointer = "/lxc_configs/110/firewall" } })
    return { cluster, host, guest }
  end

  it("writes the three files, then keeps comments and foreign sections while fixing an edited rule", function()
    -- a cluster.fw the admin already has: aliases, an IP set, comments
    local mine = "# cluster firewall\n[OPTIONS]\n\nenable: 1700000000\npolicy_in: ACCEPT\n\n[ALIASES]\n\n"
      .. "nas 192.168.10.5\n\n[IPSET admins] # admin laptops\n\n192.168.10.50\n"
    h:write("/etc/pve/firewall/cluster.fw", mine)
    h:write("/etc/pve/firewall/999.fw", "[OPTIONS]\n\nenable: 1\n")
    converged(h, resources())
    assert.are.equal("# cluster firewall\n[OPTIONS]\n\nenable: 1700000000\npolicy_in: DROP\npolicy_out: ACCEPT\n\n"
      .. "[ALIASES]\n\nnas 192.168.10.5\n\n[IPSET admins] # admin laptops\n\n192.168.10.50\n",
      h:read("/etc/pve/firewall/cluster.fw"))
    assert.are.equal("[RULES]\n\nIN ACCEPT -source 192.168.10.0/24 -p tcp -dport 22,8006 # SSH and the web UI\n"
      .. "IN ACCEPT -source 192.168.10.0/24 -p tcp -dport 2049 # NFS\n", h:read("/etc/pve/local/host.fw"))
    assert.are.equal("[OPTIONS]\n\nenable: 1\n\n[RULES]\n\nIN ACCEPT -p udp -dport 53 # DNS\n",
      h:read("/etc/pve/firewall/110.fw"))
    -- hand edits: a rule's port changed, a comment line and a rule added
    local edited = "[RULES]\n\n# opened by hand\nIN ACCEPT -source 192.168.10.0/24 -p tcp -dport 22,8006,9000 # SSH and the web UI\n"
      .. "IN ACCEPT -source 192.168.10.0/24 -p tcp -dport 2049 # NFS\nIN ACCEPT -p tcp -dport 3306\n"
    h:write("/etc/pve/local/host.fw", edited)
    local res = status(h, resources())["firewall:host"]
    assert.are.equal("changed", res.status)
    assert.are.equal("[RULES]\n\n# opened by hand\nIN ACCEPT -source 192.168.10.0/24 -p tcp -dport 22,8006 # SSH and the web UI\n"
      .. "IN ACCEPT -source 192.168.10.0/24 -p tcp -dport 2049 # NFS\n", h:read("/etc/pve/local/host.fw"))
    assert.are.equal(edited, h:read("/etc/pve/local/host.fw.phoenix.bak"))
    -- the unmanaged guest file is untouched
    assert.are.equal("[OPTIONS]\n\nenable: 1\n", h:read("/etc/pve/firewall/999.fw"))
  end)

  it("uses the node's own directory on a pve target, and names a bad rule", function()
    local bad = R("firewall:110", { vmid = 110, enabled = true, rules = { RULES[1],
      { type = "in", action = "ALLOW", port = "80" } } },
      { source = { file = "phoenix_lxc_configs.json", pointer = "/lxc_configs/110/firewall" } })
    local res = status(h, { bad })["firewall:110"]
    assert.are.equal("failed", res.status)
    assert.matches("phoenix_lxc_configs.json: /lxc_configs/110/firewall/rules/1: rule action must be", res.error)
    assert.is_nil(h:read("/etc/pve/firewall/110.fw"))
    local t = h:target()
    t.node = "pve1"
    local host = R("firewall:host", { rules = RULES })
    res = h:run({ host }, { target = t }).results["firewall:host"]
    assert.are.equal("changed", res.status, hostkit.why(res))
    assert.truthy(h:read("/etc/pve/nodes/pve1/host.fw"))
  end)
end)

local function free_port()
  local r = exec.run({ argv = { "/usr/bin/python3", "-S", "-c",
    "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" } })
  return tonumber(r.stdout)
end

local function have(prog)
  local r = exec.run({ argv = { "sh", "-c", "command -v " .. prog } })
  return r and r.code == 0 and r.stdout:match("^(%S+)")
end

describe("dns_server recipe", function()
  local h
  before_each(function() h = hostkit.new() end)
  after_each(function() h:cleanup() end)

  local function want()
    return { enabled = true, upstream_servers = { "1.1.1.1", "9.9.9.9" }, authoritative_zones = { "lab.example.lan" },
      domain_name = "lab.example.lan", records = {
        { hostname = "dns.lab.example.lan", ip = "192.168.10.10", guest = "lxc:110" },
        { hostname = "proxy.lab.example.lan", ip = "192.168.10.12", guest = "lxc:130" } } }
  end

  it("writes the dnsmasq file after dnsmasq --test, restarts only on change, and removes it when disabled", function()
    local dnsmasq = have("dnsmasq")
    if not dnsmasq then print("skip: no dnsmasq") return end
    h:wrap("dnsmasq", dnsmasq)
    h:stub("systemctl")
    local r = R("dns_server:host", want())
    converged(h, { r })
    local text = h:read("/etc/dnsmasq.d/phoenix.conf")
    assert.matches("\nno%-resolv\nserver=1%.1%.1%.1\nserver=9%.9%.9%.9\n", text)
    assert.matches("\nlocal=/lab%.example%.lan/\n", text)
    assert.matches("\nhost%-record=dns%.lab%.example%.lan,192%.168%.10%.10\nhost%-record=proxy%.lab%.example%.lan,192%.168%.10%.12\n", text)
    assert.are.equal(1, #h:calls("dnsmasq"))
    assert.are.same({ { "restart", "dnsmasq" } }, h:calls("systemctl"))
    -- a record edited by hand comes back; the old file is kept outside /etc/dnsmasq.d
    local edited = text:gsub("192%.168%.10%.12", "192.168.10.99")
    h:write("/etc/dnsmasq.d/phoenix.conf", edited)
    converged(h, { r })
    assert.are.equal(text, h:read("/etc/dnsmasq.d/phoenix.conf"))
    assert.are.equal(edited, h:read("/var/lib/phoenix/backup/phoenix.conf"))
    assert.are.same({ "phoenix.conf" }, fs.list(h.root .. "/etc/dnsmasq.d"))
    local off = want()
    off.enabled = false
    converged(h, { R("dns_server:host", off) })
    assert.is_nil(h:read("/etc/dnsmasq.d/phoenix.conf"))
    assert.are.equal(3, #h:calls("systemctl"))
  end)

  it("refuses what dnsmasq --test rejects", function()
    local dnsmasq = have("dnsmasq")
    if not dnsmasq then print("skip: no dnsmasq") return end
    h:wrap("dnsmasq", dnsmasq)
    h:stub("systemctl")
    local w = want()
    w.upstream_servers = { "not an address" }
    local r = R("dns_server:host", w)
    local res = status(h, { r })[r.id]
    assert.are.equal("failed", res.status)
    assert.matches("does not pass `dnsmasq %-%-test`, nothing was changed", res.error)
    assert.is_nil(h:read("/etc/dnsmasq.d/phoenix.conf"))
    assert.are.equal(0, #h:calls("systemctl"))
  end)

  it("answers a guest's name and forwards the rest (a real dnsmasq on 127.0.0.x)", function()
    local dnsmasq, dig = have("dnsmasq"), have("dig")
    if not dnsmasq then print("skip: no dnsmasq") return end
    if not dig then print("skip: no dig (dnsutils)") return end
    h:wrap("dnsmasq", dnsmasq)
    h:stub("systemctl")
    -- the upstream: a second dnsmasq that knows one outside name
    local up_port, port = free_port(), free_port()
    local w = want()
    w.upstream_servers = { "127.0.0.1#" .. up_port }
    converged(h, { R("dns_server:host", w) })
    local upstream = assert(exec.spawn({ argv = { dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--port=" .. up_port,
      "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
      "--host-record=outside.example.com,203.0.113.7", "--pid-file=" } }))
    local server = assert(exec.spawn({ argv = { dnsmasq, "--no-daemon", "--conf-file=" .. h.root .. "/etc/dnsmasq.d/phoenix.conf",
      "--port=" .. port, "--listen-address=127.0.0.53", "--bind-interfaces", "--no-hosts", "--pid-file=" } }))
    local function ask(name)
      local out
      for _ = 1, 50 do
        local r = exec.run({ argv = { dig, "+short", "+time=1", "+tries=1", "-p", tostring(port), "@127.0.0.53", name } })
        if r.code == 0 and not r.stdout:find("connection refused", 1, true) then
          out = r.stdout
          break
        end
        exec.run({ argv = { "sleep", "0.1" } })
      end
      return out
    end
    local a = ask("proxy.lab.example.lan")
    local b = ask("outside.example.com")
    local c = ask("nothing.lab.example.lan")
    server:kill()
    upstream:kill()
    assert.are.equal("192.168.10.12\n", a)
    assert.are.equal("203.0.113.7\n", b)
    assert.are.equal("", c)
  end)
end)
