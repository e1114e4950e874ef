// Static files (--static DIR): index.html at / and by name, files in sub-folders, 404 for
// missing files, and no way out of the directory (the config with the JWT secret sits next to
// it, one level up).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { httpRequest } from './lib/client.mjs';
import { HS_SECRET, startServer, TEST_TIMEOUT_MS, withServerLog } from './lib/server.mjs';

const INDEX = '<!doctype html><meta charset="utf-8"><title>LuckySync</title><p>hello-static</p>\n';

describe('static files', () => {
  let srv;
  const test = (name, fn) => it(name, { timeout: TEST_TIMEOUT_MS }, withServerLog(() => srv, fn));

  before(async () => {
    srv = await startServer({
      label: 'static',
      staticFiles: { 'index.html': INDEX, 'sub/page.txt': 'sub-page\n', 'app.js': 'console.log(1);\n' },
    });
  });
  after(async () => {
    await srv?.stop();
  });

  test('GET / and GET /index.html serve index.html', async () => {
    for (const path of ['/', '/index.html']) {
      const res = await httpRequest(srv.port, { path });
      assert.equal(res.status, 200, path);
      assert.equal(res.body, INDEX, path);
      assert.match(res.headers['content-type'] ?? '', /^text\/html/, path);
    }
  });

  test('other files and sub-folders', async () => {
    const txt = await httpRequest(srv.port, { path: '/sub/page.txt' });
    assert.equal(txt.status, 200);
    assert.equal(txt.body, 'sub-page\n');
    const js = await httpRequest(srv.port, { path: '/app.js' });
    assert.equal(js.status, 200);
    assert.match(js.headers['content-type'] ?? '', /javascript/);
  });

  test('a missing file is 404', async () => {
    const res = await httpRequest(srv.port, { path: '/no-such-file.html' });
    assert.equal(res.status, 404);
  });

  test('path traversal does not leave the static directory', async () => {
    const paths = [
      '/../config.lua',
      '/../../../../../../etc/passwd',
      '/sub/../../config.lua',
      '/%2e%2e/config.lua',
      '/%2e%2e%2fconfig.lua',
      '/..%2fconfig.lua',
      '/sub/%2e%2e/%2e%2e/config.lua',
      '/sub/..%5c..%5cconfig.lua',
      '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/.%2e/.%2e/.%2e/.%2e/etc/passwd',
      '//etc/passwd',
      '/%252e%252e/config.lua',
    ];
    const leaks = [];
    for (const path of paths) {
      const res = await httpRequest(srv.port, { path });
      if (res.body.includes(HS_SECRET) || /root:.*:0:0:/.test(res.body)) leaks.push(`${path} → ${res.status} LEAKED`);
      else if (![400, 403, 404].includes(res.status)) leaks.push(`${path} → ${res.status}`);
    }
    assert.deepEqual(leaks, []);
  });

  test('the protocol and stats endpoints still answer next to static files', async () => {
    const stats = await srv.stats();
    assert.equal(typeof stats.connections, 'number');
    assert.equal(typeof stats.rooms, 'number');
    const hs = await httpRequest(srv.port, { path: '/socket.io/?EIO=4&transport=polling' });
    assert.equal(hs.status, 200);
    assert.equal(hs.body[0], '0');
  });
});
