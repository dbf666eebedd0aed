-- phoenix.host.fwfile on real pve-firewall files (tests/fixtures/firewall).
local fw = require "phoenix.host.fwfile"
local fs = require "px.fs"
local kit = require "testkit"

local DIR = kit.source_dir .. "/tests/fixtures/firewall/"
local function sample(name) return assert(fs.read(DIR .. name)) end

describe("phoenix.host.fwfile", function()
  it("gives every sample back byte for byte", function()
    for _, name in ipairs({ "example-cluster.fw", "example-host.fw", "example-100.fw", "basic1-host.fw",
      "group1-cluster.fw" }) do
      local text = sample(name)
      assert.are.equal(text, fw.format(fw.parse(text)), name)
    end
    assert.are.equal("[OPTIONS]\nenable: 1\n", fw.format(fw.parse("[OPTIONS]\nenable: 1")))
    assert.are.equal("", fw.format(fw.parse("")))
  end)

  it("reads options and rules as pve-firewall does", function()
    local doc = fw.parse(sample("example-100.fw"))
    local o = fw.options(doc)
    assert.are.equal("DROP", o.policy_in)
    assert.are.equal("0:3", o.ips_queues)
    assert.is_nil(o["#ips_queues"])
    local rules = fw.rules(doc)
    assert.are.equal(14, #rules)
    local r = rules[3].rule
    assert.are.same({ enabled = true, type = "in", macro = "SSH", action = "ACCEPT", iface = "net0",
      source = "192.168.2.192", comment = "only allow SSH from  192.168.2.192" }, r)
    local disabled = rules[10].rule
    assert.is_false(disabled.enabled)
    assert.are.equal("disabled rule", disabled.comment)
    local group = rules[11].rule
    assert.are.equal("group", group.type)
    assert.are.equal("group1", group.action)
    -- a rule with odd spacing formats as pve-firewall writes it
    assert.are.equal("OUT REJECT -p tcp -dport 81", fw.format_rule(fw.rules(fw.parse(sample("basic1-host.fw")))[1].rule))
    assert.is_nil(fw.parse_rule("IN ACCEPT -bogus 1"))
    assert.is_nil(fw.parse_rule("SIDEWAYS ACCEPT"))
  end)

  it("maps site rules to rule lines", function()
    local r = assert(fw.from_site({ type = "in", action = "accept", source = "192.168.10.0/24", proto = "tcp",
      port = "22,8006", comment = "SSH and the web UI" }))
    assert.are.equal("IN ACCEPT -source 192.168.10.0/24 -p tcp -dport 22,8006 # SSH and the web UI", fw.format_rule(r))
    r = assert(fw.from_site({ type = "out", action = "DROP", macro = "DNS", iface = "net0", enable = false }))
    assert.are.equal("|OUT DNS(DROP) -i net0", fw.format_rule(r))
    assert.are.equal("GROUP web -i net0", fw.format_rule(assert(fw.from_site({ type = "group", action = "web", iface = "net0" }))))
    local bad, err = fw.from_site({ type = "in", action = "ALLOW" })
    assert.is_nil(bad)
    assert.matches("ACCEPT, DROP or REJECT", err)
    bad, err = fw.from_site({ type = "in", action = "ACCEPT", source = "1.2.3.4 -dest 5.6.7.8" })
    assert.is_nil(bad)
    assert.matches("blanks", err)
  end)

  it("changes only the rules that differ and keeps comments and other sections", function()
    local text = sample("example-cluster.fw")
    local doc = fw.parse(text)
    fw.set_option(doc, "policy_in", "REJECT")
    fw.set_rules(doc, { "IN SSH(ACCEPT) -i vmbr0", "IN ACCEPT -p tcp -dport 8006 # web UI" })
    local out = fw.format(doc)
    local expect = text:gsub("policy_in: DROP", "policy_in: REJECT")
      :gsub("IN  SSH%(ACCEPT%) %-i vmbr0\n", "IN  SSH(ACCEPT) -i vmbr0\nIN ACCEPT -p tcp -dport 8006 # web UI\n", 1)
    assert.are.equal(expect, out)
    -- the same edit again changes nothing
    assert.are.equal(out, fw.format(fw.set_rules(fw.parse(out),
      { "IN SSH(ACCEPT) -i vmbr0", "IN ACCEPT -p tcp -dport 8006 # web UI" })))
  end)

  it("replaces an edited rule in place and drops extra ones", function()
    local text = "# host rules\n[OPTIONS]\n\nenable: 1\n\n[RULES]\n\n# ssh first\nIN ACCEPT -p tcp -dport 2222\n"
      .. "IN ACCEPT -p tcp -dport 80\n# trailing note\nIN DROP -p udp\n\n[IPSET x]\n10.0.0.1\n"
    local doc = fw.set_rules(fw.parse(text), { "IN ACCEPT -p tcp -dport 22", "IN ACCEPT -p tcp -dport 80" })
    assert.are.equal("# host rules\n[OPTIONS]\n\nenable: 1\n\n[RULES]\n\n# ssh first\nIN ACCEPT -p tcp -dport 22\n"
      .. "IN ACCEPT -p tcp -dport 80\n# trailing note\n\n[IPSET x]\n10.0.0.1\n", fw.format(doc))
  end)

  it("makes the sections a new file needs", function()
    local doc = fw.parse(nil)
    fw.set_option(doc, "enable", "1")
    fw.set_option(doc, "policy_in", "DROP")
    fw.set_rules(doc, { "IN ACCEPT -p tcp -dport 22" })
    assert.are.equal("[OPTIONS]\n\nenable: 1\npolicy_in: DROP\n\n[RULES]\n\nIN ACCEPT -p tcp -dport 22\n", fw.format(doc))
    -- an existing rules-only file gets [OPTIONS] first
    doc = fw.parse("[RULES]\n\nIN ACCEPT -p tcp -dport 22\n")
    fw.set_option(doc, "enable", "1")
    assert.are.equal("[OPTIONS]\n\nenable: 1\n\n[RULES]\n\nIN ACCEPT -p tcp -dport 22\n", fw.format(doc))
  end)
end)
