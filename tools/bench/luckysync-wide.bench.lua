-- The benchmark's configuration with wide WebSocket reads (docs/PERFORMANCE.md, "Reads per
-- request and memory per connection"): the same as luckysync.bench.lua except
-- limits.wsReadBytes = 4096, lws's default. Each connection then holds a 4 KB receive buffer
-- instead of 256 bytes, and a burst of requests is read in a few reads instead of one read
-- per request.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local config = dofile(here .. "/luckysync.bench.lua")
config.limits.wsReadBytes = 4096
return config
