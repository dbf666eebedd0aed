-- The lxc-* tools for the lxc target's container driver: argv lists with
-- the driver's lxcpath, errors that name the command.
local util = require "phoenix.util"

local M = {}

-- run(d, tool, id, args, opts) -> result | nil, msg [, result]. opts are
-- px.exec options plus check = false (any exit code is a result).
function M.run(d, tool, id, args, opts)
  local argv = { tool, "-P", d.path }
  if id then argv[#argv + 1] = "-n"; argv[#argv + 1] = tostring(id) end
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local o = { argv = argv, timeout_ms = 600000 }
  for k, v in pairs(opts or {}) do
    if k ~= "check" then o[k] = v end
  end
  local res, err = d.t:run(o)
  if not res then return nil, util.command_error(argv, nil, err) end
  if res.code ~= 0 and not (opts and opts.check == false) then return nil, util.command_error(argv, res), res end
  return res
end

-- dir(d, id) -> <lxcpath>/<id>
function M.dir(d, id) return d.path .. "/" .. tostring(id) end

return M
