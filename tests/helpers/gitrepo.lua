-- Git repositories made with the git CLI for px.git tests: a fixed identity
-- and no user or system config, so results do not depend on the machine.
local fs = require "px.fs"
local servers = require "servers"

local M = {}

local function env(home)
  return {
    PATH = os.getenv("PATH") or "/usr/bin:/bin", HOME = home, GIT_CONFIG_NOSYSTEM = "1",
    GIT_AUTHOR_NAME = "phoenix test", GIT_AUTHOR_EMAIL = "test@phoenix.invalid",
    GIT_COMMITTER_NAME = "phoenix test", GIT_COMMITTER_EMAIL = "test@phoenix.invalid",
  }
end

local Repo = {}
Repo.__index = Repo

-- Runs git in the repository; returns stdout without the trailing newline.
function Repo:git(...)
  local argv = { "git", ... }
  return (servers.run(argv, { cwd = self.dir, env = env(self.home) }):gsub("\n$", ""))
end

-- Writes files ({ ["path"] = "content" }) and commits them; returns the sha.
function Repo:commit(files, message)
  for path, content in pairs(files) do
    local full = self.dir .. "/" .. path
    local parent = full:match("^(.*)/[^/]*$")
    assert(fs.mkdir(parent, { parents = true }))
    assert(fs.write(full, content))
  end
  self:git("add", "-A")
  self:git("commit", "-q", "-m", message or "commit")
  return self:git("rev-parse", "HEAD")
end

-- A new repository at base/name with branch main.
function M.new(base, name)
  local self = setmetatable({ dir = base .. "/" .. name, home = base }, Repo)
  servers.run({ "git", "init", "-q", "-b", "main", self.dir }, { env = env(base) })
  return self
end

return M
