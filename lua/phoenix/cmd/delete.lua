local cli = require "phoenix.cli"
local run = require "phoenix.run"

return {
  summary = "Delete a guest phoenix created (it carries the phoenix tag), with all its disks.",
  usage = "[options] ID --yes",
  description = "Without --yes, says what would be deleted and exits 2. A guest that is still declared\n"
    .. "in the site files comes back on the next converge.",
  options = cli.concat(run.options, run.apply_options, { { "yes", help = "really delete" } }),
  run = function(opts, args)
    if #args ~= 1 then
      io.stderr:write("phoenix delete: name exactly one guest ID (see 'phoenix delete --help')\n")
      return run.EXIT_USAGE
    end
    local env, code = run.prepare(opts)
    if not env then return code end
    local r, err = run.find_guest(env.site, args[1])
    if not r then
      -- not declared (any more): it may still be a guest phoenix owns
      local t, name = args[1]:match("^(%a+):(%d+)$")
      if not t then io.stderr:write("phoenix delete: ", err, " (for an undeclared guest say lxc:ID or vm:ID)\n") return run.EXIT_USAGE end
      r = { id = t .. ":" .. name, type = t, name = name, deps = {}, scope = "guest",
        want = { ctid = t == "lxc" and tonumber(name) or nil, vmid = t == "vm" and tonumber(name) or nil } }
    elseif not opts.quiet then
      io.stderr:write("note: " .. r.id .. " is still declared in the site files; converge would create it again\n")
    end
    return run.destroy(env, r, opts)
  end,
}
