-- chat/askAssistant v1: a fake LLM for the demo page. It "thinks" token by token (sleeping
-- between tokens, as a model server would make us wait) and streams the answer to the whole
-- room through a throttle, so hundreds of tiny tokens leave as a few dozen frames. The sender
-- also sees its own progress; a cancel stops the generation.
local WORDS = {
  " Sync", " is", " the", " art", " of", " keeping", " many", " browsers", " in", " step", ".",
  " Each", " change", " runs", " once", " on", " the", " server", ",", " then", " fans", " out",
  " to", " every", " member", " of", " the", " room", ".",
}

return {
  auth = { login = true },
  input = {
    prompt = { type = "string", min = 1, max = 2000 },
    tokens = { type = "integer", min = 1, max = 5000, optional = true },
    delayMs = { type = "integer", min = 0, max = 1000, optional = true },
  },
  rateLimit = 30,
  main = function(ctx)
    local f = ctx.functions
    local n = ctx.data.tokens or 60
    local delay = ctx.data.delayMs or 15
    local id = f.uuid()
    local th = f.createStreamThrottle({})
    local emit = function(chunk)
      chunk.id = id
      ctx.broadcastStream(chunk)
    end
    local text = {}
    for i = 1, n do
      if ctx.cancelled() then
        break
      end
      local word = WORDS[(i - 1) % #WORDS + 1]
      text[#text + 1] = word
      th:push(word, emit)
      if i % 50 == 0 then
        f.flushPressure() -- a slow room slows the generation instead of growing queues
      end
      if delay > 0 then
        f.sleep(delay)
      end
    end
    th:flush(emit)
    return {
      status = "success",
      serverOutput = { id = id, prompt = ctx.data.prompt, answer = table.concat(text),
                       tokens = #text, from = ctx.user.id },
    }
  end,
}
