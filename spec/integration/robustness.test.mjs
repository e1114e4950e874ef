// Robustness at the protocol edge, with raw clients: the Engine.IO open packet, malformed and
// oversized packets (only the offender is closed), raw polling errors, the Origin allow-list,
// and the timers that close silent clients (ping timeout, handshake timeout).

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import {
  Clients, RawClients, httpRequest, request, sleep, splitPayload, waitUpgraded,
} from './lib/client.mjs';
import { startServer, TEST_TIMEOUT_MS, withServerLog } from './lib/server.mjs';
import { hsToken } from './lib/tokens.mjs';

const EIO = '/socket.io/?EIO=4';

describe('robustness', () => {
  let srv;
  const clients = new Clients();
  const raws = new RawClients();
  const test = (name, fn) => it(name, { timeout: TEST_TIMEOUT_MS }, withServerLog(() => srv, fn));

  before(async () => {
    srv = await startServer({ label: 'robustness' });
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

  /** Polling handshake; returns the parsed open packet. */
  async function pollingHandshake(headers = {}) {
    const res = await httpRequest(srv.port, { path: `${EIO}&transport=polling&t=abc`, headers });
    assert.equal(res.status, 200, `polling handshake: ${res.status} ${res.body}`);
    assert.equal(res.body[0], '0', `open packet expected, got ${res.body.slice(0, 80)}`);
    return { open: JSON.parse(res.body.slice(1)), res };
  }

  describe('raw websocket', () => {
    test('open packet fields, CONNECT and an event round trip', async () => {
      const { raw, open } = await raws.handshake(srv.wsUrl);
      assert.equal(typeof open.sid, 'string');
      assert.ok(open.sid.length > 0);
      assert.equal(open.pingInterval, 300);
      assert.equal(open.pingTimeout, 2000);
      assert.equal(open.maxPayload, 100000);
      assert.deepEqual(open.upgrades, [], 'a websocket session has nothing to upgrade to');

      raw.send(`40${JSON.stringify({ token: hsToken() })}`);
      const connect = await raw.next();
      assert.match(connect, /^40\{/);
      const { sid } = JSON.parse(connect.slice(2));
      assert.equal(typeof sid, 'string');
      assert.ok(sid.length > 0);

      raw.send('42["joinRoom",{"group":"raw-room","responseIndex":7}]');
      assert.deepEqual(JSON.parse((await raw.next()).slice(2)), ['joinRoom-7', { status: 'success', rooms: ['raw-room'] }]);

      // An event with an ack id: the indexed event and the ack "3<id>[envelope]".
      raw.send('4213["getJoinedRooms",{"responseIndex":8}]');
      const got = [await raw.next(), await raw.next()];
      const envelope = { status: 'success', rooms: ['raw-room'] };
      const ack = got.find((m) => m.startsWith('43'));
      const event = got.find((m) => m.startsWith('42'));
      assert.ok(ack && event, `one ack and one event expected: ${JSON.stringify(got)}`);
      assert.equal(ack.slice(0, 5), '4313[', `ack id 13 expected: ${ack}`);
      assert.deepEqual(JSON.parse(ack.slice(4)), [envelope]);
      assert.deepEqual(JSON.parse(event.slice(2)), ['getJoinedRooms-8', envelope]);
    });

    test('server pings are answered by pongs and the connection stays up', async () => {
      const { raw } = await raws.connected(srv.wsUrl);
      await sleep(1200);
      assert.ok(raw.pings >= 3, `${raw.pings} pings in 1.2 s with pingInterval 300`);
      assert.ok(raw.isOpen);
    });

    test('malformed packets close only the offending client', async () => {
      const good = await clients.connect(srv.url, { auth: { token: hsToken() } });
      await waitUpgraded(good);
      let goodDisconnected = false;
      good.on('disconnect', () => { goodDisconnected = true; });

      const bad = [
        ['42[broken', '42[broken'],
        ['unknown Engine.IO type 9', '9'],
        ['empty Socket.IO packet 4', '4'],
        ['unterminated event', '42["joinRoom"'],
        ['unknown Socket.IO type', '47["x"]'],
        ['binary frame', Buffer.from([0x04, 0xff, 0x00, 0x13])],
        ['message over maxPayload (200 KB)', `42["joinRoom",{"group":"${'x'.repeat(200 * 1024)}","responseIndex":1}]`],
      ];
      const results = await Promise.all(bad.map(async ([label, packet]) => {
        const { raw } = await raws.connected(srv.wsUrl);
        const sentAt = Date.now();
        raw.send(packet, { binary: Buffer.isBuffer(packet) });
        try {
          await raw.waitClosed(2000, `server to close the client after: ${label}`);
        } catch (err) {
          return `${label}: ${err.message}`;
        }
        return raw.closeInfo.at - sentAt > 1500 ? `${label}: closed only after ${raw.closeInfo.at - sentAt} ms` : null;
      }));
      assert.deepEqual(results.filter(Boolean), []);

      assert.equal(goodDisconnected, false, 'the well-behaved client must not be disconnected');
      const res = await request(good, 'joinRoom', { group: 'survivor' });
      assert.deepEqual(res, { status: 'success', rooms: ['survivor'] });
      await srv.waitForStats((s) => s.connections === 1, 3000, 'only the good client left');
    });

    test('ping timeout closes a client that never answers pings', async () => {
      const { raw, open } = await raws.connected(srv.wsUrl, { autoPong: false });
      const { at } = await raw.waitClosed(4000, 'ping timeout close');
      const lived = at - raw.openedAt;
      assert.ok(raw.pings >= 1, 'the server sent at least one ping');
      assert.ok(lived >= open.pingInterval + open.pingTimeout - 200,
        `closed after ${lived} ms; pingInterval+pingTimeout is ${open.pingInterval + open.pingTimeout}`);
    });

    test('handshake timeout closes a client that never sends CONNECT', async () => {
      const { raw } = await raws.handshake(srv.wsUrl); // answers pings, never sends "40"
      const { at } = await raw.waitClosed(4000, 'handshake timeout close');
      const lived = at - raw.openedAt;
      assert.ok(lived >= 800, `closed after ${lived} ms; handshakeTimeoutMs is 1000`);
    });

    test('Origin: disallowed refused, allowed and absent admitted', async () => {
      const evil = raws.open(`${srv.wsUrl}${EIO}&transport=websocket`, { headers: { Origin: 'http://evil.test' } });
      await assert.rejects(evil.opened, (err) => {
        assert.ok(err.statusCode === undefined || err.statusCode >= 400, `refused with ${err.statusCode}`);
        return true;
      });
      const okRaw = raws.open(`${srv.wsUrl}${EIO}&transport=websocket`, { headers: { Origin: 'http://allowed.test' } });
      await okRaw.opened;
      assert.equal((await okRaw.next())[0], '0');
      const { raw } = await raws.handshake(srv.wsUrl); // no Origin header
      assert.ok(raw.isOpen);
    });
  });

  describe('raw polling', () => {
    test('open packet fields over polling', async () => {
      const { open, res } = await pollingHandshake();
      assert.equal(typeof open.sid, 'string');
      assert.ok(open.sid.length > 0);
      assert.deepEqual(open.upgrades, ['websocket']);
      assert.equal(open.pingInterval, 300);
      assert.equal(open.pingTimeout, 2000);
      assert.equal(open.maxPayload, 100000);
      assert.match(res.headers['content-type'] ?? '', /^text\/plain/);
    });

    test('CONNECT and an event round trip over raw polling', async () => {
      const { open } = await pollingHandshake();
      const path = `${EIO}&transport=polling&sid=${encodeURIComponent(open.sid)}`;
      const post = (body) => httpRequest(srv.port, { method: 'POST', path, body, headers: { 'Content-Type': 'text/plain;charset=UTF-8' } });
      const p1 = await post('40');
      assert.equal(p1.status, 200, p1.body);
      const g1 = await httpRequest(srv.port, { path });
      assert.equal(g1.status, 200);
      assert.ok(splitPayload(g1.body).some((p) => p.startsWith('40{')), `40{sid} expected in ${g1.body}`);

      // Two events in one payload, joined by the record separator.
      const p2 = await post('42["getJoinedRooms",{"responseIndex":31}]\x1e42["joinRoom",{"group":"g","responseIndex":32}]');
      assert.equal(p2.status, 200, p2.body);
      const answers = [];
      for (let i = 0; i < 5 && answers.length < 2; i++) {
        const g = await httpRequest(srv.port, { path });
        assert.equal(g.status, 200);
        for (const pkt of splitPayload(g.body)) {
          if (pkt.startsWith('42')) answers.push(JSON.parse(pkt.slice(2)));
          if (pkt === '2') assert.equal((await post('3')).status, 200); // keep the session alive
        }
      }
      const byName = Object.fromEntries(answers.map(([name, env]) => [name, env]));
      assert.equal(byName['getJoinedRooms-31']?.errorCode, 'auth.required', JSON.stringify(answers));
      assert.equal(byName['joinRoom-32']?.errorCode, 'auth.required', JSON.stringify(answers));
    });

    test('bad packets in a POST body → 400 and the session is closed', async () => {
      const statuses = [];
      for (const body of ['9', '9hello', '40\x1ezz', '42[broken', '\x1e40', '40\x1e\x1e42[]']) {
        const { open } = await pollingHandshake();
        const path = `${EIO}&transport=polling&sid=${encodeURIComponent(open.sid)}`;
        const res = await httpRequest(srv.port, { method: 'POST', path, body });
        statuses.push(`${JSON.stringify(body)} → ${res.status} ${res.body}`);
        const after = await httpRequest(srv.port, { path, ms: 2000 });
        assert.equal(after.status, 400, `session still open after POST ${JSON.stringify(body)}: ${after.status} ${after.body}`);
      }
      assert.deepEqual(statuses.filter((s) => !s.includes(' → 400 ')), [], 'every bad POST is answered 400');
    });

    test('unknown sid → 400 {"code":1,"message":"Session ID unknown"}', async () => {
      const path = `${EIO}&transport=polling&sid=doesnotexist`;
      for (const req of [{ path }, { path, method: 'POST', body: '40' }]) {
        const res = await httpRequest(srv.port, req);
        assert.equal(res.status, 400, `${req.method ?? 'GET'} → ${res.status}`);
        assert.deepEqual(JSON.parse(res.body), { code: 1, message: 'Session ID unknown' });
      }
    });

    test('unknown transport → 400', async () => {
      const res = await httpRequest(srv.port, { path: `${EIO}&transport=carrier-pigeon` });
      assert.equal(res.status, 400);
    });

    test('Origin: disallowed → 403; allowed → 200 with CORS headers; absent → 200', async () => {
      const evil = await httpRequest(srv.port, { path: `${EIO}&transport=polling`, headers: { Origin: 'http://evil.test' } });
      assert.equal(evil.status, 403);
      assert.ok(!evil.body.startsWith('0{'), 'no session for a refused origin');
      const { res } = await pollingHandshake({ Origin: 'http://allowed.test' });
      assert.equal(res.headers['access-control-allow-origin'], 'http://allowed.test');
      assert.equal(res.headers['access-control-allow-credentials'], 'true');
      await pollingHandshake();
    });

    test('an abandoned polling session is reaped', async () => {
      const { open } = await pollingHandshake();
      const path = `${EIO}&transport=polling&sid=${encodeURIComponent(open.sid)}`;
      await sleep(2000); // never polls, never pongs, never sends CONNECT
      const res = await httpRequest(srv.port, { path });
      assert.equal(res.status, 400, `${res.status} ${res.body}`);
      assert.deepEqual(JSON.parse(res.body), { code: 1, message: 'Session ID unknown' });
    });
  });

  test('after all of it the server still serves a normal client', async () => {
    const s = await clients.connect(srv.url, { auth: { token: hsToken() } });
    await waitUpgraded(s);
    assert.deepEqual(await request(s, 'joinRoom', { group: 'end' }), { status: 'success', rooms: ['end'] });
  });
});
