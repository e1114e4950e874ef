// The WebSocket transport at the byte level (RFC 6455 over plain TCP, no `ws` package): the
// upgrade handshake (Sec-WebSocket-Accept, heads split over many writes, frames pipelined after
// the head, token lists, every refusal and its status, the head size bound and the head
// timeout), plain HTTP and Engine.IO polling on the same port (keep-alive, polling → websocket
// upgrade), and client frames (fragmentation with a control frame in between, a header one
// byte per write, 16- and 64-bit lengths, every protocol error → 1002, binary → 1003,
// maxPayload → 1009, the close handshake), while a well-behaved client stays connected.
//
// Two servers: `ws-main` (maxPayload 100000, slow heartbeats so that no Engine.IO ping lands in
// the middle of a fragmented message) and `ws-small` (maxPayload 4096, handshakeTimeoutMs 1000).

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';

import { sleep, within } from './lib/client.mjs';
import { HOST, startServer, TEST_TIMEOUT_MS, withServerLog } from './lib/server.mjs';

const WS_PATH = '/socket.io/?EIO=4&transport=websocket';
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const WAIT_MS = 3000; // default bound of every wait below
const CLOSE_MS = 2500; // a refused or failed connection must be closed within this

const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

/* ---------- RFC 6455 helpers ---------- */

const wsKey = () => randomBytes(16).toString('base64');
const acceptFor = (key) => createHash('sha1').update(key + WS_GUID).digest('base64');

/**
 * One client frame. payload: string (UTF-8) or Buffer. Options: fin (default true), mask
 * (default true: client frames must be masked), rsv (the 3 reserved bits, 0..7).
 */
function frame(opcode, payload = '', { fin = true, mask = true, rsv = 0 } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const len = data.length;
  const b0 = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0xf);
  const m = mask ? 0x80 : 0;
  let head;
  if (len < 126) {
    head = Buffer.from([b0, m | len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = b0;
    head[1] = m | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = m | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!mask) return Buffer.concat([head, data]);
  let key = randomBytes(4);
  while (key.readUInt32BE(0) === 0) key = randomBytes(4); // a mask that really changes the bytes
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) out[i] = data[i] ^ key[i & 3];
  return Buffer.concat([head, key, out]);
}

const text = (s, opts) => frame(OP.TEXT, s, opts);

/** Close frame payload: 2-byte status code and an optional reason. */
function closePayload(code, reason = '') {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

/** Decodes one frame at the start of buf: { frame, consumed }, or null when incomplete. */
function decodeFrame(buf) {
  if (buf.length < 2) return null;
  const b0 = buf[0];
  const b1 = buf[1];
  let len = b1 & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    const big = buf.readBigUInt64BE(2);
    if (big > 0xffffffffn) throw new Error(`server frame with an absurd length ${big}`);
    len = Number(big);
    off = 10;
  }
  const masked = (b1 & 0x80) !== 0;
  let key = null;
  if (masked) {
    if (buf.length < off + 4) return null;
    key = buf.subarray(off, off + 4);
    off += 4;
  }
  if (buf.length < off + len) return null;
  const payload = Buffer.from(buf.subarray(off, off + len));
  if (masked) for (let i = 0; i < len; i++) payload[i] ^= key[i & 3];
  return {
    frame: { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0xf, masked, payload },
    consumed: off + len,
  };
}

const preview = (buf, n = 120) =>
  JSON.stringify(buf.subarray(0, n).toString('latin1')) + (buf.length > n ? `… (${buf.length} bytes)` : '');

/**
 * Parses one HTTP response at the start of buf: { res, consumed } or null when incomplete.
 * Bodies: Content-Length, chunked, none for 1xx/204/304, otherwise until the server closes.
 */
function parseResponse(buf, closed) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const statusLine = lines[0];
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine);
  if (!m) throw new Error(`not an HTTP response: ${preview(buf)}`);
  const status = Number(m[1]);
  const headers = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) throw new Error(`bad response header line ${JSON.stringify(line)}`);
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  let off = end + 4;
  let body = Buffer.alloc(0);
  if ((status >= 100 && status < 200) || status === 204 || status === 304) {
    /* no body */
  } else if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (buf.length < off + n) return null;
    body = buf.subarray(off, off + n);
    off += n;
  } else if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) {
    const parts = [];
    for (;;) {
      const eol = buf.indexOf('\r\n', off);
      if (eol < 0) return null;
      const size = parseInt(buf.subarray(off, eol).toString('latin1'), 16);
      if (!Number.isFinite(size)) throw new Error(`bad chunk size at ${preview(buf.subarray(off))}`);
      if (buf.length < eol + 2 + size + 2) return null;
      parts.push(buf.subarray(eol + 2, eol + 2 + size));
      off = eol + 2 + size + 2;
      if (size === 0) break; // (no trailers expected)
    }
    body = Buffer.concat(parts);
  } else {
    if (!closed) return null; // body until the server closes
    body = buf.subarray(off);
    off = buf.length;
  }
  return { res: { status, statusLine, headers, body: body.toString('utf8') }, consumed: off };
}

