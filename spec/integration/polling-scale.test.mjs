// Many long-polling clients at once: a held GET gives its header table back to lws's small
// pool, so hundreds of waiting polls never starve the other HTTP requests (handshakes, POSTs).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { startServer } from './lib/server.mjs';

const N = 600; // well above the server's header pool (64)

test(`${N} polling-only clients connect and each completes a round trip`, { timeout: 60_000 }, async () => {
  const server = await startServer({ label: 'polling-scale', config: {
    rooms: { policy: 'anyone' },
    limits: { handshakeTimeoutMs: 20000 },
    heartbeat: { pingIntervalMs: 25000, pingTimeoutMs: 20000 },
  } });
  const sockets = [];
  after(async () => {
    for (const s of sockets) s.close();
    await server.stop();
  });
  const connected = await Promise.all(Array.from({ length: N }, () => new Promise((resolve, reject) => {
    const s = io(server.url, { transports: ['polling'], upgrade: false, reconnection: false, timeout: 20_000 });
    sockets.push(s);
    s.on('connect', () => resolve(s));
    s.on('connect_error', reject);
  })));
  assert.equal(connected.length, N);
  // Let every client settle into a held GET, then ask all of them for a round trip.
  await new Promise((r) => setTimeout(r, 300));
  const answers = await Promise.all(connected.map((s, i) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`client ${i}: no answer`)), 20_000);
    s.emit('joinRoom', { group: `r${i % 7}`, responseIndex: 1 }, (res) => {
      clearTimeout(timer);
      resolve(res);
    });
  })));
  for (const [i, res] of answers.entries()) {
    assert.equal(res.status, 'success', `client ${i}`);
    assert.deepEqual(res.rooms, [`r${i % 7}`]);
  }
  const stats = await server.stats();
  assert.equal(stats.connections, N);
});
