// The two readers of a `sync` event (docs/ARCHITECTURE.md, "A request's path"): the common form
// is read by syncenv straight from the text (data pushed into Lua from its JSON text, no tree);
// every other form goes through the general JSON path. Both must give the same answers, the
// same data to the handler, and the same refusal of invalid JSON (the sender is disconnected;
// nobody else is). Raw WebSocket clients send the exact bytes.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';

import { RawClients } from './lib/client.mjs';
import { LuckySync, TEST_TIMEOUT_MS, withServerLog } from './lib/server.mjs';

const ECHO = `-- env/echo v1: describes the data it got, types included (math.type, json.null)
local function describe(v)
  if type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do out[#out + 1] = { k = tostring(k), v = describe(x) } end
    table.sort(out, function(a, b) return a.k < b.k end)
    return { t = "table", n = #v, items = out }
  elseif type(v) == "number" then
    return { t = math.type(v), s = math.type(v) == "integer" and tostring(v) or string.format("%.17g", v) }
  elseif type(v) == "userdata" then
    return { t = "null" }
  end
  return { t = type(v), s = tostring(v) }
end
return {
  main = function(ctx)
    return { status = "success", serverOutput = { echo = ctx.data, shape = describe(ctx.data) } }
  end,
}
`;

const SCHEMA = `-- env/typed v1: an input schema, so the text is parsed into a tree for validation
return {
  input = { n = "number", s = "string" },
  main = function(ctx)
    return { status = "success", serverOutput = { n = ctx.data.n, s = ctx.data.s } }
  end,
}
`;

