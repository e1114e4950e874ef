// Transports: polling → websocket upgrade, websocket only, polling only, heartbeats, and the
// client reconnecting by itself after a server restart.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { NodeXHR } from 'engine.io-client';

import {
  Clients, expectNoEvent, gatedWebSocket, onceEvent, request, sleep, sorted, waitConnect, waitUpgraded,
} from './lib/client.mjs';
import { startServer, TEST_TIMEOUT_MS, withServerLog } from './lib/server.mjs';
import { hsToken } from './lib/tokens.mjs';

/** joinRoom round trip that must succeed and list the room. */
async function joinOk(socket, group) {
  const res = await request(socket, 'joinRoom', { group });
  assert.equal(res.status, 'success', `joinRoom ${group}: ${JSON.stringify(res)}`);
  assert.ok(Array.isArray(res.rooms), `rooms must be an array: ${JSON.stringify(res)}`);
  assert.ok(res.rooms.includes(group), `rooms must include ${group}: ${JSON.stringify(res)}`);
  return res;
}

describe('transports', () => {
  let srv;
  const clients = new Clients();
  const test = (name, fn) => it(name, { timeout: TEST_TIMEOUT_MS }, withServerLog(() => srv, fn));

  before(async () => {
    srv = await startServer({ label: 'connect' });
  });
  afterEach(() => clients.closeAll());
  after(async () => {
    clients.closeAll();
    await srv?.stop();
  });

  test('default options: starts on polling and upgrades to websocket', async () => {
    const socket = clients.open(srv.url, { auth: { token: hsToken() } });
    // The first transport of the default list is polling.
    assert.equal(socket.io.engine.transport.name, 'polling');
    await waitConnect(socket);
    await waitUpgraded(socket);
    assert.equal(socket.io.engine.transport.name, 'websocket');
    await joinOk(socket, 'after-upgrade');
    const rooms = await request(socket, 'getJoinedRooms');
    assert.deepEqual(rooms, { status: 'success', rooms: ['after-upgrade'] });
  });

  test('round trips before the upgrade (polling) and after it (websocket), state kept', async () => {
    const gated = gatedWebSocket();
    const socket = clients.open(srv.url, {
      auth: { token: hsToken() },
      transports: [NodeXHR, gated.Transport],
    });
    await waitConnect(socket);
    assert.equal(socket.io.engine.transport.name, 'polling');
    await joinOk(socket, 'on-polling');
    await joinOk(socket, 'on-polling-2');
    assert.equal(socket.io.engine.transport.name, 'polling', 'no upgrade may happen before the gate opens');

    const upgraded = onceEvent(socket.io.engine, 'upgrade', 4000);
    gated.release();
    await upgraded;
    assert.equal(socket.io.engine.transport.name, 'websocket');
    await joinOk(socket, 'on-websocket');
    const rooms = await request(socket, 'getJoinedRooms');
    assert.equal(rooms.status, 'success');
    assert.deepEqual(sorted(rooms.rooms), ['on-polling', 'on-polling-2', 'on-websocket']);
  });

  test('a request in flight while the transport upgrades is answered', async () => {
    const gated = gatedWebSocket();
    const socket = clients.open(srv.url, {
      auth: { token: hsToken() },
      transports: [NodeXHR, gated.Transport],
    });
    await waitConnect(socket);
    const upgraded = onceEvent(socket.io.engine, 'upgrade', 4000);
    gated.release();
    // Fire requests continuously across the upgrade; every one must be answered exactly once.
    const answers = [];
    const transportsSeen = new Set();
    for (let i = 0; i < 20; i++) {
      transportsSeen.add(socket.io.engine.transport.name);
      answers.push(request(socket, 'joinRoom', { group: `burst-${i}` }, 4000));
      await sleep(5);
    }
    await upgraded;
    for (let i = 20; i < 25; i++) answers.push(request(socket, 'joinRoom', { group: `burst-${i}` }, 4000));
    const results = await Promise.all(answers);
    for (const [i, res] of results.entries()) {
      assert.equal(res.status, 'success', `burst-${i}: ${JSON.stringify(res)}`);
    }
    const rooms = await request(socket, 'getJoinedRooms');
    assert.equal(rooms.rooms.length, 25);
    assert.ok(transportsSeen.has('polling'), 'some requests were sent on polling');
  });

  test("transports: ['websocket'] connects directly on websocket", async () => {
    const socket = await clients.connect(srv.url, { auth: { token: hsToken() }, transports: ['websocket'] });
    assert.equal(socket.io.engine.transport.name, 'websocket');
    await joinOk(socket, 'ws-only');
    const left = await request(socket, 'leaveRoom', { group: 'ws-only' });
    assert.deepEqual(left, { status: 'success', rooms: [] });
  });

  test("transports: ['polling'], upgrade: false round trips on polling", async () => {
    const socket = await clients.connect(srv.url, {
      auth: { token: hsToken() },
      transports: ['polling'],
      upgrade: false,
    });
    for (let i = 0; i < 5; i++) await joinOk(socket, `poll-${i}`);
    // Several requests queued at once travel in one polling payload (record separators).
    const many = await Promise.all([5, 6, 7, 8].map((i) => request(socket, 'joinRoom', { group: `poll-${i}` })));
    for (const res of many) assert.equal(res.status, 'success');
    const rooms = await request(socket, 'getJoinedRooms');
    assert.equal(rooms.rooms.length, 9);
    assert.equal(socket.io.engine.transport.name, 'polling');
  });

  test('heartbeats keep websocket and polling clients connected across several intervals', async () => {
    const ws = await clients.connect(srv.url, { auth: { token: hsToken() } });
    await waitUpgraded(ws);
    const poll = await clients.connect(srv.url, {
      auth: { token: hsToken() },
      transports: ['polling'],
      upgrade: false,
    });
    let wsPings = 0;
    let pollPings = 0;
    ws.io.engine.on('ping', () => wsPings++);
    poll.io.engine.on('ping', () => pollPings++);
    // pingInterval 300 + pingTimeout 2000: 1.5 s is five ping rounds; without working
    // heartbeats the server (or the client) would have closed the connection.
    await Promise.all([expectNoEvent(ws, 'disconnect', 1500), expectNoEvent(poll, 'disconnect', 1500)]);
    assert.ok(ws.connected && poll.connected);
    assert.ok(wsPings >= 3, `websocket client saw ${wsPings} pings in 1.5 s with pingInterval 300`);
    assert.ok(pollPings >= 3, `polling client saw ${pollPings} pings in 1.5 s with pingInterval 300`);
    await joinOk(ws, 'hb-ws');
    await joinOk(poll, 'hb-poll');
  });

  test('the open packet advertises the configured heartbeat and payload limit', async () => {
    const socket = await clients.connect(srv.url, { auth: { token: hsToken() }, transports: ['websocket'] });
    // engine.io-client keeps the handshake values in (underscored) fields of its Socket
    const engine = socket.io.engine;
    assert.equal(engine._pingInterval, 300);
    assert.equal(engine._pingTimeout, 2000);
    assert.equal(engine._maxPayload, 100000);
  });
});

describe('reconnect after a server restart', () => {
  let srv;
  const clients = new Clients();
  const test = (name, fn) => it(name, { timeout: TEST_TIMEOUT_MS }, withServerLog(() => srv, fn));

  before(async () => {
    srv = await startServer({ label: 'restart' });
  });
  after(async () => {
    clients.closeAll();
    await srv?.stop();
  });

  for (const transports of [['polling', 'websocket'], ['websocket'], ['polling']]) {
    test(`socket.io-client reconnects by itself (transports ${transports.join('+')})`, async () => {
      const socket = await clients.connect(srv.url, {
        auth: { token: hsToken() },
        transports,
        upgrade: transports.length > 1,
        reconnection: true,
        reconnectionDelay: 100,
        reconnectionDelayMax: 300,
        randomizationFactor: 0,
      });
      await joinOk(socket, 'before-restart');
      const disconnected = onceEvent(socket, 'disconnect', 6000);
      await srv.restart();
      await disconnected;
      await onceEvent(socket, 'connect', 8000);
      assert.ok(socket.connected);
      await joinOk(socket, 'after-restart');
      socket.disconnect();
    });
  }
});
