-- Runs busted inside the phoenix runtime: `phoenix lua tests/busted.lua SPEC...`
-- so specs can require "px.exec", "phoenix.engine" ... exactly as phoenix does.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/helpers/?.lua;" .. package.path
require "busted.runner" ({ standalone = false, output = "utfTerminal" })