/* ---------- a raw TCP connection ---------- */

/** Every connection a test opens (destroyed after each test). */
const conns = new Set();

class Conn {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.closed = false; // the server ended the connection (FIN or reset), or we destroyed it
    this.closedAt = 0;
    this.error = null;
    this.openedAt = Date.now();
    this.autoPong = true; // answer Engine.IO pings ("2") with "3" while reading messages
    this.listeners = new Set();
    sock.on('data', (d) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.kick();
    });
    sock.on('end', () => this.markClosed());
    sock.on('close', () => this.markClosed());
    sock.on('error', (err) => {
      this.error = err;
      this.markClosed();
    });
  }

  static async open(port, { track = true } = {}) {
    const sock = net.connect({ host: HOST, port });
    sock.setNoDelay(true);
    const c = new Conn(sock);
    if (track) conns.add(c);
    await within(new Promise((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    }), WAIT_MS, `TCP connect to ${HOST}:${port}`);
    c.openedAt = Date.now();
    return c;
  }

  markClosed() {
    if (!this.closed) {
      this.closed = true;
      this.closedAt = Date.now();
    }
    this.kick();
  }

  kick() {
    for (const fn of [...this.listeners]) fn();
  }

  /** Resolves with check()'s first truthy value (checked now and on every socket event). */
  waitFor(check, ms, what) {
    return new Promise((resolve, reject) => {
      let timer;
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners.delete(fn);
      };
      const fn = () => {
        let v;
        try {
          v = check();
        } catch (err) {
          cleanup();
          reject(err);
          return;
        }
        if (v) {
          cleanup();
          resolve(v);
        }
      };
      timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timeout after ${ms} ms: ${what} (tcp ${this.closed ? 'closed' : 'open'}, ` +
          `unread ${preview(this.buf)})`));
      }, ms);
      this.listeners.add(fn);
      fn();
    });
  }

  write(bytes) {
    this.sock.write(bytes);
  }

  /** Writes bytes in pieces of `size`, `delayMs` apart (each piece its own TCP segment). */
  async writeSlowly(bytes, size = 1, delayMs = 1) {
    for (let i = 0; i < bytes.length; i += size) {
      if (this.closed) throw new Error(`connection closed after ${i} of ${bytes.length} bytes`);
      this.sock.write(bytes.subarray(i, i + size));
      await sleep(delayMs);
    }
  }

  sendText(s, opts) {
    this.write(text(s, opts));
  }

  /** One HTTP response (head and body). */
  readResponse(ms = WAIT_MS) {
    return this.waitFor(() => {
      const r = parseResponse(this.buf, this.closed);
      if (r) {
        this.buf = this.buf.subarray(r.consumed);
        return r.res;
      }
      if (this.closed) throw new Error(`connection closed before a complete HTTP response: ${preview(this.buf)}`);
      return null;
    }, ms, 'an HTTP response');
  }

  /** One server frame. Throws (err.closed = true) when the connection ends first. */
  readFrame(ms = WAIT_MS) {
    return this.waitFor(() => {
      const d = decodeFrame(this.buf);
      if (d) {
        this.buf = this.buf.subarray(d.consumed);
        if (d.frame.masked) throw new Error('the server sent a masked frame (RFC 6455 §5.1: it must not)');
        return d.frame;
      }
      if (this.closed) {
        throw Object.assign(new Error(`connection closed before a complete frame (unread ${preview(this.buf)})`),
          { closed: true });
      }
      return null;
    }, ms, 'a WebSocket frame');
  }

  /**
   * The next text message (fragments reassembled). Engine.IO pings are answered (autoPong)
   * and skipped; a close frame throws.
   */
  async nextMessage(ms = WAIT_MS) {
    const deadline = Date.now() + ms;
    let parts = null;
    for (;;) {
      const f = await this.readFrame(Math.max(1, deadline - Date.now()));
      if (f.opcode === OP.CLOSE) {
        const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 'none';
        throw new Error(`server sent close ${code} ${JSON.stringify(f.payload.subarray(2).toString())} while a message was expected`);
      }
      if (f.opcode === OP.PING) {
        this.write(frame(OP.PONG, f.payload));
        continue;
      }
      if (f.opcode === OP.PONG) continue;
      if (f.opcode === OP.TEXT || f.opcode === OP.BINARY) parts = [f.payload];
      else if (f.opcode === OP.CONT && parts) parts.push(f.payload);
      else throw new Error(`unexpected server frame: opcode ${f.opcode}, fin ${f.fin}`);
      if (!f.fin) continue;
      const msg = Buffer.concat(parts).toString('utf8');
      parts = null;
      if (msg === '2') {
        if (this.autoPong) this.sendText('3');
        continue;
      }
      return msg;
    }
  }

  /** Reads messages until one satisfies pred (at most `max`); returns it. */
  async messageMatching(pred, what, ms = WAIT_MS, max = 10) {
    const deadline = Date.now() + ms;
    const seen = [];
    for (let i = 0; i < max; i++) {
      const msg = await this.nextMessage(Math.max(1, deadline - Date.now()));
      if (pred(msg)) return msg;
      seen.push(msg.slice(0, 100));
    }
    throw new Error(`no message matching ${what}; got ${JSON.stringify(seen)}`);
  }

  waitTcpClosed(ms = CLOSE_MS) {
    return this.waitFor(() => this.closed, ms, 'the server to close the TCP connection');
  }

  /**
   * How the server ended this WebSocket, as one string: "close 1002, tcp closed" when it sent
   * a close frame with that code and closed TCP; otherwise what happened instead. Frames other
   * than close before it (answers, pongs) are skipped.
   */
  async closeOutcome(ms = CLOSE_MS) {
    const deadline = Date.now() + ms;
    let code;
    for (;;) {
      let f;
      try {
        f = await this.readFrame(Math.max(1, deadline - Date.now()));
      } catch (err) {
        if (err.closed) return 'tcp closed without a close frame';
        if (/^timeout/.test(err.message)) return `no close frame within ${ms} ms (tcp ${this.closed ? 'closed' : 'open'})`;
        return `error: ${err.message}`;
      }
      if (f.opcode !== OP.CLOSE) continue;
      if (f.payload.length === 0) code = 'without a status';
      else if (f.payload.length === 1) code = 'with a 1-byte payload';
      else code = f.payload.readUInt16BE(0);
      break;
    }
    try {
      await this.waitTcpClosed(Math.max(1, deadline - Date.now()));
    } catch {
      return `close ${code}, tcp still open after ${ms} ms`;
    }
    return `close ${code}, tcp closed`;
  }

  destroy() {
    this.sock.destroy();
  }
}

/* ---------- requests ---------- */

/**
 * An upgrade request head. Any header given as null is left out; extra: more header lines.
 * Returns { bytes, key }.
 */
function upgradeRequest(port, {
  path = WS_PATH, key = wsKey(), version = '13', connection = 'Upgrade', upgrade = 'websocket',
  origin, extra = [],
} = {}) {
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${HOST}:${port}`];
  if (upgrade !== null) lines.push(`Upgrade: ${upgrade}`);
  if (connection !== null) lines.push(`Connection: ${connection}`);
  if (key !== null) lines.push(`Sec-WebSocket-Key: ${key}`);
  if (version !== null) lines.push(`Sec-WebSocket-Version: ${version}`);
  if (origin) lines.push(`Origin: ${origin}`);
  lines.push(...extra);
  return { bytes: Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), key };
}

