// Bursts: many sync requests arriving in one TCP write. wsock reads up to limits.wsReadBytes per
// recv (64 KB by default) into its shared buffer and runs every whole frame in it; a frame cut by
// the end of a read waits in a buffer of its own for the rest. Each connection's frames leave
// with one write at the end of the pass (conn_table_flush). Whatever the split between passes, every request must be
// answered, in order, and every member must get every frame, in order — over WebSocket and over
// polling. The handler tree has no hooks and no client file, so results take the text path
// (Lua straight to JSON text); the frames' exact shape is checked here.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';

import { Clients, RawClients, request, within } from './lib/client.mjs';
import { LuckySync, TEST_TIMEOUT_MS, withServerLog } from './lib/server.mjs';

const ROUTE = 'sync/burst/echo/v1';
const ECHO = `-- burst/echo v1: returns what it got, plus a nested table and an integer
return {
  main = function(ctx)
    return { status = "success", serverOutput = { i = ctx.data.i, pad = ctx.data.pad,
                                                  nested = { ok = true, list = { 1, 2.5 } } } }
  end,
}
`;

// The same suite with the default 64 KB reads and with limits.wsReadBytes = 1024, where a burst
// arrives in many reads and frames are cut anywhere by their ends.
for (const [reads, limits] of [['64 KB reads', {}], ['1024-byte reads', { wsReadBytes: 1024 }]]) describe(`bursts of requests in one write (${reads})`, () => {
  let srv;
  const clients = new Clients();
  const raws = new RawClients();
  const test = (name, fn) => it(name, { timeout: TEST_TIMEOUT_MS }, withServerLog(() => srv, fn));

  before(async () => {
    srv = new LuckySync({ label: `burst-${limits.wsReadBytes || 65536}`, config: { rooms: { policy: 'anyone' }, limits } });
    const dir = path.join(srv.handlersDir, 'burst', '_sync');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'echo_server_v1.lua'), ECHO);
    await srv.start();
  });
  afterEach(() => {
    clients.closeAll();
    raws.closeAll();
  });
  after(async () => {
    clients.closeAll();
    raws.closeAll();
    await srv?.stop();
  });

  /** A raw WebSocket client, Socket.IO-connected and in room `group`. */
  async function rawMember(group) {
    const { raw } = await raws.connected(srv.wsUrl);
    raw.send(`42${JSON.stringify(['joinRoom', { group, responseIndex: 1 }])}`);
    const joined = await raw.next();
    assert.match(joined, /^42\["joinRoom-1",\{"status":"success"/, joined);
    return raw;
  }

  /** The next `42[name, payload]` event of a raw client whose name matches re. */
  async function nextEvent(raw, re) {
    for (;;) {
      const msg = await raw.next(5000);
      if (!msg.startsWith('42')) continue;
      const [name, payload] = JSON.parse(msg.slice(2));
      if (re.test(name)) return { name, payload };
    }
  }

  async function burst(n, padLen) {
    const group = `burst-${n}`;
    const sender = await rawMember(group);
    const member = await rawMember(group);
    const polling = await clients.connect(srv.url, { transports: ['polling'], upgrade: false });
    assert.equal((await request(polling, 'joinRoom', { group })).status, 'success');
    const polled = [];
    polling.on('sync', (frame) => polled.push(frame));

    const pad = 'p'.repeat(padLen);
    const sock = sender.ws._socket; // ws's net.Socket: cork so the whole burst is one write
    sock.cork();
    for (let i = 1; i <= n; i++) {
      sender.send(`42${JSON.stringify(['sync', {
        name: ROUTE, data: { i, pad }, receiver: group, responseIndex: 1000 + i, ignoreSelf: true,
      }])}`);
    }
    sock.uncork();

    for (let i = 1; i <= n; i++) {
      const { name, payload } = await nextEvent(sender, /^sync-\d+$/);
      assert.equal(name, `sync-${1000 + i}`, `answers in order (${i} of ${n})`);
      assert.deepEqual(payload, {
        status: 'success',
        message: `sync ${ROUTE} success`,
        result: { status: 'success', serverOutput: { i, pad, nested: { ok: true, list: [1, 2.5] } } },
      });
    }
    for (let i = 1; i <= n; i++) {
      const { payload } = await nextEvent(member, /^sync$/);
      assert.deepEqual(payload, {
        cb: ROUTE,
        fullName: ROUTE,
        status: 'success',
        serverOutput: { i, pad, nested: { ok: true, list: [1, 2.5] } },
        clientOutput: {},
        message: `${ROUTE} sync success`,
      }, `member frame ${i} of ${n}`);
    }
    await within((async () => {
      while (polled.length < n) await new Promise((r) => setTimeout(r, 20));
    })(), 5000, `${n} frames on the polling member (got ${polled.length})`);
    assert.deepEqual(polled.map((f) => f.serverOutput.i), Array.from({ length: n }, (_, k) => k + 1));
  }

  test('40 requests in one write', async () => {
    await burst(40, 60);
  });

  test('300 requests in one write (more than 4 reads of 1 KB per readiness event: the rest on later passes)', async () => {
    await burst(300, 120);
  });
});
