// Sessions: anonymous vs token connects (auth payload, Bearer header, cookie; HS256 and EdDSA),
// refused tokens with their error keys, updateSession, and expiry with its grace period.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import {
  Clients, expectNoEvent, onceEvent, request, waitConnect, waitConnectError,
} from './lib/client.mjs';
import { makeEdKeys, startServer, TEST_TIMEOUT_MS, withServerLog } from './lib/server.mjs';
import {
  algNoneToken, edToken, hsToken, withFlippedPayloadChar, withFlippedSignature, withTamperedPayload,
} from './lib/tokens.mjs';

const nowSec = () => Math.floor(Date.now() / 1000);

/** Socket options that carry `token` through `channel`. */
function carry(channel, token) {
  switch (channel) {
    case 'auth':
      return { auth: { token } };
    case 'bearer':
      return { extraHeaders: { Authorization: `Bearer ${token}` } };
    case 'cookie':
      return { extraHeaders: { Cookie: `luckysync_token=${token}` } };
    default:
      throw new Error(channel);
  }
}

async function assertLoggedIn(socket, group = 'auth-check') {
  const res = await request(socket, 'joinRoom', { group });
  assert.equal(res.status, 'success', `a session must be able to join: ${JSON.stringify(res)}`);
  assert.ok(res.rooms.includes(group));
}

async function assertAnonymous(socket) {
  const res = await request(socket, 'joinRoom', { group: 'anon-check' });
  assert.equal(res.status, 'error', `an anonymous socket must not join: ${JSON.stringify(res)}`);
  assert.equal(res.errorCode, 'auth.required');
}

