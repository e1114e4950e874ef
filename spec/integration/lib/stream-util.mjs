// Helpers for the streaming tests (stream*.test.mjs, http-sync*.test.mjs): the frame every one
// of those files sets up (streamSuite: a server on the fixture tree fixtures/stream/handlers,
// client cleanup, fresh room names), logged-in sockets with chosen sub/sid, an event
// recorder with arrival times (one total order per socket across event names), SSE parsing,
// curl through child_process, and the server process's RSS.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, afterEach, before, it } from 'node:test';

import { Clients, RawClients, httpRequest, request, sleep, within } from './client.mjs';
import { TEST_TIMEOUT_MS, withServerLog } from './server.mjs';
import { startFixtureServer } from './sync.mjs';
import { hsToken, newSid } from './tokens.mjs';

export const show = (v) => JSON.stringify(v)?.slice(0, 800);

/** A server on a copy of fixtures/stream/handlers; config merged over the harness defaults. */
export function startStreamServer(label, config = {}) {
  return startFixtureServer('stream', {
    label,
    config: { rooms: { policy: 'anyone' }, ...config },
  });
}

/**
 * The frame of a streaming test file, called at the top of its describe(): a stream server
 * (label and config as startStreamServer) started before the tests and stopped after them,
 * the sockets (and with { raw: true } the raw ws clients) closed after each test. Returns
 *   srv: the server (a getter; set once before() has run), clients (Clients), raws (RawClients
 *   or null), test(name, fn) (it() with TEST_TIMEOUT_MS and the server's log on a failure),
 *   room(prefix) (a fresh room name "<prefix>-<n>"), connect(token, opts) (connectWith).
 */
export function streamSuite(label, config = {}, { raw = false } = {}) {
  const clients = new Clients();
  const raws = raw ? new RawClients() : null;
  let srv;
  let roomCounter = 0;
  const closeAll = () => {
    clients.closeAll();
    raws?.closeAll();
  };
  before(async () => {
    srv = await startStreamServer(label, config);
  });
  afterEach(closeAll);
  after(async () => {
    closeAll();
    await srv?.stop();
  });
  return {
    get srv() {
      return srv;
    },
    clients,
    raws,
    test: (name, fn) => it(name, { timeout: TEST_TIMEOUT_MS }, withServerLog(() => srv, fn)),
    room: (prefix) => `${prefix}-${++roomCounter}`,
    connect: (token, opts) => connectWith(clients, srv, token, opts),
  };
}

/** An HS256 token for user `sub` in session `sid` (fresh sid when omitted). */
export function tokenFor(sub, sid = newSid(sub), claims = {}) {
  return hsToken({ sub, sid, ...claims });
}

/** Connects a socket with `token` (clients: a lib/client.mjs Clients). */
export function connectWith(clients, srv, token, opts = {}) {
  return clients.connect(srv.url, { auth: token ? { token } : undefined, ...opts });
}

export async function join(socket, group) {
  const res = await request(socket, 'joinRoom', { group });
  assert.equal(res?.status, 'success', `joinRoom ${group}: ${show(res)}`);
  return res;
}

/**
 * Records every event a socket receives from now on: { name, arg, t } (t: performance.now()).
 * rec.stream(cbOrNull) → the `sync` frames with status "stream"; rec.finals() → `sync` frames
 * with another status; rec.waitFor(pred, ms, what) → resolves once pred(events) holds.
 */
export function recorder(socket) {
  const events = [];
  const waiters = [];
  const handler = (name, arg) => {
    events.push({ name, arg, t: performance.now() });
    for (const w of [...waiters]) {
      if (w.pred(events)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(events);
      }
    }
  };
  socket.onAny(handler);
  return {
    events,
    syncFrames: () => events.filter((e) => e.name === 'sync').map((e) => e.arg),
    stream: () => events.filter((e) => e.name === 'sync' && e.arg?.status === 'stream').map((e) => e.arg),
    finals: () => events.filter((e) => e.name === 'sync' && e.arg?.status !== 'stream').map((e) => e.arg),
    names: () => events.map((e) => e.name),
    waitFor(pred, ms = 3000, what = 'condition') {
      if (pred(events)) return Promise.resolve(events);
      const p = new Promise((resolve) => waiters.push({ pred, resolve }));
      return within(p, ms, `${what} (got ${events.length} events: ${show(events.slice(-3).map((e) => e.name))})`);
    },
    /** Resolves once n stream frames are in. */
    waitStream(n, ms = 3000) {
      return this.waitFor((ev) => ev.filter((e) => e.name === 'sync' && e.arg?.status === 'stream').length >= n,
        ms, `${n} stream frame(s)`);
    },
    waitFinal(n = 1, ms = 3000) {
      return this.waitFor((ev) => ev.filter((e) => e.name === 'sync' && e.arg?.status !== 'stream').length >= n,
        ms, `${n} final sync frame(s)`);
    },
    stop() {
      socket.offAny(handler);
    },
  };
}

let nextIndex = 900000;
export const newIndex = () => nextIndex++;

/**
 * Emits `sync` and returns { index, cancelId (promise), answer (promise), progress (array of
 * { arg, t }), events (recorder of the socket, shared) }. Does not wait.
 */
