// Sandbox escape attempts over the wire (fixtures/sync/handlers/sb): each attempt is either
// answered with an error code or reported as refused by the handler itself; nothing is
// written to disk, no state leaks into later requests in the same VM, the server stays up and
// the other clients in the room notice nothing but their own traffic.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';

import { Clients, request } from './lib/client.mjs';
import { TEST_TIMEOUT_MS, withServerLog } from './lib/server.mjs';
import { collectFrames, settle, show, startFixtureServer, sync } from './lib/sync.mjs';
import { hsToken } from './lib/tokens.mjs';

describe('sandbox over the wire', () => {
  let srv;
  let tmp;
  const clients = new Clients();
  const test = (name, fn) => it(name, { timeout: TEST_TIMEOUT_MS }, withServerLog(() => srv, fn));

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'luckysync-sandbox-'));
    // One VM: every attempt and every later check run in the same Lua state.
    srv = await startFixtureServer('sync', {
      label: 'sandbox',
      config: { rooms: { policy: 'anyone' }, sync: { vmPoolSize: 1, cpuBudgetMs: 1000 } },
    });
  });
  afterEach(() => clients.closeAll());
  after(async () => {
    clients.closeAll();
    rmSync(tmp, { recursive: true, force: true });
    await srv?.stop();
  });

  async function room(name) {
    const attacker = await clients.connect(srv.url, { auth: { token: hsToken({ sub: 'mallory' }) } });
    const bystander = await clients.connect(srv.url, { auth: { token: hsToken({ sub: 'bob' }) } });
    for (const s of [attacker, bystander]) {
      assert.equal((await request(s, 'joinRoom', { group: name })).status, 'success');
    }
    return { attacker, bystander };
  }

  test('the probe handler sees no io, os.execute, debug, package, string.dump, binary load, … and cannot change shared state', async () => {
    const { attacker, bystander } = await room('probe');
    const fb = collectFrames(bystander);
    const marker = path.join(tmp, 'probe-pwned');
    const env = await sync(attacker, { name: 'sync/sb/probe/v1', data: { path: marker }, receiver: 'probe' });
    assert.equal(env.status, 'success', show(env));
    const seen = env.result.serverOutput;
    const t = seen.types;
    for (const k of ['io', 'debug', 'package', 'dofile', 'loadfile', 'loadstring', 'rawset', '_G', 'os_execute',
      'os_exit', 'os_getenv', 'os_remove', 'os_rename', 'os_tmpname', 'string_dump']) {
      assert.equal(t[k], 'nil', `${k} must not be reachable: ${show(t)}`);
    }
    for (const k of ['os_time', 'os_clock', 'os_date', 'string_rep', 'table_concat', 'math_floor', 'utf8_char', 'coroutine_wrap']) {
      assert.equal(t[k], 'function', `${k} stays available`);
    }
    for (const k of ['ioOpen', 'osExecute', 'requireOs', 'requireIo', 'requireDebug', 'requireTraversal',
      'requireAbsolute', 'packageLoadlib', 'stringDump', 'debugGetregistry', 'gcStop', 'gcStep', 'gcMeta',
      'stringMeta', 'envMeta', 'globalAssign', 'mutateString', 'mutateMath', 'mutateJson']) {
      assert.equal(seen[k]?.ok, false, `${k} must fail: ${show(seen[k])}`);
    }
    assert.deepEqual(seen.gcCount, { ok: true, value: 'true' }, 'collectgarbage("count") is allowed');
    assert.deepEqual(seen.osDateSafe, { ok: true, value: '1970' });
    assert.equal(seen.loadBinaryB.fn, 'nil');
    assert.match(seen.loadBinaryB.err, /binary/);
    assert.equal(seen.loadBinaryBT.fn, 'nil');
    assert.deepEqual(seen.loadTextEnv, { io: 'nil', osExecute: 'nil', debug: 'nil' }, 'load() chunks get the same sandbox');
    assert.equal(seen.stringUpper, 'ABC');
    assert.equal(existsSync(marker), false, 'no file was created');
    // The bystander got the (harmless) fanouts and nothing else.
    await sync(attacker, { name: 'sync/sb/check/v1', data: {}, receiver: 'probe' });
    await fb.waitFor(2);
    await settle();
    assert.deepEqual(fb.frames.map((f) => f.fullName), ['sync/sb/probe/v1', 'sync/sb/check/v1']);
  });

  test('each escape attempt without pcall ends as an error answer; the server and the others are fine', async () => {
    const { attacker, bystander } = await room('escape');
    const fb = collectFrames(bystander);
    const fa = collectFrames(attacker);
    const marker = path.join(tmp, 'escape-pwned');
    for (const name of ['io', 'osexec', 'requireos', 'loadbin', 'debug', 'dump', 'loadlib', 'gc', 'dofile', 'globals', 'strmeta']) {
      const env = await sync(attacker, { name: `sync/sb/${name}/v1`, data: { path: marker }, receiver: 'escape' });
      assert.equal(env.status, 'error', `${name}: ${show(env)}`);
      assert.equal(env.errorCode, 'sync.serverExecutionFailed', `${name}: ${show(env)}`);
      assert.equal(env.httpStatus, 500);
      assert.doesNotMatch(JSON.stringify(env), /\.lua|attempt to|nil value/, `${name}: no details to the client`);
      // The bystander's round trips keep working between attempts.
      const rooms = await request(bystander, 'getJoinedRooms');
      assert.deepEqual(rooms, { status: 'success', rooms: ['escape'] });
    }
    assert.equal(existsSync(marker), false, 'no file was created');
    await settle();
    assert.equal(fb.frames.length, 0, `no fanout from failed attempts: ${show(fb.frames)}`);
    assert.equal(fa.frames.length, 0);
    assert.ok(attacker.connected && bystander.connected);

    // Nothing leaked into the (single) VM: no global, string.upper and math.pi intact.
    const check = await sync(bystander, { name: 'sync/sb/check/v1', data: {}, receiver: 'escape' });
    assert.deepEqual(check.result.serverOutput, { leaked: 'nil', upper: 'ABC', pi: Math.PI, nowType: 'integer', nowPositive: true, jsonWorks: true });
    const stats = await srv.stats();
    assert.ok(stats.connections >= 2);
  });

  test('require loads the project lua/ modules only', async () => {
    const { attacker } = await room('req');
    const env = await sync(attacker, { name: 'sync/sb/requireok/v1', data: { text: 'hey' }, receiver: 'req' });
    assert.equal(env.status, 'success', show(env));
    assert.deepEqual(env.result.serverOutput, { shout: 'HEY!' });
  });
});
