-- traefik:config and traefik:stacks: Traefik's file-provider dynamic
-- configuration inside the Traefik container, one file each in
-- /etc/traefik/dynamic/ (a directory provider with watch: true reloads
-- them): phoenix-services.yml (the guests' traefik_service, written before
-- the stacks) and phoenix-stacks.yml (the stacks' traefik_labels, after).
-- A file is pushed only when its content differs from what is there.
local guest = require "phoenix.guest"
local traefik = require "phoenix.traefik"
local yaml = require "phoenix.yaml"
local fs = require "px.fs"

local DIR = "/etc/traefik/dynamic"

local function target_file(want)
  return (want.dynamic_dir or DIR) .. "/" .. (want.stacks and "phoenix-stacks.yml" or "phoenix-services.yml")
end

local function render(ctx, want)
  local doc, err
  if want.stacks then
    doc, err = traefik.from_stacks(want.stacks)
  else
    doc, err = traefik.from_services(want.services, { entry_points = want.entry_points })
  end
  if not doc then return nil, err end
  return "# Written by phoenix (" .. ctx.id .. ") from the site files; changes here are overwritten.\n"
    .. yaml.encode(doc)
end

local function summary(text)
  return #traefik.router_names(text) .. " routers, sha256 " .. fs.sha256(text):sub(1, 12)
end

return {
  type = "traefik",

  describe = function(want)
    return "Traefik routes of the " .. (want.stacks and "stacks" or "guests") .. " in " .. tostring(want.guest)
  end,

  inspect = function(ctx, want)
    local content, err = render(ctx, want)
    if not content then return nil, err end
    local path = target_file(want)
    local present, eerr = guest.exists(ctx, want.guest, path)
    if present == nil then return nil, eerr end
    local have = { exists = present, path = path, wanted = content }
    if present then
      local text, perr = guest.pull(ctx, want.guest, path)
      if not text then return nil, perr end
      have.content = text
    end
    return have
  end,

  diff = function(_, _, have)
    if not have.exists then
      return { { action = "create", field = have.path, to = summary(have.wanted) } }
    end
    if have.content ~= have.wanted then
      local before, after = {}, {}
      for _, n in ipairs(traefik.router_names(have.content)) do before[n] = true end
      local notes = {}
      for _, n in ipairs(traefik.router_names(have.wanted)) do
        after[n] = true
        if not before[n] then notes[#notes + 1] = "+" .. n end
      end
      for n in pairs(before) do
        if not after[n] then notes[#notes + 1] = "-" .. n end
      end
      table.sort(notes)
      return { { action = "update", field = have.path, from = summary(have.content), to = summary(have.wanted),
        note = #notes > 0 and ("routers " .. table.concat(notes, " ")) or nil } }
    end
    return {}
  end,

  apply = function(ctx, want, have)
    local ok, err = guest.exec(ctx, want.guest, { "mkdir", "-p", (have.path:match("^(.*)/[^/]*$")) })
    if not ok then return nil, err end
    return guest.push(ctx, want.guest, have.path, have.wanted, { mode = 420 })
  end,
}
