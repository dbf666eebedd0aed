-- px.schema: JSON Schema (2020-12 subset) over JSON text.
local json = require "px.json"
local schema = require "px.schema"

local function compile(s)
  local c, err = schema.compile(type(s) == "string" and s or json.encode(s), { strict = true })
  assert(c, err)
  return c
end

-- errors(schema, text [, opts]) -> list of "pointer keyword message"
local function errors(s, text, opts)
  local r = compile(s):validate(text, opts)
  local out = {}
  for _, e in ipairs(r.errors) do out[#out + 1] = e.pointer .. " " .. e.keyword .. " " .. e.message end
  return out, r
end

local function valid(s, text) return compile(s):validate(text).valid end

describe("px.schema.decode", function()
  it("keeps [] and {} apart and integers as integers", function()
    local v = schema.decode('{"a": [], "b": {}, "n": 101, "f": 1.5, "big": 1e300, "z": null}')
    assert.is_true(json.is_array(v.a))
    assert.is_false(json.is_array(v.b))
    assert.are.equal("integer", math.type(v.n))
    assert.are.equal("float", math.type(v.f))
    assert.are.equal(json.null, v.z)
  end)

  it("gives the key order on request", function()
    local v, order = schema.decode('{"z": 1, "a": {"y": 1, "b": 2}, "m": 3}', { order = true })
    assert.are.same({ "z", "a", "m" }, order[v])
    assert.are.same({ "y", "b" }, order[v.a])
  end)

  it("reports line and column of a syntax error", function()
    local v, err = schema.decode('{\n  "a": 1,\n  "b": tru\n}')
    assert.is_nil(v)
    assert.are.equal("line 3, column 8: unexpected character", err)
    assert.matches("line 1, column 6: unterminated string", select(2, schema.decode('["abc')), 1, true)
    assert.are.equal("line 1, column 5: unexpected text after the JSON value", select(2, schema.decode('[1] 2')))
  end)

  it("decodes escapes and surrogate pairs, rejects lone surrogates and bad UTF-8", function()
    assert.are.equal("é😀\n/", schema.decode('"\\u00e9\\ud83d\\ude00\\n\\/"'))
    assert.is_nil(schema.decode('"\\ud83d"'))
    assert.is_nil(schema.decode('"\xff"'))
    assert.is_nil(schema.decode('"a\nb"'))
  end)

  it("rejects what JSON does not allow", function()
    for _, bad in ipairs { "01", "1.", ".5", "+1", "NaN", "[1,]", "{\"a\" 1}", "{a: 1}", "1e999", "'x'", "" } do
      assert.is_nil(schema.decode(bad), bad)
    end
  end)

  it("refuses nesting deeper than 512", function()
    assert.is_table(schema.decode(string.rep("[", 500) .. string.rep("]", 500)))
    local v, err = schema.decode(string.rep("[", 600) .. string.rep("]", 600))
    assert.is_nil(v)
    assert.matches("nesting too deep", err, 1, true)
  end)

  it("raises on wrong use", function()
    assert.has_error(function() schema.decode({}) end)
    assert.has_error(function() schema.decode("1", { nope = true }) end)
  end)
end)

describe("px.schema keywords", function()
  it("type, including integer for 1.0 and unions", function()
    assert.is_true(valid({ type = "integer" }, "1.0"))
    assert.is_false(valid({ type = "integer" }, "1.5"))
    assert.is_true(valid({ type = { "string", "null" } }, "null"))
    local e = errors({ type = "object" }, "[]")
    assert.are.same({ " type expected object, got array" }, e)
  end)

  it("enum and const compare JSON values deeply", function()
    assert.is_true(valid({ enum = { 1, "a", { x = { 1, 2 } } } }, '{"x": [1, 2]}'))
    assert.is_false(valid({ enum = { 1, "a" } }, '"b"'))
    assert.is_true(valid('{"const": {"a": [1, {"b": null}]}}', '{"a": [1.0, {"b": null}]}'))
    local e = errors({ const = "dhcp" }, '"x"')
    assert.are.same({ ' const must be "dhcp"' }, e)
    assert.are.same({ ' enum "c" is not one of "a", "b"' }, (errors({ enum = { "a", "b" } }, '"c"')))
  end)

  it("properties, required, additionalProperties, patternProperties, propertyNames", function()
    local s = [[{"type": "object", "required": ["a", "b"],
      "properties": {"a": {"type": "integer"}},
      "patternProperties": {"^x-": {"type": "string"}},
      "propertyNames": {"maxLength": 5},
      "additionalProperties": false}]]
    local e = errors(s, '{"a": "1", "x-y": 2, "other": 1, "toolong": 1}')
    assert.are.same({
      " required missing required field \"b\"",
      "/a type expected integer, got string",
      "/x-y type expected string, got integer",
      "/other additionalProperties unknown field \"other\"",
      "/toolong additionalProperties unknown field \"toolong\"",
      "/toolong maxLength must be at most 5 characters long",
    }, e)
  end)

  it("additionalProperties with a schema, min/maxProperties", function()
    local s = { type = "object", additionalProperties = { type = "integer" }, minProperties = 1, maxProperties = 2 }
    assert.is_true(valid(s, '{"a": 1}'))
    assert.is_false(valid(s, '{"a": "x"}'))
    assert.is_false(valid(s, "{}"))
    assert.is_false(valid(s, '{"a": 1, "b": 2, "c": 3}'))
  end)

  it("items, prefixItems, minItems, maxItems, uniqueItems", function()
    local s = [[{"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "integer"},
      "minItems": 2, "maxItems": 4, "uniqueItems": true}]]
    assert.is_true(valid(s, '["a", 1, 2]'))
    local e = errors(s, '[1, "b", 3, 3, 4]')
    assert.are.same({
      " maxItems must have at most 4 items",
      "/0 type expected string, got integer",
      "/1 type expected integer, got string",
      "/3 uniqueItems duplicate item (same as item 2)",
    }, e)
    assert.is_false(valid(s, '["a"]'))
    assert.is_false(valid({ uniqueItems = true }, '[{"a": 1, "b": 2}, {"b": 2, "a": 1}]'))
  end)

  it("minimum, maximum, exclusive bounds, multipleOf", function()
    local s = { minimum = 100, maximum = 999999999 }
    assert.is_true(valid(s, "100"))
    assert.is_true(valid(s, "999999999"))
    assert.are.same({ " minimum 99 is less than the minimum 100" }, (errors(s, "99")))
    assert.are.same({ " maximum 1000000000 is more than the maximum 999999999" }, (errors(s, "1000000000")))
    assert.is_false(valid({ exclusiveMinimum = 0 }, "0"))
    assert.is_false(valid({ exclusiveMaximum = 10 }, "10"))
    assert.is_true(valid({ multipleOf = 0.5 }, "2.5"))
    assert.is_false(valid({ multipleOf = 0.5 }, "2.25"))
  end)

  it("minLength and maxLength count characters, not bytes", function()
    assert.is_true(valid({ maxLength = 2 }, '"éé"'))
    assert.is_false(valid({ maxLength = 1 }, '"éé"'))
    assert.is_false(valid({ minLength = 3 }, '"ab"'))
  end)

  it("pattern searches (unanchored) with the documented dialect", function()
    assert.is_true(valid({ pattern = "b" }, '"abc"'))
    assert.is_false(valid({ pattern = "^b" }, '"abc"'))
    assert.are.same({ ' pattern "Ab" does not match the pattern ^[a-z]+$' }, (errors({ pattern = "^[a-z]+$" }, '"Ab"')))
  end)

  it("format: ipv4, ipv4-cidr, mac, hostname", function()
    local cases = {
      ipv4 = { ok = { "10.0.0.1", "0.0.0.0", "255.255.255.255" }, bad = { "10.0.0", "10.0.0.256", "010.0.0.1", "10.0.0.1/24", "a.b.c.d", "" } },
      ["ipv4-cidr"] = { ok = { "10.0.0.0/24", "10.0.0.5/32", "0.0.0.0/0" }, bad = { "10.0.0.1", "10.0.0.1/33", "10.0.0.1/024", "10.0.0.1/" } },
      mac = { ok = { "52:54:00:AA:bb:cc", "BC:24:11:00:00:01" }, bad = { "52:54:00:AA:BB", "52-54-00-AA-BB-CC", "01:00:5E:00:00:01", "52:54:00:AA:BB:CG" } },
      hostname = { ok = { "web", "Copy-Cuda12.8", "granite-3.3-8b-fp8", "a.b.example.lan", string.rep("a", 63) },
        bad = { "-web", "web-", "web_1", "a..b", string.rep("a", 64), "", "web 1" } },
    }
    for fmt, c in pairs(cases) do
      for _, s in ipairs(c.ok) do assert.is_true(schema.check_format(fmt, s), fmt .. " " .. s) end
      for _, s in ipairs(c.bad) do assert.is_false(schema.check_format(fmt, s), fmt .. " " .. s) end
      assert.is_false(valid({ format = fmt }, json.encode(c.bad[1])))
    end
    assert.has_error(function() schema.check_format("uuid", "x") end)
  end)

  it("allOf, anyOf, oneOf, not", function()
    assert.is_false(valid({ allOf = { { minimum = 1 }, { maximum = 2 } } }, "3"))
    assert.is_true(valid({ anyOf = { { type = "string" }, { type = "integer" } } }, "3"))
    assert.are.same({ " type expected string or integer, got boolean" },
      (errors({ anyOf = { { type = "string" }, { type = "integer" } } }, "true")))
    assert.are.same({ ' oneOf matches more than one of the allowed forms (1 and 2)' },
      (errors({ oneOf = { { type = "integer" }, { minimum = 0 } } }, "3")))
    assert.is_true(valid({ oneOf = { { type = "integer" }, { type = "string" } } }, "3"))
    assert.are.same({ " not matches a form that is not allowed here" }, (errors({ ["not"] = { const = "current" } }, '"current"')))
  end)

  it("anyOf keeps the errors of the one branch whose type fits", function()
    local s = { anyOf = { { type = "string" }, { type = "object", properties = { x = { type = "integer" } } } } }
    assert.are.same({ "/x type expected integer, got string" }, (errors(s, '{"x": "s"}')))
    local s2 = { anyOf = { { const = "dhcp" }, { type = "string", format = "ipv4-cidr" } } }
    local e = errors(s2, '"10.0.0.1"')
    assert.are.equal(1, #e)
    assert.matches('matches none of the allowed forms: must be "dhcp"; or "10.0.0.1": not an IPv4 address with prefix', e[1], 1, true)
  end)

  it("if / then / else", function()
    local s = { ["if"] = { properties = { kind = { const = "vm" } } }, ["then"] = { required = { "vmid" } },
      ["else"] = { required = { "ctid" } } }
    assert.is_true(valid(s, '{"kind": "vm", "vmid": 1}'))
    assert.are.same({ ' required missing required field "vmid"' }, (errors(s, '{"kind": "vm"}')))
    assert.are.same({ ' required missing required field "ctid"' }, (errors(s, '{"kind": "ct"}')))
  end)

  it("$ref to $defs, to any JSON pointer, and recursively", function()
    local s = [[{"$defs": {"id": {"type": "integer", "minimum": 100}, "a~b/c": {"type": "string"},
        "tree": {"type": "array", "items": {"anyOf": [{"$ref": "#/$defs/tree"}, {"type": "integer"}]}}},
      "properties": {"id": {"$ref": "#/$defs/id"}, "s": {"$ref": "#/$defs/a~0b~1c"},
        "p": {"$ref": "#/properties/id"}, "t": {"$ref": "#/$defs/tree"}}}]]
    local e = errors(s, '{"id": 5, "s": 1, "p": 6, "t": [1, [2, ["x"]]]}')
    table.sort(e)
    assert.are.same({
      "/id minimum 5 is less than the minimum 100",
      "/p minimum 6 is less than the minimum 100",
      "/s type expected string, got integer",
      "/t/1/1/0 type expected array or integer, got string",
    }, e)
  end)

  it("boolean schemas", function()
    assert.is_true(valid("true", "[1]"))
    assert.are.same({ "/x false not allowed here" }, (errors({ properties = { x = false } }, '{"x": 1}')))
  end)
end)

describe("px.schema results", function()
  it("collects every error with pointer, keyword, line, column and schema path", function()
    local s = [[{"properties": {"a": {"$ref": "#/$defs/port"}, "b": {"type": "array", "items": {"$ref": "#/$defs/port"}}},
      "$defs": {"port": {"type": "integer", "maximum": 65535}}}]]
    local _, r = errors(s, '{\n "a": 70000,\n "b": [1,\n   "x"]\n}')
    assert.is_false(r.valid)
    assert.are.equal(2, #r.errors)
    local a, b = r.errors[1], r.errors[2]
    assert.are.same({ "/a", "maximum", 2, 7, "#/$defs/port" }, { a.pointer, a.keyword, a.line, a.column, a.schema })
    assert.are.same({ "/b/1", "type", 4, 4 }, { b.pointer, b.keyword, b.line, b.column })
  end)

  it("escapes pointers (RFC 6901)", function()
    local _, r = errors({ additionalProperties = false }, '{"a/b~c": 1}')
    assert.are.equal("/a~1b~0c", r.errors[1].pointer)
  end)

  it("reports duplicate keys", function()
    local _, r = errors({}, '{"a": 1,\n "a": 2}')
    assert.are.equal("/a", r.errors[1].pointer)
    assert.are.equal('duplicate key "a" (the one on line 1 is ignored)', r.errors[1].message)
  end)

  it("reports a broken document as one json error with its position", function()
    local _, r = errors({}, '{"a": [1, 2}')
    assert.is_false(r.valid)
    assert.are.same({ "json", 1, 12 }, { r.errors[1].keyword, r.errors[1].line, r.errors[1].column })
    assert.is_nil(r.value)
  end)

  it("turns unknown fields into warnings on request", function()
    local s = { type = "object", properties = { a = { type = "integer" } }, additionalProperties = false }
    local c = compile(s)
    local r = c:validate('{"a": 1, "zz": 2}', { unknown = "warning" })
    assert.is_true(r.valid)
    assert.are.equal(1, #r.warnings)
    assert.are.same({ "/zz", "additionalProperties" }, { r.warnings[1].pointer, r.warnings[1].keyword })
    assert.is_false(c:validate('{"a": 1, "zz": 2}').valid)
  end)

  it("x-warning reports where the subschema applies; x-error replaces the errors", function()
    local s = { properties = { old = { ["x-warning"] = "old is deprecated" },
      snap = { type = "string", pattern = "^[a-z]+$", maxLength = 3, ["x-error"] = "a short lowercase name" } } }
    local c = compile(s)
    local r = c:validate('{"old": 1, "snap": "ABCDE"}')
    assert.are.same({ "/old", "old is deprecated" }, { r.warnings[1].pointer, r.warnings[1].message })
    assert.are.equal(1, #r.errors)
    assert.are.same({ "/snap", "maxLength", "a short lowercase name" }, { r.errors[1].pointer, r.errors[1].keyword, r.errors[1].message })
    assert.are.equal(0, #c:validate('{"snap": "ab"}').warnings)
  end)

  it("drops warnings and defaults of branches that fail", function()
    local s = { anyOf = { { type = "string", ["x-warning"] = "w1" }, { type = "object", ["x-warning"] = "w2",
      properties = { d = { default = 5 } } } } }
    local r = compile(s):validate('{}')
    assert.are.same({ "w2" }, { r.warnings[1].message })
    assert.are.equal(1, #r.warnings)
    assert.are.same({ "/d", 5 }, { r.defaults[1].pointer, r.defaults[1].value })
  end)

  it("reports defaults of absent properties, with JSON values", function()
    local s = [[{"properties": {"name": {"default": "eth0"}, "here": {"default": 1},
      "nested": {"properties": {"x": {"default": []}, "o": {"default": {}}}}}}]]
    local r = compile(s):validate('{"here": 2, "nested": {}}')
    local got = {}
    for _, d in ipairs(r.defaults) do got[d.pointer] = d.value end
    assert.are.equal("eth0", got["/name"])
    assert.is_nil(got["/here"])
    assert.is_true(json.is_array(got["/nested/x"]))
    assert.is_false(json.is_array(got["/nested/o"]))
  end)

  it("names the table of the value each default belongs in", function()
    local s = [[{"properties": {"a": {"properties": {"x": {"default": 1}}}, "b": {"items": {"properties": {"y": {"default": "z"}}}}}}]]
    local r = compile(s):validate('{"a": {}, "b": [{}, {"y": 2}]}', { value = true })
    assert.are.equal(2, #r.defaults)
    assert.are.same({ "/a/x", "x" }, { r.defaults[1].pointer, r.defaults[1].key })
    assert.are.equal(r.value.a, r.defaults[1].parent)
    assert.are.equal(r.value.b[1], r.defaults[2].parent)
    assert.is_nil(compile(s):validate('{"a": {}}').defaults[1].parent) -- no value asked for
  end)

  it("returns the decoded value and key order on request", function()
    local r = compile({}):validate('{"b": [], "a": 1}', { value = true, order = true })
    assert.are.same({ "b", "a" }, r.order[r.value])
    assert.is_true(json.is_array(r.value.b))
  end)

  it("stops a runaway validation at max_steps and says so", function()
    local c = compile { items = { anyOf = { { type = "string" }, { type = "integer" } } } }
    local r = c:validate("[" .. string.rep("1,", 999) .. "1]", { max_steps = 50 })
    assert.is_false(r.valid)
    assert.matches("validation stopped after 50 steps", r.errors[#r.errors].message, 1, true)
  end)

  it("checks its options", function()
    local c = compile {}
    assert.has_error(function() c:validate("1", { unknown = "ignore" }) end)
    assert.has_error(function() c:validate("1", { bogus = 1 }) end)
    assert.has_error(function() c:validate("1", { max_steps = 0 }) end)
    assert.has_error(function() schema.compile("{}", { strict = "yes" }) end)
    assert.has_error(function() schema.compile(1, { what = 1 }) end)
  end)

  it("can be closed, and a closed schema refuses to validate", function()
    local c = compile {}
    c:close()
    c:close()
    assert.has_error(function() c:validate("1") end)
    do
      local c2 <close> = compile {}
      assert.is_true(c2:validate("1").valid)
    end
  end)
end)

describe("px.schema from files", function()
  local fs = require "px.fs"
  local sitefix = require "sitefix"

  it("validate_file and decode_file read (map) the file themselves", function()
    local dir = sitefix.tmpdir()
    assert(fs.write(dir .. "/a.json", '{"a": [1, 2],\n "b": "x"}'))
    assert(fs.write(dir .. "/empty.json", ""))
    local c = compile { properties = { b = { type = "integer" } } }
    local r = c:validate_file(dir .. "/a.json", { value = true, text = true })
    assert.are.same({ "/b", 2 }, { r.errors[1].pointer, r.errors[1].line })
    assert.are.same({ 1, 2 }, r.value.a)
    assert.are.equal('{"a": [1, 2],\n "b": "x"}', r.text)
    assert.are.same({ a = { 1, 2 }, b = "x" }, schema.decode_file(dir .. "/a.json"))
    local e = c:validate_file(dir .. "/empty.json")
    assert.are.equal("json", e.errors[1].keyword)
    local none, err = c:validate_file(dir .. "/missing.json")
    assert.is_nil(none)
    assert.are.equal(dir .. "/missing.json: No such file or directory", err)
    local d, derr = schema.decode_file(dir)
    assert.is_nil(d)
    assert.are.equal(dir .. ": not a regular file", derr)
    sitefix.rmdir(dir)
  end)
end)

describe("px.schema.compile errors", function()
  local function cerr(s, strict)
    local c, err = schema.compile(type(s) == "string" and s or json.encode(s), { strict = strict, name = "t.json" })
    assert.is_nil(c)
    return err
  end

  it("names the schema and where the problem is", function()
    assert.are.equal('t.json: #/properties/a: unknown type "int"', cerr('{"properties": {"a": {"type": "int"}}}'))
    assert.matches("t.json: line 1, column 2", cerr("{,}"), 1, true)
    local function has(frag, err) assert.is_truthy(err:find(frag, 1, true), err) end
    has("#: minLength must be a non-negative integer", cerr { minLength = -1 })
    has("only local references", cerr { ["$ref"] = "other.json#/x" })
    has("points to nothing", cerr { ["$ref"] = "#/$defs/nope" })
    has("anchors are not supported", cerr { ["$ref"] = "#foo" })
    has('#/properties/pattern: bad pattern "(a": missing )', cerr('{"properties": {"pattern": {"pattern": "(a"}}}'))
    has("a schema must be an object or a boolean", cerr { properties = { a = 1 } })
    has("items must be a schema", cerr('{"items": [{}]}'))
  end)

  it("refuses $ref cycles that never reach into the instance", function()
    assert.is_truthy(cerr('{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"}'))
    assert.is_truthy(cerr('{"allOf": [{"$ref": "#"}]}'))
    -- through properties it is fine: each step goes one level down
    assert.is_truthy(schema.compile('{"properties": {"next": {"$ref": "#"}}}'))
  end)

  it("strict mode refuses unknown keywords and formats; annotations are fine", function()
    assert.is_truthy(cerr({ requird = { "a" } }, true):find('unknown keyword "requird"', 1, true))
    assert.is_truthy(cerr({ format = "uuid" }, true):find('unknown format "uuid"', 1, true))
    assert.is_truthy(schema.compile('{"requird": ["a"], "format": "uuid"}'))
    assert.is_truthy(schema.compile('{"title": "t", "description": "d", "$comment": "c", "examples": [1], "$schema": "x", "$id": "y", "deprecated": true}', { strict = true }))
  end)
end)

describe("px.schema.match (the regex dialect)", function()
  local function m(p, s)
    local r, err = schema.match(p, s)
    assert(r ~= nil, err)
    return r
  end
  it("supports classes, escapes, groups, alternation and counted repetition", function()
    assert.is_true(m("^[a-z][a-z0-9_-]*$", "final-form"))
    assert.is_false(m("^[a-z][a-z0-9_-]*$", "Final"))
    assert.is_true(m("^\\d{2,3}$", "123"))
    assert.is_false(m("^\\d{2,3}$", "1234"))
    assert.is_true(m("^(?:ab|cd)+$", "abcdab"))
    assert.is_true(m("^(?<x>a)b$", "ab"))
    assert.is_true(m("^[^\\s/]+$", "abc"))
    assert.is_false(m("^[^\\s/]+$", "a/b"))
    assert.is_true(m("^\\w+\\.\\W$", "a_1.!"))
    assert.is_true(m("\\bfoo\\b", "a foo b"))
    assert.is_false(m("\\bfoo\\b", "afoob"))
    assert.is_true(m("^a.c$", "aéc"))
    assert.is_false(m("^a.c$", "a\nc"))
    assert.is_true(m("^\\u00e9$", "é"))
    assert.is_true(m("^[\\u0000-\\u001f]$", "\t"))
    assert.is_true(m("^x{2}$", "xx"))
    assert.is_true(m("^a{,2}$", "a{,2}"))
    assert.is_true(m("^(a*)*b$", "aaaab"))
  end)

  it("is linear: no catastrophic backtracking", function()
    local t0 = os.clock()
    assert.is_false(m("^(a+)+$", string.rep("a", 5000) .. "b"))
    assert.is_false(m("(x+x+)+y", string.rep("x", 5000)))
    assert.is_true(os.clock() - t0 < 2)
  end)

  it("refuses what it does not implement", function()
    for _, p in ipairs { "(?=a)", "(?!a)", "(?<=a)", "(a)\\1", "\\p{L}", "a**", "*a", "[b-a]", "a{3,2}", "a{5000}",
      "((((a{100}){100}){100}))", string.rep("(", 150) .. string.rep(")", 150), string.rep("a", 5000) } do
      local r, err = schema.match(p, "a")
      assert.is_nil(r, p)
      assert.is_string(err)
    end
  end)
end)
