// Stream primitives end to end (issue 4), on fixtures/stream/handlers: ctx.stream (sender
// only, on sync-progress-<i>), ctx.broadcastStream (every member, the sender's sockets too),
// ctx.streamTo (every socket of the given sessions), ctx.streamToUsers (every socket of the
// given users), ctx.stream in a client file (that recipient only), and the stream throttle
// (frame counts, nothing lost or reordered, a pause in the source still flushes).
// For each: who gets what, in order, who gets nothing, and chunks before the final answer.

import assert from 'node:assert/strict';
import { describe } from 'node:test';

import {
  join, recorder, seqs, show, sleep, startSync, streamSuite, tokenFor,
} from './lib/stream-util.mjs';
import { newSid } from './lib/tokens.mjs';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SETTLE_MS = 200;

/** The text the throttle fixture produces for `pieces` pieces (same formula as the Lua). */
function throttleText(pieces) {
  const out = [];
  const lens = [];
  for (let i = 1; i <= pieces; i++) {
    const len = ((i * 7) % 4) + 1;
    let s = '';
    for (let k = 1; k <= len; k++) s += String.fromCharCode(97 + ((i * 31 + k * 17) % 26));
    out.push(s);
    lens.push(len);
  }
  return { text: out.join(''), lens };
}

describe('stream primitives', () => {
  const { test, room, connect } = streamSuite('stream-primitives', { sync: { vmPoolSize: 2 } });

  test('ctx.stream: numbered chunks reach only the sending socket, as sent, between the cancel id and the answer', async () => {
    const R = room('progress');
    const aliceTok = tokenFor('alice');
    const sender = await connect(aliceTok);
    const senderTab2 = await connect(aliceTok); // same session, another socket
    const bob = await connect(tokenFor('bob'));
    const outsider = await connect(tokenFor('carol'));
    for (const s of [sender, senderTab2, bob]) await join(s, R);
    const recs = [sender, senderTab2, bob, outsider].map(recorder);

    const N = 40;
    const req = startSync(sender, { name: 'sync/st/progress/v1', data: { n: N }, receiver: R, cb: 'cb-p' });
    const { env } = await req.answer;
    assert.equal(env.status, 'success', show(env));
    assert.deepEqual(env.result, { status: 'success', serverOutput: { sent: N } });

    // The sender: first {__cancelId}, then the payloads exactly as the handler made them (no
    // envelope keys merged into sender progress), numbered 1..N, all before sync-<i>.
    const names = recs[0].names();
    const ansAt = names.indexOf(`sync-${req.index}`);
    const progressAt = names.map((n, i) => (n === `sync-progress-${req.index}` ? i : -1)).filter((i) => i >= 0);
    assert.equal(progressAt.length, N + 1, `progress events: ${progressAt.length}`);
    assert.ok(progressAt.every((i) => i < ansAt), 'every progress event before the answer');
    const first = req.progress[0].arg;
    assert.deepEqual(Object.keys(first), ['__cancelId']);
    assert.match(first.__cancelId, UUID_RE);
    assert.deepEqual(req.chunks(), seqs(N).map((i) => ({ seq: i, cb: 'payload-cb', status: 'payload-status', note: `p${i}` })));

    await Promise.all([recs[0], recs[1], recs[2]].map((r) => r.waitFinal(1)));
    await sleep(SETTLE_MS);
    // Nobody else sees sender progress: not the sender's other tab, not a member, not an outsider;
    // and ctx.stream makes no `sync` stream frames at all.
    for (const [k, r] of recs.entries()) {
      assert.equal(r.stream().length, 0, `socket ${k} got stream frames: ${show(r.stream())}`);
      if (k > 0) {
        assert.ok(!r.names().some((n) => n.startsWith('sync-progress-')), `socket ${k}: ${show(r.names())}`);
      }
    }
    // The members' final frame is the ordinary success frame.
    for (const r of [recs[0], recs[1], recs[2]]) {
      assert.equal(r.finals().length, 1);
      assert.equal(r.finals()[0].status, 'success');
      assert.equal(r.finals()[0].cb, 'cb-p');
    }
    assert.equal(recs[3].events.length, 0, `outsider: ${show(recs[3].events)}`);
  });

  test('ctx.broadcastStream: every member (both sender tabs, another user, anonymous) gets 1..N in order, then the final frame; envelope keys win; a non-member gets nothing', async () => {
    const R = room('bcast');
    const aliceTok = tokenFor('alice');
    const sender = await connect(aliceTok);
    const senderTab2 = await connect(aliceTok, { transports: ['polling'], upgrade: false });
    const bob = await connect(tokenFor('bob'), { transports: ['websocket'] });
    const anon = await connect(null);
    const outsider = await connect(tokenFor('carol'));
    for (const s of [sender, senderTab2, bob, anon]) await join(s, R);
    const members = [sender, senderTab2, bob, anon].map(recorder);
    const outRec = recorder(outsider);

    const N = 60;
    const req = startSync(sender, { name: 'sync/st/broadcast/v1', data: { n: N }, receiver: R, cb: 'my-cb' });
    const { env } = await req.answer;
    assert.equal(env.status, 'success', show(env));
    await Promise.all(members.map((r) => r.waitFinal(1)));
    await sleep(SETTLE_MS);

    const expected = seqs(N).map((i) => ({
      seq: i, own: `kept-${i}`, cb: 'my-cb', fullName: 'sync/st/broadcast/v1', status: 'stream',
    }));
    for (const [k, r] of members.entries()) {
      assert.deepEqual(r.stream(), expected, `member ${k}`);
      // every chunk before the final frame
      const frames = r.syncFrames();
      assert.equal(frames.length, N + 1, `member ${k}: ${frames.length} frames`);
      assert.equal(frames.at(-1).status, 'success', `member ${k} last frame: ${show(frames.at(-1))}`);
      assert.deepEqual(frames.at(-1).serverOutput, { sent: N });
    }
    // The sender: every chunk before its sync-<i> answer, and no stream chunk on progress.
    const names = members[0].names();
    const ansAt = names.indexOf(`sync-${req.index}`);
    assert.ok(ansAt > 0 && names.slice(0, ansAt).filter((n) => n === 'sync').length === N,
      `all ${N} chunks before the answer; events: ${show(names)}`);
    assert.equal(req.chunks().length, 0, 'broadcastStream sends nothing on sync-progress');
    assert.equal(outRec.events.length, 0, `non-member: ${show(outRec.events)}`);

    // Without a cb from the client, cb is the wire name.
    const before = members.map((r) => r.stream().length);
    const req2 = startSync(bob, { name: 'sync/st/broadcast/v1', data: { n: 2 }, receiver: R });
    assert.equal((await req2.answer).env.status, 'success');
    await Promise.all(members.map((r) => r.waitFinal(2)));
    for (const [k, r] of members.entries()) {
      const got = r.stream().slice(before[k]);
      assert.deepEqual(got.map((f) => [f.seq, f.cb, f.status]),
        [[1, 'sync/st/broadcast/v1', 'stream'], [2, 'sync/st/broadcast/v1', 'stream']], `member ${k}`);
    }

    // ignoreSelf leaves the sender's socket out of the final fanout, not out of the stream
    // (broadcastStream reaches the sender's own sockets regardless, as in the original).
    const before3 = members.map((r) => ({ s: r.stream().length, f: r.finals().length }));
    const req3 = startSync(sender, { name: 'sync/st/broadcast/v1', data: { n: 3 }, receiver: R, ignoreSelf: true, cb: 'cb-is' });
    assert.equal((await req3.answer).env.status, 'success');
    await Promise.all(members.slice(1).map((r, k) => r.waitFinal(before3[k + 1].f + 1)));
    await sleep(SETTLE_MS);
    for (const [k, r] of members.entries()) {
      assert.deepEqual(r.stream().slice(before3[k].s).map((f) => [f.seq, f.cb]), [[1, 'cb-is'], [2, 'cb-is'], [3, 'cb-is']], `member ${k}`);
      assert.equal(r.finals().length - before3[k].f, k === 0 ? 0 : 1, `member ${k}: final frames with ignoreSelf`);
    }
  });

  test('ctx.streamTo: every socket of the listed sessions (duplicates once, unknown ignored); another session of the same user and non-targets get nothing', async () => {
    const R = room('to');
    const sA1 = newSid('alice-1');
    const sA2 = newSid('alice-2');
    const sB1 = newSid('bob-1');
    const sC1 = newSid('carol-1');
    const a1 = await connect(tokenFor('alice', sA1));
    const a1b = await connect(tokenFor('alice', sA1), { transports: ['polling'], upgrade: false });
    const a2 = await connect(tokenFor('alice', sA2));
    const b1 = await connect(tokenFor('bob', sB1));
    const c1 = await connect(tokenFor('carol', sC1)); // the sender
    const d1 = await connect(tokenFor('dave'));
    await join(c1, R);
    await join(a2, R); // a member of the room, but not a target
    const recs = { a1, a1b, a2, b1, c1, d1 };
    const rec = Object.fromEntries(Object.entries(recs).map(([k, s]) => [k, recorder(s)]));

    const N = 25;
    const req = startSync(c1, {
      name: 'sync/st/to/v1', data: { n: N, sessions: [sA1, sB1, sA1, sC1, 'no-such-session'] }, receiver: R, cb: 'cb-to',
    });
    const { env } = await req.answer;
    assert.equal(env.status, 'success', show(env));
    assert.equal(env.result.serverOutput.mySession, sC1, 'ctx.user.session is the token sid');
    await Promise.all([rec.a1.waitStream(N), rec.a1b.waitStream(N), rec.b1.waitStream(N), rec.c1.waitFinal(1), rec.a2.waitFinal(1)]);
    await sleep(SETTLE_MS);

    const expected = seqs(N).map((i) => ({ seq: i, kind: 'to', from: sC1, cb: 'cb-to', fullName: 'sync/st/to/v1', status: 'stream' }));
    for (const k of ['a1', 'a1b', 'b1', 'c1']) assert.deepEqual(rec[k].stream(), expected, `target socket ${k}`);
    // Targets outside the room get the chunks only (no final frame).
    for (const k of ['a1', 'a1b', 'b1']) assert.equal(rec[k].finals().length, 0, `${k}: ${show(rec[k].finals())}`);
    // The sender is a target: its chunks all arrive before its answer.
    const names = rec.c1.names();
    const ansAt = names.indexOf(`sync-${req.index}`);
    assert.equal(names.slice(0, ansAt).filter((n) => n === 'sync').length, N, `sender events: ${show(names)}`);
    // Another session of alice (a room member), and dave: no stream frames.
    assert.equal(rec.a2.stream().length, 0, `alice's other session: ${show(rec.a2.stream())}`);
    assert.equal(rec.a2.finals().length, 1, 'a2 is a room member: the final frame only');
    assert.equal(rec.d1.events.length, 0, `dave: ${show(rec.d1.events)}`);
  });

  test('ctx.streamToUsers: every socket of every session of the listed users; other users get nothing', async () => {
    const R = room('users');
    const a1 = await connect(tokenFor('alice'));
    const a1b = await connect(tokenFor('alice')); // another session of alice
    const a2 = await connect(tokenFor('alice'), { transports: ['polling'], upgrade: false });
    const b1 = await connect(tokenFor('bob'));
    const c1 = await connect(tokenFor('carol')); // the sender, not a target
    const d1 = await connect(tokenFor('dave'));
    const e1 = await connect(null); // anonymous
    await join(c1, R);
    await join(d1, R);
    const rec = Object.fromEntries(Object.entries({ a1, a1b, a2, b1, c1, d1, e1 }).map(([k, s]) => [k, recorder(s)]));

    const N = 25;
    const req = startSync(c1, { name: 'sync/st/users/v1', data: { n: N, users: ['alice', 'bob', 'alice', 'nobody'] }, receiver: R });
    const { env } = await req.answer;
    assert.equal(env.status, 'success', show(env));
    await Promise.all(['a1', 'a1b', 'a2', 'b1'].map((k) => rec[k].waitStream(N)));
    await Promise.all([rec.c1.waitFinal(1), rec.d1.waitFinal(1)]);
    await sleep(SETTLE_MS);
    const expected = seqs(N).map((i) => ({
      seq: i, kind: 'users', from: 'carol', cb: 'sync/st/users/v1', fullName: 'sync/st/users/v1', status: 'stream',
    }));
    for (const k of ['a1', 'a1b', 'a2', 'b1']) {
      assert.deepEqual(rec[k].stream(), expected, `socket ${k}`);
      assert.equal(rec[k].finals().length, 0);
    }
    for (const k of ['c1', 'd1']) {
      assert.equal(rec[k].stream().length, 0, `${k} is not a target: ${show(rec[k].stream())}`);
      assert.equal(rec[k].finals().length, 1, `${k} is a room member`);
    }
    assert.equal(rec.e1.events.length, 0);
  });

  test('ctx.stream in a client file: each recipient gets its own chunks, in order, before its own final frame', async () => {
    const R = room('perrecip');
    const sender = await connect(tokenFor('carol'));
    const alice = await connect(tokenFor('alice'));
    const bob = await connect(tokenFor('bob'), { transports: ['polling'], upgrade: false });
    const anon = await connect(null);
    const outsider = await connect(tokenFor('dave'));
    for (const s of [sender, alice, bob, anon]) await join(s, R);
    const who = { carol: sender, alice, bob, anonymous: anon };
    const rec = Object.fromEntries(Object.entries(who).map(([k, s]) => [k, recorder(s)]));
    const outRec = recorder(outsider);

    const N = 8;
    const req = startSync(sender, { name: 'sync/st/perrecip/v1', data: { n: N }, receiver: R, cb: 'cb-pr' });
    const { env } = await req.answer;
    assert.equal(env.status, 'success', show(env));
    await Promise.all(Object.values(rec).map((r) => r.waitFinal(1)));
    await sleep(SETTLE_MS);
    for (const [name, r] of Object.entries(rec)) {
      const frames = r.syncFrames();
      assert.deepEqual(frames.slice(0, N), seqs(N).map((i) => ({
        seq: i, forWhom: name, cb: 'cb-pr', fullName: 'sync/st/perrecip/v1', status: 'stream',
      })), `recipient ${name}`);
      assert.equal(frames.length, N + 1, `${name}: ${show(frames)}`);
      assert.equal(frames[N].status, 'success');
      assert.deepEqual(frames[N].clientOutput, { forWhom: name });
    }
    assert.equal(req.chunks().length, 0, 'nothing on the sender progress channel');
    assert.equal(outRec.events.length, 0);
  });

  test('throttle: 2000 pieces of 1–4 chars with flushAtChars = 32 arrive complete and in order in ≤ 1/10 as many frames', async () => {
    const R = room('throttle');
    const sender = await connect(tokenFor('alice'));
    const member = await connect(tokenFor('bob'));
    for (const s of [sender, member]) await join(s, R);
    const recs = [sender, member].map(recorder);
    const PIECES = 2000;
    const { text } = throttleText(PIECES);

    const req = startSync(sender, {
      name: 'sync/st/throttle/v1', data: { pieces: PIECES, flushAtChars: 32, flushEveryMs: 50 }, receiver: R, cb: 'cb-th',
    });
    const { env } = await req.answer;
    assert.equal(env.status, 'success', show(env));
    assert.equal(env.result.serverOutput.chars, text.length);
    await Promise.all(recs.map((r) => r.waitFinal(1)));
    for (const [k, r] of recs.entries()) {
      const frames = r.syncFrames();
      assert.equal(frames.at(-1).status, 'success', `socket ${k}: the final frame comes last`);
      const chunks = frames.slice(0, -1);
      assert.ok(chunks.every((f) => f.status === 'stream' && f.cb === 'cb-th' && typeof f.chunk === 'string'),
        `socket ${k}: ${show(chunks.find((f) => f.status !== 'stream' || typeof f.chunk !== 'string'))}`);
      assert.equal(chunks.map((f) => f.chunk).join(''), text, `socket ${k}: concatenation`);
      assert.ok(chunks.length <= PIECES / 10, `socket ${k}: ${chunks.length} frames for ${PIECES} pieces`);
      assert.ok(chunks.every((f) => f.chunk.length > 0 && f.chunk.length <= 32 + 3),
        `socket ${k}: chunk sizes ${show(chunks.map((f) => f.chunk.length))}`);
    }
    const names = recs[0].names();
    const ansAt = names.indexOf(`sync-${req.index}`);
    const streamBefore = recs[0].events.slice(0, ansAt).filter((e) => e.name === 'sync' && e.arg.status === 'stream').length;
    assert.equal(streamBefore, recs[0].stream().length, 'every chunk reached the sender before its answer');
  });

  test('throttle: a pause longer than flushEveryMs in the source still flushes the buffered text during the pause; the rest is flushed before the answer', async () => {
    const R = room('pause');
    const sender = await connect(tokenFor('alice'));
    const member = await connect(tokenFor('bob'));
    for (const s of [sender, member]) await join(s, R);
    const [sRec, mRec] = [sender, member].map(recorder);
    const SLEEP = 200;
    const EVERY = 50;

    const req = startSync(sender, { name: 'sync/st/pause/v1', data: { sleepMs: SLEEP, flushEveryMs: EVERY }, receiver: R });
    const { env, t: answeredAt } = await req.answer;
    assert.equal(env.status, 'success', show(env));
    await mRec.waitFinal(1);

    const sleepMark = req.progress.find((p) => p.arg.phase === 'sleep');
    const wokeMark = req.progress.find((p) => p.arg.phase === 'woke');
    assert.ok(sleepMark && wokeMark, `progress: ${show(req.progress)}`);
    const chunkEvents = sRec.events.filter((e) => e.name === 'sync' && e.arg.status === 'stream');
    assert.deepEqual(chunkEvents.map((e) => e.arg.chunk), ['hello world', 'after'], show(chunkEvents.map((e) => e.arg)));
    const [during, last] = chunkEvents;
    // Server-side: the handler slept SLEEP ms; the timer flush came while it slept.
    assert.ok(wokeMark.arg.at - sleepMark.arg.at >= SLEEP - 5, `slept ${wokeMark.arg.at - sleepMark.arg.at} ms`);
    assert.ok(during.t > sleepMark.t && during.t < wokeMark.t,
      `the buffered text must arrive during the pause: sleep mark ${sleepMark.t.toFixed(0)}, chunk ${during.t.toFixed(0)}, woke mark ${wokeMark.t.toFixed(0)}`);
    const afterSleepStart = during.t - sleepMark.t;
    assert.ok(afterSleepStart < SLEEP, `flushed ${afterSleepStart.toFixed(0)} ms into a ${SLEEP} ms pause (flushEveryMs ${EVERY})`);
    assert.ok(last.t <= answeredAt, 'the text left in the buffer is flushed before the answer');
    // The member sees the same chunks, then the final frame.
    assert.deepEqual(mRec.syncFrames().map((f) => f.chunk ?? f.status), ['hello world', 'after', 'success']);
  });
});
