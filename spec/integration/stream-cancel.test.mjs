// Cancel and disconnect mid-stream (issue 4), on fixtures/stream/handlers: `syncCancel` with the
// server-issued cancel id answers request.aborted at once; the handler sees ctx.cancelled() /
// its sleep raises request.aborted; it stops streaming; and the fanout rule: a handler that
// still returns success fans out, one that ends in an error does not. The sender's disconnect
// cancels the same way. The server stays healthy.

import assert from 'node:assert/strict';
import { describe } from 'node:test';

import {
  join, logsWith, recorder, show, sleep, startSync, streamSuite, tokenFor, waitLog,
} from './lib/stream-util.mjs';

const CHUNK_SLEEP = 40; // ms between chunks in the handler
const GRACE = 250; // time for anything already in flight to land

describe('stream cancel and disconnect', () => {
  const suite = streamSuite('stream-cancel', { sync: { vmPoolSize: 2 } });
  const { test, room, connect } = suite;

  /** A sender and a member in a fresh room; recorders on both. */
  async function pair(prefix) {
    const R = room(prefix);
    const sender = await connect(tokenFor('alice'));
    const member = await connect(tokenFor('bob'));
    for (const s of [sender, member]) await join(s, R);
    return { R, sender, member, sRec: recorder(sender), mRec: recorder(member) };
  }

  /** Starts cancel/v1 in `mode`, waits for `k` sender chunks, cancels; returns timings. */
  async function cancelAfter(p, mode, k = 3) {
    const req = startSync(p.sender, {
      name: 'sync/st/cancel/v1', data: { n: 200, sleepMs: CHUNK_SLEEP, mode }, receiver: p.R, cb: `cb-${mode}`,
    }, 8000);
    const cancelId = await req.cancelId;
    await p.sRec.waitFor(() => req.chunks().length >= k, 3000, `${k} progress chunks`);
    const cancelAt = performance.now();
    p.sender.emit('syncCancel', { cb: cancelId });
    const { env, t } = await req.answer;
    return { req, env, answerMs: t - cancelAt, chunksAtCancel: req.chunks().length };
  }

  function assertAborted(env, answerMs) {
    assert.equal(env.status, 'error', show(env));
    assert.equal(env.errorCode, 'request.aborted', show(env));
    assert.equal(env.httpStatus, 400, show(env));
    assert.ok(answerMs < 300, `request.aborted came ${answerMs.toFixed(0)} ms after syncCancel`);
  }

  /** No chunk (to the room or the sender) after the request's answer, within GRACE. */
  async function assertStopped(p, req, what) {
    const memberChunks = p.mRec.stream().length;
    const senderChunks = req.chunks().length;
    await sleep(GRACE + 3 * CHUNK_SLEEP);
    assert.equal(p.mRec.stream().length, memberChunks, `${what}: the room got more chunks after the cancel: ${show(p.mRec.stream().slice(memberChunks))}`);
    assert.equal(req.chunks().length, senderChunks, `${what}: the sender got more progress after the cancel`);
    // The answer was the last progress-channel event for the sender.
    const names = p.sRec.names();
    const ansAt = names.indexOf(`sync-${req.index}`);
    assert.ok(!names.slice(ansAt + 1).includes(`sync-progress-${req.index}`), `${what}: progress after the answer: ${show(names.slice(ansAt))}`);
    // Member chunks are numbered 1..k without a gap, and nothing from after the cancel (seq -1).
    const seqList = p.mRec.stream().map((f) => f.seq);
    assert.deepEqual(seqList, Array.from({ length: seqList.length }, (_, i) => i + 1), `${what}: ${show(seqList)}`);
    assert.ok(seqList.length < 20, `${what}: the handler kept streaming (${seqList.length} chunks)`);
  }

  test('a handler that catches the abort and returns success: sender gets request.aborted at once, the room gets the final success frame with what the handler saw', async () => {
    const p = await pair('catch');
    const { req, env, answerMs } = await cancelAfter(p, 'catch');
    assertAborted(env, answerMs);
    const [fin] = await p.mRec.waitFinal(1, 3000).then(() => p.mRec.finals());
    assert.equal(fin.status, 'success', show(fin));
    assert.equal(fin.cb, 'cb-catch');
    const out = fin.serverOutput;
    assert.equal(out.cancelledSeen, true, `ctx.cancelled() in the handler after the abort: ${show(out)}`);
    assert.equal(out.cancelledNow, true);
    assert.match(String(out.caught), /request\.aborted/, `the error sleep raised: ${show(out)}`);
    assert.ok(out.last >= 3 && out.last < 10, `stopped at ${out.last}`);
    // The sender's socket is a room member: it gets the same fanout frame.
    await p.sRec.waitFinal(1);
    assert.equal(p.sRec.finals()[0].status, 'success');
    await assertStopped(p, req, 'catch');
    assert.equal(p.mRec.stream().length, out.last, 'the room got exactly the chunks streamed before the cancel');
  });

  test('a handler that stops on ctx.cancelled() and returns success fans out too', async () => {
    const p = await pair('poll');
    const { req, env, answerMs } = await cancelAfter(p, 'poll', 2);
    assertAborted(env, answerMs);
    await p.mRec.waitFinal(1, 3000);
    const fin = p.mRec.finals()[0];
    assert.equal(fin.status, 'success', show(fin));
    assert.equal(fin.serverOutput.cancelledSeen, true, show(fin));
    await assertStopped(p, req, 'poll');
  });

  test('a handler whose sleep raises request.aborted (uncaught) ends in an error: no fanout, "request cancelled" logged, not a handler failure', async () => {
    const p = await pair('error');
    const failuresBefore = logsWith(suite.srv, 'handler failed').length;
    const { req, env, answerMs } = await cancelAfter(p, 'error');
    assertAborted(env, answerMs);
    await waitLog(suite.srv, 'request cancelled', 2000, (r) => r.route === 'st/cancel/v1');
    await assertStopped(p, req, 'error');
    assert.equal(p.mRec.finals().length, 0, `no fanout after an error: ${show(p.mRec.finals())}`);
    assert.equal(p.sRec.finals().length, 0, `no fanout to the sender's socket either: ${show(p.sRec.finals())}`);
    assert.equal(logsWith(suite.srv, 'handler failed').length, failuresBefore, 'a cancel is not logged as a handler failure');
  });

  test('a handler that catches the abort and returns an error envelope: no fanout, the sender still gets request.aborted', async () => {
    const p = await pair('return');
    const { req, env, answerMs } = await cancelAfter(p, 'return');
    assertAborted(env, answerMs);
    await assertStopped(p, req, 'return');
    assert.equal(p.mRec.finals().length, 0, `no fanout: ${show(p.mRec.finals())}`);
    // Exactly one answer for the request.
    assert.equal(p.sRec.names().filter((n) => n === `sync-${req.index}`).length, 1);
  });

  test('syncCancel with a wrong id, or from another socket, cancels nothing', async () => {
    const p = await pair('wrongid');
    const other = await connect(tokenFor('alice')); // same user, another session
    await join(other, p.R);
    const req = startSync(p.sender, {
      name: 'sync/st/cancel/v1', data: { n: 8, sleepMs: 20, mode: 'catch' }, receiver: p.R,
    }, 5000);
    const cancelId = await req.cancelId;
    p.sender.emit('syncCancel', { cb: 'not-the-id' });
    other.emit('syncCancel', { cb: cancelId });
    const { env } = await req.answer;
    assert.equal(env.status, 'success', show(env));
    assert.equal(env.result.serverOutput.last, 8);
    assert.equal(env.result.serverOutput.cancelledSeen, false);
    // Not cancelled: the 8 chunks, then the handler's post-loop chunk (a no-op only after a cancel).
    assert.deepEqual(req.chunks().map((c) => c.seq), [1, 2, 3, 4, 5, 6, 7, 8, -1]);
  });

  test('sender disconnect mid broadcast stream: the handler stops (no more chunks to the room), no fanout after its error; the server stays healthy', async () => {
    const p = await pair('disc');
    const watcher = await connect(null); // anonymous member: watches the room
    await join(watcher, p.R);
    const wRec = recorder(watcher);
    const req = startSync(p.sender, {
      name: 'sync/st/broadcast/v1', data: { n: 300, sleepMs: 20 }, receiver: p.R,
    }, 8000);
    await p.mRec.waitStream(5);
    p.sender.disconnect();
    await waitLog(suite.srv, 'request cancelled', 2000, (r) => r.route === 'st/broadcast/v1');
    await sleep(GRACE);
    const n = p.mRec.stream().length;
    await sleep(300);
    assert.equal(p.mRec.stream().length, n, `chunks kept coming after the disconnect (${n} → ${p.mRec.stream().length})`);
    assert.ok(n < 60, `the handler went on for ${n} chunks`);
    assert.deepEqual(p.mRec.stream().map((f) => f.seq), Array.from({ length: n }, (_, i) => i + 1));
    assert.equal(p.mRec.finals().length, 0, 'an aborted (error) handler does not fan out');
    assert.equal(wRec.stream().length, n, 'every member saw the same chunks');
    req.stopListening();

    // Healthy: stats answer, and a new stream on the same room works.
    const stats = await suite.srv.stats();
    assert.equal(typeof stats.connections, 'number');
    const again = startSync(p.member, { name: 'sync/st/broadcast/v1', data: { n: 3 }, receiver: p.R });
    assert.equal((await again.answer).env.status, 'success');
    await wRec.waitFinal(1);
    assert.deepEqual(wRec.stream().slice(n).map((f) => f.seq), [1, 2, 3]);
  });

  test('sender disconnect with a handler that catches the abort and returns success: the room still gets the final frame', async () => {
    const p = await pair('disc-catch');
    const req = startSync(p.sender, {
      name: 'sync/st/cancel/v1', data: { n: 200, sleepMs: CHUNK_SLEEP, mode: 'catch' }, receiver: p.R, cb: 'cb-dc',
    }, 8000);
    await p.mRec.waitStream(3);
    p.sender.disconnect();
    req.stopListening();
    await p.mRec.waitFinal(1, 3000);
    const fin = p.mRec.finals()[0];
    assert.equal(fin.status, 'success', show(fin));
    assert.equal(fin.cb, 'cb-dc');
    assert.equal(fin.serverOutput.cancelledSeen, true, show(fin));
    assert.match(String(fin.serverOutput.caught), /request\.aborted/);
    const n = p.mRec.stream().length;
    assert.equal(n, fin.serverOutput.last, 'no chunk after the cancel (not even the late one)');
    await sleep(GRACE);
    assert.equal(p.mRec.stream().length, n);
    await suite.srv.waitForStats((s) => s.connections === 1, 3000, 'only the member left');
  });
  test('a disconnect cancels only that sender\'s requests: 12 senders with one in flight each, one leaves, the other 11 finish uncancelled', async () => {
    const R = room('many');
    const watcher = await connect(null);
    await join(watcher, R);
    const wRec = recorder(watcher);
    const senders = [];
    for (let k = 0; k < 12; k++) {
      const s = await connect(tokenFor(`user${k}`));
      await join(s, R);
      senders.push(s);
    }
    const reqs = senders.map((s, k) => startSync(s, {
      name: 'sync/st/cancel/v1', data: { n: 6, sleepMs: 30, mode: 'catch' }, receiver: R, cb: `many-${k}`,
    }, 8000));
    await Promise.all(reqs.map((r) => r.cancelId));
    senders[5].disconnect();
    reqs[5].stopListening();
    for (const [k, req] of reqs.entries()) {
      if (k === 5) continue;
      const { env } = await req.answer;
      assert.equal(env.status, 'success', `sender ${k}: ${show(env)}`);
      assert.equal(env.result.serverOutput.cancelledSeen, false, `sender ${k} was cancelled`);
    }
    // Every handler fans out its final frame (a caught abort still returns success): only the
    // request of the sender that left saw the cancel.
    await wRec.waitFinal(12, 5000);
    const seen = Object.fromEntries(wRec.finals().map((f) => [f.cb, f.serverOutput.cancelledSeen]));
    assert.deepEqual(Object.keys(seen).sort(), Array.from({ length: 12 }, (_, k) => `many-${k}`).sort());
    for (let k = 0; k < 12; k++) assert.equal(seen[`many-${k}`], k === 5, `many-${k}: ${show(seen)}`);
  });
});
