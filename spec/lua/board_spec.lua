-- The example board handlers, through the real runtime (lua/luckysync/testing.lua).
local testing = require("luckysync.testing")

describe("board handlers", function()
  local app
  setup(function()
    app = testing.app({ handlers = "handlers" })
  end)
  teardown(function()
    app:close()
  end)

  it("moves a card and fans the move out to every member", function()
    local res = app:call("board/moveCard/v1", {
      user = testing.user("alice"),
      receiver = "board-1",
      members = { testing.user("bob"), testing.anonymous },
      data = { cardId = "c1", toLane = "done", pos = 3 },
    })
    assert.is_true(res.ok)
    assert.are.equal("c1", res.result.serverOutput.cardId)
    assert.are.equal("alice", res.result.serverOutput.movedBy)
    assert.are.equal(math.type(res.result.serverOutput.pos), "integer")
    assert.are.equal(2, #res.recipients)
    for _, r in ipairs(res.recipients) do
      assert.are.equal(1, #r.frames)
      assert.are.equal("success", r.frames[1].status)
      assert.are.equal("sync/board/moveCard/v1", r.frames[1].fullName)
      assert.are.equal("done", r.frames[1].serverOutput.toLane)
    end
    assert.are.equal(1, #res.self) -- the sender is in the room too
    assert.is_string(res.progress[1].__cancelId)
  end)

  it("needs a login", function()
    local res = app:call("board/moveCard/v1", {
      receiver = "board-1",
      data = { cardId = "c1", toLane = "done" },
    })
    assert.are.equal("auth.required", res.errorCode)
  end)

  it("refuses an unknown lane naming the field", function()
    local res = app:call("board/moveCard/v1", {
      user = testing.user("alice"),
      receiver = "board-1",
      data = { cardId = "c1", toLane = "nowhere" },
    })
    assert.are.equal("sync.invalidInput", res.errorCode)
    assert.are.same({ { key = "field", value = "toLane" }, { key = "reason", value = "enum" } },
      res.errorParams)
    assert.are.equal(0, #res.self)
  end)

  it("lets only editors add cards", function()
    local req = { receiver = "b", data = { title = "Write docs", lane = "todo" } }
    req.user = testing.user("carol")
    assert.are.equal("auth.forbidden", app:call("board/addCard/v1", req).errorCode)
    req.user = testing.user("alice", { roles = { "editor" } })
    local res = app:call("board/addCard/v1", req)
    assert.is_true(res.ok)
    assert.are.equal("Write docs", res.result.serverOutput.card.title)
    assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", res.result.serverOutput.card.id)
  end)

  it("stops the fanout to an archived board (preSyncFanout hook)", function()
    local res = app:call("board/moveCard/v1", {
      user = testing.user("alice"),
      receiver = "board-archived",
      members = { testing.user("bob") },
      data = { cardId = "c1", toLane = "done" },
    })
    assert.are.equal("board.archived", res.errorCode)
    assert.are.equal(0, #res.recipients[1].frames)
    assert.are.equal("preSyncFanout", res.hooks[1].name)
  end)

  it("reports the recipient count to postSyncFanout", function()
    local res = app:call("board/moveCard/v1", {
      user = testing.user("alice"),
      receiver = "board-1",
      members = { testing.user("bob"), testing.user("dan") },
      ignoreSelf = true,
      data = { cardId = "c1", toLane = "todo" },
    })
    assert.is_true(res.ok)
    assert.are.equal(0, #res.self)
    local post = res.hooks[#res.hooks]
    assert.are.equal("postSyncFanout", post.name)
    assert.are.equal(2, post.recipientCount)
  end)
end)
