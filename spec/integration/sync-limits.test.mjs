// Limits of handler calls, over the wire: a busy loop ends with sync.timeout (also when it
// hides in pcall, in a coroutine of its own or in a C callback) without blocking the other
// clients, a CPU-heavy handler is time-sliced without idling, memory hogs end with
// sync.outOfMemory while the other requests of the same VM go on, and sleeping handlers wait
// concurrently. One VM per server (vmPoolSize 1), so every request shares the Lua state of
// the misbehaving one. Heartbeat 300/400 ms: a loop stalled for long drops the clients.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, afterEach, before, describe, it } from 'node:test';

import { Clients, onceEvent, request, sleep } from './lib/client.mjs';
import { TEST_TIMEOUT_MS, withServerLog } from './lib/server.mjs';
import { newIndex, show, startFixtureServer, sync, syncRequest } from './lib/sync.mjs';
import { hsToken } from './lib/tokens.mjs';

const LATENCY_BOUND_MS = 200;

/** CPU time (user + system) the process has used so far, in ms (Linux /proc). */
function processCpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  return ticks * 10; // USER_HZ = 100
}

/**
 * Starts the sync request `name` without waiting for its answer. `accepted` resolves with the
 * time (ms) until the server's first progress event, which it sends as soon as it accepts the
 * request: a late one means the loop was blocked before it could write it.
 */
function startRequest(socket, name, data = {}, receiver, ms = 20_000) {
  const responseIndex = newIndex();
  const t0 = performance.now();
  const accepted = onceEvent(socket, `sync-progress-${responseIndex}`, 5000).then(() => performance.now() - t0);
  const done = syncRequest(socket, { name, data, receiver, responseIndex }, { ms }).then((r) => ({
    ...r,
    wallMs: performance.now() - t0,
    at: performance.now(),
  }));
  return { accepted, done };
}

/**
 * `iterations` × (joinRoom, getJoinedRooms, a trivial sync request) from `socket`, `gapMs`
 * apart. Returns every round trip's latency with its label.
 */
async function roundTrips(socket, iterations, gapMs, tag) {
  const out = [];
  for (let k = 0; k < iterations; k++) {
    let t = performance.now();
    const j = await request(socket, 'joinRoom', { group: `${tag}-${k % 5}` }, 5000);
    out.push({ what: `joinRoom #${k}`, ms: performance.now() - t, ok: j.status === 'success' });
    t = performance.now();
    const g = await request(socket, 'getJoinedRooms', {}, 5000);
    out.push({ what: `getJoinedRooms #${k}`, ms: performance.now() - t, ok: g.status === 'success' });
    t = performance.now();
    const s = await sync(socket, { name: 'sync/t/echo/v1', data: { k }, receiver: `${tag}-0` }, { ms: 5000 });
    out.push({ what: `sync #${k}`, ms: performance.now() - t, ok: s.status === 'success' });
    if (gapMs) await sleep(gapMs);
  }
  return out;
}

function assertFast(trips, bound = LATENCY_BOUND_MS) {
  const failed = trips.filter((r) => !r.ok);
  assert.deepEqual(failed, [], 'every round trip succeeded');
  const slow = trips.filter((r) => r.ms >= bound);
  const max = Math.max(...trips.map((r) => r.ms));
  assert.deepEqual(slow.map((r) => `${r.what}: ${r.ms.toFixed(0)} ms`), [],
    `every round trip under ${bound} ms (max ${max.toFixed(0)} ms)`);
}

