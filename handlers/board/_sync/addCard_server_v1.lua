-- board/addCard v1: only editors may add cards. The server mints the card id.
local board = require("board")

return {
  auth = { login = true, roles = { "editor" } },
  input = {
    title = { type = "string", min = 1, max = 200 },
    lane = { enum = { "todo", "doing", "done" } },
    tags = { type = "array", items = "string", max = 10, optional = true },
  },
  main = function(ctx)
    local card = board.new_card(ctx.functions.uuid(), ctx.data.title, ctx.data.lane, ctx.data.tags)
    card.createdBy = ctx.user.id
    return { status = "success", serverOutput = { card = card } }
  end,
}
