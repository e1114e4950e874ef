// A slow reader during a broadcast stream (issue 4): a room with the sender, one normal
// socket.io-client member and one raw `ws` member that never reads (its TCP socket is paused).
// Small send queues (limits.sendQueueMaxBytes 256 KB, sync.pressureBytes 64 KB). The normal
// member must get the whole stream, in order; the slow one is dropped (slow consumer, or the
// heartbeat once it stops answering pings) while flushPressure holds the producer back; the
// server's memory stays bounded and it keeps answering.

import assert from 'node:assert/strict';
import { describe } from 'node:test';

import {
  join, logsWith, recorder, rssKb, show, sleep, startSync, streamSuite, stuckPollingMember, tokenFor, waitLog,
} from './lib/stream-util.mjs';

// AddressSanitizer keeps freed memory in quarantine: RSS says little about us there.
const RSS_BOUND_KB = process.env.LUCKYSYNC_SANITIZED ? 512 * 1024 : 64 * 1024;

const QUEUE_MAX = 256 * 1024;
const PRESSURE = 64 * 1024;
const N = 8000; // 8 MB: more than the kernel socket buffers of a paused loopback reader absorb
const SIZE = 1024;

describe('slow reader during a broadcast stream', () => {
  const suite = streamSuite('stream-backpressure', {
    limits: { sendQueueMaxBytes: QUEUE_MAX },
    sync: { pressureBytes: PRESSURE, vmPoolSize: 2 },
  }, { raw: true });
  const { test, room, connect, raws } = suite;

  /** sender + normal member (socket.io-client) + a raw ws member that stops reading. */
  async function setup() {
    const R = room('slow');
    const sender = await connect(tokenFor('alice'));
    const normal = await connect(tokenFor('bob'), { transports: ['websocket'] });
    for (const s of [sender, normal]) await join(s, R);
    const { raw, open } = await raws.connected(suite.srv.wsUrl, {}, `40${JSON.stringify({ token: tokenFor('slowpoke') })}`);
    raw.send(`42${JSON.stringify(['joinRoom', { group: R, responseIndex: 1 }])}`);
    const reply = await raw.next(3000);
    assert.match(reply, /^42\["joinRoom-1",\{"status":"success"/, reply);
    raw.ws._socket.pause(); // never reads again: the kernel buffers fill, then the server's queue
    return { R, sender, normal, raw, slowSid: open.sid, nRec: recorder(normal), sRec: recorder(sender) };
  }

  function assertWholeStream(rec, what) {
    const frames = rec.syncFrames();
    assert.equal(frames.length, N + 1, `${what}: ${frames.length} frames`);
    const bad = frames.slice(0, N).findIndex((f, i) => f.seq !== i + 1 || f.status !== 'stream' || f.pad.length !== SIZE);
    assert.equal(bad, -1, `${what}: frame ${bad} is ${show(frames[bad])}`);
    assert.equal(frames[N].status, 'success', show(frames[N]));
  }

  async function slowGone(slowSid) {
    // Dropped by its queue bound ("slow consumer") or by the heartbeat (it no longer answers
    // pings): either way the server closed it.
    return waitLog(suite.srv, 'conn closed', 5000, (r) => r.conn === slowSid);
  }

  test('flushPressure every 50 chunks: the normal member gets all 8000 × 1 KB chunks in order; the slow one is dropped; memory stays bounded', async () => {
    const rss0 = rssKb(suite.srv.child.pid);
    const s = await setup();
    const req = startSync(s.sender, {
      name: 'sync/st/big/v1', data: { n: N, size: SIZE, every: 50, mode: 'pressure' }, receiver: s.R,
    }, 15000);
    const { env } = await req.answer;
    assert.equal(env.status, 'success', show(env));
    await s.nRec.waitFinal(1, 5000);
    assertWholeStream(s.nRec, 'normal member');
    assertWholeStream(s.sRec, 'sender');
    const closed = await slowGone(s.slowSid);
    const slowLogs = logsWith(suite.srv, 'slow consumer').filter((r) => r.conn === s.slowSid);
    for (const r of slowLogs) assert.ok(r.queuedBytes <= QUEUE_MAX + SIZE * 2, show(r));
    const out = env.result.serverOutput;
    // The paused reader held the producer back until it was dropped.
    assert.ok(out.waitedMs > 0, `flushPressure never waited: ${show(out)}`);
    const rss1 = rssKb(suite.srv.child.pid);
    assert.ok(rss1 - rss0 < RSS_BOUND_KB, `RSS grew ${rss0} → ${rss1} kB`);
    const stats = await suite.srv.stats();
    assert.equal(stats.connections, 2, `only the sender and the normal member are left: ${show(stats)} (slow closed: ${closed.reason})`);
    console.log(`pressure: waited ${out.waitedMs} ms, took ${out.tookMs} ms; slow closed: ${closed.reason}; RSS ${rss0} → ${rss1} kB`);
  });

  test('a paced producer that never checks the queues: the slow member is dropped as a slow consumer, the stream goes on for everyone else', async () => {
    const rss0 = rssKb(suite.srv.child.pid);
    const s = await setup();
    const req = startSync(s.sender, {
      name: 'sync/st/big/v1', data: { n: N, size: SIZE, every: 20, mode: 'sleep', pauseMs: 2 }, receiver: s.R,
    }, 15000);
    const { env } = await req.answer;
    assert.equal(env.status, 'success', show(env));
    await s.nRec.waitFinal(1, 5000);
    assertWholeStream(s.nRec, 'normal member');
    const closed = await slowGone(s.slowSid);
    const slow = logsWith(suite.srv, 'slow consumer').filter((r) => r.conn === s.slowSid);
    assert.equal(slow.length, 1, `the paused reader is logged once as a slow consumer (closed: ${show(closed)})`);
    assert.ok(slow[0].queuedBytes <= QUEUE_MAX, show(slow[0]));
    assert.match(closed.reason, /slow consumer/);
    const rss1 = rssKb(suite.srv.child.pid);
    assert.ok(rss1 - rss0 < RSS_BOUND_KB, `RSS grew ${rss0} → ${rss1} kB`);
    const stats = await suite.srv.stats();
    assert.equal(stats.connections, 2, show(stats));
    console.log(`paced: took ${env.result.serverOutput.tookMs} ms; RSS ${rss0} → ${rss1} kB`);
  });

  test('a handler waiting in flushPressure behind a stuck member is resumed by syncCancel with request.aborted, and stops', async () => {
    const R = room('stuck');
    const sender = await connect(tokenFor('alice'), { transports: ['websocket'] });
    const normal = await connect(tokenFor('bob'), { transports: ['websocket'] });
    for (const s of [sender, normal]) await join(s, R);
    const nRec = recorder(normal);
    const stuck = await stuckPollingMember(suite.srv, R, tokenFor('stuck'));
    const cancelledBefore = logsWith(suite.srv, 'request cancelled').length;
    const req = startSync(sender, {
      name: 'sync/st/big/v1', data: { n: 2000, size: SIZE, every: 10, mode: 'pressure' }, receiver: R,
    }, 5000);
    const cancelId = await req.cancelId;
    // About PRESSURE / SIZE chunks fill the stuck member's queue; then the producer waits.
    await nRec.waitStream(PRESSURE / SIZE / 2);
    await sleep(60);
    const atCancel = nRec.stream().length;
    assert.ok(atCancel < 200, `the producer was not held back: ${atCancel} chunks`);
    assert.ok(!logsWith(suite.srv, 'conn closed').some((r) => r.conn === stuck.sid),
      'the stuck member was dropped before the cancel (heartbeat): the test could not hold the producer');
    const t0 = performance.now();
    sender.emit('syncCancel', { cb: cancelId });
    const { env, t } = await req.answer;
    assert.equal(env.errorCode, 'request.aborted', show(env));
    assert.ok(t - t0 < 300, `request.aborted after ${(t - t0).toFixed(0)} ms`);
    // flushPressure raised request.aborted in the handler: the expected end of a cancelled request.
    await waitLog(suite.srv, 'request cancelled', 2000, (r) => r.route === 'st/big/v1');
    assert.equal(logsWith(suite.srv, 'request cancelled').length, cancelledBefore + 1);
    await sleep(800); // the stuck member is gone by now (heartbeat): nothing holds the producer
    const n = nRec.stream().length;
    assert.ok(n <= atCancel + 10, `the handler went on after the cancel: ${atCancel} → ${n}`);
    assert.equal(nRec.finals().length, 0, 'it ended in an error: no fanout');
    await waitLog(suite.srv, 'conn closed', 2000, (r) => r.conn === stuck.sid);
    await suite.srv.waitForStats((st) => st.connections === 2, 2000, 'the stuck member dropped, the others still here');
  });
});
