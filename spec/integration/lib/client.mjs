// Client-side helpers for the integration tests: socket.io-client sockets tracked for cleanup,
// request/answer round trips on `<event>-<responseIndex>`, a raw Engine.IO websocket client,
// and a raw HTTP request helper (full control over headers and path).
//
// Every wait here has a timeout: a test never hangs on a silent server.

import http from 'node:http';
import { NodeWebSocket } from 'engine.io-client';
import { io } from 'socket.io-client';
import WebSocket from 'ws';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects with `what` after ms unless p settles first. */
export function within(p, ms, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Resolves with the first argument of the next `event` on emitter (socket or engine). */
export function onceEvent(emitter, event, ms = 3000) {
  let handler;
  const p = new Promise((resolve) => {
    handler = (arg) => resolve(arg);
    emitter.once(event, handler);
  });
  return within(p, ms, `event "${event}"`).catch((err) => {
    emitter.off(event, handler);
    throw err;
  });
}

/** Resolves after ms if `event` did not fire; rejects (with its argument) if it did. */
export function expectNoEvent(emitter, event, ms) {
  return new Promise((resolve, reject) => {
    const handler = (arg) => {
      clearTimeout(timer);
      reject(new Error(`unexpected event "${event}": ${JSON.stringify(arg)}`));
    };
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      resolve();
    }, ms);
    emitter.once(event, handler);
  });
}

/* ---------- socket.io-client ---------- */

/**
 * Tracks sockets so a test file can close every one of them after each test (even failed
 * ones). Sockets get forceNew (one engine each), no reconnection unless asked.
 */
export class Clients {
  constructor() {
    this.sockets = new Set();
  }

  open(url, opts = {}) {
    const socket = io(url, {
      forceNew: true,
      reconnection: false,
      timeout: 5000,
      ...opts,
    });
    this.sockets.add(socket);
    return socket;
  }

  /** Opens and waits for `connect` (rejects on connect_error / timeout). */
  async connect(url, opts = {}, ms = 5000) {
    const socket = this.open(url, opts);
    await waitConnect(socket, ms);
    return socket;
  }

  closeAll() {
    for (const socket of this.sockets) {
      try {
        socket.io.opts.reconnection = false;
        socket.io.reconnection(false);
        socket.disconnect();
        socket.io.engine?.close();
      } catch {
        /* best effort */
      }
    }
    this.sockets.clear();
  }
}

export function waitConnect(socket, ms = 5000) {
  if (socket.connected) return Promise.resolve(socket);
  let onConnect, onError;
  const p = new Promise((resolve, reject) => {
    onConnect = () => resolve(socket);
    onError = (err) => reject(new Error(`connect_error: ${err && err.message}`, { cause: err }));
    socket.once('connect', onConnect);
    socket.once('connect_error', onError);
  });
  return within(p, ms, 'socket connect').finally(() => {
    socket.off('connect', onConnect);
    socket.off('connect_error', onError);
  });
}

/** Resolves with the connect_error Error; rejects when the socket connects instead. */
export function waitConnectError(socket, ms = 5000) {
  let onConnect, onError;
  const p = new Promise((resolve, reject) => {
    onError = (err) => resolve(err);
    onConnect = () => reject(new Error('connected, but a connect_error was expected'));
    socket.once('connect', onConnect);
    socket.once('connect_error', onError);
  });
  return within(p, ms, 'connect_error').finally(() => {
    socket.off('connect', onConnect);
    socket.off('connect_error', onError);
  });
}

let nextResponseIndex = 1;

/** Emits `event` {…payload, responseIndex} and resolves with the `<event>-<i>` envelope. */
export async function request(socket, event, payload = {}, ms = 3000) {
  const responseIndex = nextResponseIndex++;
  const answer = onceEvent(socket, `${event}-${responseIndex}`, ms);
  socket.emit(event, { ...payload, responseIndex });
  return answer;
}

/** Same, with a Socket.IO ack callback too: resolves with { event, ack } (both envelopes). */
export async function requestWithAck(socket, event, payload = {}, ms = 3000) {
  const responseIndex = nextResponseIndex++;
  const answer = onceEvent(socket, `${event}-${responseIndex}`, ms);
  const ack = new Promise((resolve, reject) => {
    socket.timeout(ms).emit(event, { ...payload, responseIndex }, (err, value) => {
      if (err) reject(new Error(`no ack for ${event} within ${ms} ms`));
      else resolve(value);
    });
  });
  const [ev, ackValue] = await Promise.all([answer, ack]);
  return { event: ev, ack: ackValue };
}

export const sorted = (arr) => [...arr].sort();

/** engine.io `upgrade` done (or already on websocket). */
export async function waitUpgraded(socket, ms = 3000) {
  const engine = socket.io.engine;
  if (engine.transport.name === 'websocket') return;
  await onceEvent(engine, 'upgrade', ms);
}

/**
 * A websocket transport class whose opening waits for release(): lets a test work on the
 * polling transport first, then let the upgrade happen, deterministically.
 */
