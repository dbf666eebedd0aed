-- How plans and results look: human blocks, a status table, and a stable
-- JSON form (documented in docs/plan-json.md).
local json = require "px.json"
local log = require "px.log"
local sys = require "px.sys"
local util = require "phoenix.util"

local M = {}

local function colors_on()
  local nc = sys.getenv("NO_COLOR")
  return sys.isatty("stdout") and not (nc and nc ~= "")
end

local COLOR = { ["+"] = "\27[32m", ["~"] = "\27[33m", ["-"] = "\27[31m", ["!"] = "\27[35m" }

local function value(c, v)
  if c.secret then return v == nil and "(none)" or "(secret)" end
  return util.show(v)
end

-- One change as a plan line (without indentation).
function M.change_line(c, color)
  local sym = ({ create = "+", update = "~", delete = "-", run = "~" })[c.action]
  if c.disruptive then sym = "!" end
  local field = c.field and tostring(c.field) or nil
  local text
  if c.action == "update" then
    text = string.format("%s: %s → %s", field or "(resource)", value(c, c.from), value(c, c.to))
  elseif c.action == "create" then
    text = field and string.format("%s: %s", field, value(c, c.to)) or "create"
  elseif c.action == "delete" then
    text = field and string.format("%s: %s", field, value(c, c.from)) or "delete"
  else
    text = (field or "run") .. (c.to ~= nil and (": " .. value(c, c.to)) or "")
  end
  local notes = {}
  if c.note then notes[#notes + 1] = c.note end
  if c.disruptive then notes[#notes + 1] = c.disruptive end
  if c.held then notes[#notes + 1] = "held: " .. c.held end
  if #notes > 0 then text = text .. "  (" .. table.concat(notes, "; ") .. ")" end
  local line = sym .. " " .. text
  if color and COLOR[sym] then line = COLOR[sym] .. line .. "\27[0m" end
  return log.scrub(line)
end

local function header(res, describe)
  local d = describe and describe(res.id)
  return res.id .. (d and ("  " .. d) or "")
end

-- plan_text(report, describe) -> text; describe(id) -> short description | nil
function M.plan_text(report, describe)
  local color = colors_on()
  local out = {}
  local c = { create = 0, update = 0, delete = 0, run = 0, disruptive = 0, held = 0 }
  for _, id in ipairs(report.order) do
    local res = report.results[id]
    if res.status == "pending" then
      out[#out + 1] = header(res, describe)
      for _, ch in ipairs(res.changes) do
        out[#out + 1] = "  " .. M.change_line(ch, color)
        c[ch.action] = c[ch.action] + 1
        if ch.disruptive then c.disruptive = c.disruptive + 1 end
        if ch.held then c.held = c.held + 1 end
      end
      out[#out + 1] = ""
    elseif res.status == "failed" then
      out[#out + 1] = header(res, describe)
      out[#out + 1] = "  error: " .. log.scrub(tostring(res.error))
      out[#out + 1] = ""
    end
  end
  local n = report.counts
  local changed = c.create + c.update + c.delete + c.run
  local summary
  if changed == 0 then
    summary = string.format("Plan: no changes; %d in sync", n.in_sync)
  else
    summary = string.format("Plan: %d to create, %d to change, %d to delete", c.create, c.update + c.run, c.delete)
    if c.disruptive > 0 then summary = summary .. string.format(" (%d disruptive, %d held)", c.disruptive, c.held) end
    summary = summary .. string.format("; %d resources in sync", n.in_sync)
  end
  if n.failed > 0 then summary = summary .. string.format(", %d failed to inspect", n.failed) end
  out[#out + 1] = summary .. "."
  return table.concat(out, "\n") .. "\n"
end

-- One finished resource during converge (nothing for quiet successes).
function M.result_text(res, verbose)
  local color = colors_on()
  local out = {}
  if res.status == "changed" or (res.status == "ok" and (#res.held > 0 or verbose)) then
    out[#out + 1] = string.format("%s: %s (%.2f s)", res.id, res.status, res.duration or 0)
    for _, ch in ipairs(res.changes) do out[#out + 1] = "  " .. M.change_line(ch, color) end
    for _, ch in ipairs(res.held) do out[#out + 1] = "  " .. M.change_line(ch, color) end
  elseif res.status == "failed" then
    out[#out + 1] = string.format("%s: failed: %s", res.id, log.scrub(tostring(res.error)))
    for _, ch in ipairs(res.changes) do out[#out + 1] = "  " .. M.change_line(ch, color) end
  elseif res.status == "skipped" then
    out[#out + 1] = string.format("%s: skipped (%s)", res.id, res.reason or "?")
  end
  if #out == 0 then return "" end
  return table.concat(out, "\n") .. "\n"
end

function M.summary_text(verb, report)
  local n = report.counts
  local held = 0
  for _, res in pairs(report.results) do held = held + #(res.held or {}) end
  local s = string.format("%s: %d ok, %d changed, %d failed, %d skipped in %.2f s", verb, n.ok, n.changed, n.failed,
    n.skipped, report.duration or 0)
  if held > 0 then s = s .. string.format("; %d change%s held (see above)", held, held == 1 and "" or "s") end
  if report.interrupted then s = s .. "; interrupted: no new work was started" end
  return s .. "\n"
end

-- status_text(report) -> a table: resource, state.
function M.status_text(report)
  local rows, width = {}, #"RESOURCE"
  for _, id in ipairs(report.order) do
    local res = report.results[id]
    local state
    if res.status == "in_sync" then state = "in sync"
    elseif res.status == "pending" then
      state = res.exists == false and "missing" or string.format("drift (%d change%s)", #res.changes,
        #res.changes == 1 and "" or "s")
    elseif res.status == "failed" then state = "failed: " .. log.scrub(tostring(res.error))
    else state = res.status .. (res.reason and (" (" .. res.reason .. ")") or "") end
    rows[#rows + 1] = { id, state }
    if #id > width then width = #id end
  end
  local out = { string.format("%-" .. width .. "s  %s", "RESOURCE", "STATE") }
  for _, r in ipairs(rows) do out[#out + 1] = string.format("%-" .. width .. "s  %s", r[1], r[2]) end
  return table.concat(out, "\n") .. "\n"
end

local function json_change(c)
  return {
    field = c.field, action = c.action, disruptive = c.disruptive or nil, held = c.held, note = c.note,
    from = c.secret and (c.from ~= nil and "(secret)" or nil) or c.from,
    to = c.secret and (c.to ~= nil and "(secret)" or nil) or c.to,
    secret = c.secret or nil, unsupported = c.unsupported,
  }
end

-- to_json(report, {timings=bool}) -> canonical JSON text (format phoenix.plan/1)
function M.to_json(report, opts)
  local resources = json.array({})
  for _, id in ipairs(report.order) do
    local res = report.results[id]
    local changes = json.array({})
    for _, c in ipairs(res.changes or {}) do changes[#changes + 1] = json_change(c) end
    local held = json.array({})
    for _, c in ipairs(res.held or {}) do held[#held + 1] = json_change(c) end
    resources[#resources + 1] = {
      id = id, type = res.type, name = res.name, status = res.status, exists = res.exists,
      changes = changes, held = held, error = res.error, reason = res.reason,
      duration = opts and opts.timings and res.duration or nil,
    }
  end
  local doc = {
    format = "phoenix.plan/1", mode = report.mode, resources = resources,
    summary = {
      resources = #report.order, changes = report.change_count, ok = report.counts.ok,
      changed = report.counts.changed, failed = report.counts.failed, skipped = report.counts.skipped,
      in_sync = report.counts.in_sync, pending = report.counts.pending, interrupted = report.interrupted,
    },
  }
  if opts and opts.timings then doc.duration = report.duration end
  return log.scrub(json.canonical(doc, { pretty = true })) .. "\n"
end

return M