describe('auth', () => {
  let srv;
  const ed = makeEdKeys();
  const clients = new Clients();
  const test = (name, fn) => it(name, { timeout: TEST_TIMEOUT_MS }, withServerLog(() => srv, fn));

  before(async () => {
    srv = await startServer({ label: 'auth', edKeys: ed });
  });
  afterEach(() => clients.closeAll());
  after(async () => {
    clients.closeAll();
    await srv?.stop();
  });

  /** Opens a socket expected to be refused; returns the connect_error. */
  async function refused(opts) {
    const socket = clients.open(srv.url, opts);
    const err = await waitConnectError(socket, 5000);
    assert.equal(socket.connected, false);
    return err;
  }

  describe('connect', () => {
    test('no token: anonymous, connected but cannot join rooms', async () => {
      const socket = await clients.connect(srv.url);
      await assertAnonymous(socket);
    });

    for (const channel of ['auth', 'bearer', 'cookie']) {
      test(`HS256 (jsonwebtoken) accepted through ${channel}`, async () => {
        const socket = await clients.connect(srv.url, carry(channel, hsToken({ sub: `hs-${channel}` })));
        await assertLoggedIn(socket);
      });
      test(`EdDSA (jose) accepted through ${channel}`, async () => {
        const token = await edToken(ed.privateKey, { sub: `ed-${channel}` });
        const socket = await clients.connect(srv.url, carry(channel, token));
        await assertLoggedIn(socket);
      });
    }

    for (const channel of ['bearer', 'cookie']) {
      test(`${channel} token on a websocket-only connection (upgrade request headers)`, async () => {
        const socket = await clients.connect(srv.url, { ...carry(channel, hsToken()), transports: ['websocket'] });
        await assertLoggedIn(socket);
      });
      test(`${channel} token on a polling-only connection`, async () => {
        const token = await edToken(ed.privateKey);
        const socket = await clients.connect(srv.url, { ...carry(channel, token), transports: ['polling'], upgrade: false });
        await assertLoggedIn(socket);
      });
    }

    test('the cookie is found among other cookies', async () => {
      const socket = await clients.connect(srv.url, {
        extraHeaders: { Cookie: `theme=dark; luckysync_token=${hsToken()}; other=1` },
      });
      await assertLoggedIn(socket);
    });
  });

  describe('refused tokens', () => {
    test('expired HS256 → auth.expired', async () => {
      const err = await refused({ auth: { token: hsToken({}, { exp: nowSec() - 30 }) } });
      assert.equal(err.message, 'auth.expired');
    });

    test('expired EdDSA → auth.expired', async () => {
      const token = await edToken(ed.privateKey, {}, { exp: nowSec() - 30 });
      const err = await refused({ auth: { token } });
      assert.equal(err.message, 'auth.expired');
    });

    test('expired token in the cookie → auth.expired', async () => {
      const err = await refused(carry('cookie', hsToken({}, { exp: nowSec() - 30 })));
      assert.equal(err.message, 'auth.expired');
    });

    test('tampered payload (valid JSON, old signature) → auth.invalidToken', async () => {
      const token = withTamperedPayload(hsToken({ sub: 'mallory' }), { sub: 'admin' });
      const err = await refused({ auth: { token } });
      assert.equal(err.message, 'auth.invalidToken');
    });

    test('tampered EdDSA payload → auth.invalidToken', async () => {
      const token = withTamperedPayload(await edToken(ed.privateKey), { roles: ['admin'] });
      const err = await refused({ auth: { token } });
      assert.equal(err.message, 'auth.invalidToken');
    });

    test('one character of the payload flipped → auth.invalidToken', async () => {
      const err = await refused({ auth: { token: withFlippedPayloadChar(hsToken()) } });
      assert.equal(err.message, 'auth.invalidToken');
    });

    test('one character of the HS256 signature flipped → auth.invalidToken', async () => {
      const err = await refused({ auth: { token: withFlippedSignature(hsToken()) } });
      assert.equal(err.message, 'auth.invalidToken');
    });

    test('one character of the EdDSA signature flipped → auth.invalidToken', async () => {
      const err = await refused({ auth: { token: withFlippedSignature(await edToken(ed.privateKey)) } });
      assert.equal(err.message, 'auth.invalidToken');
    });

    test('alg "none" with an empty signature → auth.invalidToken', async () => {
      const err = await refused({ auth: { token: algNoneToken() } });
      assert.equal(err.message, 'auth.invalidToken');
    });

    test('alg "none" with kid "hs" → auth.invalidToken', async () => {
      const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const token = `${b64({ alg: 'none', typ: 'JWT', kid: 'hs' })}.${b64({ sub: 'u1', sid: 'x', exp: nowSec() + 600 })}.`;
      const err = await refused({ auth: { token } });
      assert.equal(err.message, 'auth.invalidToken');
    });

    test('unknown kid → auth.invalidToken', async () => {
      const err = await refused({ auth: { token: hsToken({}, { kid: 'nope' }) } });
      assert.equal(err.message, 'auth.invalidToken');
    });

    test('HS256 signed with another secret → auth.invalidToken', async () => {
      const err = await refused({ auth: { token: hsToken({}, { secret: 'some-other-secret-0123456789abcdef-xyz' }) } });
      assert.equal(err.message, 'auth.invalidToken');
    });

    test('algorithm confusion: HS256 under the EdDSA kid, keyed with the public key → auth.invalidToken', async () => {
      const pub = Buffer.from(ed.x, 'base64url');
      for (const secret of [pub, ed.x]) {
        const err = await refused({ auth: { token: hsToken({}, { kid: 'ed', secret }) } });
        assert.equal(err.message, 'auth.invalidToken');
      }
    });

    test('EdDSA token under the HS256 kid → auth.invalidToken', async () => {
      const token = await edToken(ed.privateKey, {}, { kid: 'hs' });
      const err = await refused({ auth: { token } });
      assert.equal(err.message, 'auth.invalidToken');
    });

    test('garbage → auth.invalidToken', async () => {
      for (const token of ['not-a-jwt', 'a.b.c', '..', 'x'.repeat(5000)]) {
        const err = await refused({ auth: { token } });
        assert.equal(err.message, 'auth.invalidToken', `token ${token.slice(0, 20)}`);
      }
    });

    test('tampered token in the Bearer header → auth.invalidToken', async () => {
      const err = await refused(carry('bearer', withFlippedSignature(hsToken())));
      assert.equal(err.message, 'auth.invalidToken');
    });

    test('tampered token in the cookie, websocket only → auth.invalidToken', async () => {
      const err = await refused({ ...carry('cookie', withFlippedSignature(hsToken())), transports: ['websocket'] });
      assert.equal(err.message, 'auth.invalidToken');
    });

    test('the server keeps serving after refusals', async () => {
      const socket = await clients.connect(srv.url, { auth: { token: hsToken() } });
      await assertLoggedIn(socket);
    });
  });

  describe('updateSession', () => {
    test('anonymous socket becomes a session', async () => {
      const socket = await clients.connect(srv.url);
      await assertAnonymous(socket);
      const res = await request(socket, 'updateSession', { token: hsToken({ sub: 'late' }) });
      assert.equal(res.status, 'success', JSON.stringify(res));
      await assertLoggedIn(socket, 'after-update');
    });

    test('EdDSA token through updateSession', async () => {
      const socket = await clients.connect(srv.url);
      const res = await request(socket, 'updateSession', { token: await edToken(ed.privateKey) });
      assert.equal(res.status, 'success', JSON.stringify(res));
      await assertLoggedIn(socket, 'after-ed-update');
    });

    test('an invalid token is refused and the socket stays as it was', async () => {
      const anon = await clients.connect(srv.url);
      const res = await request(anon, 'updateSession', { token: withFlippedSignature(hsToken()) });
      assert.equal(res.status, 'error');
      assert.equal(res.errorCode, 'auth.invalidToken');
      assert.ok(anon.connected);
      await assertAnonymous(anon);

      const user = await clients.connect(srv.url, { auth: { token: hsToken() } });
      const res2 = await request(user, 'updateSession', { token: algNoneToken() });
      assert.equal(res2.status, 'error');
      assert.equal(res2.errorCode, 'auth.invalidToken');
      assert.ok(user.connected);
      await assertLoggedIn(user, 'still-logged-in');
    });
  });

  describe('expiry', () => {
    test('sessionExpired {graceMs}, then disconnect after the grace', async () => {
      const exp = nowSec() + 1;
      const socket = await clients.connect(srv.url, { auth: { token: hsToken({}, { exp }) } });
      await assertLoggedIn(socket);
      const expired = await onceEvent(socket, 'sessionExpired', 5000);
      const expiredAt = Date.now();
      assert.ok(expiredAt >= exp * 1000 - 50, `sessionExpired came ${exp * 1000 - expiredAt} ms before exp`);
      assert.deepEqual(expired, { graceMs: 500 });
      assert.ok(socket.connected, 'still connected during the grace');
      const reason = await onceEvent(socket, 'disconnect', 4000);
      const graceSeen = Date.now() - expiredAt;
      assert.ok(graceSeen >= 400, `disconnected ${graceSeen} ms after sessionExpired (grace 500)`);
      assert.ok(['io server disconnect', 'transport close'].includes(reason), `disconnect reason ${reason}`);
    });

    test('updateSession during the grace keeps the socket', async () => {
      const exp = nowSec() + 1;
      const socket = await clients.connect(srv.url, { auth: { token: hsToken({ sub: 'renew' }, { exp }) } });
      await onceEvent(socket, 'sessionExpired', 5000);
      const res = await request(socket, 'updateSession', { token: hsToken({ sub: 'renew' }) });
      assert.equal(res.status, 'success', JSON.stringify(res));
      await expectNoEvent(socket, 'disconnect', 2000);
      assert.ok(socket.connected);
      await assertLoggedIn(socket, 'renewed');
    });

    test('updateSession before the expiry prevents sessionExpired', async () => {
      const exp = nowSec() + 1;
      const socket = await clients.connect(srv.url, { auth: { token: await edToken(ed.privateKey, {}, { exp }) } });
      const res = await request(socket, 'updateSession', { token: await edToken(ed.privateKey) });
      assert.equal(res.status, 'success', JSON.stringify(res));
      await Promise.all([
        expectNoEvent(socket, 'sessionExpired', 3000),
        expectNoEvent(socket, 'disconnect', 3000),
      ]);
      await assertLoggedIn(socket, 'fresh');
    });
  });
});
