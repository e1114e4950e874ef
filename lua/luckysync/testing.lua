-- luckysync.testing: spec handlers in plain busted, through the same sandbox, schema checks
-- and lifecycle the server runs (the runtime itself, loaded as the C module
-- `luckysync_testing` from the build folder), with a fake transport that records what each
-- connection would have received.
--
--   local testing = require("luckysync.testing")
--   local app = testing.app{ handlers = "handlers" }
--   local res = app:call("board/moveCard/v1", {
--     user = testing.user("alice", { roles = { "editor" } }),
--     receiver = "board-1",
--     members = { testing.user("bob"), testing.anonymous },
--     data = { cardId = "c1", toLane = "done" },
--   })
--   assert.is_true(res.ok)
--   assert.are.equal("done", res.recipients[1].frames[1].serverOutput.toLane)
local M = {}

local function add_cpath()
  local build = os.getenv("LUCKYSYNC_BUILD") or "build"
  local entry = build .. "/?.so"
  if not package.cpath:find(entry, 1, true) then
    package.cpath = entry .. ";" .. package.cpath
  end
end

add_cpath()
local core = require("luckysync_testing")

-- A member that is connected without a session.
M.anonymous = false

-- A user as the server builds it from a token: id (the `sub` claim), session (defaults to
-- "s-<id>"), and every other field as a claim (name, roles, …).
function M.user(id, claims)
  local u = { id = id }
  for k, v in pairs(claims or {}) do
    u[k] = v
  end
  return u
end

local App = {}
App.__index = App

-- opts: handlers (folder, default "handlers"), lua (the require root, default: the lua/
-- folder next to handlers), config (cpuBudgetMs, vmPoolSize, vmMemoryCapMb, rateLimit,
-- fanoutSliceSize, maxPayload).
function M.app(opts)
  opts = opts or {}
  local self = setmetatable({}, App)
  self.core = core.new({ handlers = opts.handlers or "handlers", lua = opts.lua,
                         config = opts.config })
  return self
end

-- Run one request. route: "board/moveCard/v1" (or the wire name "sync/board/moveCard/v1").
-- req: data, user (nil = anonymous sender), receiver (default "room"), members (list of
-- users or testing.anonymous; the sender is a member too unless senderInRoom = false),
-- ignoreSelf, cb, timeoutMs.
-- Returns: response (the sender's answer envelope), ok, result, errorCode, errorParams,
-- progress (payloads on sync-progress-<i>), self (`sync` frames the sender received),
-- recipients[i].frames (`sync` frames member i received), hooks (calls of preSyncFanout,
-- postSyncFanout and onError, with their results).
function App:call(route, req)
  req = req or {}
  local name = route
  if not name:match("^sync/") then
    name = "sync/" .. name
  end
  local res = self.core:call({
    route = name,
    data = req.data,
    user = req.user,
    receiver = req.receiver or "room",
    members = req.members or {},
    ignoreSelf = req.ignoreSelf,
    senderInRoom = req.senderInRoom,
    cb = req.cb,
    timeoutMs = req.timeoutMs,
  })
  local r = res.response or {}
  res.ok = r.status == "success"
  res.result = r.result
  res.errorCode = r.errorCode
  res.errorParams = r.errorParams
  return res
end

-- Recompile the handlers (as a hot reload does). Returns true when the new code loaded.
function App:reload()
  return self.core:reload()
end

function App:close()
  self.core:close()
end

return M
