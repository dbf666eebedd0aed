-- px.json: exact decoding, canonical encoding (src/px_json.c).
local json = require "px.json"

describe("px.json", function()
  describe("decode", function()
    it("keeps integers as integers, exactly, up to 64 bits", function()
      assert.are.equal("integer", math.type(json.decode("101")))
      assert.are.equal(9007199254740993, json.decode("9007199254740993"))
      assert.are.equal(math.maxinteger, json.decode("9223372036854775807"))
      assert.are.equal(math.mininteger, json.decode("-9223372036854775808"))
      assert.are.equal("float", math.type(json.decode("1.0")))
      assert.are.equal("float", math.type(json.decode("1e2")))
      assert.are.equal("float", math.type(json.decode("18446744073709551616"))) -- beyond 64 bits
      assert.are.equal(0.1, json.decode("0.1"))
      assert.are.equal(-2.5e-3, json.decode("-2.5E-3"))
    end)

    it("decodes strings with every escape, including surrogate pairs", function()
      assert.are.equal('"\\/\b\f\n\r\t', json.decode([["\"\\\/\b\f\n\r\t"]]))
      assert.are.equal("é€😀", json.decode([["\u00e9\u20ac\ud83d\ude00"]]))
      assert.are.equal("a\0b", json.decode([["a\u0000b"]]))
      assert.are.equal("raw é", json.decode('"raw é"'))
    end)

    it("marks arrays, so [] and {} stay apart", function()
      local v = json.decode('{"a": [], "b": {}, "c": [1, [2]]}')
      assert.is_true(json.is_array(v.a))
      assert.is_false(json.is_array(v.b))
      assert.is_true(json.is_array(v.c[2]))
      assert.is_false(json.is_array(v))
      assert.are.equal('{"a":[],"b":{},"c":[1,[2]]}', json.encode(v))
    end)

    it("gives null as json.null, which is cjson.null", function()
      local v = json.decode('{"x": null, "l": [null, 1]}')
      assert.are.equal(json.null, v.x)
      assert.are.equal(json.null, v.l[1])
      assert.are.equal(require("cjson").null, json.null)
    end)

    it("takes the last of duplicate keys and skips a UTF-8 BOM", function()
      assert.are.equal(2, json.decode('{"a":1,"a":2}').a)
      assert.are.equal(true, json.decode("\239\187\191true"))
    end)

    it("reports errors with line and column", function()
      local cases = {
        { '{"a":\n  [1,}', "line 2, column 6: expected a value, found '}'" },
        { '[1,\n ]', "line 2, column 2: trailing comma in an array" },
        { '{\n  "a": 1,\n  "b" 2\n}', "line 3, column 7: expected ':' after an object key, found '2'" },
        { "", "line 1, column 1: unexpected end of text (a value was expected)" },
        { "[1 2]", "line 1, column 4: expected ',' or ']' after an array item, found '2'" },
        { '{"a":1,}', "line 1, column 8: trailing comma in an object" },
        { "{1:2}", "line 1, column 2: expected a string key, found '1'" },
        { "01", "line 1, column 1: invalid number (leading zero)" },
        { "1.", "line 1, column 1: invalid number (digit expected after '.')" },
        { "-", "line 1, column 1: invalid number" },
        { "1e999", "line 1, column 1: number out of range" },
        { "NaN", "line 1, column 1: expected a value, found 'N'" },
        { '"abc', "line 1, column 1: unterminated string" },
        { '"a\tb"', "line 1, column 3: control character in a string (escape it)" },
        { [["\x"]], "line 1, column 2: invalid escape in a string" },
        { [["\u12"]], "line 1, column 2: invalid \\u escape (4 hex digits expected)" },
        { [["\ud800x"]], "line 1, column 2: high surrogate without a low one in \\u escape" },
        { [["\udc00"]], "line 1, column 2: lone low surrogate in \\u escape" },
        { "[1] [2]", "line 1, column 5: unexpected '[' after the value" },
        { "tru", "line 1, column 1: expected a value, found 't'" },
        { "// c\n1", "line 1, column 1: expected a value, found '/'" },
      }
      for _, c in ipairs(cases) do
        local v, err = json.decode(c[1])
        assert.is_nil(v, c[1])
        assert.are.equal(c[2], err)
      end
    end)

    it("refuses nesting deeper than 1000 levels", function()
      assert.truthy(json.decode(string.rep("[", 1000) .. string.rep("]", 1000)))
      local v, err = json.decode(string.rep("[", 1001) .. string.rep("]", 1001))
      assert.is_nil(v)
      assert.are.equal("line 1, column 1001: nesting deeper than 1000 levels", err)
    end)

    it("raises when not given a string", function()
      assert.has_error(function() json.decode({}) end)
      assert.has_error(function() json.decode() end)
    end)
  end)

  describe("canonical", function()
    it("sorts keys bytewise at every level", function()
      local v = { zeta = 1, Alpha = 2, beta = { d = 1, c = 2, ["a b"] = 3 }, ["1"] = 0 }
      assert.are.equal('{"1":0,"Alpha":2,"beta":{"a b":3,"c":2,"d":1},"zeta":1}', json.canonical(v))
    end)

    it("writes numbers in one stable form", function()
      assert.are.equal("[1,0,-3,1e+20,0.1,0.3333333333333333,9007199254740992]",
        json.canonical({ 1.0, -0.0, -3.0, 1e20, 0.1, 1 / 3, 2.0 ^ 53 }))
      assert.are.equal("[9223372036854775807,-9223372036854775808]",
        json.canonical({ math.maxinteger, math.mininteger }))
      assert.has_error(function() json.canonical(0 / 0) end)
      assert.has_error(function() json.canonical({ x = math.huge }) end)
    end)

    it("round-trips: decode(canonical(v)) is v, canonical is stable", function()
      local text = '{"a":[1,2.5,"x",true,false,null,[],{}],"b":{"c":{"d":[]}},"n":-7,"s":"q\\"\\\\\\n"}'
      local v = assert(json.decode(text))
      assert.are.equal(text, json.canonical(v))
      assert.are.equal(text, json.canonical(json.decode(json.canonical(v))))
      assert.are.equal(text, json.encode(v))
    end)

    it("writes sequences as arrays, other tables as objects", function()
      assert.are.equal("[1,2,3]", json.canonical({ 1, 2, 3 }))
      assert.are.equal('{"1":1,"3":3}', json.canonical({ [1] = 1, [3] = 3 }))
      assert.are.equal('{"1":"a","2":"b","x":1}', json.canonical({ "a", "b", x = 1 }))
      assert.are.equal('{"1.5":true,"2":false}', json.canonical({ [1.5] = true, [2] = false }))
      assert.are.equal("{}", json.canonical({}))
      assert.are.equal("[]", json.canonical(json.array({})))
      assert.are.equal('{"a":{"b":{}}}', json.canonical({ a = { b = {} } }))
    end)

    it("escapes control bytes and leaves UTF-8 alone", function()
      assert.are.equal('"\\u0001\\u001f\\u007fé\\t"', json.canonical("\1\31\127é\t"))
    end)

    it("pretty-prints with two-space indentation", function()
      assert.are.equal('{\n  "a": [\n    1,\n    {}\n  ],\n  "b": null\n}',
        json.canonical({ b = json.null, a = { 1, {} } }, { pretty = true }))
      assert.are.equal("[]", json.canonical(json.array({}), { pretty = true }))
    end)

    it("raises on what JSON cannot hold", function()
      assert.has_error(function() json.canonical({ [true] = 1 }) end)
      assert.has_error(function() json.canonical({ f = print }) end)
      assert.has_error(function() json.canonical({ [1] = "a", ["1"] = "b", x = 1 }) end)
      local t = {}
      t.self = t
      assert.has_error(function() json.canonical(t) end)
      assert.has_error(function() json.canonical({}, { prety = true }) end)
    end)
  end)

  it("array() marks a table, is_array tells", function()
    local t = json.array({ 1, 2 })
    assert.is_true(json.is_array(t))
    assert.are.equal(json.array_mt, getmetatable(t))
    assert.is_false(json.is_array({}))
    assert.is_false(json.is_array("x"))
  end)
end)