describe('handler limits (cpuBudgetMs 1500, one VM)', () => {
  let srv;
  const clients = new Clients();
  const test = (name, fn, timeout = TEST_TIMEOUT_MS) => it(name, { timeout }, withServerLog(() => srv, fn));

  before(async () => {
    srv = await startFixtureServer('sync', {
      label: 'sync-limits',
      config: {
        rooms: { policy: 'anyone' },
        sync: { cpuBudgetMs: 1500, vmPoolSize: 1, vmMemoryCapMb: 32, rateLimit: 100000 },
      },
    });
  });
  afterEach(() => clients.closeAll());
  after(async () => {
    clients.closeAll();
    await srv?.stop();
  });

  const member = async (group, opts = {}) => {
    const s = await clients.connect(srv.url, { transports: ['websocket'], ...opts });
    assert.equal((await request(s, 'joinRoom', { group })).status, 'success');
    return s;
  };

  test(`while \`while true do end\` spins, another client's 20 × (joinRoom, getJoinedRooms, sync) round trips each take < ${LATENCY_BOUND_MS} ms; the spinner gets sync.timeout`, async () => {
    const spinner = await member('spin');
    const other = await clients.connect(srv.url, { transports: ['websocket'], auth: { token: hsToken({ sub: 'other' }) } });
    const spin = startRequest(spinner, 'sync/t/spin/v1', {}, 'spin');
    let spinDone = false;
    spin.done.finally(() => { spinDone = true; }).catch(() => {});
    await sleep(10); // the request is on its way; the round trips start while it spins

    const trips = await roundTrips(other, 20, 20, 'lat');
    assert.equal(spinDone, false, 'the round trips ran while the handler was still spinning');
    trips.push({ what: 'the spinner\'s own progress event', ms: await spin.accepted, ok: true });
    assertFast(trips);

    const r = await spin.done;
    assert.equal(r.answer.status, 'error', show(r.answer));
    assert.equal(r.answer.errorCode, 'sync.timeout');
    assert.equal(r.answer.httpStatus, 500);
    assert.ok(spinner.connected && other.connected);
    // The VM that ran it (the only one) still serves requests.
    const ok = await sync(spinner, { name: 'sync/t/echo/v1', data: {}, receiver: 'spin' });
    assert.equal(ok.status, 'success', show(ok));
  }, 30_000);

  test('a CPU-heavy handler gets the CPU it needs: wall time < 1.8 × its CPU time + 150 ms on an idle server', async () => {
    const s = await member('heavy');
    // Warm up, then measure a handler doing ~0.3 s of arithmetic.
    await sync(s, { name: 'sync/t/heavy/v1', data: { n: 1e5 }, receiver: 'heavy' });
    const cpu0 = processCpuMs(srv.child.pid);
    const t0 = performance.now();
    const env = await sync(s, { name: 'sync/t/heavy/v1', data: { n: 2e7 }, receiver: 'heavy' }, { ms: 15_000 });
    const wall = performance.now() - t0;
    const cpu = processCpuMs(srv.child.pid) - cpu0;
    assert.equal(env.status, 'success', show(env));
    assert.ok(cpu > 50, `the handler used measurable CPU (${cpu} ms)`);
    // Before the loop was woken at once for ready work, wall time was 2–3× the CPU time.
    assert.ok(wall < 1.8 * cpu + 150,
      `time slicing should not idle between slices: ${wall.toFixed(0)} ms wall for ${cpu} ms of server CPU`);
  });

  test('memory hogs end with sync.outOfMemory (also inside pcall); the other requests of the VM go on', async () => {
    const s = await member('mem');
    const sleepers = Array.from({ length: 5 }, (_, k) =>
      sync(s, { name: 'sync/t/sleep/v1', data: { ms: 400, tag: `s${k}` }, receiver: 'mem' }, { ms: 5000 }));
    await sleep(50); // the sleepers are waiting in the VM
    const hog = await sync(s, { name: 'sync/t/hog/v1', data: {}, receiver: 'mem' }, { ms: 10_000 });
    assert.equal(hog.status, 'error', show(hog));
    assert.equal(hog.errorCode, 'sync.outOfMemory');
    assert.equal(hog.httpStatus, 500);
    const slept = await Promise.all(sleepers);
    for (const [k, env] of slept.entries()) {
      assert.equal(env.status, 'success', `sleeper ${k}: ${show(env)}`);
      assert.equal(env.result.serverOutput.tag, `s${k}`);
    }
    const caught = await sync(s, { name: 'sync/t/pcallhog/v1', data: {}, receiver: 'mem' }, { ms: 10_000 });
    assert.equal(caught.errorCode, 'sync.outOfMemory', `pcall(string.rep, "x", 1 << 30): ${show(caught)}`);
    const ok = await sync(s, { name: 'sync/t/echo/v1', data: {}, receiver: 'mem' });
    assert.equal(ok.status, 'success', show(ok));
  });

  test(`500 concurrent sleep(300) requests complete together (< 3 s, not 500 × 300 ms); other round trips stay < ${LATENCY_BOUND_MS} ms`, async () => {
    const senders = [];
    for (let k = 0; k < 5; k++) senders.push(await member(`sleepers-${k}`));
    const other = await clients.connect(srv.url, { transports: ['websocket'], auth: { token: hsToken({ sub: 'other2' }) } });
    const t0 = performance.now();
    const all = [];
    for (let k = 0; k < 500; k++) {
      const s = senders[k % 5];
      all.push(sync(s, { name: 'sync/t/sleep/v1', data: { ms: 300, tag: `r${k}` }, receiver: `sleepers-${k % 5}`, ignoreSelf: true },
        { ms: 10_000 }));
    }
    const tripsP = roundTrips(other, 5, 10, 'lat2');
    const answers = await Promise.all(all);
    const total = performance.now() - t0;
    const trips = await tripsP;
    for (const [k, env] of answers.entries()) {
      assert.equal(env.status, 'success', `request ${k}: ${show(env)}`);
      assert.equal(env.result.serverOutput.tag, `r${k}`);
      assert.ok(env.result.serverOutput.slept >= 290, `request ${k} slept ${env.result.serverOutput.slept} ms`);
    }
    assert.ok(total < 3000, `500 sleeping requests took ${total.toFixed(0)} ms`);
    assertFast(trips);
  });
  test('a VM filled up by module-level state is replaced: the route fails with sync.outOfMemory, then works again on a fresh VM', async () => {
    const s = await member('leak');
    const leak = () => sync(s, { name: 'sync/t/leak/v1', data: { kb: 256 }, receiver: 'leak', ignoreSelf: true });
    let lastN = 0;
    let oomAt = -1;
    for (let k = 0; k < 400 && oomAt < 0; k++) {
      const env = await leak();
      if (env.status === 'success') lastN = env.result.serverOutput.n;
      else {
        assert.equal(env.errorCode, 'sync.outOfMemory', show(env));
        oomAt = k;
      }
    }
    assert.ok(oomAt > 0, 'the VM filled up (32 MB at 256 KB per call)');
    assert.ok(lastN > 50, `state kept across calls before that (n = ${lastN})`);
    // A fresh VM: the module state starts again from nothing within a few calls.
    let fresh = null;
    const seen = [];
    for (let k = 0; k < 50 && !fresh; k++) {
      const env = await leak();
      seen.push(env.status === 'success' ? env.result.serverOutput.n : env.errorCode);
      if (env.status === 'success' && env.result.serverOutput.n < lastN / 2) fresh = env;
    }
    assert.ok(fresh, `the VM was replaced (answers after the first OOM: ${seen.join(', ')})`);
    assert.ok(srv.logs().some((l) => /replac/i.test(l.msg ?? '')), 'the replacement is logged');
    const ok = await sync(s, { name: 'sync/t/echo/v1', data: {}, receiver: 'leak' });
    assert.equal(ok.status, 'success', show(ok));
  });
});

