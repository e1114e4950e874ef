// Rooms: joinRoom / leaveRoom / getJoinedRooms answered on indexed events and on acks, the
// loggedIn policy, name limits, the 50-room FIFO cap, cleanup of memberships when sockets go
// away (GET /luckysync/stats) and the session's rooms coming back on reconnect.

import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';

import { Clients, onceEvent, request, requestWithAck, sorted } from './lib/client.mjs';
import { startServer, TEST_TIMEOUT_MS, withServerLog } from './lib/server.mjs';
import { hsToken, newSid } from './lib/tokens.mjs';

describe('rooms', () => {
  let srv;
  const clients = new Clients();
  const test = (name, fn) => it(name, { timeout: TEST_TIMEOUT_MS }, withServerLog(() => srv, fn));
  const idle = (s) => s.connections === 0 && s.rooms === 0;

  before(async () => {
    srv = await startServer({ label: 'rooms' });
  });
  beforeEach(async () => {
    // Each test starts from an empty server: the previous test's sockets are gone.
    await srv.waitForStats(idle, 3000, 'no connections and no rooms');
  });
  afterEach(() => clients.closeAll());
  after(async () => {
    clients.closeAll();
    await srv?.stop();
  });

  const user = (claims = {}, opts = {}) => clients.connect(srv.url, { auth: { token: hsToken(claims) }, ...opts });

  test('join, leave and list with indexed answer events', async () => {
    const s = await user();
    assert.deepEqual(await request(s, 'getJoinedRooms'), { status: 'success', rooms: [] });
    const j1 = await request(s, 'joinRoom', { group: 'alpha' });
    assert.deepEqual(j1, { status: 'success', rooms: ['alpha'] });
    const j2 = await request(s, 'joinRoom', { group: 'beta' });
    assert.equal(j2.status, 'success');
    assert.deepEqual(sorted(j2.rooms), ['alpha', 'beta']);
    const l1 = await request(s, 'leaveRoom', { group: 'alpha' });
    assert.deepEqual(l1, { status: 'success', rooms: ['beta'] });
    assert.deepEqual(await request(s, 'getJoinedRooms'), { status: 'success', rooms: ['beta'] });
  });

  test('joining a room twice keeps one membership', async () => {
    const s = await user();
    await request(s, 'joinRoom', { group: 'twice' });
    const again = await request(s, 'joinRoom', { group: 'twice' });
    assert.deepEqual(again, { status: 'success', rooms: ['twice'] });
  });

  test('the same envelope also comes back as the Socket.IO ack', async () => {
    const s = await user();
    const join = await requestWithAck(s, 'joinRoom', { group: 'acked' });
    assert.deepEqual(join.event, { status: 'success', rooms: ['acked'] });
    assert.deepEqual(join.ack, join.event);
    const list = await requestWithAck(s, 'getJoinedRooms');
    assert.deepEqual(list.ack, { status: 'success', rooms: ['acked'] });
    assert.deepEqual(list.event, list.ack);
    const leave = await requestWithAck(s, 'leaveRoom', { group: 'acked' });
    assert.deepEqual(leave.ack, { status: 'success', rooms: [] });
    assert.deepEqual(leave.event, leave.ack);
    const bad = await requestWithAck(s, 'joinRoom', { group: '' });
    assert.equal(bad.ack.status, 'error');
    assert.equal(bad.ack.errorCode, 'room.invalidName');
    assert.deepEqual(bad.event, bad.ack);
  });

  test('anonymous sockets get auth.required (loggedIn policy)', async () => {
    const s = await clients.connect(srv.url);
    const join = await request(s, 'joinRoom', { group: 'nope' });
    assert.equal(join.status, 'error');
    assert.equal(join.errorCode, 'auth.required');
    assert.ok(Array.isArray(join.errorParams ?? []));
    const ack = await requestWithAck(s, 'joinRoom', { group: 'nope' });
    assert.equal(ack.ack.errorCode, 'auth.required');
    const list = await request(s, 'getJoinedRooms');
    assert.equal(list.status, 'error');
    assert.equal(list.errorCode, 'auth.required');
    assert.deepEqual(list.rooms, []);
  });

  test('room names: empty and longer than 256 refused, 256 accepted', async () => {
    const s = await user();
    for (const group of ['', 'x'.repeat(257), 'y'.repeat(5000)]) {
      const res = await request(s, 'joinRoom', { group });
      assert.equal(res.status, 'error', `length ${group.length}: ${JSON.stringify(res).slice(0, 200)}`);
      assert.equal(res.errorCode, 'room.invalidName');
      assert.equal(typeof res.errorCode, 'string');
    }
    const max = 'z'.repeat(256);
    const ok = await request(s, 'joinRoom', { group: max });
    assert.deepEqual(ok, { status: 'success', rooms: [max] });
    const utf = 'salle-été-☃';
    const ok2 = await request(s, 'joinRoom', { group: utf });
    assert.equal(ok2.status, 'success');
    assert.deepEqual(sorted(ok2.rooms), sorted([max, utf]));
  });

  test('a 51st room leaves the oldest (FIFO cap of 50)', async () => {
    const s = await user();
    const base = (await srv.stats()).rooms; // implicit rooms of this socket/session
    let last;
    for (let i = 0; i <= 50; i++) last = await request(s, 'joinRoom', { group: `cap-${i}` });
    assert.equal(last.status, 'success');
    assert.equal(last.rooms.length, 50);
    assert.ok(!last.rooms.includes('cap-0'), 'the oldest room was left');
    assert.ok(last.rooms.includes('cap-1') && last.rooms.includes('cap-50'));
    const list = await request(s, 'getJoinedRooms');
    assert.deepEqual(sorted(list.rooms), sorted(last.rooms));
    // cap-0 had no other member: it must be gone from the registry.
    assert.equal((await srv.stats()).rooms, base + 50);
    // One more evicts the next oldest.
    const next = await request(s, 'joinRoom', { group: 'cap-51' });
    assert.equal(next.rooms.length, 50);
    assert.ok(!next.rooms.includes('cap-1') && next.rooms.includes('cap-2') && next.rooms.includes('cap-51'));
  });

  test('stats count connections and live rooms; rooms are freed when sockets go away', async () => {
    const a = await user({ sub: 'ua' });
    const b = await user({ sub: 'ub' }, { transports: ['polling'], upgrade: false });
    const c = await clients.connect(srv.url); // anonymous
    const s0 = await srv.stats();
    assert.equal(s0.connections, 3);
    await request(a, 'joinRoom', { group: 'shared' });
    await request(b, 'joinRoom', { group: 'shared' });
    await request(a, 'joinRoom', { group: 'a-only' });
    await request(b, 'joinRoom', { group: 'b-only' });
    const s1 = await srv.stats();
    assert.equal(s1.rooms, s0.rooms + 3, `3 new rooms: before ${JSON.stringify(s0)} after ${JSON.stringify(s1)}`);

    // a leaves 'a-only' explicitly: that room is empty → freed.
    await request(a, 'leaveRoom', { group: 'a-only' });
    assert.equal((await srv.stats()).rooms, s0.rooms + 2);

    a.disconnect();
    await srv.waitForStats((s) => s.connections === 2, 3000, 'connections 2 after a disconnect');
    // 'shared' still has b.
    assert.deepEqual(sorted((await request(b, 'getJoinedRooms')).rooms), ['b-only', 'shared']);
    b.disconnect();
    c.disconnect();
    await srv.waitForStats(idle, 3000, 'no connections and no rooms after every socket left');
  });

  test('a socket that vanishes without a goodbye is cleaned up too', async () => {
    const s = await user({}, { transports: ['websocket'] });
    await request(s, 'joinRoom', { group: 'ghost' });
    assert.equal((await srv.stats()).connections, 1);
    // Kill the TCP connection under the websocket: no Engine.IO/Socket.IO close packets.
    s.io.engine.transport.ws._socket.destroy();
    // pingInterval 300 + pingTimeout 400, plus slack.
    await srv.waitForStats(idle, 4000, 'cleanup after an abrupt close');
  });

  test("a session's rooms come back when it connects again", async () => {
    const sid = newSid('rejoin');
    const first = await user({ sub: 'rj', sid });
    await request(first, 'joinRoom', { group: 'keep-1' });
    await request(first, 'joinRoom', { group: 'keep-2' });
    await request(first, 'joinRoom', { group: 'dropped' });
    await request(first, 'leaveRoom', { group: 'dropped' });
    first.disconnect();
    await srv.waitForStats(idle, 3000, 'rooms freed while the session has no socket');

    // Same session (same sid), a freshly minted token, another transport.
    const again = await user({ sub: 'rj', sid }, { transports: ['polling'], upgrade: false });
    const list = await request(again, 'getJoinedRooms');
    assert.equal(list.status, 'success');
    assert.deepEqual(sorted(list.rooms), ['keep-1', 'keep-2']);
    assert.ok((await srv.stats()).rooms >= 2, 'the rejoined rooms are live again');

    // Another session sees none of them.
    const other = await user({ sub: 'someone-else', sid: newSid('other') });
    assert.deepEqual(await request(other, 'getJoinedRooms'), { status: 'success', rooms: [] });
  });

  test('socket.io-client reconnecting by itself after a dropped connection gets its rooms back', async () => {
    const s = await user({ sub: 'drop', sid: newSid('drop') }, {
      transports: ['websocket'],
      reconnection: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 200,
      randomizationFactor: 0,
    });
    await request(s, 'joinRoom', { group: 'sticky-1' });
    await request(s, 'joinRoom', { group: 'sticky-2' });
    const reconnected = onceEvent(s, 'connect', 5000); // the Socket.IO CONNECT done again
    s.io.engine.transport.ws._socket.destroy();
    await reconnected;
    assert.ok(s.connected);
    const list = await request(s, 'getJoinedRooms');
    assert.equal(list.status, 'success');
    assert.deepEqual(sorted(list.rooms), ['sticky-1', 'sticky-2']);
    s.disconnect();
    await srv.waitForStats(idle, 3000, 'no connections and no rooms after the reconnected socket left');
  });

  test('unknown events and malformed room requests do not break the socket', async () => {
    const s = await user();
    const seen = [];
    s.onAny((name) => seen.push(name));
    s.emit('noSuchEvent', { responseIndex: 1 });
    s.emit('joinRoom'); // no payload at all
    s.emit('joinRoom', 'a string');
    s.emit('joinRoom', { group: 42, responseIndex: 999001 });
    s.emit('getJoinedRooms', null);
    const res = await request(s, 'joinRoom', { group: 'still-fine' });
    assert.equal(res.status, 'success');
    assert.ok(s.connected);
    assert.deepEqual(seen.filter((n) => n.startsWith('noSuchEvent')), [], 'unknown events are ignored');
  });
});