export function startSync(socket, payload, ms = 5000) {
  const index = newIndex();
  const progress = [];
  let cancelResolve;
  const cancelId = new Promise((r) => { cancelResolve = r; });
  const pname = `sync-progress-${index}`;
  const onProgress = (arg) => {
    progress.push({ arg, t: performance.now() });
    if (arg && typeof arg.__cancelId === 'string') cancelResolve(arg.__cancelId);
  };
  socket.on(pname, onProgress);
  // The answer's timeout timer is unref'd and cleared by stopListening(): a request whose
  // answer never comes (its sender disconnected) must not keep the test process alive.
  let timer;
  const answer = new Promise((resolve, reject) => {
    socket.once(`sync-${index}`, (env) => {
      clearTimeout(timer);
      resolve({ env, t: performance.now() });
    });
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: answer sync-${index} to ${payload.name}`)), ms);
    timer.unref();
  });
  answer.catch(() => {});
  socket.emit('sync', { ...payload, responseIndex: index });
  const cancelIdP = within(cancelId, Math.min(ms, 3000), `__cancelId of sync-${index}`);
  cancelIdP.catch(() => {}); // only an error for the tests that wait for it
  return {
    index,
    cancelId: cancelIdP,
    answer,
    progress,
    /** progress chunks other than the cancel id frame */
    chunks: () => progress.filter((p) => !(p.arg && '__cancelId' in p.arg)).map((p) => p.arg),
    stopListening: () => {
      clearTimeout(timer);
      socket.off(pname, onProgress);
      socket.off(`sync-${index}`);
    },
  };
}

/** Sequence numbers 1..n. */
export const seqs = (n) => Array.from({ length: n }, (_, i) => i + 1);

/* ---------- SSE ---------- */

/**
 * Parses an SSE body into { comments: [...], events: [{ event, data }] } (data JSON-parsed
 * when it parses), in order. `order` lists them interleaved: { comment } or { event, data }.
 */
export function parseSse(text) {
  const out = { comments: [], events: [], order: [], rest: '' };
  const blocks = text.split('\n\n');
  out.rest = blocks.pop(); // an unterminated block (empty when the body ends cleanly)
  for (const block of blocks) {
    if (block === '') continue;
    let event = 'message';
    const data = [];
    let isEvent = false;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        const c = line.slice(1).trim();
        out.comments.push(c);
        out.order.push({ comment: c });
      } else if (line.startsWith('event:')) {
        event = line.slice(6).trim();
        isEvent = true;
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
        isEvent = true;
      }
    }
    if (isEvent) {
      const raw = data.join('\n');
      let parsed = raw;
      try {
        parsed = JSON.parse(raw);
      } catch {
        /* not JSON */
      }
      const ev = { event, data: parsed };
      out.events.push(ev);
      out.order.push(ev);
    }
  }
  return out;
}

/* ---------- curl ---------- */

const STATUS_MARK = '\n__CURL__';

/**
 * Runs curl with args (plus -sS and a trailer with the status and content type) and resolves
 * with { status, contentType, body, stderr }.
 */
export function curl(args, ms = 8000) {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', String(Math.ceil(ms / 1000)), ...args,
      '-w', `${STATUS_MARK}%{http_code} %{content_type}`],
    { encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const i = stdout.lastIndexOf(STATUS_MARK);
      if (i < 0) {
        reject(new Error(`curl failed: ${err?.message} ${stderr}`));
        return;
      }
      const [code, ...ct] = stdout.slice(i + STATUS_MARK.length).split(' ');
      resolve({ status: Number(code), contentType: ct.join(' '), body: stdout.slice(0, i), stderr, err });
    });
  });
}

/** Resident set size of a process in kB (Linux /proc). */
export function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Log records (parsed JSON) whose msg equals `msg`. */
export function logsWith(srv, msg) {
  return srv.logs().filter((r) => r.msg === msg);
}

/** Waits until a log line with msg appears (and pred(rec) holds). */
export async function waitLog(srv, msg, ms = 3000, pred = () => true) {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = logsWith(srv, msg).find(pred);
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no log line "${msg}" within ${ms} ms`);
    await sleep(25);
  }
}

export { sleep };

/* ---------- a raw polling member that stops polling ---------- */

/**
 * An Engine.IO polling client that connects (optionally with a token), joins `room`, and then
 * never polls again: everything the server sends it stays in the server's own send queue (no
 * kernel socket buffer in between), until the heartbeat drops it. Returns { sid }.
 */
export async function stuckPollingMember(srv, room, token) {
  const base = '/socket.io/?EIO=4&transport=polling';
  const open = await httpRequest(srv.port, { path: base });
  assert.equal(open.status, 200, open.body);
  const { sid } = JSON.parse(open.body.slice(1));
  const q = `${base}&sid=${encodeURIComponent(sid)}`;
  const post = async (body) => {
    const r = await httpRequest(srv.port, { method: 'POST', path: q, body, headers: { 'Content-Type': 'text/plain;charset=UTF-8' } });
    assert.equal(r.status, 200, r.body);
  };
  const readUntil = async (re) => {
    for (let i = 0; i < 10; i++) {
      const r = await httpRequest(srv.port, { path: q, ms: 3000 });
      assert.equal(r.status, 200, r.body);
      const packets = r.body.split('\x1e');
      if (packets.some((p) => p === '2')) await post('3');
      if (packets.some((p) => re.test(p))) return;
    }
    throw new Error(`polling member: no packet matching ${re}`);
  };
  await post(token ? `40${JSON.stringify({ token })}` : '40');
  await readUntil(/^40\{/);
  await post(`42${JSON.stringify(['joinRoom', { group: room, responseIndex: 1 }])}`);
  await readUntil(/^42\["joinRoom-1",\{"status":"success"/);
  return { sid };
}
