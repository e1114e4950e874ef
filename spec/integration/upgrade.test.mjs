// The polling → websocket upgrade with production heartbeats (25 s): the official client
// pauses polling before it sends `5`, so the server must release the held GET on `2probe`.
// With the harness's fast 300 ms pings a stalled upgrade would hide behind the next ping.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { startServer } from './lib/server.mjs';

test('20 default-option clients upgrade to websocket promptly and answer at once', { timeout: 60_000 }, async () => {
  const server = await startServer({
    label: 'upgrade',
    config: { rooms: { policy: 'anyone' }, heartbeat: { pingIntervalMs: 25000, pingTimeoutMs: 20000 } },
  });
  const sockets = [];
  after(async () => {
    for (const s of sockets) s.close();
    await server.stop();
  });
  const runs = Array.from({ length: 20 }, (_, i) => (async () => {
    const t0 = Date.now();
    const s = io(server.url, { reconnection: false });
    sockets.push(s);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client ${i}: no upgrade within 3 s`)), 3000);
      s.io.engine.once('upgrade', () => { clearTimeout(timer); resolve(); });
      s.on('connect_error', reject);
    });
    assert.equal(s.io.engine.transport.name, 'websocket');
    const res = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client ${i}: no answer within 1 s`)), 1000);
      s.emit('joinRoom', { group: 'u', responseIndex: 1 }, (r) => { clearTimeout(timer); resolve(r); });
    });
    assert.equal(res.status, 'success');
    return Date.now() - t0;
  })());
  const times = await Promise.all(runs);
  assert.ok(Math.max(...times) < 4000, `slowest client: ${Math.max(...times)} ms`);
});
