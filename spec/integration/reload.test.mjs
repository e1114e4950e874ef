// Hot reload with --dev, on a copy of fixtures/reload: a steady request stream through five
// rewrites of a handler (zero failed requests, the new version served soon after each write),
// a syntax error keeping the old version while every connected client gets `devError`,
// requests already running finishing on the old code, routes added and removed with their
// files, and a change in the project's lua/ folder.

import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';

import { Clients, onceEvent, request, sleep } from './lib/client.mjs';
import { withServerLog } from './lib/server.mjs';
import { show, startFixtureServer, sync } from './lib/sync.mjs';

/** Acceptance bound for "the new version is served" after a write (the target is 200 ms). */
const SWITCH_BOUND_MS = 1000;

const verSource = (version) => `-- r/ver/v1, rewritten by reload.test.mjs
return {
  main = function(ctx)
    if ctx.data.sleep then ctx.functions.sleep(ctx.data.sleep) end
    return { status = "success", serverOutput = { version = ${version} } }
  end,
}
`;

describe('hot reload (--dev)', () => {
  let srv;
  const clients = new Clients();
  const test = (name, fn) => it(name, { timeout: 20_000 }, withServerLog(() => srv, fn));
  const file = (rel) => path.join(srv.handlersDir, rel);
  const verFile = () => file('r/_sync/ver_server_v1.lua');

  before(async () => {
    srv = await startFixtureServer('reload', {
      label: 'reload',
      extraArgs: ['--dev'],
      config: { rooms: { policy: 'anyone' }, sync: { rateLimit: 100000 } },
    });
  });
  afterEach(() => clients.closeAll());
  after(async () => {
    clients.closeAll();
    await srv?.stop();
  });

  const member = async (opts = {}) => {
    const s = await clients.connect(srv.url, opts);
    assert.equal((await request(s, 'joinRoom', { group: 'rl' })).status, 'success');
    return s;
  };
  const call = (s, name, data = {}, ms = 3000) => sync(s, { name, data, receiver: 'rl', ignoreSelf: true }, { ms });
  const version = async (s) => {
    const env = await call(s, 'sync/r/ver/v1');
    assert.equal(env.status, 'success', show(env));
    return env.result.serverOutput.version;
  };
  /** Polls `probe` every 10 ms until pred(result) holds; returns the elapsed ms. */
  async function until(probe, pred, ms, what) {
    const t0 = performance.now();
    let last;
    while (performance.now() - t0 < ms) {
      last = await probe();
      if (pred(last)) return performance.now() - t0;
      await sleep(10);
    }
    throw new Error(`${what}: not within ${ms} ms; last ${show(last)}`);
  }

  test(`a steady request stream through 5 rewrites (in place and by rename): zero failed requests, each new version served ≤ ${SWITCH_BOUND_MS} ms after its write`, async (t) => {
    const s = await member({ transports: ['websocket'] });
    assert.equal(await version(s), 1);
    const results = [];
    const writes = [];
    const t0 = performance.now();
    let stop = false;
    const stream = (async () => {
      while (!stop) {
        const sentAt = performance.now() - t0;
        let env;
        try {
          env = await call(s, 'sync/r/ver/v1');
        } catch (err) {
          env = { status: 'error', errorCode: `client: ${err.message}` };
        }
        results.push({ sentAt, at: performance.now() - t0, env });
        await sleep(10);
      }
    })();
    for (let v = 2; v <= 6; v++) {
      await sleep(v === 2 ? 150 : 330);
      if (v % 2) {
        // An editor's atomic save: write a temporary file, rename it over the handler.
        const tmp = path.join(path.dirname(verFile()), '.ver_server_v1.lua.swp');
        writeFileSync(tmp, verSource(v));
        renameSync(tmp, verFile());
      } else {
        writeFileSync(verFile(), verSource(v));
      }
      writes.push({ v, at: performance.now() - t0 });
    }
    await sleep(500);
    stop = true;
    await stream;

    const failed = results.filter((r) => r.env.status !== 'success');
    assert.deepEqual(failed.map((r) => show(r.env)), [], `zero failed requests out of ${results.length}`);
    assert.ok(results.length >= 50, `a steady stream (${results.length} requests)`);
    const served = results.map((r) => ({ ...r, v: r.env.result.serverOutput.version }));
    // Sequential requests: the served version never goes back.
    for (let k = 1; k < served.length; k++) {
      assert.ok(served[k].v >= served[k - 1].v, `version went back from ${served[k - 1].v} to ${served[k].v} at request ${k}`);
    }
    const lags = [];
    for (const w of writes) {
      const first = served.find((r) => r.v >= w.v);
      assert.ok(first, `version ${w.v} was never served (last: ${served.at(-1).v})`);
      lags.push(first.at - w.at);
      assert.ok(first.at - w.at <= SWITCH_BOUND_MS, `version ${w.v} served ${(first.at - w.at).toFixed(0)} ms after its write`);
    }
    assert.equal(served.at(-1).v, 6);
    t.diagnostic(`requests: ${results.length}; ms from write to the first answer of the new version: ${lags.map((l) => l.toFixed(0)).join(', ')}`);
  });

  test('a syntax error keeps the old version serving and every connected client gets devError {file, line, message}', async () => {
    writeFileSync(verFile(), verSource(10));
    const s = await member({ transports: ['websocket'] });
    const polling = await clients.connect(srv.url, { transports: ['polling'], upgrade: false }); // not in any room
    await until(() => version(s), (v) => v === 10, 2000, 'version 10 served');

    const errs = [onceEvent(s, 'devError', 3000), onceEvent(polling, 'devError', 3000)];
    writeFileSync(verFile(), '-- broken on purpose\nreturn {\n  main = function(ctx) local x = = 1 end,\n}\n');
    const [e1, e2] = await Promise.all(errs);
    for (const e of [e1, e2]) {
      assert.equal(typeof e.file, 'string', show(e));
      assert.match(e.file, /r\/_sync\/ver_server_v1\.lua$/, `devError names the file: ${show(e)}`);
      assert.equal(e.line, 3, show(e));
      assert.equal(typeof e.message, 'string');
      assert.ok(e.message.length > 0);
      assert.doesNotMatch(e.message, /^\//, 'the message does not start with an absolute path');
    }
    assert.deepEqual(e2, e1, 'every client gets the same devError');
    // The old version stays live, for a while.
    for (let k = 0; k < 10; k++) {
      assert.equal(await version(s), 10);
      await sleep(20);
    }
    // The server logged it with file and line.
    assert.ok(srv.logs().some((l) => /ver_server_v1\.lua:3/.test(JSON.stringify(l))), 'the reload error is logged with file:line');
    // Fixed: the new version is served.
    writeFileSync(verFile(), verSource(11));
    await until(() => version(s), (v) => v === 11, SWITCH_BOUND_MS, 'version 11 after the fix');
  });

  test('a request already running finishes on the old code', async () => {
    writeFileSync(verFile(), verSource(20));
    const s = await member({ transports: ['websocket'] });
    await until(() => version(s), (v) => v === 20, 2000, 'version 20 served');
    const slow = call(s, 'sync/r/ver/v1', { sleep: 700 }, 5000);
    await sleep(50);
    writeFileSync(verFile(), verSource(21));
    await until(() => version(s), (v) => v === 21, SWITCH_BOUND_MS, 'version 21 served');
    const env = await slow;
    assert.equal(env.status, 'success', show(env));
    assert.equal(env.result.serverOutput.version, 20, 'the running request kept its code');
  });

  test('adding a handler file adds its route; deleting one removes it (sync.notFound)', async () => {
    const s = await member({ transports: ['websocket'] });
    const fresh = await call(s, 'sync/r/fresh/v1');
    assert.equal(fresh.errorCode, 'sync.notFound', show(fresh));
    writeFileSync(file('r/_sync/fresh_server_v1.lua'),
      'return { main = function(ctx) return { status = "success", serverOutput = { fresh = true } } end }\n');
    await until(() => call(s, 'sync/r/fresh/v1'), (e) => e.status === 'success', SWITCH_BOUND_MS, 'the new route');
    assert.deepEqual((await call(s, 'sync/r/fresh/v1')).result.serverOutput, { fresh: true });

    // A second version side by side with the first.
    writeFileSync(file('r/_sync/fresh_server_v2.lua'),
      'return { main = function(ctx) return { status = "success", serverOutput = { fresh = 2 } } end }\n');
    await until(() => call(s, 'sync/r/fresh/v2'), (e) => e.status === 'success', SWITCH_BOUND_MS, 'v2 of the route');
    assert.deepEqual((await call(s, 'sync/r/fresh/v1')).result.serverOutput, { fresh: true });

    // A new area folder.
    mkdirSync(file('newarea/_sync'), { recursive: true });
    writeFileSync(file('newarea/_sync/hello_server_v1.lua'),
      'return { main = function(ctx) return { status = "success", serverOutput = { hello = "world" } } end }\n');
    await until(() => call(s, 'sync/newarea/hello/v1'), (e) => e.status === 'success', SWITCH_BOUND_MS, 'a route in a new folder');

    assert.equal((await call(s, 'sync/r/doomed/v1')).status, 'success');
    rmSync(file('r/_sync/doomed_server_v1.lua'));
    await until(() => call(s, 'sync/r/doomed/v1'), (e) => e.errorCode === 'sync.notFound', SWITCH_BOUND_MS, 'the deleted route gone');
    const gone = await call(s, 'sync/r/doomed/v1');
    assert.equal(gone.httpStatus, 404);
    // The other routes are still there.
    assert.equal((await call(s, 'sync/r/fresh/v1')).status, 'success');
    assert.equal((await call(s, 'sync/r/ver/v1')).status, 'success');
  });

  test('a change in the project lua/ folder reloads the handlers that require it; a broken module keeps the old code and sends devError', async () => {
    const s = await member({ transports: ['websocket'] });
    const before = await call(s, 'sync/r/usesmod/v1');
    assert.deepEqual(before.result?.serverOutput, { modVersion: 1 }, show(before));
    writeFileSync(path.join(srv.dir, 'lua', 'modver.lua'), 'return { version = 2 }\n');
    await until(() => call(s, 'sync/r/usesmod/v1'), (e) => e.result?.serverOutput?.modVersion === 2,
      SWITCH_BOUND_MS, 'the module change served');
    // A broken module: devError naming it, the previous code stays live.
    const err = onceEvent(s, 'devError', 3000);
    writeFileSync(path.join(srv.dir, 'lua', 'modver.lua'), 'local v = \nreturn { version = 3 }\n');
    const e = await err;
    // The module's own file:line, either as {file, line} or inside the message (when the
    // error is reported at the handler that requires it).
    const named = /modver\.lua$/.test(e.file ?? '') ? `${e.file}:${e.line}` : e.message;
    assert.match(named ?? '', /modver\.lua:2\b/, `devError names the broken module and line: ${show(e)}`);
    assert.equal(typeof e.line, 'number');
    for (let k = 0; k < 5; k++) {
      assert.deepEqual((await call(s, 'sync/r/usesmod/v1')).result?.serverOutput, { modVersion: 2 });
      await sleep(20);
    }
    writeFileSync(path.join(srv.dir, 'lua', 'modver.lua'), 'return { version = 4 }\n');
    await until(() => call(s, 'sync/r/usesmod/v1'), (e2) => e2.result?.serverOutput?.modVersion === 4,
      SWITCH_BOUND_MS, 'the fixed module served');
  });
});
