-- chat/sendMessage v1: post a message to a chat room. Anonymous users may not post.
return {
  auth = { login = true },
  input = {
    text = { type = "string", min = 1, max = 2000 },
    replyTo = "string?",
  },
  rateLimit = 120,
  main = function(ctx)
    return {
      status = "success",
      serverOutput = {
        id = ctx.functions.uuid(),
        text = ctx.data.text,
        replyTo = ctx.data.replyTo,
        from = { id = ctx.user.id, name = ctx.user.name },
        at = ctx.functions.now(),
      },
    }
  end,
}
