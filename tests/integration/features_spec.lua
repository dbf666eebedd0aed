-- The built-in feature scripts (etc/features/*.sh) in a real busybox
-- container, run exactly as the lxc/vm recipes run them:
--   lxc-attach -n CT -- env PHOENIX_FEATURE=<name> PHOENIX_...=... sh /var/lib/phoenix/features/<name>.sh
-- apt-get, dpkg, systemctl, curl, docker, nvidia-smi ... are recording
-- stand-ins (tests/fixtures/features/standins) first on the container's
-- PATH: calls that change something are logged to /fake/log, and each
-- feature is run twice (the second run changes nothing), with a changed
-- setting (only what depends on it is redone) and with a failure (a clear
-- message on stderr, a non-zero exit).
local exec = require "px.exec"
local fs = require "px.fs"
local sys = require "px.sys"

local SRC = sys.getenv("PHOENIX_SOURCE_DIR") or "."
local FIX = SRC .. "/tests/fixtures/features"
-- set by setup_container for each pass (busybox ash as `sh`, then dash)
local CT, ROOT, SHELL

local function run(argv, opts)
  local o = { argv = argv, timeout_ms = 120000 }
  for k, v in pairs(opts or {}) do o[k] = v end
  local r, err = exec.run(o)
  if not r then error(table.concat(argv, " ") .. ": " .. err, 2) end
  return r
end

local function must(argv)
  local r = run(argv)
  if r.code ~= 0 then error(table.concat(argv, " ") .. " exited " .. r.code .. ": " .. r.stderr, 2) end
  return r.stdout
end

local function skip_reason()
  if sys.uid() ~= 0 then return "needs root (lxc-create)" end
  for _, tool in ipairs { "lxc-create", "lxc-start", "lxc-attach", "lxc-destroy", "busybox" } do
    local r = exec.run { argv = { "sh", "-c", 'command -v "$1"', "sh", tool } }
    if not r or r.code ~= 0 then return tool .. " is not installed" end
  end
  if not fs.exists("/usr/share/lxc/templates/lxc-busybox") then return "no lxc busybox template" end
end

local function lines(text)
  local out = {}
  for l in (text or ""):gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

local function attach(argv)
  local a = { "lxc-attach", "--clear-env", "-n", CT, "--" }
  for _, v in ipairs(argv) do a[#a + 1] = v end
  return run(a)
end

-- ct_read(path) -> the file's content in the container, or nil.
local function ct_read(path)
  local r = attach { "cat", path }
  if r.code ~= 0 then return nil end
  return r.stdout
end

local function ct_sh(script)
  return (attach { "sh", "-c", script }.stdout:gsub("\n$", ""))
end

local function put(path, text, mode)
  assert(fs.mkdir(ROOT .. path:match("^(.*)/[^/]*$"), { parents = true }))
  assert(fs.write(ROOT .. path, text, { mode = mode or "0644" }))
end

local function fail_next(key, code, msg)
  put("/fake/fail/" .. key, code .. " " .. msg .. "\n")
end

local function clear_fail(key)
  fs.remove(ROOT .. "/fake/fail/" .. key)
end

-- feature(name, env) -> { code, stdout, stderr, log = mutating calls, queries }
local function feature(name, env)
  assert(fs.write(ROOT .. "/fake/log", ""))
  assert(fs.write(ROOT .. "/fake/queries", ""))
  local argv = { "env", "PHOENIX_FEATURE=" .. name }
  local keys = {}
  for k in pairs(env or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do argv[#argv + 1] = "PHOENIX_" .. k .. "=" .. env[k] end
  argv[#argv + 1] = SHELL
  argv[#argv + 1] = "/var/lib/phoenix/features/" .. name .. ".sh"
  -- a setting the script does not document is a mistake in this spec
  local script = assert(fs.read(SRC .. "/etc/features/" .. name .. ".sh"))
  for _, k in ipairs(keys) do
    assert(script:find("\n#   PHOENIX_" .. k .. " ", 1, true), name .. ".sh does not document PHOENIX_" .. k)
  end
  local r = attach(argv)
  return { code = r.code, stdout = r.stdout, stderr = r.stderr,
    log = lines(fs.read(ROOT .. "/fake/log")), queries = lines(fs.read(ROOT .. "/fake/queries")) }
end

-- ok(result): exit 0 (else the script's stderr in the failure).
local function ok(r)
  assert(r.code == 0, "exit " .. r.code .. "\nstdout:\n" .. r.stdout .. "\nstderr:\n" .. r.stderr)
  return r
end

local function failed(r, pattern)
  assert(r.code ~= 0, "expected a failure, got exit 0:\n" .. r.stdout)
  assert(r.stderr:find(pattern, 1, true), "stderr lacks «" .. pattern .. "»:\n" .. r.stderr)
  return r
end

local APT_INSTALL = "apt-get install -y -q --no-install-recommends "
local PEM = assert(fs.read(FIX .. "/root_ca.crt"))
local OTHER_PEM = assert(fs.read(FIX .. "/other_ca.crt"))
local DRV -- host directory bound over the container's /proc/driver
local KERNEL

-- fingerprint(pem) -> SHA-256 of the DER, computed here with openssl-free Lua tools.
local function fingerprint(path)
  local out = must { "sh", "-c", "sed -n '/BEGIN CERT/,/END CERT/p' \"$1\" | sed '1d;$d' | base64 -d | sha256sum", "sh", path }
  return out:match("^(%x+)")
end

-- tarball(path, files): a .tar.gz holding files { ["bin/x"] = text } (all mode 0755).
local function tarball(path, files)
  local dir = must({ "mktemp", "-d", "/tmp/pxfeat-tar.XXXXXX" }):gsub("%s+$", "")
  local names = {}
  for name, text in pairs(files) do
    assert(fs.mkdir((dir .. "/" .. name):match("^(.*)/[^/]*$"), { parents = true }))
    assert(fs.write(dir .. "/" .. name, text, { mode = "0755" }))
    names[#names + 1] = name
  end
  table.sort(names)
  local argv = { "tar", "-C", dir, "-czf", ROOT .. path }
  for _, n in ipairs(names) do argv[#argv + 1] = n end
  must(argv)
  must { "rm", "-rf", dir }
end

local function set_host_driver(version)
  if version then
    assert(fs.write(DRV .. "/nvidia/version",
      "NVRM version: NVIDIA UNIX x86_64 Kernel Module  " .. version .. "  Tue Jul 29 2025\nGCC version:  gcc version 12.2.0\n"))
  else
    fs.remove(DRV .. "/nvidia/version")
  end
end

local function nvidia_runfile(version)
  put("/fake/downloads/NVIDIA-Linux-x86_64-" .. version .. ".run", table.concat({
    "#!/bin/sh", ". /fake/lib.sh", 'record nvidia-installer "$@"', "fail_if nvidia-installer",
    "cp /fake/pkgbin/nvidia-smi /usr/local/bin/nvidia-smi", "chmod 0755 /usr/local/bin/nvidia-smi",
    "echo " .. version .. " >/fake/state/nvidia-version", "" }, "\n"), "0755")
end

local function setup_container(shell)
  SHELL = shell
  CT = "pxfeat-" .. sys.pid() .. "-" .. shell
  ROOT = "/var/lib/lxc/" .. CT .. "/rootfs"
  DRV = must({ "mktemp", "-d", "/tmp/pxfeat-drv.XXXXXX" }):gsub("%s+$", "")
  assert(fs.mkdir(DRV .. "/nvidia"))
  set_host_driver("580.76.05")
  must { "lxc-create", "-n", CT, "-t", "busybox" }
  -- no network (the guests here are offline anyway), and /proc/driver from DRV
  -- so the nvidia feature sees a host kernel module of our choosing
  local conf = "/var/lib/lxc/" .. CT .. "/config"
  local text = assert(fs.read(conf))
  text = text:gsub("lxc%.net%.0%.[^\n]*\n", "") ..
    "lxc.net.0.type = empty\nlxc.mount.entry = " .. DRV .. " proc/driver none bind,ro 0 0\n"
  assert(fs.write(conf, text))
  must { "lxc-start", "-n", CT }
  must { "lxc-wait", "-n", CT, "-s", "RUNNING", "-t", "20" }

  for _, d in ipairs { "/usr/local/sbin", "/usr/local/bin", "/fake/state", "/fake/fail", "/fake/downloads",
    "/var/lib/phoenix/features", "/etc/apt/sources.list.d", "/home" } do
    assert(fs.mkdir(ROOT .. d, { parents = true }))
  end
  must { "cp", FIX .. "/standins/lib.sh", ROOT .. "/fake/lib.sh" }
  must { "cp", "-r", FIX .. "/standins/pkgbin", ROOT .. "/fake/pkgbin" }
  for _, f in ipairs(assert(fs.list(FIX .. "/standins/sbin"))) do
    must { "cp", FIX .. "/standins/sbin/" .. f, ROOT .. "/usr/local/sbin/" .. f }
  end
  for _, f in ipairs(assert(fs.list(SRC .. "/etc/features"))) do
    local text = assert(fs.read(SRC .. "/etc/features/" .. f))
    assert(fs.write(ROOT .. "/var/lib/phoenix/features/" .. f, text, { mode = "0700" }))
  end
  if shell == "dash" then must { "cp", "/usr/bin/dash", ROOT .. "/bin/dash" } end
  KERNEL = ct_sh("uname -r")
  put("/fake/available", table.concat({ "ca-certificates", "curl", "gnupg", "locales", "tzdata", "sudo",
    "docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin", "docker.io",
    "docker-compose", "htop", "python3", "python3-venv", "step-cli", "step-ca", "dnsmasq", "nftables", "cuda-toolkit-12-8",
    "build-essential", "dkms", "linux-headers-" .. KERNEL, "" }, "\n"))
  put("/etc/debian_version", "12.7\n")
  put("/etc/os-release", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n' ..
    'VERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n')
  put("/fake/downloads/roots.pem", PEM)
  put("/fake/downloads/repo-signing-key.gpg", "-----BEGIN PGP PUBLIC KEY BLOCK-----\nsmallstep\n")
  put("/fake/downloads/gpg", "-----BEGIN PGP PUBLIC KEY BLOCK-----\ndocker\n")
  put("/fake/downloads/cuda-keyring_1.1-1_all.deb", "!<arch>\ncuda-keyring\n")
end

local function teardown_container()
  exec.run { argv = { "lxc-stop", "-n", CT, "-k" }, timeout_ms = 30000 }
  exec.run { argv = { "lxc-destroy", "-n", CT }, timeout_ms = 30000 }
  if DRV then exec.run { argv = { "rm", "-rf", DRV } } end
end

-- The runner's `sh` in a busybox container is busybox ash; Debian's is dash:
-- the same suite runs under each.
local function suite(shell)
  setup(function() setup_container(shell) end)
  teardown(teardown_container)

  describe("trusted_ca", function()
    local fp, other_fp
    it("installs ca-certificates and the certificate, then update-ca-certificates", function()
      fp, other_fp = fingerprint(FIX .. "/root_ca.crt"), fingerprint(FIX .. "/other_ca.crt")
      local r = ok(feature("trusted_ca", { CA_CERT_PEM = PEM }))
      assert.are.same({ "apt-get update -q", APT_INSTALL .. "ca-certificates", "update-ca-certificates" }, r.log)
      assert.are.equal(PEM, ct_read("/usr/local/share/ca-certificates/phoenix-root-ca.crt"))
      assert.are.equal("644", ct_sh("stat -c %a /usr/local/share/ca-certificates/phoenix-root-ca.crt"))
      assert.are.equal("/usr/local/share/ca-certificates/phoenix-root-ca.crt", ct_sh("readlink /etc/ssl/certs/phoenix-root-ca.pem"))
      assert.matches("fingerprint " .. fp, r.stdout)
    end)

    it("does nothing the second time", function()
      assert.are.same({}, ok(feature("trusted_ca", { CA_CERT_PEM = PEM })).log)
    end)

    it("replaces a changed certificate without installing anything", function()
      local r = ok(feature("trusted_ca", { CA_CERT_PEM = OTHER_PEM }))
      assert.are.same({ "update-ca-certificates" }, r.log)
      assert.are.equal(OTHER_PEM, ct_read("/usr/local/share/ca-certificates/phoenix-root-ca.crt"))
    end)

    it("takes the certificate from a pushed file", function()
      put("/root/pushed-ca.crt", PEM)
      assert.are.same({ "update-ca-certificates" }, ok(feature("trusted_ca", { CA_CERT_FILE = "/root/pushed-ca.crt" })).log)
      assert.are.equal(PEM, ct_read("/usr/local/share/ca-certificates/phoenix-root-ca.crt"))
    end)

    it("downloads <ca_url>/roots.pem only when the installed root's fingerprint differs", function()
      local r = ok(feature("trusted_ca", { CA_URL = "https://ca.lab.test:9000", CA_FINGERPRINT = fp }))
      assert.are.same({}, r.log)
      assert.are.same({ "update-ca-certificates" }, ok(feature("trusted_ca", { CA_CERT_PEM = OTHER_PEM })).log)
      -- colons and upper case, as openssl prints fingerprints
      local colons = fp:upper():gsub("(%x%x)", "%1:"):gsub(":$", "")
      r = ok(feature("trusted_ca", { CA_URL = "https://ca.lab.test:9000", CA_FINGERPRINT = colons }))
      assert.are.same({
        "curl -fsSL --retry 3 --insecure -o /var/lib/phoenix/trusted_ca.download https://ca.lab.test:9000/roots.pem",
        "update-ca-certificates" }, r.log)
      assert.are.equal(PEM, ct_read("/usr/local/share/ca-certificates/phoenix-root-ca.crt"))
    end)

    it("moves the certificate when its name changes", function()
      local r = ok(feature("trusted_ca", { CA_CERT_PEM = PEM, CA_NAME = "lab-root" }))
      assert.are.same({ "update-ca-certificates" }, r.log)
      assert.is_nil(ct_read("/usr/local/share/ca-certificates/phoenix-root-ca.crt"))
      assert.are.equal("", ct_sh("ls /etc/ssl/certs/phoenix-root-ca.pem 2>/dev/null"))
      assert.are.equal(PEM, ct_read("/etc/ssl/certs/lab-root.pem"))
      assert.are.same({}, ok(feature("trusted_ca", { CA_CERT_PEM = PEM, CA_NAME = "lab-root" })).log)
    end)

    it("fails clearly on a wrong fingerprint, a non-PEM text, no source", function()
      failed(feature("trusted_ca", { CA_CERT_PEM = PEM, CA_FINGERPRINT = other_fp, CA_NAME = "lab-root" }),
        "trusted_ca: error: the CA certificate's fingerprint is " .. fp .. ", not PHOENIX_CA_FINGERPRINT " .. other_fp)
      failed(feature("trusted_ca", { CA_CERT_PEM = "hello" }), "the CA certificate is not PEM")
      failed(feature("trusted_ca", {}), "no certificate: set PHOENIX_CA_CERT_PEM, PHOENIX_CA_CERT_FILE or PHOENIX_CA_URL")
      failed(feature("trusted_ca", { CA_URL = "https://ca.lab.test:9000" }), "PHOENIX_CA_URL needs PHOENIX_CA_FINGERPRINT")
      assert.are.equal(PEM, ct_read("/etc/ssl/certs/lab-root.pem"))
    end)
  end)

  describe("step_cli", function()
    local fp
    local env
    it("sets up smallstep's repository, installs step-cli and bootstraps", function()
      fp = fingerprint(FIX .. "/root_ca.crt")
      env = { CA_URL = "https://ca.lab.test:9000", CA_FINGERPRINT = fp }
      local r = ok(feature("step_cli", env))
      assert.are.same({
        "curl -fsSL --retry 3 -o /etc/apt/keyrings/smallstep.asc.part https://packages.smallstep.com/keys/apt/repo-signing-key.gpg",
        "apt-get update -q", APT_INSTALL .. "step-cli",
        "step ca bootstrap --ca-url https://ca.lab.test:9000 --fingerprint " .. fp .. " --install --force" }, r.log)
      assert.are.equal("deb [signed-by=/etc/apt/keyrings/smallstep.asc] https://packages.smallstep.com/stable/debian debs main\n",
        ct_read("/etc/apt/sources.list.d/smallstep.list"))
      assert.matches('"ca-url": "https://ca.lab.test:9000"', ct_read("/root/.step/config/defaults.json"), 1, true)
    end)

    it("does nothing the second time", function()
      assert.are.same({}, ok(feature("step_cli", env)).log)
    end)

    it("bootstraps again, installing nothing, when the CA URL changes", function()
      env.CA_URL = "https://ca2.lab.test:9000"
      assert.are.same({ "step ca bootstrap --ca-url https://ca2.lab.test:9000 --fingerprint " .. fp .. " --install --force" },
        ok(feature("step_cli", env)).log)
    end)

    it("fails clearly when the bootstrap fails, and retries it next time", function()
      env.CA_URL = "https://ca3.lab.test:9000"
      fail_next("step-bootstrap", 1, "client GET https://ca3.lab.test:9000/roots.pem failed: connection refused")
      local r = failed(feature("step_cli", env), "step_cli: error: step ca bootstrap --ca-url https://ca3.lab.test:9000 failed (exit 1)")
      assert.matches("connection refused", r.stderr)
      clear_fail("step-bootstrap")
      assert.are.equal(1, #ok(feature("step_cli", env)).log)
      failed(feature("step_cli", { CA_URL = "http://ca.lab.test" , CA_FINGERPRINT = fp }), "must be an https:// URL")
    end)
  end)

  describe("base_setup", function()
    local env
    it("installs packages, generates the locale, sets the zone, creates the admin", function()
      env = { TIMEZONE = "Europe/Berlin", ADMIN_USER = "phoenix_admin", ADMIN_SUDO = "yes",
        ADMIN_SSH_KEYS = "ssh-ed25519 AAAAC3Nza one@lab\nssh-ed25519 AAAAC3Nzb two@lab",
        ADMIN_PASSWORD_HASH = "$6$salt$0123456789abcdef" }
      local r = ok(feature("base_setup", env))
      assert.are.same({ "apt-get update -q", APT_INSTALL .. "curl gnupg locales tzdata sudo", "locale-gen",
        "useradd --create-home --shell /bin/bash phoenix_admin", "chpasswd -e phoenix_admin" }, r.log)
      assert.is_nil(r.stdout:find("0123456789abcdef", 1, true), "the password hash was printed")
      assert.is_nil(r.stderr:find("0123456789abcdef", 1, true), "the password hash was printed")
      assert.are.equal("LANG=en_US.UTF-8\n", ct_read("/etc/default/locale"))
      assert.matches("\nen_US.UTF-8 UTF-8\n", "\n" .. ct_read("/etc/locale.gen"), 1, true)
      assert.are.equal("Europe/Berlin\n", ct_read("/etc/timezone"))
      assert.are.equal("/usr/share/zoneinfo/Europe/Berlin", ct_sh("readlink /etc/localtime"))
      assert.are.equal("phoenix_admin ALL=(ALL:ALL) NOPASSWD: ALL\n", ct_read("/etc/sudoers.d/phoenix-phoenix_admin"))
      assert.are.equal("440", ct_sh("stat -c %a /etc/sudoers.d/phoenix-phoenix_admin"))
      assert.are.equal(env.ADMIN_SSH_KEYS .. "\n", ct_read("/home/phoenix_admin/.ssh/authorized_keys"))
      assert.are.equal("600 phoenix_admin", ct_sh("stat -c '%a %U' /home/phoenix_admin/.ssh/authorized_keys"))
      assert.are.equal("700 phoenix_admin", ct_sh("stat -c '%a %U' /home/phoenix_admin/.ssh"))
      assert.matches("phoenix_admin:$6$salt$0123456789abcdef:", ct_read("/etc/shadow"), 1, true)
    end)

    it("does nothing the second time", function()
      local r = ok(feature("base_setup", env))
      assert.are.same({}, r.log)
      assert.are.equal("base_setup: done\n", r.stdout)
    end)

    it("changes only the zone, the sudo rule and the keys when those change", function()
      env.TIMEZONE = "America/New_York"
      env.ADMIN_SUDO = "no"
      env.ADMIN_SSH_KEYS = "ssh-ed25519 AAAAC3Nzc three@lab"
      local r = ok(feature("base_setup", env))
      assert.are.same({}, r.log)
      assert.are.equal("/usr/share/zoneinfo/America/New_York", ct_sh("readlink /etc/localtime"))
      assert.are.equal("America/New_York\n", ct_read("/etc/timezone"))
      assert.is_nil(ct_read("/etc/sudoers.d/phoenix-phoenix_admin"))
      assert.are.equal("ssh-ed25519 AAAAC3Nzc three@lab\n", ct_read("/home/phoenix_admin/.ssh/authorized_keys"))
      env.ADMIN_PASSWORD_HASH = "$6$salt$fedcba"
      assert.are.same({ "chpasswd -e phoenix_admin" }, ok(feature("base_setup", env)).log)
      env.LOCALE = "de_DE.UTF-8"
      assert.are.same({ "locale-gen" }, ok(feature("base_setup", env)).log)
      assert.are.equal("LANG=de_DE.UTF-8\n", ct_read("/etc/default/locale"))
    end)

    it("fails clearly on an unknown package, zone or user name", function()
      env.PACKAGES = "htop,no-such-package"
      local r = failed(feature("base_setup", env), "base_setup: error: apt-get install htop no-such-package failed (exit 100)")
      assert.matches("E: Unable to locate package no-such-package", r.stderr, 1, true)
      env.PACKAGES = nil
      failed(feature("base_setup", { TIMEZONE = "../../etc/passwd" }), "PHOENIX_TIMEZONE '../../etc/passwd' is not a time zone name")
      failed(feature("base_setup", { TIMEZONE = "Mars/Olympus" }), "unknown time zone Mars/Olympus")
      failed(feature("base_setup", { ADMIN_USER = "Root;rm" }), "PHOENIX_ADMIN_USER 'Root;rm' is not a valid user name")
    end)
  end)

  describe("docker", function()
    local env = { DOCKER_USERS = "phoenix_admin" }
    it("sets up Docker's repository, installs the engine, writes daemon.json", function()
      local r = ok(feature("docker", env))
      assert.are.same({
        "curl -fsSL --retry 3 -o /etc/apt/keyrings/docker.asc.part https://download.docker.com/linux/debian/gpg",
        "apt-get update -q",
        APT_INSTALL .. "docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin",
        "systemctl restart docker", "usermod -aG docker phoenix_admin" }, r.log)
      assert.are.equal("deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian bookworm stable\n",
        ct_read("/etc/apt/sources.list.d/docker.list"))
      assert.matches('"max-size": "10m"', ct_read("/etc/docker/daemon.json"), 1, true)
      assert.matches("docker", ct_sh("id -nG phoenix_admin"))
    end)

    it("does nothing the second time", function()
      assert.are.same({}, ok(feature("docker", env)).log)
    end)

    it("rewrites daemon.json and restarts docker, nothing else, when it changes", function()
      env.DOCKER_DAEMON_JSON = '{"storage-driver": "vfs"}'
      assert.are.same({ "systemctl restart docker" }, ok(feature("docker", env)).log)
      assert.are.equal('{"storage-driver": "vfs"}\n', ct_read("/etc/docker/daemon.json"))
      assert.are.same({}, ok(feature("docker", env)).log)
    end)

    it("starts a stopped docker without reinstalling", function()
      fs.remove(ROOT .. "/fake/state/systemd/docker.active")
      assert.are.same({ "systemctl start docker" }, ok(feature("docker", env)).log)
    end)

    it("fails clearly on a bad source, bad JSON, an unknown user, a failed restart", function()
      failed(feature("docker", { DOCKER_SOURCE = "snap" }), "PHOENIX_DOCKER_SOURCE 'snap' is not docker or distro")
      failed(feature("docker", { DOCKER_DAEMON_JSON = "storage-driver: vfs" }), "PHOENIX_DOCKER_DAEMON_JSON must be a JSON object")
      failed(feature("docker", { DOCKER_DAEMON_JSON = env.DOCKER_DAEMON_JSON, DOCKER_USERS = "nobody_here" }), "PHOENIX_DOCKER_USERS: no user nobody_here")
      fail_next("systemctl-restart", 1, "Job for docker.service failed because the control process exited with error code.")
      local r = failed(feature("docker", {}), "docker: error: systemctl restart docker failed (exit 1)")
      assert.matches("Job for docker.service failed", r.stderr, 1, true)
      clear_fail("systemctl-restart")
      ok(feature("docker", env))
    end)
  end)

  describe("portainer", function()
    local SERVER_RUN = "docker run -d --name portainer --restart=always " ..
      "--label 'io.phoenix.settings=image=portainer/portainer-ce:latest port=9443' -p 9443:9443 -p 8000:8000 " ..
      "-v /var/run/docker.sock:/var/run/docker.sock -v portainer_data:/data portainer/portainer-ce:latest"
    it("runs the server for role server", function()
      local r = ok(feature("portainer", { PORTAINER_ROLE = "server" }))
      assert.are.same({ "docker pull portainer/portainer-ce:latest", SERVER_RUN }, r.log)
    end)

    it("does nothing the second time", function()
      assert.are.same({}, ok(feature("portainer", { PORTAINER_ROLE = "server" })).log)
    end)

    it("starts a stopped container, replaces one whose settings changed", function()
      put("/fake/state/docker/portainer", "portainer/portainer-ce:latest|image=portainer/portainer-ce:latest port=9443|false\n")
      assert.are.same({ "docker start portainer" }, ok(feature("portainer", { PORTAINER_ROLE = "server" })).log)
      local r = ok(feature("portainer", { PORTAINER_ROLE = "primary", PORTAINER_SERVER_IMAGE = "portainer/portainer-ce:2.21.4" }))
      assert.are.same({ "docker pull portainer/portainer-ce:2.21.4", "docker rm -f portainer",
        (SERVER_RUN:gsub("portainer%-ce:latest", "portainer-ce:2.21.4")) }, r.log)
    end)

    it("switches to the agent when the role changes, and removes both for none", function()
      local r = ok(feature("portainer", { PORTAINER_ROLE = "agent", PORTAINER_AGENT_PORT = "9002" }))
      assert.are.same({ "docker rm -f portainer", "docker pull portainer/agent:latest",
        "docker run -d --name portainer_agent --restart=always --label 'io.phoenix.settings=image=portainer/agent:latest port=9002' " ..
        "-p 9002:9001 -v /var/run/docker.sock:/var/run/docker.sock -v /var/lib/docker/volumes:/var/lib/docker/volumes " ..
        "-v /:/host portainer/agent:latest" }, r.log)
      assert.are.same({}, ok(feature("portainer", { PORTAINER_ROLE = "agent", PORTAINER_AGENT_PORT = "9002" })).log)
      assert.are.same({ "docker rm -f portainer_agent" }, ok(feature("portainer", { PORTAINER_ROLE = "none" })).log)
      assert.are.same({}, ok(feature("portainer", { PORTAINER_ROLE = "infrastructure" })).log)
    end)

    it("fails clearly on a bad role or a failed docker run", function()
      failed(feature("portainer", { PORTAINER_ROLE = "boss" }),
        "PHOENIX_PORTAINER_ROLE 'boss' is not server, primary, agent, infrastructure or none")
      fail_next("docker-run", 125, "docker: Error response from daemon: driver failed programming external connectivity")
      local r = failed(feature("portainer", { PORTAINER_ROLE = "server" }),
        "portainer: error: docker run portainer (portainer/portainer-ce:latest) failed (exit 125)")
      assert.matches("driver failed programming", r.stderr, 1, true)
      clear_fail("docker-run")
    end)
  end)

  describe("nvidia", function()
    local env = { NVIDIA_DRIVER_VERSION = "580.76.05", NVIDIA_CUDA_VERSION = "12.8" }
    local RUN_FLAGS = "--silent --no-questions --ui=none --no-x-check --no-nouveau-check"
    it("installs the user-space driver matching the host, without the kernel module, and CUDA", function()
      nvidia_runfile("580.76.05")
      local r = ok(feature("nvidia", env))
      assert.are.same({
        "curl -fsSL --retry 3 -o /var/lib/phoenix/cache/NVIDIA-Linux-x86_64-580.76.05.run.part " ..
          "https://us.download.nvidia.com/XFree86/Linux-x86_64/580.76.05/NVIDIA-Linux-x86_64-580.76.05.run",
        "nvidia-installer " .. RUN_FLAGS .. " --no-kernel-module --no-nvidia-modprobe",
        "curl -fsSL --retry 3 -o /var/lib/phoenix/cache/cuda-keyring_1.1-1_all.deb.part " ..
          "https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb",
        "apt-get install -y -q /var/lib/phoenix/cache/cuda-keyring_1.1-1_all.deb",
        "apt-get update -q", APT_INSTALL .. "cuda-toolkit-12-8" }, r.log)
      assert.are.equal("580.76.05\n", ct_read("/var/lib/phoenix/nvidia-driver.version"))
      assert.are.equal("", ct_sh("ls /var/lib/phoenix/cache/"))
      assert.matches("kernel module: no", r.stdout, 1, true)
    end)

    it("does nothing the second time, also when no GPU answers nvidia-smi", function()
      assert.are.same({}, ok(feature("nvidia", env)).log)
      fail_next("nvidia-smi", 6, "No devices were found")
      assert.are.same({}, ok(feature("nvidia", env)).log)
      clear_fail("nvidia-smi")
    end)

    it("installs only the new runfile when the host's driver and the version change", function()
      set_host_driver("580.82.07")
      local r = failed(feature("nvidia", env),
        "nvidia: error: the host's NVIDIA kernel module is 580.82.07 but 580.76.05 was asked for: the user space must match the host")
      assert.are.same({}, r.log)
      nvidia_runfile("580.82.07")
      env.NVIDIA_DRIVER_VERSION = "580.82.07"
      r = ok(feature("nvidia", env))
      assert.are.same({
        "curl -fsSL --retry 3 -o /var/lib/phoenix/cache/NVIDIA-Linux-x86_64-580.82.07.run.part " ..
          "https://us.download.nvidia.com/XFree86/Linux-x86_64/580.82.07/NVIDIA-Linux-x86_64-580.82.07.run",
        "nvidia-installer " .. RUN_FLAGS .. " --no-kernel-module --no-nvidia-modprobe" }, r.log)
      assert.matches("driver 580.76.05 -> 580.82.07", r.stdout, 1, true)
    end)

    it("builds the kernel module too where asked (a VM)", function()
      nvidia_runfile("580.95.05")
      set_host_driver(nil)
      local r = ok(feature("nvidia", { NVIDIA_DRIVER_VERSION = "580.95.05", NVIDIA_KERNEL_MODULE = "yes",
        NVIDIA_RUNFILE_URL = "https://mirror.lab.test/nvidia/NVIDIA-Linux-x86_64-580.95.05.run" }))
      assert.are.same({ "apt-get update -q", APT_INSTALL .. "build-essential dkms linux-headers-" .. KERNEL,
        "curl -fsSL --retry 3 -o /var/lib/phoenix/cache/NVIDIA-Linux-x86_64-580.95.05.run.part " ..
          "https://mirror.lab.test/nvidia/NVIDIA-Linux-x86_64-580.95.05.run",
        "nvidia-installer " .. RUN_FLAGS .. " --dkms" }, r.log)
    end)

    it("fails clearly without a host driver, a version, a runfile, or when the installer fails", function()
      failed(feature("nvidia", env), "no NVIDIA kernel driver visible (/proc/driver/nvidia/version is missing)")
      set_host_driver("580.99.01")
      failed(feature("nvidia", {}), "PHOENIX_NVIDIA_DRIVER_VERSION is required")
      failed(feature("nvidia", { NVIDIA_DRIVER_VERSION = "latest" }), "PHOENIX_NVIDIA_DRIVER_VERSION 'latest' is not a driver version")
      failed(feature("nvidia", { NVIDIA_DRIVER_VERSION = "580.99.01" }),
        "download failed (curl exit 22): https://us.download.nvidia.com/XFree86/Linux-x86_64/580.99.01/NVIDIA-Linux-x86_64-580.99.01.run")
      nvidia_runfile("580.99.01")
      fail_next("nvidia-installer", 1, "ERROR: An NVIDIA kernel module 'nvidia' appears to already be loaded")
      local r = failed(feature("nvidia", { NVIDIA_DRIVER_VERSION = "580.99.01" }),
        "the NVIDIA installer NVIDIA-Linux-x86_64-580.99.01.run failed (exit 1; see /var/log/nvidia-installer.log)")
      assert.matches("appears to already be loaded", r.stderr, 1, true)
      clear_fail("nvidia-installer")
      assert.are.equal("", ct_sh("ls /var/lib/phoenix/cache/"))
    end)
  end)

  describe("vllm", function()
    -- the engine config of container 910 in a real site's phoenix_lxc_configs.json
    local CONFIG = '{"ModelConfig": {"model": "Qwen/Qwen2.5-7B-Instruct-AWQ", "trust_remote_code": true, ' ..
      '"dtype": "auto", "max_model_len": 4096}, "CacheConfig": {"quantization": "awq_marlin", ' ..
      '"gpu_memory_utilization": 0.5}, "ParallelConfig": {"tensor_parallel_size": 2}, ' ..
      '"ServerConfig": {"host": "0.0.0.0", "port": 8000, "served_model_name": "qwen2.5-7b-awq"}}'
    local env = { VLLM_ENGINE_CONFIG = CONFIG, VLLM_VERSION = "0.6.3" }
    it("makes a venv, installs vllm, writes the config as-is and the unit, starts it", function()
      local r = ok(feature("vllm", env))
      assert.are.same({ "apt-get update -q", APT_INSTALL .. "python3 python3-venv", "python3 -m venv /opt/vllm",
        "/opt/vllm/bin/pip install --quiet vllm==0.6.3", "systemctl daemon-reload", "systemctl enable --quiet vllm",
        "systemctl restart vllm" }, r.log)
      assert.are.equal(CONFIG .. "\n", ct_read("/etc/vllm/engine_config.json"))
      local unit = ct_read("/etc/systemd/system/vllm.service")
      assert.matches("\nExecStart=/opt/vllm/bin/python /usr/local/lib/phoenix/vllm-serve.py /etc/vllm/engine_config.json\n", unit, 1, true)
      assert.matches("\nEnvironment=HF_HOME=/var/lib/vllm\n", unit, 1, true)
    end)

    it("has a launcher that turns the engine config into vllm serve options", function()
      local python = "/usr/bin/python3"
      if not fs.exists(python) then return pending("no python3 here to run the launcher") end
      local dir = must({ "mktemp", "-d", "/tmp/pxfeat-vllm.XXXXXX" }):gsub("%s+$", "")
      assert(fs.mkdir(dir .. "/bin"))
      must { "ln", "-s", python, dir .. "/bin/python" }
      assert(fs.write(dir .. "/bin/vllm", '#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n', { mode = "0755" }))
      assert(fs.write(dir .. "/serve.py", ct_read("/usr/local/lib/phoenix/vllm-serve.py")))
      assert(fs.write(dir .. "/config.json", ct_read("/etc/vllm/engine_config.json")))
      local out = lines(must { dir .. "/bin/python", dir .. "/serve.py", dir .. "/config.json" })
      must { "rm", "-rf", dir }
      table.remove(out, 1) -- the command line it prints before exec
      assert.are.same({ "serve", "Qwen/Qwen2.5-7B-Instruct-AWQ", "--trust-remote-code", "--dtype", "auto",
        "--max-model-len", "4096", "--quantization", "awq_marlin", "--gpu-memory-utilization", "0.5",
        "--tensor-parallel-size", "2", "--host", "0.0.0.0", "--port", "8000", "--served-model-name", "qwen2.5-7b-awq" }, out)
    end)

    it("does nothing the second time", function()
      assert.are.same({}, ok(feature("vllm", env)).log)
    end)

    it("restarts for a new config, reinstalls only for a new version", function()
      env.VLLM_ENGINE_CONFIG = CONFIG:gsub('"max_model_len": 4096', '"max_model_len": 8192')
      assert.are.same({ "systemctl restart vllm" }, ok(feature("vllm", env)).log)
      assert.matches('"max_model_len": 8192', ct_read("/etc/vllm/engine_config.json"), 1, true)
      env.VLLM_VERSION = "0.6.4"
      assert.are.same({ "/opt/vllm/bin/pip install --quiet vllm==0.6.4", "systemctl restart vllm" }, ok(feature("vllm", env)).log)
      env.VLLM_HF_TOKEN = "hf_secret_token"
      local r = ok(feature("vllm", env))
      assert.are.same({ "systemctl restart vllm" }, r.log)
      assert.is_nil(r.stdout:find("hf_secret_token", 1, true))
      assert.are.equal("600", ct_sh("stat -c %a /etc/vllm/env"))
      env.VLLM_HF_TOKEN = nil
      assert.are.same({ "systemctl restart vllm" }, ok(feature("vllm", env)).log)
      assert.is_nil(ct_read("/etc/vllm/env"))
    end)

    it("fails clearly without a config, with a non-object, when pip fails", function()
      failed(feature("vllm", {}), "vllm: error: PHOENIX_VLLM_ENGINE_CONFIG is required")
      failed(feature("vllm", { VLLM_ENGINE_CONFIG = "[1, 2]" }), "PHOENIX_VLLM_ENGINE_CONFIG must be a JSON object")
      fail_next("pip", 1, "ERROR: No matching distribution found for vllm==9.9.9")
      local r = failed(feature("vllm", { VLLM_ENGINE_CONFIG = CONFIG, VLLM_VERSION = "9.9.9" }),
        "vllm: error: pip install vllm==9.9.9 failed (exit 1)")
      assert.matches("No matching distribution", r.stderr, 1, true)
      clear_fail("pip")
    end)
  end)

  describe("python_api_service", function()
    local SOURCE = "from fastapi import FastAPI\n\napp = FastAPI()\n"
    local env = { API_NAME = "embeddings", API_PORT = "8001", API_SOURCE = SOURCE }
    it("makes the account, the venv, installs the requirements, writes the unit, starts it", function()
      local r = ok(feature("python_api_service", env))
      assert.are.same({ "useradd --system --user-group --home-dir /opt/embeddings --shell /usr/sbin/nologin embeddings",
        "python3 -m venv /opt/embeddings/venv", "/opt/embeddings/venv/bin/pip install --quiet -r /opt/embeddings/requirements.txt",
        "systemctl daemon-reload", "systemctl enable --quiet embeddings", "systemctl restart embeddings" }, r.log)
      assert.are.equal("fastapi\nuvicorn[standard]\n", ct_read("/opt/embeddings/requirements.txt"))
      assert.are.equal(SOURCE, ct_read("/opt/embeddings/app/main.py"))
      assert.matches("\nExecStart=/opt/embeddings/venv/bin/uvicorn main:app --host 0.0.0.0 --port 8001\n",
        ct_read("/etc/systemd/system/embeddings.service"), 1, true)
    end)

    it("does nothing the second time", function()
      assert.are.same({}, ok(feature("python_api_service", env)).log)
    end)

    it("redoes only the unit for a new port, only pip for new requirements, retrying a failed install", function()
      env.API_PORT = "8002"
      assert.are.same({ "systemctl daemon-reload", "systemctl restart embeddings" }, ok(feature("python_api_service", env)).log)
      env.API_REQUIREMENTS = "fastapi==0.115.0\nuvicorn==0.30.6\nsentence-transformers\n"
      fail_next("pip", 1, "ERROR: Could not find a version that satisfies the requirement sentence-transformers")
      failed(feature("python_api_service", env), "pip install -r /opt/embeddings/requirements.txt failed (exit 1)")
      clear_fail("pip")
      assert.are.same({ "/opt/embeddings/venv/bin/pip install --quiet -r /opt/embeddings/requirements.txt",
        "systemctl restart embeddings" }, ok(feature("python_api_service", env)).log)
      assert.are.same({}, ok(feature("python_api_service", env)).log)
    end)

    it("enables but does not start a service whose application is not there yet", function()
      local r = ok(feature("python_api_service", { API_NAME = "bare" }))
      assert.are.same({ "useradd --system --user-group --home-dir /opt/bare --shell /usr/sbin/nologin bare",
        "python3 -m venv /opt/bare/venv", "/opt/bare/venv/bin/pip install --quiet -r /opt/bare/requirements.txt",
        "systemctl daemon-reload", "systemctl enable --quiet bare" }, r.log)
      assert.matches("the application_script starts it", r.stdout, 1, true)
      failed(feature("python_api_service", { API_NAME = "Bad Name" }), "PHOENIX_API_NAME 'Bad Name' must be")
      failed(feature("python_api_service", { API_APP = "main" }), "PHOENIX_API_APP 'main' is not module:attribute")
    end)
  end)

  describe("ollama", function()
    local function release(version)
      tarball("/fake/downloads/ollama-linux-amd64.tgz", {
        ["bin/ollama"] = '#!/bin/sh\n. /fake/lib.sh\nquery ollama "$@"\necho "Warning: could not connect to a running Ollama instance"\n' ..
          'echo "ollama version is ' .. version .. '"\n',
        ["lib/ollama/libggml-base.so"] = "ELF " .. version .. "\n" })
    end
    local env = { OLLAMA_VERSION = "0.5.7" }
    it("downloads the release, makes the account and the unit, starts it", function()
      release("0.5.7")
      local r = ok(feature("ollama", env))
      assert.are.same({
        "curl -fsSL --retry 3 -o /var/lib/phoenix/cache/ollama-linux-amd64.tgz.part " ..
          "https://github.com/ollama/ollama/releases/download/v0.5.7/ollama-linux-amd64.tgz",
        "useradd --system --user-group --create-home --home-dir /usr/share/ollama --shell /bin/false ollama",
        "systemctl daemon-reload", "systemctl enable --quiet ollama", "systemctl restart ollama" }, r.log)
      assert.are.equal("ELF 0.5.7\n", ct_read("/usr/local/lib/ollama/libggml-base.so"))
      assert.matches("\nEnvironment=OLLAMA_HOST=0.0.0.0:11434\nExecStart=/usr/local/bin/ollama serve\n",
        ct_read("/etc/systemd/system/ollama.service"), 1, true)
    end)

    it("does nothing the second time", function()
      assert.are.same({}, ok(feature("ollama", env)).log)
    end)

    it("rewrites only the unit for a new address, downloads only for a new version", function()
      env.OLLAMA_HOST = "127.0.0.1:11434"
      env.OLLAMA_MODELS_DIR = "/srv/models"
      assert.are.same({ "systemctl daemon-reload", "systemctl restart ollama" }, ok(feature("ollama", env)).log)
      assert.matches("Environment=OLLAMA_HOST=127.0.0.1:11434\nEnvironment=OLLAMA_MODELS=/srv/models\n",
        ct_read("/etc/systemd/system/ollama.service"), 1, true)
      assert.are.equal("ollama", ct_sh("stat -c %U /srv/models"))
      release("0.5.8")
      env.OLLAMA_VERSION = "0.5.8"
      local r = ok(feature("ollama", env))
      assert.are.same({ "curl -fsSL --retry 3 -o /var/lib/phoenix/cache/ollama-linux-amd64.tgz.part " ..
        "https://github.com/ollama/ollama/releases/download/v0.5.8/ollama-linux-amd64.tgz", "systemctl restart ollama" }, r.log)
    end)

    it("fails clearly when the release is not the version asked for", function()
      env.OLLAMA_VERSION = "0.5.9"
      failed(feature("ollama", env), "ollama: error: installed Ollama reports version 0.5.8, not 0.5.9")
      failed(feature("ollama", { OLLAMA_HOST = "0.0.0.0:11434; rm" }), "PHOENIX_OLLAMA_HOST '0.0.0.0:11434; rm' is not an address")
    end)
  end)

  describe("traefik", function()
    local function release(version)
      tarball("/fake/downloads/traefik_v" .. version .. "_linux_amd64.tar.gz", {
        traefik = '#!/bin/sh\n. /fake/lib.sh\nquery traefik "$@"\nprintf "Version:      ' .. version ..
          '\\nCodename:     fake\\nGo version:   go1.22\\n"\n',
        ["LICENSE.md"] = "MIT\n" })
    end
    local env = {}
    it("installs the binary, the static config with the file provider, the unit", function()
      release("3.1.6")
      local r = ok(feature("traefik", env))
      assert.are.same({
        "curl -fsSL --retry 3 -o /var/lib/phoenix/cache/traefik/traefik.tar.gz.part " ..
          "https://github.com/traefik/traefik/releases/download/v3.1.6/traefik_v3.1.6_linux_amd64.tar.gz",
        "systemctl daemon-reload", "systemctl enable --quiet traefik", "systemctl restart traefik" }, r.log)
      local static = ct_read("/etc/traefik/traefik.yml")
      assert.matches("providers:\n  file:\n    directory: /etc/traefik/dynamic\n    watch: true\n", static, 1, true)
      assert.matches('web:\n    address: ":80"', static, 1, true)
      assert.is_nil(static:find("certificatesResolvers", 1, true))
      assert.are.equal("755", ct_sh("stat -c %a /usr/local/bin/traefik"))
      assert.are.equal("yes", ct_sh("test -d /etc/traefik/dynamic && echo yes"))
    end)

    it("does nothing the second time", function()
      assert.are.same({}, ok(feature("traefik", env)).log)
    end)

    it("restarts, installing nothing, when the ACME resolver is added", function()
      env.TRAEFIK_ACME_CA_URL = "https://ca.lab.test:9000/acme/acme/directory"
      env.TRAEFIK_ACME_EMAIL = "ops@lab.test"
      assert.are.same({ "systemctl restart traefik" }, ok(feature("traefik", env)).log)
      assert.matches('    acme:\n      caServer: "https://ca.lab.test:9000/acme/acme/directory"\n      email: "ops@lab.test"\n',
        ct_read("/etc/traefik/traefik.yml"), 1, true)
      env.TRAEFIK_STATIC_CONFIG = "entryPoints:\n  web:\n    address: \":8080\"\n"
      assert.are.same({ "systemctl restart traefik" }, ok(feature("traefik", env)).log)
      assert.are.equal(env.TRAEFIK_STATIC_CONFIG, ct_read("/etc/traefik/traefik.yml"))
    end)

    it("fails clearly on a missing release or a non-https ACME URL", function()
      failed(feature("traefik", { TRAEFIK_VERSION = "3.9.9" }),
        "download failed (curl exit 22): https://github.com/traefik/traefik/releases/download/v3.9.9/traefik_v3.9.9_linux_amd64.tar.gz")
      failed(feature("traefik", { TRAEFIK_ACME_CA_URL = "http://ca.lab.test/acme" }), "PHOENIX_TRAEFIK_ACME_CA_URL must be an https:// URL")
    end)
  end)

  describe("step_ca", function()
    local env = { STEP_CA_NAME = "Phoenix Test CA", STEP_CA_DNS = "ca.lab.test,10.0.0.5", STEP_CA_PROVISIONER = "admin@lab.test" }
    it("installs step-ca, initialises the CA with ACME, writes the unit, starts it", function()
      local r = ok(feature("step_ca", env))
      assert.are.same({ "apt-get update -q", APT_INSTALL .. "step-ca",
        "step ca init --deployment-type standalone --name 'Phoenix Test CA' --address :9000 --provisioner admin@lab.test " ..
          "--password-file /root/.step/secrets/password.txt --provisioner-password-file /root/.step/secrets/password.txt " ..
          "--dns ca.lab.test --dns 10.0.0.5 --acme",
        "systemctl daemon-reload", "systemctl enable --quiet step-ca", "systemctl restart step-ca" }, r.log)
      assert.are.equal("600", ct_sh("stat -c %a /root/.step/secrets/password.txt"))
      assert.is_true(#ct_read("/root/.step/secrets/password.txt") >= 25)
      assert.are.equal(fingerprint(FIX .. "/root_ca.crt") .. "\n", ct_read("/root/.step/certs/root_ca.fingerprint"))
      assert.matches('"type": "ACME"', ct_read("/root/.step/config/ca.json"), 1, true)
      assert.matches("\nExecStart=/usr/bin/step-ca /root/.step/config/ca.json --password-file=/root/.step/secrets/password.txt\n",
        ct_read("/etc/systemd/system/step-ca.service"), 1, true)
    end)

    it("does nothing the second time", function()
      assert.are.same({}, ok(feature("step_ca", env)).log)
    end)

    it("edits only the listen address in ca.json when it changes", function()
      local before = ct_read("/root/.step/config/ca.json")
      env.STEP_CA_ADDRESS = ":9443"
      assert.are.same({ "systemctl restart step-ca" }, ok(feature("step_ca", env)).log)
      assert.are.equal((before:gsub('"address": ":9000"', '"address": ":9443"')), ct_read("/root/.step/config/ca.json"))
      assert.are.same({}, ok(feature("step_ca", env)).log)
    end)

    it("refuses to re-initialise for a new name or to take another password", function()
      local r = failed(feature("step_ca", { STEP_CA_NAME = "Other CA", STEP_CA_DNS = env.STEP_CA_DNS,
        STEP_CA_PROVISIONER = env.STEP_CA_PROVISIONER, STEP_CA_ADDRESS = ":9443" }), "A CA is not re-initialised")
      assert.matches("name=Phoenix Test CA", r.stderr, 1, true)
      assert.are.same({}, r.log)
      r = failed(feature("step_ca", { STEP_CA_NAME = env.STEP_CA_NAME, STEP_CA_DNS = env.STEP_CA_DNS,
        STEP_CA_PROVISIONER = env.STEP_CA_PROVISIONER, STEP_CA_ADDRESS = ":9443", STEP_CA_PASSWORD = "s3cret-new" }),
        "PHOENIX_STEP_CA_PASSWORD differs from the one the CA's keys are encrypted with")
      assert.is_nil(r.stderr:find("s3cret-new", 1, true))
      failed(feature("step_ca", { STEP_CA_NAME = "X" }), "PHOENIX_STEP_CA_DNS is required")
      failed(feature("step_ca", { STEP_CA_NAME = "X", STEP_CA_DNS = "x", STEP_CA_PROVISIONER = "p", STEP_CA_ADDRESS = "9000" }),
        "PHOENIX_STEP_CA_ADDRESS '9000' is not [host]:port")
    end)
  end)

  describe("dns_server", function()
    local HOSTS = "10.0.0.5 ca.lab.test\n10.0.0.6 traefik.lab.test traefik\n"
    local env = { DNS_UPSTREAM = "1.1.1.1,9.9.9.9", DNS_DOMAIN = "lab.test", DNS_ZONES = "10.in-addr.arpa", DNS_HOSTS = HOSTS }
    it("installs dnsmasq, writes its configuration and the records, restarts it", function()
      local r = ok(feature("dns_server", env))
      assert.are.same({ "apt-get update -q", APT_INSTALL .. "dnsmasq", "systemctl restart dnsmasq" }, r.log)
      assert.are.same({ "dnsmasq --test" }, (function()
        local q = {}
        for _, l in ipairs(r.queries) do if l:match("^dnsmasq") then q[#q + 1] = l end end
        return q
      end)())
      assert.are.equal(table.concat({ "# dnsmasq configuration written by phoenix (dns_server feature).",
        "domain-needed", "bogus-priv", "no-resolv", "cache-size=1000", "addn-hosts=/etc/dnsmasq.phoenix.hosts",
        "server=1.1.1.1", "server=9.9.9.9", "domain=lab.test", "expand-hosts", "local=/lab.test/",
        "local=/10.in-addr.arpa/", "" }, "\n"), ct_read("/etc/dnsmasq.d/phoenix.conf"))
      assert.are.equal(HOSTS, ct_read("/etc/dnsmasq.phoenix.hosts"))
    end)

    it("does nothing the second time", function()
      assert.are.same({}, ok(feature("dns_server", env)).log)
    end)

    it("only reloads for new records, restarts for a new upstream", function()
      env.DNS_HOSTS = HOSTS .. "10.0.0.7 git.lab.test\n"
      assert.are.same({ "systemctl reload dnsmasq" }, ok(feature("dns_server", env)).log)
      env.DNS_UPSTREAM = "8.8.8.8"
      env.DNS_LISTEN = "10.0.0.2"
      assert.are.same({ "systemctl restart dnsmasq" }, ok(feature("dns_server", env)).log)
      assert.matches("\nserver=8.8.8.8\n", ct_read("/etc/dnsmasq.d/phoenix.conf"), 1, true)
      assert.matches("\nbind-interfaces\nlisten-address=10.0.0.2\n", ct_read("/etc/dnsmasq.d/phoenix.conf"), 1, true)
    end)

    it("fails clearly on a bad record, a bad address, a configuration dnsmasq rejects", function()
      local r = failed(feature("dns_server", { DNS_HOSTS = "10.0.0.5 ca.lab.test\nnot-an-ip name\n" }), "bad PHOENIX_DNS_HOSTS")
      assert.matches('PHOENIX_DNS_HOSTS line 2 is not "<ip> <name>...": not-an-ip name', r.stderr, 1, true)
      failed(feature("dns_server", { DNS_UPSTREAM = "dns.google" }), "'dns.google' is not an IP address")
      fail_next("dnsmasq-test", 1, "dnsmasq: bad option at line 3 of /etc/dnsmasq.d/phoenix.conf")
      r = failed(feature("dns_server", { DNS_UPSTREAM = "1.1.1.1" }), "dnsmasq --test rejects the configuration")
      assert.matches("bad option at line 3", r.stderr, 1, true)
      assert.are.same({}, r.log)
      clear_fail("dnsmasq-test")
    end)
  end)

  describe("nat_gateway", function()
    local env = { NAT_SOURCE = "10.0.10.0/24", NAT_OUT_IFACE = "eth0" }
    it("installs nftables, turns on forwarding, loads the masquerade table", function()
      local r = ok(feature("nat_gateway", env))
      assert.are.same({ "apt-get update -q", APT_INSTALL .. "nftables",
        "nft -f /etc/nftables.d/phoenix-nat.nft", "systemctl enable --quiet nftables" }, r.log)
      -- sysctl is busybox's own here, so the container's network namespace really forwards now
      assert.are.equal("1", ct_sh("cat /proc/sys/net/ipv4/ip_forward"))
      assert.matches("enabled IPv4 forwarding", r.stdout, 1, true)
      assert.are.equal("net.ipv4.ip_forward = 1\n", ct_read("/etc/sysctl.d/99-phoenix-nat.conf"))
      assert.matches('\t\tip saddr { 10.0.10.0/24 } oifname "eth0" masquerade\n', ct_read("/etc/nftables.d/phoenix-nat.nft"), 1, true)
      assert.matches('\ninclude "/etc/nftables.d/*.nft"\n', ct_read("/etc/nftables.conf"), 1, true)
    end)

    it("does nothing the second time", function()
      assert.are.same({}, ok(feature("nat_gateway", env)).log)
    end)

    it("reloads only the table for new networks, or when it is gone", function()
      env.NAT_SOURCE = "10.0.10.0/24 10.0.20.0/24"
      env.NAT_IN_IFACE = "eth1"
      assert.are.same({ "nft -f /etc/nftables.d/phoenix-nat.nft" }, ok(feature("nat_gateway", env)).log)
      assert.matches('iifname "eth1" ip saddr { 10.0.10.0/24, 10.0.20.0/24 } oifname "eth0" masquerade',
        ct_read("/etc/nftables.d/phoenix-nat.nft"), 1, true)
      fs.remove(ROOT .. "/fake/state/nft/ip.phoenix_nat")
      assert.are.same({ "nft -f /etc/nftables.d/phoenix-nat.nft" }, ok(feature("nat_gateway", env)).log)
      ct_sh("sysctl -w net.ipv4.ip_forward=0")
      local r = ok(feature("nat_gateway", env))
      assert.are.same({}, r.log)
      assert.matches("enabled IPv4 forwarding", r.stdout, 1, true)
      assert.are.equal("1", ct_sh("cat /proc/sys/net/ipv4/ip_forward"))
    end)

    it("fails clearly without a network, an outside interface, or when nft fails", function()
      failed(feature("nat_gateway", {}), "PHOENIX_NAT_SOURCE is required")
      failed(feature("nat_gateway", { NAT_SOURCE = "10.0.10.0" }), "'10.0.10.0' is not an IPv4 network")
      failed(feature("nat_gateway", { NAT_SOURCE = "10.0.10.0/24" }), "no default route to take the outside interface from")
      fail_next("nft", 1, "Error: Could not process rule: Operation not permitted")
      local r = failed(feature("nat_gateway", { NAT_SOURCE = "10.0.30.0/24", NAT_OUT_IFACE = "eth0" }),
        "nft -f /etc/nftables.d/phoenix-nat.nft failed: Error: Could not process rule: Operation not permitted")
      clear_fail("nft")
      assert.are.same({ "nft -f /etc/nftables.d/phoenix-nat.nft" }, r.log)
    end)
  end)

  describe("every feature", function()
    it("refuses to run on a guest that is not Debian or Ubuntu", function()
      fs.remove(ROOT .. "/etc/debian_version")
      for _, name in ipairs { "base_setup", "docker", "nat_gateway" } do
        local r = failed(feature(name, {}), name .. ": error: needs a Debian or Ubuntu guest (no /etc/debian_version)")
        assert.are.same({}, r.log)
      end
      put("/etc/debian_version", "12.7\n")
    end)
  end)
end

local why = skip_reason()
describe("built-in features in a busybox container", function()
  if why then
    print("SKIP features_spec: " .. why)
    it("needs root and LXC", function() pending(why) end)
    return
  end
  describe("run by sh (busybox ash)", function() suite("sh") end)
  if fs.exists("/usr/bin/dash") then
    describe("run by dash", function() suite("dash") end)
  else
    print("SKIP features_spec under dash: /usr/bin/dash is not installed")
  end
end)
