-- LuckySync's configuration for the benchmark (tools/bench/compare, docs/PERFORMANCE.md):
--   luckysync --config tools/bench/luckysync.bench.lua --port 9101
-- Anonymous clients may join rooms, the rate limit is out of the way, logging is quiet, and the
-- limits are raised so that 19k idle connections and a 1000-member fanout fit. The handlers
-- are the benchmark's own (tools/bench/handlers), found next to this file wherever it runs.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

return {
  host = "127.0.0.1",
  handlers = here .. "/handlers",
  logLevel = "warn",
  dev = false,
  hotReload = false,

  limits = {
    maxConnections = 20000,       -- the machine's per-process file limit is 20000
    maxPayload = 1000000,
    sendQueueMaxBytes = 67108864,  -- 64 MB: a member behind a 1 KB fanout is not dropped
    sendQueueMaxFrames = 200000,
    handshakeTimeoutMs = 30000,    -- 19k clients connect through a bounded header pool
  },

  rooms = {
    policy = "anyone",
  },

  sync = {
    rateLimit = 1000000,           -- per minute per connection: the maximum the config allows
  },
}
