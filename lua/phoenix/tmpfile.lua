-- Short-lived files on the phoenix host for tools that take a file name
-- (lxc-create -f, lxc-snapshot -c, pct push/pull): in a private directory
-- (0700), removed with it.
local fs = require "px.fs"
local sys = require "px.sys"

local M = {}

local counter = 0

-- new(content | nil) -> path, done | nil, msg. done() removes the file and
-- its directory.
function M.new(content)
  counter = counter + 1
  local dir = string.format("/tmp/phoenix-%d-%d", sys.pid(), counter)
  local ok, err = fs.mkdir(dir, { mode = 0x1c0 })
  if not ok then return nil, err end
  local path = dir .. "/f"
  local function done()
    fs.remove(path)
    fs.remove(dir)
  end
  if content then
    ok, err = fs.write(path, content, { mode = 0x180 })
    if not ok then
      done()
      return nil, err
    end
  end
  return path, done
end

return M