describe('sync envelope: the fast reader and the general path agree', () => {
  let srv;
  const raws = new RawClients();
  const test = (name, fn) => it(name, { timeout: TEST_TIMEOUT_MS }, withServerLog(() => srv, fn));

  before(async () => {
    srv = new LuckySync({ label: 'sync-envelope', config: { rooms: { policy: 'anyone' } } });
    const dir = path.join(srv.handlersDir, 'env', '_sync');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'echo_server_v1.lua'), ECHO);
    writeFileSync(path.join(dir, 'typed_server_v1.lua'), SCHEMA);
    await srv.start();
  });
  afterEach(() => raws.closeAll());
  after(async () => {
    raws.closeAll();
    await srv?.stop();
  });

  async function member(group) {
    const { raw } = await raws.connected(srv.wsUrl);
    raw.send(`42${JSON.stringify(['joinRoom', { group, responseIndex: 1 }])}`);
    assert.match(await raw.next(), /^42\["joinRoom-1",\{"status":"success"/);
    return raw;
  }

  /** Sends the exact text `42<ackId><body>`; returns the sync-<i> answer's payload and the ack's. */
  async function send(raw, body, ackId, ri) {
    raw.send(`42${ackId}${body}`);
    const got = { progress: null, answer: null, ack: null, others: [] };
    while (!got.ack) {
      const msg = await raw.next();
      if (msg.startsWith(`43${ackId}[`)) {
        got.ack = JSON.parse(msg.slice(2 + String(ackId).length))[0];
        continue;
      }
      const [name, payload] = JSON.parse(msg.slice(2));
      if (name === `sync-progress-${ri}`) got.progress = payload;
      else if (name === `sync-${ri}`) got.answer = payload;
      else got.others.push([name, payload]);
    }
    return got;
  }

  const DATA = '{"s":"q\\"\\\\\\/\\b\\f\\n\\r\\t \\u00e9\\u20ac\\ud83d\\ude00 é","i":-9007199254740993,' +
    '"big":9223372036854775807,"r":-0.0,"e":1.5e-7,"t":true,"f":false,"z":null,' +
    '"a":[[],{},[1,[2,[3]]],{"k":"v"}],"o":{"a":{"a":{}}}}';

  test('the same request in the common form and with an extra key: identical answers and data', async () => {
    const raw = await member('env-a');
    const fast = `["sync",{"name":"sync/env/echo/v1","data":${DATA},"receiver":"env-a","ignoreSelf":true,"responseIndex":5}]`;
    const general = `["sync",{"name":"sync/env/echo/v1","data":${DATA},"receiver":"env-a","ignoreSelf":true,"responseIndex":5,"extra":{"x":1}}]`;
    const a = await send(raw, fast, 11, 5);
    const b = await send(raw, general, 12, 5);
    assert.equal(a.ack.status, 'success', JSON.stringify(a.ack));
    assert.deepEqual(a.ack, b.ack);
    assert.deepEqual(a.answer, b.answer);
    assert.deepEqual(a.ack.result.serverOutput.echo, JSON.parse(DATA));
    const shape = Object.fromEntries(a.ack.result.serverOutput.shape.items.map((x) => [x.k, x.v]));
    assert.deepEqual(shape.i, { t: 'integer', s: '-9007199254740993' });
    assert.deepEqual(shape.big, { t: 'integer', s: '9223372036854775807' });
    assert.deepEqual(shape.r, { t: 'float', s: '-0' });
    assert.deepEqual(shape.z, { t: 'null' });
    assert.match(a.progress.__cancelId, /^[0-9a-f-]{36}$/);
  });

  test('a string responseIndex, a cb and the keys in another order take the same path to the same answer', async () => {
    const raw = await member('env-b');
    const body = `["sync",{"receiver":"env-b","cb":"mine","data":{"x":1},"responseIndex":"r7","name":"sync/env/echo/v1"}]`;
    const got = await send(raw, body, 3, 'r7');
    assert.equal(got.ack.status, 'success');
    assert.deepEqual(got.ack.result.serverOutput.echo, { x: 1 });
    const frame = got.others.length ? got.others[0] : JSON.parse((await raw.next()).slice(2));
    assert.equal(frame[0], 'sync');
    assert.equal(frame[1].cb, 'mine');
    assert.deepEqual(frame[1].serverOutput.echo, { x: 1 });
  });

  test('input schemas validate data that arrived as text', async () => {
    const raw = await member('env-c');
    const ok = await send(raw, '["sync",{"name":"sync/env/typed/v1","data":{"n":1.5,"s":"x"},"receiver":"env-c","responseIndex":1}]', 1, 1);
    assert.deepEqual(ok.ack.result.serverOutput, { n: 1.5, s: 'x' });
    const bad = await send(raw, '["sync",{"name":"sync/env/typed/v1","data":{"n":"no","s":"x"},"receiver":"env-c","responseIndex":2}]', 2, 2);
    assert.equal(bad.ack.status, 'error');
    assert.equal(bad.ack.errorCode, 'sync.invalidInput');
  });

  test('errors are the same on both paths: unknown route, missing receiver, non-object data', async () => {
    const raw = await member('env-d');
    const cases = [
      ['{"name":"sync/env/nope/v1","data":{},"receiver":"env-d"', 'sync.notFound'],
      ['{"name":"sync/env/echo/v1","data":{},"receiver":"  "', 'sync.missingReceiver'],
      ['{"name":"sync/env/echo/v1","data":[1],"receiver":"env-d"', 'sync.invalidRequest'],
      ['{"name":"bad name","data":{},"receiver":"env-d"', 'sync.invalidName'],
    ];
    let ack = 20;
    for (const [head, code] of cases) {
      const a = await send(raw, `["sync",${head},"responseIndex":1}]`, ack++, 1);
      const b = await send(raw, `["sync",${head},"responseIndex":1,"other":0}]`, ack++, 1);
      assert.equal(a.ack.errorCode, code, `${head}: ${JSON.stringify(a.ack)}`);
      assert.deepEqual(a.ack, b.ack);
    }
  });

  test('invalid JSON inside data (a duplicate key deep down, \\u0000, a broken literal) disconnects only the sender', async () => {
    const bystander = await member('env-e');
    const bad = [
      '{"o":{"p":[{"k":1,"k":2}]}}',
      '{"s":"\\u0000"}',
      '{"t":tru}',
      '{"a":1,"a":1}',
    ];
    for (const data of bad) {
      const raw = await member('env-e');
      raw.send(`421["sync",{"name":"sync/env/echo/v1","data":${data},"receiver":"env-e","responseIndex":1}]`);
      await raw.waitClosed(2000, `server to close the sender of ${data}`);
    }
    assert.ok(bystander.isOpen, 'the other member stays connected');
    const ok = await send(bystander, '["sync",{"name":"sync/env/echo/v1","data":{"k":1},"receiver":"env-e","responseIndex":9}]', 7, 9);
    assert.equal(ok.ack.status, 'success');
  });
});
