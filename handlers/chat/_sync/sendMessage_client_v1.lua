-- chat/sendMessage v1, per recipient: a user who blocked the sender (the `blocked` claim of
-- their token lists user ids) does not receive the message; everyone else gets it, with a
-- flag telling whether it mentions them.
return {
  main = function(ctx)
    local me = ctx.recipient
    if me and me.claims and type(me.claims.blocked) == "table" then
      for _, id in ipairs(me.claims.blocked) do
        if id == ctx.sender.id then
          return { status = "skip" }
        end
      end
    end
    local mentioned = false
    if me and me.name then
      mentioned = string.find(ctx.serverOutput.text, "@" .. me.name, 1, true) ~= nil
    end
    return { status = "success", clientOutput = { mentioned = mentioned } }
  end,
}
