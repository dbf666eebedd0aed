-- The Lua side's version; src/main.c refuses to run a tree that differs.
return "0.1.0"
