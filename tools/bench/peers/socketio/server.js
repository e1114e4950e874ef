// The Socket.IO 4.8 peer of LuckySync's benchmark (tools/bench/compare, docs/PERFORMANCE.md).
//
//   node server.js --port 9102 [--host 127.0.0.1]
//
// One Node process, the default namespace, the same wire and the same work as LuckySync for
// the benchmark's traffic, so one load generator (luckysync-bench) drives both:
// - joinRoom {group, responseIndex}: join, answer `joinRoom-<i>` {status, rooms};
// - sync {name, data, receiver, ignoreSelf, cb, responseIndex}: validate (name a string, data an
//   object, receiver a non-empty string, the sender a member of it), run the route's handler,
//   answer `sync-<i>` {status, message, result} (and the Socket.IO ack when one is asked), and
//   emit `sync` {cb, fullName, status, serverOutput, clientOutput: {}, message} to the room,
//   leaving the sender out with ignoreSelf;
// - routes: sync/bench/echo/v1 returns data as serverOutput; sync/bench/stream/v1 produces
//   `tokens` tokens with the same generator as tools/bench/handlers/bench/_sync/
//   stream_server_v1.lua and pushes them through a throttle (flush at 32 characters, or 50 ms)
//   that emits {chunk, cb, fullName, status: "stream"} to the whole room.
// Socket.IO's own defaults otherwise (websocket and polling, perMessageDeflate off, pings every
// 25 s); bufferutil is installed, as Socket.IO's performance guide recommends.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number(arg("--port", "9102"));
const host = arg("--host", "127.0.0.1");

const FLUSH_AT_CHARS = 32;
const FLUSH_EVERY_MS = 50;
const ALPHABET = "abcdefghijklmnopqrstuvwxyz";

function errorEnvelope(code, httpStatus) {
  return { status: "error", errorCode: code, httpStatus };
}

// A throttle like LuckySync's createStreamThrottle: text accumulates and leaves as one chunk
// once FLUSH_AT_CHARS characters are pending, or FLUSH_EVERY_MS after the first pending one.
function createThrottle(emit) {
  let buf = "";
  let timer = null;
  const flush = () => {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (buf.length) {
      const chunk = buf;
      buf = "";
      emit({ chunk });
    }
  };
  return {
    push(text) {
      buf += text;
      if (buf.length >= FLUSH_AT_CHARS) flush();
      else if (!timer) timer = setTimeout(flush, FLUSH_EVERY_MS);
    },
    flush,
  };
}

const routes = {
  "sync/bench/echo/v1": (ctx) => ({ status: "success", serverOutput: ctx.data }),

  "sync/bench/stream/v1": (ctx) => {
    const n = Number.isInteger(ctx.data.tokens) ? ctx.data.tokens : 2000;
    let x = Number.isInteger(ctx.data.seed) ? ctx.data.seed : 1;
    const th = createThrottle((chunk) => ctx.broadcastStream(chunk));
    const text = [];
    for (let i = 0; i < n; i++) {
      x = (x * 48271) % 2147483647; // MINSTD: exact in doubles (< 2^53)
      const len = 1 + (x % 4);
      let tok = "";
      for (let j = 0; j < len; j++) {
        x = (x * 48271) % 2147483647;
        const k = x % 27;
        tok += k === 26 ? " " : ALPHABET[k];
      }
      text.push(tok);
      th.push(tok);
    }
    th.flush();
    return { status: "success", serverOutput: { tokens: n, text: text.join("") } };
  },
};

const httpServer = http.createServer();
const io = new Server(httpServer, {
  serveClient: false,
  maxHttpBufferSize: 1e6,
});

io.on("connection", (socket) => {
  const answer = (event, ri, env, ack) => {
    if (typeof ri === "number") socket.emit(`${event}-${ri}`, env);
    if (typeof ack === "function") ack(env);
  };

  socket.on("joinRoom", (arg, ack) => {
    if (!arg || typeof arg !== "object") return;
    const { group, responseIndex } = arg;
    if (typeof group !== "string" || !group.trim() || group.length > 256) {
      answer("joinRoom", responseIndex, errorEnvelope("room.invalidName"), ack);
      return;
    }
    socket.join(group.trim());
    const rooms = [...socket.rooms].filter((r) => r !== socket.id);
    answer("joinRoom", responseIndex, { status: "success", rooms }, ack);
  });

  socket.on("sync", (arg, ack) => {
    if (!arg || typeof arg !== "object") {
      socket.emit("sync", errorEnvelope("sync.invalidRequest"));
      return;
    }
    const { name, data, receiver, ignoreSelf, cb, responseIndex } = arg;
    if (typeof name !== "string" || !data || typeof data !== "object" || Array.isArray(data)) {
      answer("sync", responseIndex, errorEnvelope("sync.invalidRequest", 400), ack);
      return;
    }
    const handler = routes[name];
    if (!handler) {
      answer("sync", responseIndex, errorEnvelope("sync.notFound", 404), ack);
      return;
    }
    const room = typeof receiver === "string" ? receiver.trim() : "";
    if (!room) {
      answer("sync", responseIndex, errorEnvelope("sync.missingReceiver", 400), ack);
      return;
    }
    if (!socket.rooms.has(room)) {
      answer("sync", responseIndex, errorEnvelope("sync.notRoomMember", 403), ack);
      return;
    }
    const key = typeof cb === "string" && cb ? cb : name;
    const ctx = {
      data,
      broadcastStream: (payload) =>
        io.to(room).emit("sync", { ...payload, cb: key, fullName: name, status: "stream" }),
    };
    let result;
    try {
      result = handler(ctx);
    } catch (e) {
      answer("sync", responseIndex, errorEnvelope("sync.serverExecutionFailed", 500), ack);
      return;
    }
    answer(
      "sync",
      responseIndex,
      { status: "success", message: `sync ${name} success`, result },
      ack,
    );
    const to = ignoreSelf === true ? socket.to(room) : io.to(room);
    to.emit("sync", {
      cb: key,
      fullName: name,
      status: "success",
      serverOutput: result.serverOutput ?? result,
      clientOutput: {},
      message: `${name} sync success`,
    });
  });
});

httpServer.listen(port, host, () => {
  process.stderr.write(`socket.io peer: listening on ${host}:${port} (pid ${process.pid})\n`);
});

const stop = () => {
  io.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