export function gatedWebSocket() {
  let release;
  const gate = new Promise((r) => { release = r; });
  class GatedWebSocket extends NodeWebSocket {
    doOpen() {
      gate.then(() => {
        if (this.readyState === 'opening') super.doOpen();
      });
    }
  }
  return { Transport: GatedWebSocket, release };
}

/* ---------- raw Engine.IO over websocket ---------- */

/**
 * A raw ws client. Collects incoming messages; Engine.IO pings ("2") are counted and never
 * queued, answered with "3" when autoPong is true.
 */
export class RawWs {
  constructor(url, { headers = {}, autoPong = true } = {}) {
    this.url = url;
    this.autoPong = autoPong;
    this.queue = [];
    this.waiters = [];
    this.pings = 0;
    this.openedAt = 0;
    this.ws = new WebSocket(url, { headers, handshakeTimeout: 3000 });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => {
        this.openedAt = Date.now();
        resolve();
      });
      this.ws.once('unexpected-response', (req, res) => {
        reject(Object.assign(new Error(`websocket refused: HTTP ${res.statusCode}`), { statusCode: res.statusCode }));
        res.resume();
        req.destroy();
      });
      this.ws.once('error', (err) => reject(err));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => {
        const info = { code, reason: reason.toString(), at: Date.now() };
        this.closeInfo = info;
        resolve(info);
        for (const w of this.waiters.splice(0)) w.reject(new Error(`socket closed (code ${code}) while waiting`));
      });
    });
    this.ws.on('error', () => {});
    this.ws.on('message', (data, isBinary) => {
      const msg = isBinary ? data : data.toString('utf8');
      if (msg === '2') {
        this.pings++;
        if (this.autoPong && this.ws.readyState === WebSocket.OPEN) this.ws.send('3');
        return;
      }
      const w = this.waiters.shift();
      if (w) w.resolve(msg);
      else this.queue.push(msg);
    });
  }

  next(ms = 3000) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closeInfo) return Promise.reject(new Error(`socket closed (code ${this.closeInfo.code})`));
    let waiter;
    const p = new Promise((resolve, reject) => {
      waiter = { resolve, reject };
      this.waiters.push(waiter);
    });
    return within(p, ms, 'raw websocket message').catch((err) => {
      const i = this.waiters.indexOf(waiter);
      if (i >= 0) this.waiters.splice(i, 1);
      throw err;
    });
  }

  send(data, opts) {
    this.ws.send(data, opts);
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Resolves with the close info, or rejects when still open after ms. */
  waitClosed(ms, what = 'server to close the raw websocket') {
    return within(this.closed, ms, what);
  }

  terminate() {
    try {
      this.ws.terminate();
    } catch {
      /* already closed */
    }
  }
}

/** Tracks raw websockets for cleanup. */
export class RawClients {
  constructor() {
    this.all = new Set();
  }

  open(url, opts) {
    const raw = new RawWs(url, opts);
    this.all.add(raw);
    return raw;
  }

  /** Opens, reads the Engine.IO open packet; returns { raw, open } (open = parsed JSON). */
  async handshake(wsBase, opts) {
    const raw = this.open(`${wsBase}/socket.io/?EIO=4&transport=websocket`, opts);
    await within(raw.opened, 3000, 'raw websocket open');
    const first = await raw.next(3000);
    if (typeof first !== 'string' || first[0] !== '0') throw new Error(`expected an open packet, got ${JSON.stringify(String(first))}`);
    return { raw, open: JSON.parse(first.slice(1)) };
  }

  /** handshake + Socket.IO CONNECT ("40" → "40{sid}"). */
  async connected(wsBase, opts, connectPacket = '40') {
    const { raw, open } = await this.handshake(wsBase, opts);
    raw.send(connectPacket);
    const reply = await raw.next(3000);
    if (typeof reply !== 'string' || !reply.startsWith('40')) throw new Error(`expected 40{sid}, got ${JSON.stringify(String(reply))}`);
    return { raw, open, connect: JSON.parse(reply.slice(2)) };
  }

  closeAll() {
    for (const raw of this.all) raw.terminate();
    this.all.clear();
  }
}

/* ---------- raw HTTP ---------- */

/**
 * One HTTP request without keep-alive; the path is sent verbatim (no normalisation).
 * Resolves with { status, headers, body (string) }.
 */
export function httpRequest(port, { method = 'GET', path = '/', headers = {}, body, ms = 3000 } = {}) {
  const hdrs = { ...headers };
  if (body !== undefined && !Object.keys(hdrs).some((k) => k.toLowerCase() === 'content-length')) {
    hdrs['Content-Length'] = Buffer.byteLength(body);
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: hdrs, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`HTTP ${method} ${path}: no complete answer within ${ms} ms`));
    }, ms);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/** Engine.IO polling payload → packets (split on the record separator). */
export function splitPayload(body) {
  return body.split('\x1e');
}
