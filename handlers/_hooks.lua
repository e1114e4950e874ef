-- Project hooks (optional). Each is a function receiving one table.
return {
  -- Before the fanout: may stop it with { stop = true, errorCode = "…" }.
  preSyncFanout = function(info)
    if info.route == "board/moveCard/v1" and info.receiver == "board-archived" then
      return { stop = true, errorCode = "board.archived" }
    end
  end,
  -- After the fanout, with the number of recipients.
  postSyncFanout = function(info)
    if info.recipientCount > 1000 then
      -- a large fanout: a project could record a metric here
    end
  end,
  -- Every handler failure (route, stage, userId, error, file, line).
  onError = function(info)
    -- forward to an error tracker; the server already logs the failure
  end,
}
