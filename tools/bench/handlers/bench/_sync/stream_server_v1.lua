-- bench/stream v1: the streaming scenario of the benchmark (tools/bench). Produces `tokens`
-- pseudo-random tokens of 1-4 characters (MINSTD generator, the same sequence as the Node peer
-- in tools/bench/peers/socketio/server.js) and pushes each through a stream throttle into
-- ctx.broadcastStream, with no sleeps: the throttle alone decides how many frames leave. The
-- whole text comes back in serverOutput so the generator can check that no piece was lost
-- or reordered.
local ALPHABET = "abcdefghijklmnopqrstuvwxyz"

return {
  input = {
    tokens = { type = "integer", min = 1, max = 100000, optional = true },
    seed = { type = "integer", min = 1, max = 2147483646, optional = true },
  },
  main = function(ctx)
    local n = ctx.data.tokens or 2000
    local x = ctx.data.seed or 1
    local th = ctx.functions.createStreamThrottle({})
    local emit = function(chunk)
      ctx.broadcastStream(chunk)
    end
    local text = {}
    for i = 1, n do
      x = (x * 48271) % 2147483647
      local len = 1 + x % 4
      local tok = {}
      for j = 1, len do
        x = (x * 48271) % 2147483647
        local k = x % 27
        tok[j] = k == 26 and " " or ALPHABET:sub(k + 1, k + 1)
      end
      local s = table.concat(tok)
      text[i] = s
      th:push(s, emit)
    end
    th:flush(emit)
    return { status = "success", serverOutput = { tokens = n, text = table.concat(text) } }
  end,
}