describe('hidden busy loops (cpuBudgetMs 400, one VM)', () => {
  let srv;
  const clients = new Clients();
  const test = (name, fn) => it(name, { timeout: TEST_TIMEOUT_MS }, withServerLog(() => srv, fn));

  before(async () => {
    srv = await startFixtureServer('sync', {
      label: 'sync-limits-hidden',
      config: { rooms: { policy: 'anyone' }, sync: { cpuBudgetMs: 400, vmPoolSize: 1, rateLimit: 100000 } },
    });
  });
  afterEach(() => clients.closeAll());
  after(async () => {
    clients.closeAll();
    await srv?.stop();
  });

  for (const [route, how] of [
    ['pcallspin', 'a loop around pcall(busy loop)'],
    ['cospin', 'a busy loop inside a coroutine the handler created'],
    ['sortspin', 'a busy loop inside a table.sort comparator (called from C)'],
  ]) {
    test(`${how} ends with sync.timeout without blocking others (round trips < ${LATENCY_BOUND_MS} ms)`, async () => {
      const spinner = await clients.connect(srv.url, { transports: ['websocket'] });
      assert.equal((await request(spinner, 'joinRoom', { group: 'hidden' })).status, 'success');
      const other = await clients.connect(srv.url, { transports: ['websocket'] });
      const spin = startRequest(spinner, `sync/t/${route}/v1`, {}, 'hidden', 10_000);
      await sleep(10); // the request is on its way; the round trips start while it spins
      const trips = await roundTrips(other, 8, 10, `h-${route}`);
      trips.push({ what: 'the spinner\'s own progress event', ms: await spin.accepted, ok: true });
      const r = await spin.done;
      assert.equal(r.answer.status, 'error', show(r.answer));
      assert.equal(r.answer.errorCode, 'sync.timeout', show(r.answer));
      assertFast(trips);
      assert.ok(spinner.connected && other.connected, 'both clients still connected');
    });
  }
});
