-- The cloud image a template VM is built from (`template_image`): an
-- absolute path on the host, a file name looked up in the storages that
-- hold ISO images or imports, or a URL downloaded into the first of them.
local storage = require "phoenix.vm.storage"

local M = {}

local function basename(s) return s:match("([^/]+)$") end

-- A download hint for the well-known Ubuntu cloud image names.
local function hint_url(name)
  local release = name:match("^(%a+)%-server%-cloudimg%-")
  if release then return "https://cloud-images.ubuntu.com/" .. release .. "/current/" .. name end
end

--[[ locate(t, spec) -> image | nil, msg. image = { path = host path (nil when
not found), url = URL to fetch (when spec is one and the file is not there
yet), name, looked = { dirs ... } } ]]
function M.locate(t, spec)
  if spec:sub(1, 1) == "/" then
    return { name = basename(spec), path = t:exists(spec) and spec or nil, looked = { spec } }
  end
  local storages, err = storage.read(t)
  if not storages then return nil, err end
  local dirs = {}
  for _, d in ipairs(storage.dirs(storages, "iso")) do dirs[#dirs + 1] = d.dir end
  for _, d in ipairs(storage.dirs(storages, "import")) do dirs[#dirs + 1] = d.dir end
  local url = spec:match("^https?://") and spec or nil
  local name = url and basename(spec:gsub("[?#].*$", "")) or spec
  if not name or name == "" or name:find("/", 1, true) then
    return nil, "template_image '" .. spec .. "': expected an absolute path, a file name or a URL ending in a file name"
  end
  for _, d in ipairs(dirs) do
    if t:exists(d .. "/" .. name) then return { name = name, path = d .. "/" .. name, looked = dirs } end
  end
  local img = { name = name, looked = dirs }
  if url then
    if #dirs == 0 then
      return nil, "no dir storage holds ISO images (content iso) to download " .. name .. " into"
    end
    img.url, img.dest = url, dirs[1] .. "/" .. name
  end
  return img
end

-- missing(img) -> the message for an image that is not on the host
function M.missing(img)
  local msg = string.format("cloud image '%s' is not on the host (looked in %s)", img.name,
    #img.looked > 0 and table.concat(img.looked, ", ") or "no storage with content iso or import")
  local url = hint_url(img.name)
  local dir = img.looked[1] or "/var/lib/vz/template/iso"
  if url then
    return msg .. string.format(": download it with `wget -P %s %s`, or set template_image to that URL", dir, url)
  end
  return msg .. ": copy it to " .. dir .. ", or set template_image to its URL"
end

-- fetch(ctx, img) -> host path | nil, msg: downloads img.url with curl on
-- the host (into a .part file, renamed when complete).
function M.fetch(ctx, img)
  local t = ctx.target
  local dest = img.dest
  local part = dest .. ".part"
  local ok, err = t:mkdir(dest:match("^(.*)/[^/]*$"))
  if not ok then return nil, err end
  ctx.log:info("downloading %s", img.url)
  local res, rerr = ctx:run({ argv = { "curl", "-fsSL", "--retry", "3", "-o", t:path(part), img.url },
    timeout_ms = 3600000 })
  if not res then
    t:remove(part)
    return nil, "downloading the cloud image failed: " .. rerr
  end
  res, rerr = ctx:run({ argv = { "mv", "-f", t:path(part), t:path(dest) } })
  if not res then return nil, rerr end
  return dest
end

return M
