-- What a stack should run: compose content from a file next to the site,
-- or a git repository at the commit its ref points to now. Ref lookups are
-- shared by the whole run (ten stacks of one repository: one ls-remote);
-- fetching happens only when a deploy needs the files at a new commit.
local fs = require "px.fs"
local git = require "px.git"
local sys = require "px.sys"
local runcache = require "phoenix.runcache"

local M = {}

-- A URL for messages: a password (or a token alone) in it shows as (secret).
function M.shown_url(url)
  local u = tostring(url):gsub("^(%a[%w+.-]*://)([^/@]+)@", function(scheme, userinfo)
    local user = userinfo:match("^([^:]*):")
    if user then return scheme .. user .. ":(secret)@" end
    return scheme .. "(secret)@"
  end)
  return u
end

-- The phoenix directory: compose_file_path is relative to it (the parent
-- of the site's etc/ directory, /usr/local/phoenix_hypervisor).
local function phoenix_dir(site)
  local dir = site and site.dir
  if not dir then return nil end
  return dir:match("^(.*)/[^/]+/*$") or "/"
end

function M.compose_path(site, path)
  if path:sub(1, 1) == "/" then return path end
  local base = phoenix_dir(site)
  if not base then return nil, "compose_file_path '" .. path .. "' is relative and the site has no directory" end
  return base .. "/" .. path
end

-- full_ref(ctx, url, ref) -> full ref name, commit | nil, msg
-- Portainer clones a full ref name (refs/heads/main); the site may say
-- "main" or "v1.2": a tag wins over a branch, as in git.
function M.full_ref(ctx, url, ref)
  ref = ref or "main"
  if ref:match("^%x+$") and #ref == 40 then
    return nil, "git ref " .. ref .. " is a commit: Portainer deploys branches and tags, not commits"
  end
  local store = runcache.store(ctx.target)
  return runcache.memo(store, "git-ref:" .. url .. "#" .. ref, function()
    local names = ref:find("^refs/") and { ref } or { "refs/tags/" .. ref, "refs/heads/" .. ref }
    local last
    for _, name in ipairs(names) do
      local sha, err = git.resolve(url, name)
      if sha then return name, sha end
      last = err
      if not tostring(err):find("not found", 1, true) then break end
    end
    return nil, last
  end)
end

-- wanted(ctx, want) -> src | nil, msg
-- src = { kind = "git", url, ref, commit, compose_file, label }
--     | { kind = "compose", path, content, sha256, label }
function M.wanted(ctx, want)
  if want.git then
    local g = want.git
    local ref, commit = M.full_ref(ctx, g.url, g.ref)
    if not ref then return nil, commit end
    local file = g.compose_file or "docker-compose.yml"
    local cred = g.credentials or {}
    return { kind = "git", url = g.url, ref = ref, commit = commit, compose_file = file,
      username = cred.username, password = cred.password,
      label = string.format("%s %s @%s, %s", M.shown_url(g.url), ref, commit:sub(1, 12), file) }
  end
  if not want.compose_file_path then return nil, "the stack has neither git nor compose_file_path" end
  local path, perr = M.compose_path(ctx.site, want.compose_file_path)
  if not path then return nil, perr end
  local content, err = fs.read(path)
  if not content then return nil, "compose file: " .. err end
  local sha = fs.sha256(content)
  return { kind = "compose", path = path, content = content, sha256 = sha,
    label = string.format("%s (sha256 %s)", want.compose_file_path, sha:sub(1, 12)) }
end

local function cache_dir(ctx)
  return (ctx.options and ctx.options.cache_dir) or sys.getenv("PHOENIX_CACHE_DIR") or "/var/cache/phoenix"
end

-- git_file(ctx, src) -> content | nil, msg
-- Fetches the repository into the run's git cache (a download only when
-- the commit is not there yet) and reads the compose file at src.commit.
function M.git_file(ctx, src)
  local dir = cache_dir(ctx) .. "/git/" .. fs.sha256(src.url):sub(1, 32)
  local ok, err = fs.mkdir(cache_dir(ctx) .. "/git", { parents = true })
  if not ok then return nil, "git cache: " .. tostring(err) end
  local sha, ferr = git.fetch(src.url, dir, src.commit)
  if not sha then return nil, ferr end
  local content, rerr = git.read_file(dir, src.commit, src.compose_file)
  if not content then return nil, rerr end
  return content
end

return M