const httpGet = (port, path, extra = []) =>
  Buffer.from([`GET ${path} HTTP/1.1`, `Host: ${HOST}:${port}`, ...extra].join('\r\n') + '\r\n\r\n', 'latin1');

/** Asserts a 101 answer to the given Sec-WebSocket-Key. */
function assertSwitched(res, key) {
  assert.equal(res.statusLine, 'HTTP/1.1 101 Switching Protocols', `status line: ${res.statusLine} ${res.body}`);
  assert.equal(res.headers.upgrade?.toLowerCase(), 'websocket', `Upgrade: ${res.headers.upgrade}`);
  assert.ok((res.headers.connection ?? '').toLowerCase().split(/\s*,\s*/).includes('upgrade'),
    `Connection: ${res.headers.connection}`);
  assert.equal(res.headers['sec-websocket-accept'], acceptFor(key), 'Sec-WebSocket-Accept');
}

/** Reads the Engine.IO open packet (first frame after a 101): the parsed JSON. */
async function readOpenPacket(c) {
  const f = await c.readFrame();
  assert.equal(f.opcode, OP.TEXT, `the open packet is a text frame (opcode ${f.opcode})`);
  assert.ok(f.fin, 'the open packet is one unfragmented frame');
  assert.equal(f.rsv, 0);
  const s = f.payload.toString('utf8');
  assert.match(s, /^0\{"sid":/, `open packet expected, got ${JSON.stringify(s.slice(0, 100))}`);
  const open = JSON.parse(s.slice(1));
  assert.equal(typeof open.sid, 'string');
  assert.ok(open.sid.length > 0);
  return open;
}

/** Socket.IO CONNECT on an open WebSocket: "40" → "40{sid}". */
async function sioConnect(c) {
  c.sendText('40');
  const reply = await c.nextMessage();
  assert.match(reply, /^40\{"sid":/, `CONNECT answer: ${JSON.stringify(reply)}`);
  return JSON.parse(reply.slice(2));
}

/** Handshake (+ the open packet); returns { c, open, res }. */
async function wsOpen(port, opts = {}, connOpts) {
  const c = await Conn.open(port, connOpts);
  const { bytes, key } = upgradeRequest(port, opts);
  c.write(bytes);
  const res = await c.readResponse();
  assertSwitched(res, key);
  const open = await readOpenPacket(c);
  return { c, open, res };
}

/** Handshake + CONNECT. */
async function wsConnected(port, opts, connOpts) {
  const r = await wsOpen(port, opts, connOpts);
  r.connect = await sioConnect(r.c);
  return r;
}

let nextIndex = 1;

/** A joinRoom event (its text) padded with an extra field to exactly `size` bytes when given. */
function joinRoomText(group, responseIndex, size) {
  const make = (pad) => `42["joinRoom",{"group":"${group}"${pad === undefined ? '' : `,"pad":"${pad}"`},"responseIndex":${responseIndex}}]`;
  if (size === undefined) return make();
  const base = Buffer.byteLength(make(''));
  assert.ok(size >= base, `joinRoom text cannot be ${size} bytes`);
  const s = make('x'.repeat(size - base));
  assert.equal(Buffer.byteLength(s), size);
  return s;
}

/** Waits for the answer of joinRoom(group) with responseIndex i and checks it succeeded. */
async function expectJoined(c, group, i, ms = WAIT_MS) {
  const msg = await c.messageMatching((m) => m.startsWith(`42["joinRoom-${i}"`), `joinRoom-${i}`, ms);
  const [, env] = JSON.parse(msg.slice(2));
  assert.equal(env.status, 'success', `joinRoom ${group}: ${msg.slice(0, 200)}`);
  assert.ok(env.rooms.includes(group), `rooms must include ${group}: ${msg.slice(0, 200)}`);
}

/** joinRoom round trip over an open, connected WebSocket. */
async function roundTrip(c, group = `g${nextIndex}`) {
  const i = nextIndex++;
  c.sendText(joinRoomText(group, i));
  await expectJoined(c, group, i);
}

/**
 * Sends a request head that must be refused. Returns { outcome, res }: outcome is
 * "<status>, tcp closed" when the server answered with that status and then closed the TCP
 * connection (nothing else after the response), otherwise what happened instead.
 */
async function refusal(port, bytes, { pieces = 0 } = {}) {
  const c = await Conn.open(port);
  if (pieces) {
    for (let i = 0; i < bytes.length && !c.closed; i += pieces) {
      c.write(bytes.subarray(i, i + pieces));
      await sleep(2);
    }
  } else {
    c.write(bytes);
  }
  let res;
  try {
    res = await c.readResponse();
  } catch (err) {
    return { outcome: c.closed ? 'tcp closed without a response' : `no response within ${WAIT_MS} ms`, res: null };
  }
  if (res.status === 101) return { outcome: '101 Switching Protocols', res };
  try {
    await c.waitTcpClosed();
  } catch {
    return { outcome: `${res.status}, tcp still open after ${CLOSE_MS} ms`, res };
  }
  if (c.buf.length) return { outcome: `${res.status}, then more bytes: ${preview(c.buf)}`, res };
  return { outcome: `${res.status}, tcp closed`, res };
}

/** Runs refusal() over cases { name: bytes } and asserts every outcome is "<status>, tcp closed". */
async function expectAllRefused(port, cases, status) {
  const results = await Promise.all(Object.entries(cases).map(async ([what, bytes]) => [what, await refusal(port, bytes)]));
  assert.deepEqual(
    Object.fromEntries(results.map(([what, r]) => [what, r.outcome])),
    Object.fromEntries(results.map(([what]) => [what, `${status}, tcp closed`])),
  );
  return Object.fromEntries(results.map(([what, r]) => [what, r.res]));
}

/* ---------- the tests ---------- */

describe('websocket transport (RFC 6455 over raw TCP)', () => {
  let srv; // ws-main
  let small; // ws-small
  let good; // a well-behaved client, connected through the whole file
  const test = (name, fn, getSrv = () => srv) => it(name, { timeout: TEST_TIMEOUT_MS }, withServerLog(getSrv, fn));

  before(async () => {
    [srv, small] = await Promise.all([
      startServer({
        label: 'ws-main',
        config: {
          rooms: { policy: 'anyone' },
          heartbeat: { pingIntervalMs: 25000, pingTimeoutMs: 20000 },
          limits: { maxPayload: 100000, handshakeTimeoutMs: 10000 },
        },
      }),
      startServer({
        label: 'ws-small',
        config: {
          rooms: { policy: 'anyone' },
          heartbeat: { pingIntervalMs: 25000, pingTimeoutMs: 20000 },
          limits: { maxPayload: 4096, handshakeTimeoutMs: 1000 },
        },
      }),
    ]);
    good = (await wsConnected(srv.port, {}, { track: false })).c;
  });
  afterEach(() => {
    for (const c of conns) c.destroy();
    conns.clear();
  });
  after(async () => {
    for (const c of conns) c.destroy();
    conns.clear();
    good?.destroy();
    await Promise.all([srv?.stop(), small?.stop()]);
  });

  describe('handshake', () => {
    test('101 with the right Sec-WebSocket-Accept, the open packet, then CONNECT', async () => {
      const { c, open, res } = await wsOpen(srv.port);
      assert.equal(res.body, '');
      assert.equal(open.maxPayload, 100000);
      assert.deepEqual(open.upgrades, []);
      const connect = await sioConnect(c);
      assert.equal(typeof connect.sid, 'string');
      await roundTrip(c);
    });

    test('a head written one byte at a time, and in 7-byte pieces', async () => {
      const run = async (size, delayMs) => {
        const c = await Conn.open(srv.port);
        const { bytes, key } = upgradeRequest(srv.port);
        await c.writeSlowly(bytes, size, delayMs);
        const res = await c.readResponse();
        assertSwitched(res, key);
        await readOpenPacket(c);
        await sioConnect(c);
        await roundTrip(c);
      };
      await Promise.all([run(1, 1), run(7, 3)]);
    });

    test('frames pipelined in the same write as the head are processed', async () => {
      const c = await Conn.open(srv.port);
      const { bytes, key } = upgradeRequest(srv.port);
      const i = nextIndex++;
      c.write(Buffer.concat([bytes, text('40'), text(joinRoomText('piped', i))]));
      assertSwitched(await c.readResponse(), key);
      await readOpenPacket(c);
      assert.match(await c.nextMessage(), /^40\{"sid":/);
      await expectJoined(c, 'piped', i);
    });

    test('Connection as a token list and case-insensitive Upgrade', async () => {
      const { c } = await wsOpen(srv.port, { connection: 'keep-alive, Upgrade', upgrade: 'WebSocket' });
      await sioConnect(c);
      // Lower-case header names, no blank after the comma, upper-case token.
      const c2 = await Conn.open(srv.port);
      const key = wsKey();
      c2.write(Buffer.from([
        `GET ${WS_PATH} HTTP/1.1`, `host: ${HOST}:${srv.port}`, 'upgrade: websocket',
        'connection: Keep-Alive,UPGRADE', `sec-websocket-key: ${key}`, 'sec-websocket-version: 13',
      ].join('\r\n') + '\r\n\r\n', 'latin1'));
      assertSwitched(await c2.readResponse(), key);
      await readOpenPacket(c2);
      await sioConnect(c2);
    });

    test('Sec-WebSocket-Version other than 13 → 426 with Sec-WebSocket-Version: 13, closed', async () => {
      const up = (opts) => upgradeRequest(srv.port, opts).bytes;
      const res = await expectAllRefused(srv.port, { 'version 12': up({ version: '12' }), 'version 8': up({ version: '8' }) }, 426);
      for (const [what, r] of Object.entries(res)) {
        assert.equal(r.headers['sec-websocket-version'], '13', `${what}: 426 headers ${JSON.stringify(r.headers)}`);
      }
    });

    test('missing or malformed Sec-WebSocket-Key → 400, closed', async () => {
      const up = (key) => upgradeRequest(srv.port, { key }).bytes;
      await expectAllRefused(srv.port, {
        'no key': up(null),
        'key "abc"': up('abc'),
        'key of 15 bytes': up(randomBytes(15).toString('base64')),
        'key of 17 bytes': up(randomBytes(17).toString('base64')),
        'key not base64': up('!!!!!!!!!!!!!!!!!!!!!!=='),
      }, 400);
    });

    test('Connection without the upgrade token → 400, closed', async () => {
      await expectAllRefused(srv.port, {
        'Connection: keep-alive': upgradeRequest(srv.port, { connection: 'keep-alive' }).bytes,
        'Connection: upgraded': upgradeRequest(srv.port, { connection: 'upgraded' }).bytes,
      }, 400);
    });

    test('EIO=3, or transport=polling on an upgrade → 400, closed', async () => {
      await expectAllRefused(srv.port, {
        'EIO=3': upgradeRequest(srv.port, { path: '/socket.io/?EIO=3&transport=websocket' }).bytes,
        'transport=polling': upgradeRequest(srv.port, { path: '/socket.io/?EIO=4&transport=polling' }).bytes,
      }, 400);
    });

    test('an upgrade outside /socket.io/ → 404, closed', async () => {
      await expectAllRefused(srv.port, {
        '/elsewhere/': upgradeRequest(srv.port, { path: '/elsewhere/?EIO=4&transport=websocket' }).bytes,
        '/': upgradeRequest(srv.port, { path: '/' }).bytes,
      }, 404);
    });

    test('unknown sid → 400 {"code":1,"message":"Session ID unknown"}, closed', async () => {
      const res = await expectAllRefused(srv.port, {
        'sid=nope': upgradeRequest(srv.port, { path: `${WS_PATH}&sid=nope` }).bytes,
      }, 400);
      assert.deepEqual(JSON.parse(res['sid=nope'].body), { code: 1, message: 'Session ID unknown' });
    });

    test('Origin: disallowed → 403, closed; allowed → 101', async () => {
      await expectAllRefused(srv.port, {
        'Origin: http://evil.test': upgradeRequest(srv.port, { origin: 'http://evil.test' }).bytes,
      }, 403);
      const { c } = await wsOpen(srv.port, { origin: 'http://allowed.test' });
      await sioConnect(c);
    });

    test('a head over 8192 bytes without its blank line → 431, closed', async () => {
      const one = Buffer.from(`GET ${WS_PATH} HTTP/1.1\r\nHost: ${HOST}:${srv.port}\r\nUpgrade: websocket\r\n` +
        `X-Filler: ${'a'.repeat(8400)}`, 'latin1');
      const lines = [`GET ${WS_PATH} HTTP/1.1`, `Host: ${HOST}:${srv.port}`];
      while (lines.join('\r\n').length < 8400) lines.push(`X-H${lines.length}: ${'b'.repeat(40)}`);
      const many = Buffer.from(lines.join('\r\n') + '\r\n', 'latin1');
      const results = {
        'one long header, one write': (await refusal(srv.port, one)).outcome,
        'many short headers, 1 KB writes': (await refusal(srv.port, many, { pieces: 1024 })).outcome,
      };
      assert.deepEqual(results, {
        'one long header, one write': '431, tcp closed',
        'many short headers, 1 KB writes': '431, tcp closed',
      });
    });

    test('an incomplete head left hanging is closed after handshakeTimeoutMs (1000)', async () => {
      const c = await Conn.open(small.port);
      c.write(Buffer.from(`GET ${WS_PATH} HTTP/1.1\r\nHost: ${HOST}:${small.port}\r\nUpgrade: websocket\r\n`, 'latin1'));
      await c.waitTcpClosed(4000).catch(() => {
        throw new Error('an incomplete head is still open after 4000 ms (handshakeTimeoutMs is 1000)');
      });
      const lived = c.closedAt - c.openedAt;
      assert.ok(lived >= 800 && lived <= 3000, `closed after ${lived} ms; handshakeTimeoutMs is 1000`);
    }, () => small);
  });

  describe('plain HTTP on the same port', () => {
    test('GET /luckysync/stats → 200 JSON; two requests on one keep-alive connection', async () => {
      const c = await Conn.open(srv.port);
      c.write(httpGet(srv.port, '/luckysync/stats'));
      const r1 = await c.readResponse();
      assert.equal(r1.status, 200, `${r1.statusLine} ${r1.body.slice(0, 200)}`);
      assert.equal(typeof JSON.parse(r1.body).connections, 'number', r1.body.slice(0, 200));
      assert.ok(!c.closed, 'HTTP/1.1 keeps the connection open');
      c.write(httpGet(srv.port, '/luckysync/stats'));
      const r2 = await c.readResponse();
      assert.equal(r2.status, 200, `second request: ${r2.statusLine}`);
      assert.equal(typeof JSON.parse(r2.body).connections, 'number');
    });

    test('a plain HTTP head in 7-byte pieces is answered', async () => {
      const c = await Conn.open(srv.port);
      await c.writeSlowly(httpGet(srv.port, '/luckysync/stats'), 7, 3);
      const r = await c.readResponse();
      assert.equal(r.status, 200, `${r.statusLine} ${r.body.slice(0, 200)}`);
      assert.equal(typeof JSON.parse(r.body).connections, 'number');
    });

    // A plain HTTP request reaches lws either untouched in the socket (its head came whole)
    // or with exactly its head's bytes handed over (the head came in pieces); a body must
    // arrive intact either way, and lws must go on serving the connection afterwards.
    test('polling POST bodies reach lws intact, whole or with the head in pieces', async () => {
      const post = (sid, body) => {
        const b = Buffer.from(body, 'latin1');
        return {
          head: Buffer.from([`POST /socket.io/?EIO=4&transport=polling&sid=${sid} HTTP/1.1`,
            `Host: ${HOST}:${srv.port}`, 'Content-Type: text/plain;charset=UTF-8',
            `Content-Length: ${b.length}`].join('\r\n') + '\r\n\r\n', 'latin1'),
          body: b,
        };
      };
      const ways = {
        'head and body in one write': async (c, { head, body }) => c.write(Buffer.concat([head, body])),
        'head in 7-byte pieces, then the body': async (c, { head, body }) => {
          await c.writeSlowly(head, 7, 3);
          await sleep(20);
          c.write(body);
        },
        'head in pieces, its last piece carrying the body': async (c, { head, body }) => {
          await c.writeSlowly(head.subarray(0, head.length - 5), 9, 3);
          await sleep(20);
          c.write(Buffer.concat([head.subarray(head.length - 5), body]));
        },
      };
      ways['a POST byte by byte'] = async (c, { head, body }) => c.writeSlowly(Buffer.concat([head, body]), 1, 1);
      for (const [way, send] of Object.entries(ways)) {
        const hc = await Conn.open(srv.port);
        hc.write(httpGet(srv.port, '/socket.io/?EIO=4&transport=polling'));
        const res = await hc.readResponse();
        assert.equal(res.status, 200, `${way}: handshake ${res.statusLine}`);
        const { sid } = JSON.parse(res.body.slice(1));
        const c = await Conn.open(srv.port);
        await send(c, post(sid, '40'));
        const r = await c.readResponse();
        assert.equal(r.status, 200, `${way}: POST ${r.statusLine} ${r.body.slice(0, 200)}`);
        assert.equal(r.body, 'ok', `${way}: POST body`);
        // the same keep-alive connection: a second POST, then the held GET gets the CONNECT answer
        const again = post(sid, '3');
        c.write(Buffer.concat([again.head, again.body]));
        const r2 = await c.readResponse();
        assert.equal(r2.status, 200, `${way}: second POST ${r2.statusLine} ${r2.body.slice(0, 200)}`);
        hc.write(httpGet(srv.port, `/socket.io/?EIO=4&transport=polling&sid=${sid}`));
        const g = await hc.readResponse();
        assert.match(g.body, /^40\{"sid":/, `${way}: the CONNECT was received: ${g.body.slice(0, 200)}`);
      }
      // a GET whose head came in pieces (lws gets exactly its head as its first read), then a
      // POST with a body on the same keep-alive connection
      {
        const hc = await Conn.open(srv.port);
        await hc.writeSlowly(httpGet(srv.port, '/socket.io/?EIO=4&transport=polling'), 7, 3);
        const res = await hc.readResponse();
        assert.equal(res.status, 200, `GET in pieces: ${res.statusLine}`);
        const { sid } = JSON.parse(res.body.slice(1));
        const p = post(sid, '40');
        hc.write(Buffer.concat([p.head, p.body]));
        const r = await hc.readResponse();
        assert.equal(r.body, 'ok', `POST after a GET in pieces: ${r.statusLine} ${r.body.slice(0, 200)}`);
        const c = await Conn.open(srv.port);
        c.write(httpGet(srv.port, `/socket.io/?EIO=4&transport=polling&sid=${sid}`));
        assert.match((await c.readResponse()).body, /^40\{"sid":/, 'the CONNECT was received');
      }
      // and the server is still responsive (no busy loop left behind)
      const c = await Conn.open(srv.port);
      c.write(httpGet(srv.port, '/luckysync/stats'));
      assert.equal((await c.readResponse()).status, 200);
    });

    test('polling handshake, then the upgrade to websocket on its sid (2probe, 3probe, 5)', async () => {
      const hc = await Conn.open(srv.port);
      hc.write(httpGet(srv.port, '/socket.io/?EIO=4&transport=polling'));
      const res = await hc.readResponse();
      assert.equal(res.status, 200, `${res.statusLine} ${res.body.slice(0, 200)}`);
      assert.match(res.body, /^0\{"sid":/, `open packet expected: ${res.body.slice(0, 200)}`);
      const open = JSON.parse(res.body.slice(1));
      assert.deepEqual(open.upgrades, ['websocket']);

      const c = await Conn.open(srv.port);
      const { bytes, key } = upgradeRequest(srv.port, { path: `${WS_PATH}&sid=${encodeURIComponent(open.sid)}` });
      c.write(bytes);
      assertSwitched(await c.readResponse(), key);
      c.sendText('2probe');
      assert.equal(await c.nextMessage(), '3probe', 'the probe is answered first (no open packet on an upgrade)');
      c.sendText('5');
      c.sendText('40');
      await c.messageMatching((m) => /^40\{"sid":/.test(m), '40{sid} over the upgraded websocket');
      await roundTrip(c, 'after-upgrade');
    });
  });

  describe('frames', () => {
    test('a message in 3 fragments with a PING between them: PONG and the message processed', async () => {
      const { c } = await wsOpen(srv.port);
      // CONNECT itself split in two, a ping in between.
      c.write(text('4', { fin: false }));
      c.write(frame(OP.PING, 'p-one'));
      c.write(frame(OP.CONT, '0'));
      const got = [];
      const deadline = Date.now() + WAIT_MS;
      while (!(got.some((f) => f.opcode === OP.PONG) && got.some((f) => f.opcode === OP.TEXT))) {
        got.push(await c.readFrame(Math.max(1, deadline - Date.now())));
      }
      const pong = got.find((f) => f.opcode === OP.PONG);
      assert.equal(pong.payload.toString(), 'p-one');
      assert.ok(pong.fin);
      assert.match(got.find((f) => f.opcode === OP.TEXT).payload.toString(), /^40\{"sid":/);

      // An event in 3 fragments (TEXT fin=0, CONT fin=0, CONT fin=1), the ping after the first.
      const i = nextIndex++;
      const msg = joinRoomText('frag', i);
      const a = msg.slice(0, 10);
      const b = msg.slice(10, 25);
      const rest = msg.slice(25);
      c.write(text(a, { fin: false }));
      c.write(frame(OP.PING, 'p-two'));
      await sleep(20);
      c.write(frame(OP.CONT, b, { fin: false }));
      await sleep(20);
      c.write(frame(OP.CONT, rest));
      const f1 = await c.readFrame();
      assert.equal(f1.opcode, OP.PONG, `a pong first, got opcode ${f1.opcode} ${preview(f1.payload)}`);
      assert.equal(f1.payload.toString(), 'p-two');
      await expectJoined(c, 'frag', i);
    });

    test('a frame header written one byte per TCP write', async () => {
      const { c } = await wsConnected(srv.port);
      // 7-bit length: the 6 header bytes one by one, then the payload.
      let i = nextIndex++;
      let f = text(joinRoomText('slow7', i));
      await c.writeSlowly(f.subarray(0, 6), 1, 3);
      c.write(f.subarray(6));
      await expectJoined(c, 'slow7', i);
      // 16-bit length: the 8 header bytes one by one, then the payload in two pieces.
      i = nextIndex++;
      f = text(joinRoomText('slow16', i, 400));
      await c.writeSlowly(f.subarray(0, 8), 1, 3);
      c.write(f.subarray(8, 100));
      await sleep(5);
      c.write(f.subarray(100));
      await expectJoined(c, 'slow16', i);
    });

    test('16-bit (300 bytes) and 64-bit (70000 bytes) lengths', async () => {
      const { c } = await wsConnected(srv.port);
      let i = nextIndex++;
      let f = text(joinRoomText('len16', i, 300));
      assert.equal(f[1] & 0x7f, 126);
      c.write(f);
      await expectJoined(c, 'len16', i);
      i = nextIndex++;
      f = text(joinRoomText('len64', i, 70000));
      assert.equal(f[1] & 0x7f, 127);
      c.write(f);
      await expectJoined(c, 'len64', i);
      await roundTrip(c); // and the connection goes on
    });

    test('protocol errors → close 1002 and the TCP connection closed', async () => {
      const cases = {
        'unmasked frame': [text(joinRoomText('x', 1), { mask: false })],
        'RSV1 set': [text(joinRoomText('x', 1), { rsv: 4 })],
        'RSV3 set': [text(joinRoomText('x', 1), { rsv: 1 })],
        'opcode 3': [frame(3, 'hello')],
        'opcode 0xB (reserved control)': [frame(0xb, '')],
        'PING with a 126-byte payload': [frame(OP.PING, 'p'.repeat(126))],
        'PING with FIN=0': [frame(OP.PING, 'ping', { fin: false })],
        'CONT with no message started': [frame(OP.CONT, '42["x"]')],
        'new TEXT inside a fragmented message': [text('42["joinRoom",', { fin: false }), text('42["x"]')],
        'close with a 1-byte payload': [frame(OP.CLOSE, Buffer.from([0x03]))],
        'close with code 999': [frame(OP.CLOSE, closePayload(999))],
      };
      const outcomes = await Promise.all(Object.entries(cases).map(async ([what, frames]) => {
        const { c } = await wsConnected(srv.port);
        c.write(Buffer.concat(frames));
        return [what, await c.closeOutcome()];
      }));
      const expected = Object.fromEntries(Object.keys(cases).map((k) => [k, 'close 1002, tcp closed']));
      assert.deepEqual(Object.fromEntries(outcomes), expected);
    });

    test('a binary message → close 1003', async () => {
      const { c } = await wsConnected(srv.port);
      c.write(frame(OP.BINARY, Buffer.from([1, 2, 3, 4])));
      assert.equal(await c.closeOutcome(), 'close 1003, tcp closed');
    });

    test('a message over maxPayload (4096) → close 1009, in one frame or in fragments', async () => {
      const outcomes = await Promise.all([
        (async () => {
          const { c } = await wsConnected(small.port);
          c.write(text(joinRoomText('big', 1, 5000)));
          return ['one frame of 5000 bytes', await c.closeOutcome()];
        })(),
        (async () => {
          const { c } = await wsConnected(small.port);
          const msg = joinRoomText('big', 1, 6000);
          c.write(Buffer.concat([
            text(msg.slice(0, 2000), { fin: false }),
            frame(OP.CONT, msg.slice(2000, 4000), { fin: false }),
            frame(OP.CONT, msg.slice(4000)),
          ]));
          return ['3 fragments of 2000 bytes', await c.closeOutcome()];
        })(),
      ]);
      assert.deepEqual(Object.fromEntries(outcomes), {
        'one frame of 5000 bytes': 'close 1009, tcp closed',
        '3 fragments of 2000 bytes': 'close 1009, tcp closed',
      });
      // Under the limit on the same server: processed.
      const { c } = await wsConnected(small.port);
      const i = nextIndex++;
      c.write(text(joinRoomText('fits', i, 3000)));
      await expectJoined(c, 'fits', i);
    }, () => small);

    test('client close 1000 → server close 1000, TCP closed, connections goes back down', async () => {
      const { c } = await wsConnected(srv.port);
      const s0 = await srv.waitForStats((s) => typeof s.connections === 'number' && s.connections >= 2, 3000,
        'this client and the good one counted');
      c.write(frame(OP.CLOSE, closePayload(1000, 'bye')));
      assert.equal(await c.closeOutcome(), 'close 1000, tcp closed');
      await srv.waitForStats((s) => s.connections <= s0.connections - 1, 3000,
        `connections below ${s0.connections}`);
    });
  });

  test('the well-behaved client was never disturbed and still round-trips', async () => {
    assert.ok(!good.closed, 'the good client is still connected');
    await roundTrip(good, 'survivor');
    await roundTrip(good, 'survivor-2');
  });
});
