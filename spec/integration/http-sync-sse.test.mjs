// The HTTP/SSE fallback (issue 4): POST /sync/<area>/<name>/v<N> with curl and with Node's
// fetch. SSE: ": connected", `event: stream` chunks (ctx.stream), one `event: final` (or
// `event: error` after chunks); JSON mode: one envelope. Refusals before any chunk are plain
// JSON with their HTTP status. Closing the connection cancels the request (the handler stops:
// its broadcast to a room member stops, "request cancelled" is logged). An HTTP sender counts as
// a member of the rooms its session joined over a socket.

import assert from 'node:assert/strict';
import { describe } from 'node:test';

import {
  curl, join, logsWith, parseSse, recorder, seqs, show, sleep, streamSuite, tokenFor, waitLog,
} from './lib/stream-util.mjs';
import { hsToken, newSid } from './lib/tokens.mjs';

const MAX_PAYLOAD = 100000; // the harness's limits.maxPayload

describe('HTTP/SSE fallback', () => {
  const suite = streamSuite('http-sync-sse', { sync: { vmPoolSize: 2 } });
  const { test, room, connect } = suite;
  const url = (route, q = '') => `${suite.srv.url}/sync/${route}${q}`;

  /** A logged-in session with a socket in a fresh room, and a watching member of another user. */
  async function session(prefix) {
    const R = room(prefix);
    const sid = newSid('http');
    const token = tokenFor('alice', sid);
    const tab = await connect(token); // the session's socket: makes the session a member of R
    await join(tab, R);
    const watcher = await connect(tokenFor('bob'));
    await join(watcher, R);
    return { R, sid, token, tab, watcher, tabRec: recorder(tab), wRec: recorder(watcher) };
  }

  const sseArgs = (token, body) => [
    '-N', '-X', 'POST', '-H', 'Accept: text/event-stream', '-H', 'Content-Type: application/json',
    ...(token ? ['-H', `Authorization: Bearer ${token}`] : []), '--data-binary', JSON.stringify(body),
  ];

  function assertJsonError(res, status, code, what) {
    assert.equal(res.status, status, `${what}: ${res.status} ${res.body}`);
    assert.match(res.contentType, /application\/json/, `${what}: content type ${res.contentType}`);
    const env = JSON.parse(res.body);
    assert.equal(env.status, 'error', `${what}: ${res.body}`);
    assert.equal(env.errorCode, code, `${what}: ${res.body}`);
    return env;
  }

  test('curl, Accept: text/event-stream: ": connected", the ctx.stream chunks in order, one final event; the room (the session\'s own socket too) gets the broadcast and the fanout', async () => {
    const s = await session('sse');
    const N = 6;
    const res = await curl([...sseArgs(s.token, { data: { n: N, sleepMs: 10 }, receiver: s.R, cb: 'http-cb' }), url('hs/chat/v1')]);
    assert.equal(res.status, 200, res.body);
    assert.match(res.contentType, /^text\/event-stream/);
    assert.ok(res.body.startsWith(': connected\n'), `body starts with ${JSON.stringify(res.body.slice(0, 40))}`);
    const sse = parseSse(res.body);
    assert.equal(sse.rest, '', `nothing after the last event: ${JSON.stringify(sse.rest)}`);
    assert.deepEqual(sse.comments, ['connected']);
    assert.deepEqual(sse.events.map((e) => e.event), [...Array(N).fill('stream'), 'final'], res.body);
    assert.deepEqual(sse.events.slice(0, N).map((e) => e.data), seqs(N).map((i) => ({ seq: i, text: `t${i}` })));
    assert.ok(!res.body.includes('__cancelId'), 'the cancel id frame is not an SSE event');
    assert.deepEqual(sse.events[N].data, {
      status: 'success',
      message: 'sync sync/hs/chat/v1 success',
      result: { status: 'success', serverOutput: { n: N, user: 'alice', session: s.sid } },
    });
    // The room: N broadcast chunks with the request's cb, then the success frame.
    for (const [who, rec] of [['watcher', s.wRec], ['session socket', s.tabRec]]) {
      await rec.waitFinal(1);
      const frames = rec.syncFrames();
      assert.deepEqual(frames.slice(0, N).map((f) => [f.seq, f.cb, f.status, f.fullName]),
        seqs(N).map((i) => [i, 'http-cb', 'stream', 'sync/hs/chat/v1']), `${who}: ${show(frames)}`);
      assert.equal(frames[N].status, 'success');
      assert.deepEqual(frames[N].serverOutput, { n: N, user: 'alice', session: s.sid });
    }
    // The session's socket is not the sender: no progress events reach it.
    assert.ok(!s.tabRec.names().some((n) => n.startsWith('sync-progress')), show(s.tabRec.names()));
  });

  test('curl, ?stream=true without an Accept header streams too', async () => {
    const s = await session('qs');
    const res = await curl(['-N', '-H', `Authorization: Bearer ${s.token}`, '-H', 'Content-Type: application/json',
      '--data-binary', JSON.stringify({ data: { n: 2 }, receiver: s.R }), url('hs/chat/v1', '?stream=true')]);
    assert.equal(res.status, 200, res.body);
    assert.match(res.contentType, /^text\/event-stream/);
    const sse = parseSse(res.body);
    assert.deepEqual(sse.events.map((e) => e.event), ['stream', 'stream', 'final'], res.body);
  });

  test('curl, JSON mode (no Accept): one JSON envelope, status 200, no chunks in the body', async () => {
    const s = await session('json');
    const res = await curl(['-H', `Authorization: Bearer ${s.token}`, '-H', 'Content-Type: application/json',
      '--data-binary', JSON.stringify({ data: { n: 3 }, receiver: s.R }), url('hs/chat/v1')]);
    assert.equal(res.status, 200, res.body);
    assert.match(res.contentType, /application\/json/);
    assert.deepEqual(JSON.parse(res.body), {
      status: 'success',
      message: 'sync sync/hs/chat/v1 success',
      result: { status: 'success', serverOutput: { n: 3, user: 'alice', session: s.sid } },
    });
    await s.wRec.waitFinal(1);
    assert.deepEqual(s.wRec.stream().map((f) => f.seq), [1, 2, 3], 'the broadcast still reaches the room');
  });

  test('curl refusals before any chunk are plain JSON with their status (even with Accept: text/event-stream)', async () => {
    const s = await session('err');
    const route = url('hs/chat/v1');
    const body = { data: { n: 1 }, receiver: s.R };

    let env = assertJsonError(await curl([...sseArgs(s.token, { data: { n: 'x' }, receiver: s.R }), route]), 400, 'sync.invalidInput', 'invalid input');
    assert.equal(env.httpStatus, 400);
    assert.ok(Array.isArray(env.errorParams) && env.errorParams.some((p) => p.key === 'field' && p.value === 'n'), show(env));

    assertJsonError(await curl([...sseArgs(null, body), route]), 401, 'auth.required', 'no token on a login route');
    assertJsonError(await curl([...sseArgs(`${s.token}x`, body), route]), 401, 'auth.invalidToken', 'bad token');
    assertJsonError(await curl([...sseArgs(s.token, body), url('hs/nope/v1')]), 404, 'sync.notFound', 'unknown route');
    assertJsonError(await curl([...sseArgs(s.token, body), url('hs/chat/v9')]), 404, 'sync.notFound', 'unknown version');
    assertJsonError(await curl(['-H', 'Accept: text/event-stream', '-H', `Authorization: Bearer ${s.token}`, route]),
      405, 'sync.methodNotAllowed', 'GET');
    assertJsonError(await curl(['-X', 'PUT', '-H', `Authorization: Bearer ${s.token}`, '--data-binary', '{}', route]),
      405, 'sync.methodNotAllowed', 'PUT');
    const big = JSON.stringify({ data: { n: 1, pad: 'x'.repeat(MAX_PAYLOAD) }, receiver: s.R });
    assertJsonError(await curl(['-H', 'Expect:', ...sseArgs(s.token, body).slice(0, -2), '--data-binary', big, route]),
      413, 'sync.payloadTooLarge', 'oversized body');
    assertJsonError(await curl(['-H', 'Accept: text/event-stream', '-H', `Authorization: Bearer ${s.token}`,
      '--data-binary', '{"data": {"n": 1}, "receiver": ', route]), 400, 'sync.invalidRequest', 'bad JSON');
    assertJsonError(await curl([...sseArgs(tokenFor('carol'), body), route]), 403, 'sync.notRoomMember', 'a session that joined nothing');
    assertJsonError(await curl([...sseArgs(s.token, { data: { n: 1 } }), route]), 400, 'sync.missingReceiver', 'no receiver');
    assertJsonError(await curl([...sseArgs(s.token, body), `${suite.srv.url}/sync/bad name/v1`.replace(' ', '%20')]), 400, 'sync.invalidName', 'bad name');

    const expired = hsToken({ sub: 'alice', sid: s.sid }, { exp: Math.floor(Date.now() / 1000) - 60 });
    assertJsonError(await curl([...sseArgs(expired, body), route]), 401, 'auth.expired', 'expired token');
    assertJsonError(await curl([...sseArgs(s.token, { data: 5, receiver: s.R }), route]), 400, 'sync.invalidRequest', 'data not an object');
    assertJsonError(await curl(['-H', 'Transfer-Encoding: chunked', ...sseArgs(s.token, body), route]),
      400, 'sync.invalidRequest', 'no Content-Length (chunked body)');
    assertJsonError(await curl([...sseArgs(s.token, { data: {}, receiver: s.R }), url('hs/admin/v1')]), 403, 'auth.forbidden', 'missing role');
    // The handler's own error before any chunk: plain JSON with its status, code and params.
    env = assertJsonError(await curl([...sseArgs(s.token, { data: { n: 0 }, receiver: s.R }), url('hs/refuse/v1')]), 409, 'hs.locked', 'handler error envelope');
    assert.deepEqual(env.errorParams, [{ key: 'who', value: 'tester' }]);
    // A handler failure in JSON mode: 500, no details.
    env = assertJsonError(await curl(['-H', `Authorization: Bearer ${s.token}`, '--data-binary',
      JSON.stringify({ data: { n: 0, fail: true }, receiver: s.R }), route]), 500, 'sync.serverExecutionFailed', 'handler failure (JSON)');
    assert.ok(!JSON.stringify(env).includes('exploded'), show(env));

    // CORS: preflight 204; a refused Origin gets 403 auth.forbidden.
    const pre = await curl(['-X', 'OPTIONS', '-H', 'Origin: http://allowed.test', '-H', 'Access-Control-Request-Method: POST', route]);
    assert.equal(pre.status, 204, pre.body);
    assertJsonError(await curl(['-H', 'Origin: http://evil.test', ...sseArgs(s.token, body), route]), 403, 'auth.forbidden', 'refused Origin');

    // None of them ran the handler: the room saw nothing.
    await sleep(100);
    assert.equal(s.wRec.events.length, 0, `the room got: ${show(s.wRec.events)}`);
  });

  test('curl, a handler that fails after its chunks: the stream ends with one `error` event', async () => {
    const s = await session('fail');
    // sleepMs: the first chunk (and with it the 200 status line) is out before the failure.
    const res = await curl([...sseArgs(s.token, { data: { n: 2, sleepMs: 20, fail: true }, receiver: s.R }), url('hs/chat/v1')]);
    assert.equal(res.status, 200, 'the status went out with the first chunk');
    assert.match(res.contentType, /^text\/event-stream/);
    assert.ok(res.body.startsWith(': connected\n'), res.body.slice(0, 40));
    const sse = parseSse(res.body);
    assert.equal(sse.rest, '');
    assert.deepEqual(sse.events.map((e) => e.event), ['stream', 'stream', 'error'], res.body);
    const env = sse.events[2].data;
    assert.equal(env.status, 'error');
    assert.equal(env.errorCode, 'sync.serverExecutionFailed', show(env));
    assert.equal(env.httpStatus, 500);
    assert.ok(!JSON.stringify(env).includes('exploded'), `no handler details to clients: ${show(env)}`);
    await sleep(100);
    assert.equal(s.wRec.finals().length, 0, 'no fanout after an error');
  });

  test('SSE after chunks: the status line is 200 whatever the timing, and the stream ends with the handler\'s own `error` event', async () => {
    // Without a sleep, the chunks and the error envelope are all produced before the response
    // headers are written: the status must still be the one of an opened SSE stream (200),
    // exactly as when the first chunk went out before the error (sleepMs 20).
    for (const sleepMs of [20, 0]) {
      const res = await curl([...sseArgs(null, { data: { n: 2, sleepMs }, receiver: 'anywhere' }), url('hs/refuse/v1')]);
      const sse = parseSse(res.body);
      assert.deepEqual(sse.events.map((e) => e.event), ['stream', 'stream', 'error'], `sleepMs ${sleepMs}: ${res.body}`);
      assert.equal(sse.events[2].data.errorCode, 'hs.locked');
      assert.equal(sse.events[2].data.httpStatus, 409);
      assert.match(res.contentType, /^text\/event-stream/);
      assert.equal(res.status, 200, `sleepMs ${sleepMs}: an SSE stream (${res.contentType}) came with HTTP ${res.status}`);
    }
  });

  test('rate limits apply over HTTP: a logged-in user and an anonymous client both get 429 after the route\'s limit', async () => {
    const body = JSON.stringify({ data: {}, receiver: 'anywhere' });
    const post = (token) => curl(['-H', 'Content-Type: application/json',
      ...(token ? ['-H', `Authorization: Bearer ${token}`] : []), '--data-binary', body, url('hs/limited/v1')]);
    const token = tokenFor(`rl-${newSid()}`);
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(token)).status);
    assert.deepEqual(statuses, [200, 200, 429], 'logged-in user, rateLimit = 2');
    const last = JSON.parse((await post(token)).body);
    assert.equal(last.errorCode, 'sync.rateLimitExceeded');
    assert.ok(last.errorParams.some((p) => p.key === 'seconds' && Number.isInteger(p.value) && p.value > 0), show(last));

    // Anonymous: every HTTP request is a fresh connection, but the limit must still hold.
    const anon = [];
    for (let i = 0; i < 3; i++) anon.push((await post(null)).status);
    assert.deepEqual(anon, [200, 200, 429], 'anonymous HTTP sender, rateLimit = 2');
  });

  /**
   * fetch with Accept: text/event-stream; reads the body incrementally. Returns
   * { res, events (array, grows), done (promise of the full text) }; events carry arrival times.
   */
  async function fetchSse(route, token, body, signal) {
    const res = await fetch(url(route), {
      method: 'POST',
      headers: { Accept: 'text/event-stream', 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
      signal,
    });
    const events = [];
    let text = '';
    let parsedUpTo = 0;
    const decoder = new TextDecoder();
    const done = (async () => {
      const reader = res.body.getReader();
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        text += decoder.decode(value, { stream: true });
        const upTo = text.lastIndexOf('\n\n');
        if (upTo + 2 > parsedUpTo) {
          const now = performance.now();
          for (const e of parseSse(text.slice(parsedUpTo, upTo + 2)).events) events.push({ ...e, t: now });
          parsedUpTo = upTo + 2;
        }
      }
      return text;
    })();
    done.catch(() => {});
    return { res, events, done };
  }

  test('fetch reads the SSE stream as it comes: chunks before the final event, spaced like the handler sleeps', async () => {
    const s = await session('fetch');
    const N = 5;
    const SLEEP = 60;
    const t0 = performance.now();
    const r = await fetchSse('hs/chat/v1', s.token, { data: { n: N, sleepMs: SLEEP }, receiver: s.R });
    assert.equal(r.res.status, 200);
    assert.match(r.res.headers.get('content-type'), /^text\/event-stream/);
    const text = await r.done;
    assert.ok(text.startsWith(': connected\n'));
    assert.deepEqual(r.events.map((e) => e.event), [...Array(N).fill('stream'), 'final']);
    assert.deepEqual(r.events.slice(0, N).map((e) => e.data.seq), seqs(N));
    assert.equal(r.events[N].data.status, 'success');
    // Streamed, not buffered to the end: the first chunk came well before the final event.
    const first = r.events[0].t - t0;
    const last = r.events[N].t - t0;
    assert.ok(last - first >= (N - 1) * SLEEP * 0.8, `first chunk at ${first.toFixed(0)} ms, final at ${last.toFixed(0)} ms`);
  });

  test('fetch + AbortController mid-stream cancels the request: the handler stops (its broadcast to the room stops), "request cancelled" is logged, no fanout', async () => {
    const R = room('abort');
    const watcher = await connect(tokenFor('bob'));
    await join(watcher, R);
    const wRec = recorder(watcher);
    const cancelledBefore = logsWith(suite.srv, 'request cancelled').length;
    const ac = new AbortController();
    // hs/open: allowNonMember, no login: an anonymous HTTP sender.
    const r = await fetchSse('hs/open/v1', null, { data: { n: 200, sleepMs: 30 }, receiver: R }, ac.signal);
    assert.equal(r.res.status, 200);
    const deadline = Date.now() + 3000;
    while (r.events.length < 3 && Date.now() < deadline) await sleep(10);
    assert.ok(r.events.length >= 3, `stream events: ${show(r.events)}`);
    ac.abort();
    await assert.rejects(r.done, /abort/i);
    await waitLog(suite.srv, 'request cancelled', 2000, (rec) => rec.route === 'hs/open/v1');
    assert.equal(logsWith(suite.srv, 'request cancelled').length, cancelledBefore + 1);
    await sleep(150);
    const n = wRec.stream().length;
    await sleep(300);
    assert.equal(wRec.stream().length, n, `the room kept getting chunks after the close (${n} → ${wRec.stream().length})`);
    assert.ok(n < 30, `the handler went on for ${n} chunks`);
    assert.deepEqual(wRec.stream().map((f) => f.seq), seqs(n));
    assert.equal(wRec.finals().length, 0, 'the aborted handler ended in an error: no fanout');

    // Healthy afterwards: the same route over HTTP answers.
    const res = await curl(['-H', 'Content-Type: application/json', '--data-binary',
      JSON.stringify({ data: { n: 1 }, receiver: R }), url('hs/open/v1')]);
    assert.equal(res.status, 200, res.body);
    assert.equal(JSON.parse(res.body).status, 'success');
  });

  test('curl killed mid-stream cancels the request too', async () => {
    const R = room('kill');
    const watcher = await connect(null);
    await join(watcher, R);
    const wRec = recorder(watcher);
    const cancelledBefore = logsWith(suite.srv, 'request cancelled').length;
    // --max-time 1: curl gives up (closes the connection) after ~1 s of a ~6 s stream.
    const res = await curl(['-N', '--max-time', '1', '-H', 'Accept: text/event-stream', '-H', 'Content-Type: application/json',
      '--data-binary', JSON.stringify({ data: { n: 200, sleepMs: 30 }, receiver: R }), url('hs/open/v1')]);
    assert.ok(res.err, 'curl timed out');
    assert.ok(parseSse(res.body).events.length > 3, res.body.slice(0, 200));
    await waitLog(suite.srv, 'request cancelled', 2000, (rec) => rec.route === 'hs/open/v1' && logsWith(suite.srv, 'request cancelled').length > cancelledBefore);
    await sleep(150);
    const n = wRec.stream().length;
    await sleep(300);
    assert.equal(wRec.stream().length, n, 'the handler stopped');
    assert.ok(n < 60, `${n} chunks`);

    // JSON mode too: a client that gives up before the single answer cancels the request.
    const before2 = logsWith(suite.srv, 'request cancelled').length;
    const res2 = await curl(['--max-time', '1', '-H', 'Content-Type: application/json',
      '--data-binary', JSON.stringify({ data: { n: 200, sleepMs: 30 }, receiver: R }), url('hs/open/v1')]);
    assert.ok(res2.err, 'curl timed out');
    assert.equal(res2.body, '', 'nothing was sent before the answer');
    await waitLog(suite.srv, 'request cancelled', 2000, () => logsWith(suite.srv, 'request cancelled').length > before2);
    await sleep(150);
    const m = wRec.stream().length;
    await sleep(300);
    assert.equal(wRec.stream().length, m, 'the JSON-mode handler stopped');
  });
});
