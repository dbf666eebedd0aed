-- px.git against repositories made here with the git CLI (paths and file://).
-- git daemon (git://) is in tests/integration/git_daemon_spec.lua.
local fs = require "px.fs"
local git = require "px.git"
local log = require "px.log"
local servers = require "servers"
local gitrepo = require "gitrepo"

local missing = servers.missing { "git", "--version" }

describe("px.git", function()
  if missing then
    print("SKIP git_spec: " .. missing)
    it("needs the git CLI to make repositories", function() pending(missing) end)
    return
  end

  local base, repo, c1, c2
  setup(function()
    base = servers.tmpdir("git")
    repo = gitrepo.new(base, "src")
    c1 = repo:commit({ ["compose.yml"] = "services: {}\n", ["dir/env"] = "A=1\n" }, "one")
    repo:git("tag", "-a", "v1.0", "-m", "release 1.0")
    repo:git("tag", "light")
    c2 = repo:commit({ ["compose.yml"] = "services: {web: {}}\n" }, "two")
    repo:git("branch", "stable", c1)
  end)
  teardown(function() if base then servers.run { "rm", "-rf", base } end end)

  it("resolves HEAD, branches, tags (annotated peeled) and full shas", function()
    assert.equals(c2, git.resolve(repo.dir))
    assert.equals(c2, git.resolve(repo.dir, "HEAD"))
    assert.equals(c2, git.resolve("file://" .. repo.dir, "main"))
    assert.equals(c1, git.resolve(repo.dir, "stable"))
    assert.equals(c1, git.resolve(repo.dir, "refs/heads/stable"))
    assert.equals(c1, git.resolve(repo.dir, "v1.0"))
    assert.equals(c1, git.resolve(repo.dir, "refs/tags/v1.0"))
    assert.equals(c1, git.resolve(repo.dir, "light"))
    assert.equals(c1, git.resolve(repo.dir, c1))
    assert.not_equals(c1, repo:git("rev-parse", "v1.0")) -- the tag object itself
  end)

  it("prefers a tag over a branch of the same name, as git does", function()
    repo:git("tag", "both", c1)
    repo:git("branch", "both", c2)
    assert.equals(c1, git.resolve(repo.dir, "both"))
    assert.equals(c2, git.resolve(repo.dir, "refs/heads/both"))
  end)

  it("sees a branch move", function()
    local r = gitrepo.new(base, "moving")
    local a = r:commit({ f = "1" }, "a")
    assert.equals(a, git.resolve(r.dir, "main"))
    local b = r:commit({ f = "2" }, "b")
    assert.equals(b, git.resolve(r.dir, "main"))
    r:git("reset", "-q", "--hard", a)
    assert.equals(a, git.resolve(r.dir, "main"))
  end)

  it("says what is wrong for a bad ref or URL", function()
    local sha, err = git.resolve(repo.dir, "no-such-branch")
    assert.is_nil(sha)
    assert.equals(repo.dir .. ": ref 'no-such-branch' not found (no such branch, tag or HEAD)", err)
    sha, err = git.resolve(base .. "/absent")
    assert.is_nil(sha)
    assert.equals(base .. "/absent: no such repository (the path does not exist)", err)
    sha, err = git.resolve("file://" .. base .. "/absent", "main")
    assert.is_nil(sha)
    assert.matches("^file://" .. base:gsub("%p", "%%%0") .. "/absent: ", err)
    local port = servers.free_ports(1)[1]
    sha, err = git.resolve("https://deploy:tok3n-value@127.0.0.1:" .. port .. "/r.git", "main")
    assert.is_nil(sha)
    assert.matches("^https://deploy:%(secret%)@127%.0%.0%.1:%d+/r%.git: .*[Cc]onnection refused", err)
    assert.is_nil(err:find("tok3n-value", 1, true))
    sha, err = git.resolve("https://ghp_tokenonly123@127.0.0.1:" .. port .. "/r.git")
    assert.is_nil(sha)
    assert.matches("^https://%(secret%)@127%.0%.0%.1:%d+/r%.git: ", err)
    assert.is_nil(err:find("ghp_tokenonly123", 1, true))
    assert.has_error(function() git.resolve(repo.dir, "") end)
    assert.has_error(function() git.resolve() end)
  end)

  it("runs messages through px.log.scrub", function()
    log.redact("hidden-repo-name")
    local _, err = git.resolve(base .. "/hidden-repo-name")
    assert.matches("%(secret%)", err)
    assert.is_nil(err:find("hidden-repo-name", 1, true))
  end)

  it("fetches into a bare cache, then only when the ref moved", function()
    local r = gitrepo.new(base, "stack")
    local a = r:commit({ ["docker-compose.yml"] = "version: '3'\n" }, "a")
    local cache = base .. "/cache/stack.git"
    local sha, downloaded = git.fetch("file://" .. r.dir, cache, "main")
    assert.equals(a, sha)
    assert.is_true(downloaded)
    assert.is_true(fs.exists(cache .. "/HEAD")) -- a bare repository
    assert.is_false(fs.exists(cache .. "/.git"))
    assert.equals("version: '3'\n", git.read_file(cache, sha, "docker-compose.yml"))
    sha, downloaded = git.fetch("file://" .. r.dir, cache, "main")
    assert.equals(a, sha)
    assert.is_false(downloaded)
    local b = r:commit({ ["docker-compose.yml"] = "version: '3.8'\n" }, "b")
    sha, downloaded = git.fetch(r.dir, cache, "main")
    assert.equals(b, sha)
    assert.is_true(downloaded)
    assert.equals("version: '3.8'\n", git.read_file(cache, b, "docker-compose.yml"))
    assert.equals("version: '3'\n", git.read_file(cache, a, "docker-compose.yml"))
    local used = base .. "/used"
    assert(fs.mkdir(used))
    assert(fs.write(used .. "/notes.txt", "mine\n"))
    local s2, e2 = git.fetch(r.dir, used, "main")
    assert.is_nil(s2)
    assert.equals(used .. ": exists and is not a bare git repository", e2)
    assert.is_false(fs.exists(used .. "/HEAD"))
    local _, err = git.fetch(r.dir, cache, "nope")
    assert.equals(r.dir .. ": ref 'nope' not found (no such branch, tag or HEAD)", err)
  end)

  it("fetches tags and a full sha on a branch", function()
    local cache = base .. "/cache/src.git"
    assert.equals(c1, (git.fetch(repo.dir, cache, "v1.0")))
    assert.equals(c2, (git.fetch(repo.dir, cache, c2)))
    local missing_sha = string.rep("ab", 20)
    local sha, err = git.fetch(repo.dir, base .. "/cache/other.git", missing_sha)
    assert.is_nil(sha)
    assert.equals(repo.dir .. ": commit " .. missing_sha .. " is not on any branch or tag of the remote", err)
  end)

  it("reads files and lists trees at a commit", function()
    local cache = base .. "/cache/src.git"
    assert(git.fetch(repo.dir, cache))
    assert.equals("services: {}\n", git.read_file(cache, c1, "compose.yml"))
    assert.equals("services: {web: {}}\n", git.read_file(cache, c2, "/compose.yml"))
    assert.equals("A=1\n", git.read_file(cache, c1, "dir/env"))
    assert.equals("A=1\n", git.read_file(repo.dir, "v1.0", "dir/env")) -- a work tree and a ref work too
    local content, err = git.read_file(cache, c1, "missing.yml")
    assert.is_nil(content)
    assert.equals(cache .. ": " .. c1 .. ":missing.yml: no such file or directory", err)
    content, err = git.read_file(cache, c1, "dir")
    assert.equals(cache .. ": " .. c1 .. ":dir: not a file", err)
    content, err = git.read_file(cache, string.rep("0", 40), "compose.yml")
    assert.equals(cache .. ": commit '" .. string.rep("0", 40) .. "' not found", err)
    content, err = git.read_file(base .. "/not-a-repo", c1, "compose.yml")
    assert.is_nil(content)
    assert.matches("^" .. base:gsub("%p", "%%%0") .. "/not%-a%-repo: ", err)
    local list = assert(git.ls_tree(cache, c1))
    assert.equals(2, #list)
    assert.same({ name = "compose.yml", type = "blob", mode = 33188 }, { name = list[1].name, type = list[1].type, mode = list[1].mode })
    assert.equals("tree", list[2].type)
    assert.equals(40, #list[2].id)
    list = assert(git.ls_tree(cache, c1, "dir"))
    assert.equals("env", list[1].name)
    local _, e2 = git.ls_tree(cache, c1, "compose.yml")
    assert.matches("not a directory", e2)
  end)
end)
