// Sync requests end to end through socket.io-client, on the fixture tree
// fixtures/sync/handlers: the lifecycle (progress, answer, ack, fanout to every member), every
// error code a request can get over the wire with its httpStatus, ignoreSelf, client files
// (per-recipient skip / clientOutput / error), the preSyncFanout hook aborting, numbers, and a
// 200-socket room fanned out in slices.

import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';

import { Clients, onceEvent, request } from './lib/client.mjs';
import { TEST_TIMEOUT_MS, withServerLog } from './lib/server.mjs';
import { collectFrames, settle, show, startFixtureServer, sync, syncRequest } from './lib/sync.mjs';
import { hsToken, newSid } from './lib/tokens.mjs';

const SYNC_MAX_PAYLOAD = 4096;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An error envelope: status, errorCode, httpStatus as expected; returns it. */
function assertError(env, code, httpStatus, what = '') {
  assert.equal(env?.status, 'error', `${what} expected an error, got ${show(env)}`);
  assert.equal(env.errorCode, code, `${what} ${show(env)}`);
  assert.equal(env.httpStatus, httpStatus, `${what} httpStatus of ${code}: ${show(env)}`);
  return env;
}

describe('sync lifecycle and errors', () => {
  let srv;
  const clients = new Clients();
  const test = (name, fn, opts = {}) =>
    it(name, { timeout: TEST_TIMEOUT_MS, ...opts }, withServerLog(() => srv, fn));

  before(async () => {
    srv = await startFixtureServer('sync', {
      label: 'sync',
      config: {
        rooms: { policy: 'anyone' },
        sync: { maxPayload: SYNC_MAX_PAYLOAD, fanoutSliceSize: 16, vmPoolSize: 2 },
      },
    });
  });
  beforeEach(async () => {
    await srv.waitForStats((s) => s.connections === 0, 3000, 'no connections left from the previous test');
  });
  afterEach(() => clients.closeAll());
  after(async () => {
    clients.closeAll();
    await srv?.stop();
  });

  let userCounter = 0;
  /** A logged-in socket (fresh session; sub defaults to a unique id). */
  const user = (claims = {}, opts = {}) =>
    clients.connect(srv.url, { auth: { token: hsToken({ sub: `u${++userCounter}`, sid: newSid(), ...claims }) }, ...opts });
  const anon = (opts = {}) => clients.connect(srv.url, opts);
  const join = async (socket, group) => {
    const res = await request(socket, 'joinRoom', { group });
    assert.equal(res.status, 'success', `joinRoom ${group}: ${show(res)}`);
  };

  test('full lifecycle: progress, answer, ack, and one `sync` frame for every member (two users + anonymous)', async () => {
    const a = await user({ sub: 'alice', name: 'Alice' });
    const b = await user({ sub: 'bob' }, { transports: ['polling'], upgrade: false });
    const c = await anon({ transports: ['websocket'] });
    for (const s of [a, b, c]) await join(s, 'life');
    const frames = [a, b, c].map(collectFrames);
    const seenByA = [];
    a.onAny((name) => seenByA.push(name));

    const data = { x: 1, nested: { list: [1, 'two', { three: 3 }], empty: {} }, text: 'été ☃ 😀' };
    const r = await syncRequest(a, { name: 'sync/t/echo/v1', data, receiver: 'life', cb: 'client-cb-1' }, { ack: true });

    // The progress event with the cancel id comes first, then the answer (and the same ack).
    assert.equal(r.progress.length, 1, `one progress event: ${show(r.progress)}`);
    assert.equal(typeof r.progress[0].__cancelId, 'string');
    assert.match(r.progress[0].__cancelId, UUID_RE);
    assert.deepEqual(Object.keys(r.progress[0]), ['__cancelId']);
    assert.ok(r.order.indexOf('progress') < r.order.indexOf('answer'), `order: ${r.order}`);
    const i = r.index;
    assert.ok(seenByA.indexOf(`sync-progress-${i}`) < seenByA.indexOf(`sync-${i}`), `events: ${seenByA}`);
    const expectedOutput = { data, userId: 'alice', receiver: 'life', route: 't/echo/v1' };
    assert.deepEqual(r.answer, {
      status: 'success',
      message: 'sync sync/t/echo/v1 success',
      result: { status: 'success', serverOutput: expectedOutput },
    });
    assert.deepEqual(r.ack, r.answer, 'the ack carries the same envelope');

    // Every member, the sender included, gets exactly one frame with the client's cb.
    await Promise.all(frames.map((f) => f.waitFor(1)));
    await settle();
    for (const [k, f] of frames.entries()) {
      assert.equal(f.frames.length, 1, `socket ${k}: ${show(f.frames)}`);
      const frame = f.frames[0];
      assert.equal(typeof frame.message, 'string');
      assert.deepEqual(frame, {
        cb: 'client-cb-1',
        fullName: 'sync/t/echo/v1',
        status: 'success',
        serverOutput: expectedOutput,
        clientOutput: {},
        message: frame.message,
      });
    }

    // The anonymous member and the polling user can send too; their cb is echoed as well.
    for (const [sender, who] of [[c, 'anonymous'], [b, 'bob']]) {
      const before = frames.map((f) => f.frames.length);
      const res = await sync(sender, { name: 'sync/t/echo/v1', data: { from: who }, receiver: 'life', cb: `cb-${who}` });
      assert.equal(res.status, 'success', show(res));
      assert.equal(res.result.serverOutput.userId, who);
      await Promise.all(frames.map((f, k) => f.waitFor(before[k] + 1)));
      for (const f of frames) {
        const last = f.frames.at(-1);
        assert.equal(last.cb, `cb-${who}`);
        assert.deepEqual(last.serverOutput.data, { from: who });
      }
    }
    await settle();
    assert.deepEqual(frames.map((f) => f.frames.length), [3, 3, 3], 'exactly one frame per request and member');
  });

  test('two requests in flight get distinct cancel ids; without cb the frame cb is the route name; nested area routes work', async () => {
    const a = await user();
    await join(a, 'ids');
    const fa = collectFrames(a);
    const [r1, r2] = await Promise.all([
      syncRequest(a, { name: 'sync/t/echo/v1', data: {}, receiver: 'ids' }),
      syncRequest(a, { name: 'sync/t/echo/v1', data: {}, receiver: 'ids' }),
    ]);
    assert.notEqual(r1.progress[0].__cancelId, r2.progress[0].__cancelId);
    await fa.waitFor(2);
    assert.deepEqual(fa.frames.map((f) => f.cb), ['sync/t/echo/v1', 'sync/t/echo/v1']);
    assert.deepEqual(fa.frames.map((f) => f.fullName), ['sync/t/echo/v1', 'sync/t/echo/v1']);

    const nested = await sync(a, { name: 'sync/t/deep/nested/v2', data: {}, receiver: 'ids' });
    assert.deepEqual(nested, {
      status: 'success',
      message: 'sync sync/t/deep/nested/v2 success',
      result: { status: 'success', serverOutput: { where: 'deep', v: 2 } },
    });
  });

  test('sync.invalidRequest: a payload that is not an object is answered on the plain `sync` event (and the ack)', async () => {
    const s = await user();
    await join(s, 'inv');
    for (const bad of ['a string', 42, [1, 2], null]) {
      const plain = onceEvent(s, 'sync', 2000);
      s.emit('sync', bad);
      const env = await plain;
      assertError(env, 'sync.invalidRequest', 400, `payload ${show(bad)}`);
    }
    // With an ack id, the ack gets the same error.
    const plain = onceEvent(s, 'sync', 2000);
    const ack = await new Promise((resolve, reject) => {
      s.timeout(2000).emit('sync', 'not an object', (err, v) => (err ? reject(err) : resolve(v)));
    });
    assertError(ack, 'sync.invalidRequest', 400, 'ack');
    assertError(await plain, 'sync.invalidRequest', 400, 'plain event with an ack id');
    assert.ok(s.connected);
  });

  test('sync.invalidRequest: name or data missing / of the wrong type is answered on sync-<i>', async () => {
    const s = await user();
    await join(s, 'inv2');
    const cases = [
      { data: {}, receiver: 'inv2' }, // no name
      { name: 42, data: {}, receiver: 'inv2' },
      { name: 'sync/t/echo/v1', receiver: 'inv2' }, // no data
      { name: 'sync/t/echo/v1', data: [1, 2], receiver: 'inv2' },
      { name: 'sync/t/echo/v1', data: 'text', receiver: 'inv2' },
      { name: 'sync/t/echo/v1', data: null, receiver: 'inv2' },
    ];
    for (const payload of cases) {
      const r = await syncRequest(s, payload);
      assertError(r.answer, 'sync.invalidRequest', 400, show(payload));
    }
  });

  test('sync.invalidName and sync.notFound (with errorParams naming the route)', async () => {
    const s = await user();
    await join(s, 'names');
    for (const name of ['', 'sync/', 'sync/t/echo', 'sync/t/echo/1', 'sync/t/echo/vX', 'sync/t/ec ho/v1',
      'sync/t/../echo/v1', 'sync//echo/v1', 'sync/t/echo/v1/' + 'x'.repeat(400)]) {
      const env = await sync(s, { name, data: {}, receiver: 'names' });
      assertError(env, 'sync.invalidName', 400, `name ${JSON.stringify(name)}`);
    }
    const bad = await sync(s, { name: 'sync/t/ec ho/v1', data: {}, receiver: 'names' });
    assert.deepEqual(bad.errorParams, [{ key: 'name', value: 'sync/t/ec ho/v1' }]);
    for (const name of ['sync/t/nope/v1', 'sync/t/echo/v9', 'sync/nope/echo/v1', 'sync/t/deep/echo/v1']) {
      const env = await sync(s, { name, data: {}, receiver: 'names' });
      assertError(env, 'sync.notFound', 404, name);
      assert.deepEqual(env.errorParams, [{ key: 'name', value: name }]);
    }
    // The `sync/` prefix is optional on the wire name.
    const short = await sync(s, { name: 't/echo/v1', data: {}, receiver: 'names' });
    assert.equal(short.status, 'success', show(short));
  });

  test('sync.missingReceiver', async () => {
    const s = await user();
    await join(s, 'recv');
    for (const receiver of [undefined, '', '   ', 42, null, 'r'.repeat(257)]) {
      const env = await sync(s, { name: 'sync/t/echo/v1', data: {}, receiver });
      assertError(env, 'sync.missingReceiver', 400, `receiver ${show(receiver)}`);
    }
    // Surrounding spaces are trimmed.
    const ok = await sync(s, { name: 'sync/t/echo/v1', data: {}, receiver: '  recv  ' });
    assert.equal(ok.status, 'success', show(ok));
    assert.equal(ok.result.serverOutput.receiver, 'recv');
  });

  test(`sync.payloadTooLarge above sync.maxPayload (${SYNC_MAX_PAYLOAD} bytes of data)`, async () => {
    const s = await user();
    await join(s, 'big-data');
    const fs = collectFrames(s);
    const env = await sync(s, { name: 'sync/t/echo/v1', data: { s: 'x'.repeat(SYNC_MAX_PAYLOAD + 100) }, receiver: 'big-data' });
    assertError(env, 'sync.payloadTooLarge', 413);
    const ok = await sync(s, { name: 'sync/t/echo/v1', data: { s: 'x'.repeat(SYNC_MAX_PAYLOAD - 100) }, receiver: 'big-data' });
    assert.equal(ok.status, 'success', show(ok).slice(0, 200));
    await fs.waitFor(1);
    await settle();
    assert.equal(fs.frames.length, 1, 'the refused request fanned nothing out');
    assert.ok(s.connected);
  });

  test('sync.invalidInput names the field and the reason', async () => {
    const s = await user();
    await join(s, 'typed');
    const base = { n: 1, s: 'ab', color: 'red' };
    const ok = await sync(s, { name: 'sync/t/typed/v1', data: base, receiver: 'typed' });
    assert.equal(ok.status, 'success', show(ok));
    const { s: _omit, ...withoutS } = base;
    const cases = [
      [{ ...base, n: 'x' }, 'n', 'type'],
      [{ ...base, n: 1.5 }, 'n', 'notInteger'],
      [withoutS, 's', 'required'],
      [{ ...base, s: '' }, 's', 'tooShort'],
      [{ ...base, s: 'abcdef' }, 's', 'tooLong'],
      [{ ...base, color: 'blue' }, 'color', 'enum'],
      [{ ...base, zzz: 1 }, 'zzz', 'unknownKey'],
      [{ ...base, pos: { x: 1, y: 'a' } }, 'pos.y', 'type'],
      [{ ...base, tags: ['a', 2] }, 'tags[1]', 'type'],
      [{ ...base, tags: ['a', 'b', 'c', 'd'] }, 'tags', 'tooMany'],
    ];
    for (const [data, field, reason] of cases) {
      const env = await sync(s, { name: 'sync/t/typed/v1', data, receiver: 'typed' });
      assertError(env, 'sync.invalidInput', 400, show(data));
      assert.deepEqual(env.errorParams, [{ key: 'field', value: field }, { key: 'reason', value: reason }], show(data));
    }
  });

  test('auth.required (anonymous on a login route) and auth.forbidden (missing role)', async () => {
    const a = await anon();
    await join(a, 'auth');
    assertError(await sync(a, { name: 'sync/t/login/v1', data: {}, receiver: 'auth' }), 'auth.required', 401);
    assertError(await sync(a, { name: 'sync/t/editor/v1', data: {}, receiver: 'auth' }), 'auth.required', 401);

    const plain = await user({ sub: 'plain', roles: ['viewer'] });
    await join(plain, 'auth');
    const li = await sync(plain, { name: 'sync/t/login/v1', data: {}, receiver: 'auth' });
    assert.equal(li.status, 'success', show(li));
    assert.equal(li.result.serverOutput.id, 'plain');
    assertError(await sync(plain, { name: 'sync/t/editor/v1', data: {}, receiver: 'auth' }), 'auth.forbidden', 403);

    const editor = await user({ sub: 'ed', roles: ['viewer', 'editor'] });
    await join(editor, 'auth');
    const ok = await sync(editor, { name: 'sync/t/editor/v1', data: {}, receiver: 'auth' });
    assert.equal(ok.status, 'success', show(ok));
    assert.deepEqual(ok.result.serverOutput, { id: 'ed', roles: ['viewer', 'editor'] });
  });

  test('sync.rateLimitExceeded after the route limit (3/min), per user and per route', async () => {
    const a = await user({ sub: `rl-${newSid()}` });
    await join(a, 'rl');
    for (let k = 0; k < 3; k++) {
      const env = await sync(a, { name: 'sync/t/limited/v1', data: {}, receiver: 'rl' });
      assert.equal(env.status, 'success', `request ${k + 1}: ${show(env)}`);
    }
    const limited = await sync(a, { name: 'sync/t/limited/v1', data: {}, receiver: 'rl' });
    assertError(limited, 'sync.rateLimitExceeded', 429);
    assert.equal(limited.errorParams?.[0]?.key, 'seconds', show(limited));
    assert.ok(Number.isInteger(limited.errorParams[0].value) && limited.errorParams[0].value > 0, show(limited));
    // Another route for the same user, and the same route for another user, are not limited.
    assert.equal((await sync(a, { name: 'sync/t/echo/v1', data: {}, receiver: 'rl' })).status, 'success');
    const b = await user({ sub: `rl-${newSid()}` });
    await join(b, 'rl');
    assert.equal((await sync(b, { name: 'sync/t/limited/v1', data: {}, receiver: 'rl' })).status, 'success');
  });

  test('sync.notRoomMember, unless the route sets allowNonMember', async () => {
    const a = await user();
    const b = await user();
    await join(a, 'mine');
    await join(b, 'theirs');
    const fa = collectFrames(a);
    const fb = collectFrames(b);
    assertError(await sync(a, { name: 'sync/t/echo/v1', data: {}, receiver: 'theirs' }), 'sync.notRoomMember', 403);
    assertError(await sync(a, { name: 'sync/t/echo/v1', data: {}, receiver: 'nobody-here' }), 'sync.notRoomMember', 403);
    const open = await sync(a, { name: 'sync/t/open/v1', data: {}, receiver: 'theirs' });
    assert.equal(open.status, 'success', show(open));
    await fb.waitFor(1);
    await settle();
    assert.equal(fb.frames.length, 1);
    assert.deepEqual(fb.frames[0].serverOutput, { open: true });
    assert.equal(fa.frames.length, 0, 'the non-member sender is not a recipient');
  });

  test('sync.serverExecutionFailed: details are logged with file:line, never sent to the client', async () => {
    const s = await user();
    await join(s, 'boom');
    const fs = collectFrames(s);
    const r = await syncRequest(s, { name: 'sync/t/boom/v1', data: {}, receiver: 'boom' }, { ack: true });
    assertError(r.answer, 'sync.serverExecutionFailed', 500);
    assert.deepEqual(r.ack, r.answer);
    const text = JSON.stringify(r.answer);
    assert.doesNotMatch(text, /kaboom|DEADBEEF|\.lua|boom_server|handlers\//, `leaks details: ${text}`);
    for (const k of Object.keys(r.answer)) {
      assert.ok(['status', 'errorCode', 'errorParams', 'message', 'httpStatus'].includes(k), `unexpected field ${k}: ${text}`);
    }
    await settle();
    assert.equal(fs.frames.length, 0, 'a failed request fans nothing out');
    // The log has the details, with the handler's file and line.
    const logged = srv.logs().find((l) => /kaboom/.test(JSON.stringify(l)));
    assert.ok(logged, 'the error is logged');
    assert.match(JSON.stringify(logged), /boom_server_v1\.lua:4/, `file:line in ${JSON.stringify(logged)}`);
  });

  test('sync.invalidServerResponse for a bad return shape', async () => {
    const s = await user();
    await join(s, 'shape');
    for (const kind of ['number', 'nil', 'status', 'nostatus', 'string', 'function']) {
      const env = await sync(s, { name: 'sync/t/badshape/v1', data: { kind }, receiver: 'shape' });
      assertError(env, 'sync.invalidServerResponse', 500, `return kind ${kind}`);
    }
  });

  test('a handler-returned error goes back as is (errorCode, errorParams, message, httpStatus)', async () => {
    const s = await user();
    await join(s, 'custom');
    const fs = collectFrames(s);
    const env = await sync(s, { name: 'sync/t/custom/v1', data: {}, receiver: 'custom' });
    assert.deepEqual(env, {
      status: 'error',
      errorCode: 't.customError',
      errorParams: [{ key: 'x', value: 1 }, { key: 'why', value: 'because' }],
      message: 'custom message',
      httpStatus: 409,
    });
    const plain = await sync(s, { name: 'sync/t/custom/v1', data: { plain: true }, receiver: 'custom' });
    assertError(plain, 't.plainError', 400);
    await settle();
    assert.equal(fs.frames.length, 0);
  });

  test('ignoreSelf leaves the sender out of the fanout (it still gets its answer)', async () => {
    const a = await user();
    const b = await user();
    const c = await anon();
    for (const s of [a, b, c]) await join(s, 'quiet');
    const frames = [a, b, c].map(collectFrames);
    const r = await syncRequest(a, { name: 'sync/t/echo/v1', data: { q: 1 }, receiver: 'quiet', ignoreSelf: true, cb: 'q' });
    assert.equal(r.answer.status, 'success');
    await frames[1].waitFor(1);
    await frames[2].waitFor(1);
    await settle(200);
    assert.deepEqual(frames.map((f) => f.frames.length), [0, 1, 1]);
    // ignoreSelf: false is the default behaviour.
    await sync(a, { name: 'sync/t/echo/v1', data: {}, receiver: 'quiet', ignoreSelf: false });
    await frames[0].waitFor(1);
  });

  test('client file: per-recipient clientOutput, skip, and errors that reach only that recipient', async () => {
    const sender = await user({ sub: 'sender' });
    const plainUser = await user({ sub: 'plain' });
    const skipper = await user({ sub: 'skipper', mode: 'skip' });
    const failer = await user({ sub: 'failer', mode: 'fail' });
    const rejecter = await user({ sub: 'rejecter', mode: 'reject' });
    const badder = await user({ sub: 'badder', mode: 'bad' });
    const nobody = await anon();
    const all = [sender, plainUser, skipper, failer, rejecter, badder, nobody];
    for (const s of all) await join(s, 'personal');
    const frames = all.map(collectFrames);
    const r = await syncRequest(sender, { name: 'sync/t/personal/v1', data: { text: 'hello' }, receiver: 'personal', cb: 'pcb' });
    assert.deepEqual(r.answer, {
      status: 'success',
      message: 'sync sync/t/personal/v1 success',
      result: { status: 'success', serverOutput: { text: 'hello', from: 'sender' } },
    });
    const expectFrames = [0, 1, 3, 4, 5, 6];
    await Promise.all(expectFrames.map((k) => frames[k].waitFor(1)));
    await settle(200);
    assert.deepEqual(frames.map((f) => f.frames.length), [1, 1, 0, 1, 1, 1, 1], 'one frame each, none for the skipped recipient');
    const so = { text: 'hello', from: 'sender' };
    const ok = (who) => ({
      cb: 'pcb', fullName: 'sync/t/personal/v1', status: 'success', serverOutput: so,
      clientOutput: { for_: who, sender: 'sender', text: 'hello', receiver: 'personal' },
    });
    for (const [k, who] of [[0, 'sender'], [1, 'plain'], [6, 'anonymous']]) {
      const { message, ...rest } = frames[k].frames[0];
      assert.equal(typeof message, 'string');
      assert.deepEqual(rest, ok(who), `recipient ${who}`);
    }
    const failed = frames[3].frames[0];
    assert.equal(failed.status, 'error');
    assert.equal(failed.errorCode, 'sync.clientExecutionFailed');
    assert.equal(failed.cb, 'pcb');
    assert.equal(failed.fullName, 'sync/t/personal/v1');
    assert.doesNotMatch(JSON.stringify(failed), /exploded|\.lua/, 'no details in the frame');
    assert.equal(failed.serverOutput, undefined, 'an error frame carries no serverOutput');
    const rejected = frames[4].frames[0];
    assert.equal(rejected.status, 'error');
    assert.equal(rejected.errorCode, 't.rejected');
    assert.deepEqual(rejected.errorParams, [{ key: 'who', value: 'rejecter' }]);
    const bad = frames[5].frames[0];
    assert.equal(bad.status, 'error');
    assert.equal(bad.errorCode, 'sync.invalidClientResponse');
  });

  test('preSyncFanout aborting: the sender gets the hook errorCode, nobody gets a frame', async () => {
    const a = await user();
    const b = await user();
    const c = await anon();
    for (const s of [a, b, c]) await join(s, 'hooked');
    const frames = [a, b, c].map(collectFrames);
    const r = await syncRequest(a, { name: 'sync/t/hookstop/v1', data: {}, receiver: 'hooked' }, { ack: true });
    assertError(r.answer, 't.hookStopped', 400);
    assert.deepEqual(r.ack, r.answer);
    await settle(250);
    assert.deepEqual(frames.map((f) => f.frames.length), [0, 0, 0]);
    // Other routes are not stopped.
    await sync(a, { name: 'sync/t/echo/v1', data: {}, receiver: 'hooked' });
    await Promise.all(frames.map((f) => f.waitFor(1)));
  });

  test('numbers: the integer 2^53-1 and the float 1.5 reach the handler and every recipient intact', async () => {
    const a = await user();
    const b = await anon();
    for (const s of [a, b]) await join(s, 'nums');
    const frames = [a, b].map(collectFrames);
    const max = Number.MAX_SAFE_INTEGER; // 9007199254740991
    const env = await sync(a, { name: 'sync/t/numbers/v1', data: { int: max, float: 1.5 }, receiver: 'nums' });
    assert.equal(env.status, 'success', show(env));
    const expected = {
      maxSafe: max, half: 1.5, negative: -42, echoInt: max, echoFloat: 1.5,
      intType: 'integer', floatType: 'float', intPlusOne: max + 1,
    };
    const check = (so, who) => {
      for (const [k, v] of Object.entries(expected)) assert.equal(so[k], v, `${who}: ${k} in ${show(so)}`);
    };
    check(env.result.serverOutput, 'answer');
    await Promise.all(frames.map((f) => f.waitFor(1)));
    frames.forEach((f, k) => check(f.frames[0].serverOutput, `recipient ${k}`));
  });

  test('a 200-socket room (websocket only, fanoutSliceSize 16): every member gets exactly one frame', async () => {
    const N = 200;
    const sockets = [];
    for (let k = 0; k < N; k += 25) {
      const batch = await Promise.all(Array.from({ length: Math.min(25, N - k) }, () => anon({ transports: ['websocket'] })));
      sockets.push(...batch);
    }
    await Promise.all(sockets.map((s) => join(s, 'huge')));
    const frames = sockets.map(collectFrames);
    const env = await sync(sockets[0], { name: 'sync/t/echo/v1', data: { hello: 'everyone' }, receiver: 'huge', cb: 'big' });
    assert.equal(env.status, 'success');
    await Promise.all(frames.map((f) => f.waitFor(1, 5000)));
    await settle(300);
    const counts = frames.map((f) => f.frames.length);
    assert.deepEqual(counts, Array(N).fill(1), 'exactly one frame per member');
    for (const f of frames) {
      assert.equal(f.frames[0].cb, 'big');
      assert.deepEqual(f.frames[0].serverOutput.data, { hello: 'everyone' });
    }
  });

  test('a sender that disconnects while its handler computes: the committed result still fans out to the others', async () => {
    const a = await user();
    const b = await user();
    for (const s of [a, b]) await join(s, 'gone');
    const fb = collectFrames(b);
    // ~150 ms of CPU work in slices; the sender is gone before it ends.
    a.emit('sync', { name: 'sync/t/heavy/v1', data: { n: 1e7 }, receiver: 'gone', responseIndex: 1 });
    await settle(15);
    a.disconnect();
    await fb.waitFor(1, 3000);
    assert.equal(fb.frames[0].fullName, 'sync/t/heavy/v1');
    assert.equal(typeof fb.frames[0].serverOutput.x, 'number');
    // The server is fine and b keeps working.
    const env = await sync(b, { name: 'sync/t/echo/v1', data: {}, receiver: 'gone' });
    assert.equal(env.status, 'success');
  });

  test('unanswerable requests: no responseIndex and no ack id still run and fan out', async () => {
    const a = await user();
    await join(a, 'silent');
    const fa = collectFrames(a);
    const seen = [];
    a.onAny((name) => seen.push(name));
    a.emit('sync', { name: 'sync/t/echo/v1', data: { silent: true }, receiver: 'silent' });
    await fa.waitFor(1);
    assert.deepEqual(fa.frames[0].serverOutput.data, { silent: true });
    await settle();
    assert.deepEqual(seen.filter((n) => n !== 'sync'), [], `only the fanout frame: ${seen}`);
    // An ack id alone is enough for an answer.
    const ack = await new Promise((resolve, reject) => {
      a.timeout(2000).emit('sync', { name: 'sync/t/echo/v1', data: {}, receiver: 'silent' }, (err, v) => (err ? reject(err) : resolve(v)));
    });
    assert.equal(ack.status, 'success');
    assert.equal(ack.message, 'sync sync/t/echo/v1 success');
  });
});
