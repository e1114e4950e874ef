-- LuckySync example configuration: every section, every key, each set to its default.
-- Run with:  luckysync --config luckysync.config.lua
-- The file is a Lua chunk returning a table. Every section and key is optional; an unknown
-- key or a wrong type is an error naming the key. Command-line flags override this file.
-- Full reference: docs/CONFIG.md.
--
-- This is ordinary Lua run with the standard library, so secrets can come from the
-- environment instead of being written here, e.g.  secret = os.getenv("MY_JWT_SECRET").

return {
  -- Server ------------------------------------------------------------------------------
  host = "127.0.0.1",          -- address to listen on (--host); "0.0.0.0" for every interface
  port = 8080,                 -- 1..65535 (--port)
  handlers = "./handlers",     -- directory of Lua handlers (--handlers)
  -- static = "./clients/demo", -- directory served as static files (--static); default: none
  logLevel = "info",           -- "debug" | "info" | "warn" | "error" | "off" (--log-level)
  dev = false,                 -- development mode: handler errors reach clients (--dev)

  -- Limits ------------------------------------------------------------------------------
  limits = {
    maxPayload = 1000000,        -- bytes; largest message / Engine.IO payload (1024..100000000)
    maxConnections = 10000,      -- concurrent connections (1..1000000)
    wsReadBytes = 65536,         -- the one WebSocket read buffer, shared by every connection
                                 -- (1024..4194304): bytes read per readiness event
    maxRoomsPerSocket = 50,      -- rooms one connection may join (1..100000)
    maxRoomName = 256,           -- bytes in a room name (1..65536)
    handshakeTimeoutMs = 10000,  -- request head, and open -> Socket.IO CONNECT (100..600000)
    sendQueueMaxBytes = 4194304, -- per-connection send queue, bytes; >= maxPayload
    sendQueueMaxFrames = 4096,   -- per-connection send queue, frames (1..1000000)
  },

  -- Engine.IO heartbeat -------------------------------------------------------------------
  heartbeat = {
    pingIntervalMs = 25000,      -- 100..600000
    pingTimeoutMs = 20000,       -- 100..600000
  },

  -- Browser origins -----------------------------------------------------------------------
  cors = {
    -- Origins allowed to connect, written as browsers send them: scheme://host[:port], no
    -- trailing "/". Empty = any origin. Clients that send no Origin are always admitted.
    allowedOrigins = {
      -- "http://localhost:5173",
    },
  },

  -- Rooms ---------------------------------------------------------------------------------
  rooms = {
    policy = "loggedIn",         -- who may join rooms: "anyone" | "loggedIn" | "hook"
  },

  -- Authentication (JWT) ------------------------------------------------------------------
  auth = {
    leewaySec = 30,              -- clock skew allowed on exp/nbf (0..3600)
    sessionGraceMs = 30000,      -- sessionExpired event -> disconnect (0..600000)
    -- Verification (and signing) keys; at most 64. With none here, the environment variable
    -- LUCKYSYNC_JWT_SECRET, when set, becomes one HS256 key.
    keys = {
      -- { kid = "k1", alg = "HS256", secret = os.getenv("MY_JWT_SECRET") },
      -- { kid = "k2", alg = "EdDSA", publicKey = "<base64url of 32 bytes>" },
      -- { kid = "k3", alg = "EdDSA", privateKey = "<base64url: 32-byte seed or 64-byte key>" },
    },
  },

  -- Lua runtime and streaming ---------------------------------------------------------------
  sync = {
    vmPoolSize = 4,              -- Lua VMs running handlers (1..256)
    cpuBudgetMs = 2000,          -- CPU time per handler call (1..600000)
    vmMemoryCapMb = 64,          -- memory per VM, MB (1..16384)
    fanoutSliceSize = 512,       -- recipients served per loop iteration (1..1000000)
    rateLimit = 600,             -- requests per minute per user (1..1000000)
    pressureBytes = 262144,      -- send-queue bytes at which streams back off; <= sendQueueMaxBytes
    streamThrottle = {
      flushEveryMs = 50,         -- stream chunks flushed at least this often (1..60000)
      flushAtChars = 32,         -- ... or once this many characters are pending (1..1000000)
    },
  },

  -- Browser client offline queue (sent to clients as-is) ------------------------------------
  offlineQueue = {
    maxItems = 200,              -- 1..100000
    ttlMs = 86400000,            -- 1000..2592000000 (30 days)
  },
}
