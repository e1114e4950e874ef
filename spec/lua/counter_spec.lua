-- The example counter handler (counter/increment v1) through the real runtime.
local testing = require("luckysync.testing")

local ROUTE = "counter/increment/v1"

describe("counter/increment", function()
  local app
  setup(function()
    app = testing.app({ handlers = "handlers" })
  end)
  teardown(function()
    app:close()
  end)

  it("fans the delta out to everyone in the room", function()
    local res = app:call(ROUTE, {
      user = testing.user("alice"),
      receiver = "counter-room",
      members = { testing.user("bob"), testing.anonymous },
      data = { counter = "likes", by = 3 },
    })
    assert.is_true(res.ok)
    assert.are.same({ counter = "likes", by = 3 }, res.result.serverOutput)
    assert.are.equal("integer", math.type(res.result.serverOutput.by))
    for i = 1, 2 do
      local f = res.recipients[i].frames
      assert.are.equal(1, #f)
      assert.are.same({ counter = "likes", by = 3 }, f[1].serverOutput)
      assert.are.same({}, f[1].clientOutput) -- no client file
    end
  end)

  it("lets an anonymous member count too", function()
    local res = app:call(ROUTE, { data = { counter = "likes", by = -2 } })
    assert.is_true(res.ok)
    assert.are.equal(-2, res.result.serverOutput.by)
  end)

  it("refuses a zero delta with the handler's own error and errorParams", function()
    local res = app:call(ROUTE, {
      user = testing.user("alice"),
      members = { testing.user("bob") },
      data = { counter = "likes", by = 0 },
    })
    assert.is_false(res.ok)
    assert.are.equal("counter.zeroDelta", res.errorCode)
    assert.are.same({ { key = "by", value = 0 } }, res.errorParams)
    assert.are.equal(400, res.response.httpStatus)
    assert.are.equal(0, #res.recipients[1].frames)
    assert.are.equal(0, #res.self)
  end)

  it("treats 0.0 as a zero delta as well (an integral real passes the integer schema)", function()
    local res = app:call(ROUTE, { data = { counter = "likes", by = 0.0 } })
    assert.are.equal("counter.zeroDelta", res.errorCode)
  end)

  it("accepts the bounds of the schema", function()
    for _, by in ipairs({ -100, -1, 1, 100 }) do
      local res = app:call(ROUTE, { data = { counter = "c", by = by } })
      assert.is_true(res.ok, "by = " .. by)
      assert.are.equal(by, res.result.serverOutput.by)
    end
    local long = string.rep("k", 64)
    assert.is_true(app:call(ROUTE, { data = { counter = long, by = 1 } }).ok)
  end)

  it("refuses values outside the schema, naming the field and the reason", function()
    local cases = {
      { data = { counter = "c", by = 101 }, field = "by", reason = "tooLarge" },
      { data = { counter = "c", by = -101 }, field = "by", reason = "tooSmall" },
      { data = { counter = "c", by = 1.5 }, field = "by", reason = "notInteger" },
      { data = { counter = "c", by = "1" }, field = "by", reason = "type" },
      { data = { counter = "c" }, field = "by", reason = "required" },
      { data = { counter = "", by = 1 }, field = "counter", reason = "tooShort" },
      { data = { counter = string.rep("k", 65), by = 1 }, field = "counter", reason = "tooLong" },
      { data = { by = 1 }, field = "counter", reason = "required" },
      { data = { counter = "c", by = 1, step = 2 }, field = "step", reason = "unknownKey" },
    }
    for _, c in ipairs(cases) do
      local res = app:call(ROUTE, { data = c.data, members = { testing.user("bob") } })
      assert.are.equal("sync.invalidInput", res.errorCode)
      assert.are.same({ { key = "field", value = c.field }, { key = "reason", value = c.reason } },
        res.errorParams)
      assert.are.equal(0, #res.recipients[1].frames)
    end
  end)
end)
