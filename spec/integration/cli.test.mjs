// Command-line tools: `luckysync token` mints a JWT the server (and jsonwebtoken) accept;
// `luckysync keygen` prints a fresh EdDSA key as a Lua snippet; serving on a port that is taken
// fails at once.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, afterEach, before, describe, it } from 'node:test';
import jwt from 'jsonwebtoken';

import { Clients, request } from './lib/client.mjs';
import { HS_SECRET, REPO_ROOT, binPath, startServer, TEST_TIMEOUT_MS, withServerLog } from './lib/server.mjs';

const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

/** Runs the binary; resolves { code, stdout, stderr } (10 s limit). */
function run(args) {
  return new Promise((resolve) => {
    execFile(binPath(), args, { cwd: REPO_ROOT, timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? err.signal ?? 'error') : 0, stdout, stderr });
    });
  });
}

function assertClean(r, what) {
  assert.equal(r.code, 0, `${what} exit ${r.code}\nstderr:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, SANITIZER_RE, `${what}: sanitizer report`);
}

describe('cli', () => {
  let srv;
  const clients = new Clients();
  const test = (name, fn) => it(name, { timeout: TEST_TIMEOUT_MS }, withServerLog(() => srv, fn));

  before(async () => {
    srv = await startServer({ label: 'cli' });
  });
  afterEach(() => clients.closeAll());
  after(async () => {
    clients.closeAll();
    await srv?.stop();
  });

  test('serve on a port another process listens on: exits 1 with "cannot listen", never "listening"', async () => {
    const r = await run(['--config', srv.configPath, '--port', String(srv.port), '--host', '127.0.0.1',
      '--handlers', srv.handlersDir]);
    assert.equal(r.code, 1, `exit code ${r.code}\nstderr:\n${r.stderr}`);
    assert.match(r.stderr, /"msg":"cannot listen"/);
    assert.doesNotMatch(r.stderr, /"msg":"listening"/);
    assert.doesNotMatch(r.stderr, SANITIZER_RE, 'sanitizer report');
    // the first server is unharmed
    const s = await clients.connect(srv.url);
    assert.equal(s.connected, true);
  });

  test('token: an HS256 JWT that jsonwebtoken verifies and the server accepts', async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await run(['token', '--config', srv.configPath, '--sub', 'u1', '--ttl', '60', '--kid', 'hs',
      '--claims', '{"name":"Ann","roles":["editor"]}']);
    assertClean(r, 'luckysync token');
    const token = r.stdout.trim();
    assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, `stdout is one JWT: ${JSON.stringify(r.stdout)}`);

    const { header, payload } = jwt.verify(token, HS_SECRET, { algorithms: ['HS256'], complete: true });
    assert.equal(header.alg, 'HS256');
    assert.equal(header.kid, 'hs');
    assert.equal(payload.sub, 'u1');
    assert.equal(payload.name, 'Ann');
    assert.deepEqual(payload.roles, ['editor']);
    assert.equal(typeof payload.exp, 'number');
    assert.ok(payload.exp >= before + 59 && payload.exp <= Math.floor(Date.now() / 1000) + 61,
      `exp ${payload.exp} is not about 60 s from now (${before})`);
    assert.throws(() => jwt.verify(token, 'another-secret-0123456789abcdef-another', { algorithms: ['HS256'] }));

    const socket = await clients.connect(srv.url, { auth: { token } });
    const res = await request(socket, 'joinRoom', { group: 'cli-room' });
    assert.deepEqual(res, { status: 'success', rooms: ['cli-room'] });
  });

  test('keygen: exits 0, prints an EdDSA key snippet, a new key each time', async () => {
    const a = await run(['keygen']);
    const b = await run(['keygen']);
    assertClean(a, 'luckysync keygen');
    assertClean(b, 'luckysync keygen');
    assert.match(a.stdout, /EdDSA/);
    assert.notEqual(a.stdout, b.stdout, 'two keygen runs must not print the same key');
  });
});
