-- px.git over git:// against a real `git daemon` on 127.0.0.1.
local git = require "px.git"
local servers = require "servers"
local gitrepo = require "gitrepo"

local missing = servers.missing { "git", "--version" } or servers.missing { servers.python, "-c", "pass" }

describe("px.git over git daemon", function()
  if missing then
    print("SKIP git_daemon_spec: " .. missing)
    it("needs git and python3", function() pending(missing) end)
    return
  end

  local base, repo, daemon, c1, c2, url
  setup(function()
    base = servers.tmpdir("gitd")
    repo = gitrepo.new(base, "stacks")
    c1 = repo:commit({ ["web/compose.yml"] = "services: {web: {image: nginx}}\n" }, "one")
    repo:git("tag", "-a", "v1", "-m", "v1")
    c2 = repo:commit({ ["web/compose.yml"] = "services: {web: {image: caddy}}\n" }, "two")
    daemon = servers.start_git_daemon(base)
    url = daemon.url .. "/stacks"
  end)
  teardown(function()
    if daemon then daemon.stop() end
    if base then servers.run { "rm", "-rf", base } end
  end)

  it("resolves refs without cloning", function()
    assert.equals(c2, git.resolve(url))
    assert.equals(c2, git.resolve(url, "main"))
    assert.equals(c1, git.resolve(url, "v1"))
    local c3 = repo:commit({ ["web/compose.yml"] = "services: {}\n" }, "three")
    assert.equals(c3, git.resolve(url, "main"))
    repo:git("reset", "-q", "--hard", c2)
    assert.equals(c2, git.resolve(url, "main"))
  end)

  it("fetches into a cache and reads files at a commit", function()
    local cache = base .. "/cache/stacks.git"
    local sha, downloaded = git.fetch(url, cache, "v1")
    assert.equals(c1, sha)
    assert.is_true(downloaded)
    assert.equals("services: {web: {image: nginx}}\n", git.read_file(cache, c1, "web/compose.yml"))
    sha, downloaded = git.fetch(url, cache, "main")
    assert.equals(c2, sha)
    assert.is_false(downloaded) -- the first fetch brought every branch
    assert.equals("services: {web: {image: caddy}}\n", git.read_file(cache, sha, "web/compose.yml"))
  end)

  it("fails clearly for an unknown repository, a bad ref, a closed port", function()
    local sha, err = git.resolve(daemon.url .. "/nope", "main")
    assert.is_nil(sha)
    assert.matches("^git://127%.0%.0%.1:%d+/nope: ", err)
    sha, err = git.resolve(url, "v9")
    assert.equals(url .. ": ref 'v9' not found (no such branch, tag or HEAD)", err)
    local port = servers.free_ports(1)[1]
    sha, err = git.fetch("git://127.0.0.1:" .. port .. "/stacks", base .. "/cache/x.git")
    assert.is_nil(sha)
    assert.matches("Connection refused", err)
  end)
end)
