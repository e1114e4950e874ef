-- The example chat handler (chat/sendMessage v1), server and client file, through the real
-- runtime (lua/luckysync/testing.lua).
local testing = require("luckysync.testing")

local ROUTE = "chat/sendMessage/v1"

-- Every user here carries a `name` claim (see the report: a user without one currently breaks
-- the client file, because ctx.recipient.name is json.null instead of nil).
local function person(id, claims)
  claims = claims or {}
  claims.name = claims.name or id
  return testing.user(id, claims)
end

describe("chat/sendMessage", function()
  local app
  setup(function()
    app = testing.app({ handlers = "handlers" })
  end)
  teardown(function()
    app:close()
  end)

  it("posts a message: the sender's answer and every member's frame carry it", function()
    local res = app:call(ROUTE, {
      user = person("alice", { name = "Alice" }),
      receiver = "chat-1",
      members = { person("bob"), person("carol") },
      data = { text = "hello there" },
      cb = "cb-42",
    })
    assert.is_true(res.ok)
    assert.are.equal("sync sync/chat/sendMessage/v1 success", res.response.message)
    local out = res.result.serverOutput
    assert.are.equal("hello there", out.text)
    assert.are.same({ id = "alice", name = "Alice" }, out.from)
    assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", out.id)
    assert.are.equal("integer", math.type(out.at))
    assert.is_nil(out.replyTo)
    for i = 1, 2 do
      local frames = res.recipients[i].frames
      assert.are.equal(1, #frames)
      assert.are.equal("success", frames[1].status)
      assert.are.equal("cb-42", frames[1].cb)
      assert.are.equal("sync/chat/sendMessage/v1", frames[1].fullName)
      assert.are.equal(out.id, frames[1].serverOutput.id)
      assert.are.equal("hello there", frames[1].serverOutput.text)
      assert.is_false(frames[1].clientOutput.mentioned)
    end
    assert.are.equal(1, #res.self) -- the sender is a member of the room too
  end)

  it("keeps replyTo", function()
    local res = app:call(ROUTE, {
      user = person("alice"),
      data = { text = "yes", replyTo = "m-1" },
    })
    assert.is_true(res.ok)
    assert.are.equal("m-1", res.result.serverOutput.replyTo)
  end)

  it("sends nothing to a recipient whose blocked claim lists the sender", function()
    local res = app:call(ROUTE, {
      user = person("alice"),
      receiver = "chat-1",
      members = {
        person("bob", { blocked = { "mallory", "alice" } }),
        person("carol", { blocked = { "mallory" } }),
        person("dan"),
      },
      data = { text = "can you see this?" },
    })
    assert.is_true(res.ok)
    assert.are.equal(0, #res.recipients[1].frames)
    assert.are.equal(0, #res.recipients[1].events)
    assert.are.equal(1, #res.recipients[2].frames)
    assert.are.equal("success", res.recipients[2].frames[1].status)
    assert.are.equal(1, #res.recipients[3].frames)
    -- bob was skipped, so the fanout reached the sender, carol and dan
    local post = res.hooks[#res.hooks]
    assert.are.equal("postSyncFanout", post.name)
    assert.are.equal(3, post.recipientCount)
  end)

  it("blocking someone else changes nothing", function()
    local res = app:call(ROUTE, {
      user = person("alice"),
      members = { person("bob", { blocked = { "eve" } }) },
      data = { text = "hi" },
    })
    assert.are.equal(1, #res.recipients[1].frames)
  end)

  it("flags the recipients a message mentions, in clientOutput", function()
    local res = app:call(ROUTE, {
      user = person("alice"),
      receiver = "chat-1",
      members = { person("bob"), person("carol"), testing.anonymous },
      data = { text = "@bob look at this" },
    })
    assert.is_true(res.ok)
    assert.is_true(res.recipients[1].frames[1].clientOutput.mentioned)
    assert.is_false(res.recipients[2].frames[1].clientOutput.mentioned)
    -- an anonymous member still gets the message, never mentioned
    assert.are.equal("success", res.recipients[3].frames[1].status)
    assert.is_false(res.recipients[3].frames[1].clientOutput.mentioned)
    -- every recipient gets the same serverOutput
    assert.are.same(res.result.serverOutput, res.recipients[2].frames[1].serverOutput)
  end)

  it("a blocked sender is skipped even when the message mentions the blocker", function()
    local res = app:call(ROUTE, {
      user = person("alice"),
      members = { person("bob", { blocked = { "alice" } }) },
      data = { text = "@bob please" },
    })
    assert.is_true(res.ok)
    assert.are.equal(0, #res.recipients[1].frames)
  end)

  it("ignoreSelf leaves the sender's own socket out", function()
    local res = app:call(ROUTE, {
      user = person("alice"),
      members = { person("bob") },
      ignoreSelf = true,
      data = { text = "hi" },
    })
    assert.is_true(res.ok)
    assert.are.equal(0, #res.self)
    assert.are.equal(1, #res.recipients[1].frames)
  end)

  it("needs a login", function()
    local res = app:call(ROUTE, { members = { person("bob") }, data = { text = "hi" } })
    assert.are.equal("auth.required", res.errorCode)
    assert.are.equal(401, res.response.httpStatus)
    assert.are.equal(0, #res.recipients[1].frames)
  end)

  it("validates the text", function()
    local cases = {
      { data = { text = "" }, field = "text", reason = "tooShort" },
      { data = { text = string.rep("a", 2001) }, field = "text", reason = "tooLong" },
      { data = {}, field = "text", reason = "required" },
      { data = { text = 5 }, field = "text", reason = "type" },
      { data = { text = "x", replyTo = 3 }, field = "replyTo", reason = "type" },
      { data = { text = "x", html = "<b>" }, field = "html", reason = "unknownKey" },
    }
    for _, c in ipairs(cases) do
      local res = app:call(ROUTE, { user = person("alice"), data = c.data })
      assert.are.equal("sync.invalidInput", res.errorCode)
      assert.are.same({ { key = "field", value = c.field }, { key = "reason", value = c.reason } },
        res.errorParams)
    end
    -- 2000 code points of multi-byte text are fine
    local text = string.rep("é", 2000)
    local res = app:call(ROUTE, { user = person("alice"), data = { text = text } })
    assert.is_true(res.ok)
  end)
end)
