-- board/moveCard v1: move a card to another lane. Every member of the board's room gets the
-- move; the sender's answer carries the same serverOutput.
return {
  auth = { login = true },
  input = {
    cardId = { type = "string", min = 1, max = 64 },
    toLane = { enum = { "todo", "doing", "done" } },
    pos = "integer?",
  },
  main = function(ctx)
    local d = ctx.data
    return {
      status = "success",
      serverOutput = {
        cardId = d.cardId,
        toLane = d.toLane,
        pos = d.pos or 0,
        movedBy = ctx.user.id,
        at = ctx.functions.now(),
      },
    }
  end,
}
