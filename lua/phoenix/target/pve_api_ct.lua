-- Containers on the pve-api target: the pve driver as is. Its pct calls
-- reach the REST API through the target's tool_run; exec, push, pull and
-- the raw lxc.* lines go over the node's shell (the ssh option).
return require "phoenix.target.pve_ct"
