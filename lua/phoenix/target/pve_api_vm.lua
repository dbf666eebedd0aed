-- VMs on the pve-api target: the pve driver as is. Its qm calls and the
-- guest agent (exec, ping) reach the REST API through the target's
-- tool_run; qm importdisk and host files go over the node's shell.
return require "phoenix.target.pve_vm"
