-- counter/increment v1: anyone in the room (anonymous too, when rooms.policy allows it) adds a
-- bounded delta to a shared counter; clients apply the delta in order, so the handler keeps
-- no state and any VM of the pool can run it.
return {
  input = {
    counter = { type = "string", min = 1, max = 64 },
    by = { type = "integer", min = -100, max = 100 },
  },
  main = function(ctx)
    if ctx.data.by == 0 then
      return { status = "error", errorCode = "counter.zeroDelta",
               errorParams = { { key = "by", value = 0 } } }
    end
    return { status = "success", serverOutput = { counter = ctx.data.counter, by = ctx.data.by } }
  end,
}
