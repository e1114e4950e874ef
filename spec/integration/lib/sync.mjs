// Helpers for the sync tests: servers started on a copy of a fixture handler tree, sync
// requests through socket.io-client (answer event, progress events, optional ack), and
// collectors of the `sync` fanout frames a socket receives.

import { cpSync, existsSync } from 'node:fs';
import path from 'node:path';

import { sleep, within } from './client.mjs';
import { LuckySync, REPO_ROOT } from './server.mjs';

export const FIXTURES_DIR = path.join(REPO_ROOT, 'spec/integration/fixtures');

/** The handlers folder of fixture `name` (spec/integration/fixtures/<name>/handlers). */
export function fixtureHandlers(name) {
  return path.join(FIXTURES_DIR, name, 'handlers');
}

/**
 * Starts a server on a private copy of fixture `name`'s handlers (so a test may change them):
 * the copy is srv.handlersDir, inside the server's temp dir, removed by stop(). A fixture's
 * `lua/` folder, if any, is copied next to it (the server's default lua dir).
 */
export async function startFixtureServer(name, opts = {}) {
  const srv = new LuckySync(opts);
  try {
    cpSync(fixtureHandlers(name), srv.handlersDir, { recursive: true });
    const lua = path.join(FIXTURES_DIR, name, 'lua');
    if (existsSync(lua)) cpSync(lua, path.join(srv.dir, 'lua'), { recursive: true });
    await srv.start();
  } catch (err) {
    await srv.stop().catch(() => {});
    throw err;
  }
  return srv;
}

let nextIndex = 700000;

/** A fresh responseIndex (distinct from the ones lib/client.mjs hands out). */
export const newIndex = () => nextIndex++;

/**
 * Emits `sync` {name, data, receiver, responseIndex, …extra} and resolves with
 * { answer, progress, order, ack, index, ms }:
 *   answer   – the `sync-<i>` envelope
 *   progress – every `sync-progress-<i>` payload received until the answer
 *   order    – event names in arrival order ('progress' / 'answer' / 'ack')
 *   ack      – the Socket.IO ack value (only with opts.ack)
 *   ms       – round-trip time until the answer (and the ack, with opts.ack)
 * opts: { ack: false, ms: 3000 }.
 */
export function syncRequest(socket, payload, opts = {}) {
  const { ack = false, ms = 3000 } = opts;
  const index = payload.responseIndex ?? newIndex();
  const progress = [];
  const order = [];
  const pname = `sync-progress-${index}`;
  const aname = `sync-${index}`;
  const onProgress = (p) => {
    progress.push(p);
    order.push('progress');
  };
  socket.on(pname, onProgress);
  const t0 = performance.now();
  const answer = new Promise((resolve) => {
    socket.once(aname, (env) => {
      order.push('answer');
      resolve(env);
    });
  });
  let ackP = null;
  const body = { ...payload, responseIndex: index };
  if (ack) {
    ackP = new Promise((resolve, reject) => {
      socket.timeout(ms).emit('sync', body, (err, value) => {
        if (err) reject(new Error(`no ack for sync ${payload.name} within ${ms} ms`));
        else {
          order.push('ack');
          resolve(value);
        }
      });
    });
  } else {
    socket.emit('sync', body);
  }
  const all = Promise.all([answer, ackP]).then(([env, ackValue]) => ({
    answer: env,
    ack: ackValue ?? undefined,
    progress,
    order,
    index,
    ms: performance.now() - t0,
  }));
  return within(all, ms, `answer ${aname} to ${payload.name}`).finally(() => {
    socket.off(pname, onProgress);
    socket.off(aname);
  });
}

/** syncRequest, resolving with the answer envelope only. */
export async function sync(socket, payload, opts) {
  return (await syncRequest(socket, payload, opts)).answer;
}

/**
 * Collects the `sync` frames a socket receives from now on.
 * Returns { frames, waitFor(n, ms), stop() }.
 */
export function collectFrames(socket) {
  const frames = [];
  const waiters = [];
  const handler = (frame) => {
    frames.push(frame);
    for (const w of [...waiters]) {
      if (frames.length >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(frames);
      }
    }
  };
  socket.on('sync', handler);
  return {
    frames,
    waitFor(n, ms = 3000) {
      if (frames.length >= n) return Promise.resolve(frames);
      const p = new Promise((resolve) => waiters.push({ n, resolve }));
      return within(p, ms, `${n} sync frame(s), got ${frames.length}`);
    },
    stop() {
      socket.off('sync', handler);
    },
  };
}

/** Waits `ms` so that frames that should NOT arrive would have had the time to. */
export const settle = (ms = 150) => sleep(ms);

/** A short JSON rendering of a value, for assertion messages. */
export const show = (v) => JSON.stringify(v)?.slice(0, 600);
