-- The phoenix command line with every guest reached through the test
-- guest driver (tests/helpers/fake_guest.lua), for CLI tests of verbs that
-- work inside guests while the real drivers need Proxmox or LXC:
--   phoenix lua tests/helpers/phoenix_fake_guests.lua GUESTS_DIR VERB ARGS...
-- Guest files live under GUESTS_DIR/<id>/; docker, nginx, systemctl,
-- update-ca-certificates and step succeed without running; each call is
-- appended to GUESTS_DIR/calls.log.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local fake_guest = require "fake_guest"
local Base = require "phoenix.target.base"
local fs = require "px.fs"

local guests = fake_guest.new(arg[1])
local function ok() return { code = 0, stdout = "", stderr = "" } end
for _, name in ipairs { "docker", "nginx", "systemctl", "update-ca-certificates", "step" } do
  guests.handlers[name] = ok
end
function Base.driver(_, kind)
  if kind == "ct" or kind == "vm" then return guests end
  return nil, kind .. " guests are not supported here"
end

local code = require("phoenix.main").main({ table.unpack(arg, 2) })
local log = (fs.read(arg[1] .. "/calls.log") or "") .. table.concat(guests.calls, "\n") .. (#guests.calls > 0 and "\n" or "")
assert(fs.write(arg[1] .. "/calls.log", log))
return code
