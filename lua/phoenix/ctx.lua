-- The context a recipe gets: its resource, the site, the target, options,
-- a logger, and helpers that yield to the scheduler while they wait.
local async = require "phoenix.async"
local util = require "phoenix.util"
local log = require "px.log"

local M = {}

-- An expected failure raised by ctx:fail (the engine reports the message
-- without a traceback).
local Failure = {}
Failure.__index = Failure
Failure.__tostring = function(f) return f.message end
M.Failure = Failure

function M.is_failure(v) return getmetatable(v) == Failure end

function M.failure(msg) return setmetatable({ message = msg }, Failure) end

local Logger = {}
Logger.__index = Logger

local function emit(self, fn, fmt, ...)
  local msg = select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt)
  fn(self.prefix .. msg, { resource = self.id })
end
function Logger:debug(fmt, ...) emit(self, log.debug, fmt, ...) end
function Logger:info(fmt, ...) emit(self, log.info, fmt, ...) end
function Logger:warn(fmt, ...) emit(self, log.warn, fmt, ...) end
function Logger:error(fmt, ...) emit(self, log.error, fmt, ...) end

local Ctx = {}
Ctx.__index = Ctx

local RUN_OWN = { check = true, ok_codes = true }

-- ctx:run{argv=..., check=true, ok_codes={0}, ...px.exec options}
-- -> result | nil, message [, result]
-- Fails when the command cannot start, times out, or exits with a code not
-- in ok_codes (check=false accepts any exit code).
function Ctx:run(o)
  local opts = {}
  for k, v in pairs(o) do
    if not RUN_OWN[k] then opts[k] = v end
  end
  local res, err = self.target:run(opts)
  if not res then return nil, util.command_error(o.argv, nil, err) end
  if res.timed_out then return nil, util.command_error(o.argv, res), res end
  if o.check ~= false then
    local ok = false
    for _, c in ipairs(o.ok_codes or { 0 }) do
      if res.code == c then ok = true end
    end
    if not ok then return nil, util.command_error(o.argv, res), res end
  end
  return res
end

-- ctx:http{...px.http options} -> response | nil, message (yields while waiting)
function Ctx:http(o)
  local http = require "px.http" -- loaded on first use: most runs speak no HTTP
  local h, err = http.start(o)
  if not h then return nil, err end
  return async.wait(h)
end

function Ctx:sleep(seconds) async.sleep(seconds) end

function Ctx:fail(msg) error(M.failure(msg), 0) end

-- new{resource=, site=, target=, options=} -> ctx
function M.new(o)
  local r = o.resource
  return setmetatable({
    id = r.id,
    resource = r,
    site = o.site,
    target = o.target,
    options = o.options or {},
    log = setmetatable({ id = r.id, prefix = r.id .. ": " }, Logger),
  }, Ctx)
end

return M
