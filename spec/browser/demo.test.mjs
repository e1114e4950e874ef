// Browser test of the demo page (clients/demo/index.html) against a real LuckySync.
//
// Starts build/luckysync --dev (the page logs in through /luckysync/dev-token, which only
// exists with --dev) on the example handlers, serving clients/demo as static files, and drives
// Debian's Chromium (/usr/bin/chromium, headless) with playwright-core: two browser contexts
// are two users, alice and bob, in the page's default room "demo".
//
//   node --test spec/browser/          (from the repository root)
//
// The server process is run by the integration harness (spec/integration/lib/server.mjs), so
// the binary is the same: $LUCKYSYNC_BIN (relative paths resolve against the repository root),
// default build/luckysync; e.g. LUCKYSYNC_BIN=build-asan/luckysync for the sanitizer build.
// Needs: tools/setup.sh (chromium, npm ci in clients/demo and spec/browser).
// Leaves under spec/browser/artifacts/: a screenshot of each page and the server's log.
//
// Every wait is bounded (WAIT_MS); a step that does not happen fails its test, and the steps
// after a failed one fail at once instead of waiting again.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { LuckySync, REPO_ROOT as REPO } from '../integration/lib/server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = path.join(HERE, 'artifacts');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const JWT_SECRET = 'browser-test-secret-0123456789abcdef-not-for-production';

/** Every wait for something to happen in a page or in the server. */
const WAIT_MS = 10_000;
/** Backstop per test; the waits inside are shorter. */
const TEST_MS = 30_000;

/* The fake LLM's vocabulary, read from the handler itself: the expected answer for N tokens
 * is the first N words, cycling (handlers/chat/_sync/askAssistant_server_v1.lua). */
function assistantAnswer(tokens) {
  const src = readFileSync(path.join(REPO, 'handlers/chat/_sync/askAssistant_server_v1.lua'), 'utf8');
  const table = /local WORDS = \{([\s\S]*?)\n\}/.exec(src);
  assert.ok(table, 'askAssistant handler: WORDS table not found');
  const words = [...table[1].matchAll(/"([^"\\]*)"/g)].map((m) => m[1]);
  assert.ok(words.length > 0, 'askAssistant handler: WORDS is empty');
  let out = '';
  for (let i = 0; i < tokens; i++) out += words[i % words.length];
  return out;
}

/* ---------- pages ---------- */

/** A short picture of a page's state, for failure messages. */
async function pageState(page) {
  try {
    return await page.evaluate(() => {
      const t = (id) => (document.getElementById(id) || {}).textContent;
      // The page's own socket (a top-level `let` of its script): which transport the
      // Engine.IO client really is on, and whether it is stuck in an upgrade.
      let engine = null;
      try {
        const e = socket.io.engine;
        engine = { transport: e.transport.name, transportState: e.transport.readyState,
          upgrading: e.upgrading, readyState: e.readyState, writeBuffer: e.writeBuffer.length };
      } catch {
        /* no socket yet */
      }
      return JSON.stringify({
        status: t('status'), transport: t('transport'), engine, todo: t('todo'), doing: t('doing'),
        done: t('done'), answer: t('answer'), log: t('log'),
      }, null, 1);
    });
  } catch (err) {
    return `(page state unavailable: ${err.message})`;
  }
}

/** page.waitForFunction with WAIT_MS; a timeout says what was awaited and shows the page. */
async function waitInPage(user, what, fn, arg) {
  try {
    await user.page.waitForFunction(fn, arg, { timeout: WAIT_MS, polling: 50 });
  } catch (err) {
    throw new Error(`${user.name}: ${what} (not within ${WAIT_MS} ms)\n${err.message.split('\n')[0]}\n` +
      `--- ${user.name}'s page ---\n${await pageState(user.page)}\n` +
      `--- console ---\n${user.console.join('\n')}`);
  }
}

const text = (page, sel) => page.evaluate((s) => document.querySelector(s)?.textContent ?? null, sel);

/* ---------- the test ---------- */

describe('demo page in Chromium: two users in one room', { timeout: 120_000 }, () => {
  // luckysync --dev (no config file: the binary's defaults, the HS256 key from
  // LUCKYSYNC_JWT_SECRET) on the example handlers, serving the demo page. Its log goes to
  // artifacts/luckysync.log.
  const server = new LuckySync({
    config: false,
    handlersDir: path.join(REPO, 'handlers'),
    extraArgs: ['--dev', '--static', path.join(REPO, 'clients/demo')],
    env: { LUCKYSYNC_JWT_SECRET: JWT_SECRET },
    label: 'luckysync',
    artifactsDir: ARTIFACTS,
  });
  let persistent; // the context launchPersistentContext returns; closing it closes the browser
  let browser;
  let profileDir;
  const users = []; // { name, context, page, console: [], pageErrors: [] }
  let failed = null; // the first failed step: the later ones fail at once

  /** A test step; after a failed step the next ones fail immediately. */
  const step = (name, fn) => test(name, { timeout: TEST_MS }, async (t) => {
    if (failed) throw new Error(`not run: an earlier step failed (${failed})`);
    try {
      await fn(t);
    } catch (err) {
      failed = name;
      try {
        err.message += `\n--- luckysync stderr (last 30 lines) ---\n${server.tail(30)}`;
      } catch {
        /* read-only message */
      }
      throw err;
    }
  });

  /** Screenshots and console logs of both pages, browser closed, server stopped, its log
   * saved. Runs once: from the last step, or from after() when that step never ran. */
  let finished = null;
  const finish = () => (finished ??= (async () => {
    for (const u of users) {
      try {
        await u.page.screenshot({ path: path.join(ARTIFACTS, `demo-${u.name}.png`), fullPage: true, timeout: WAIT_MS });
      } catch (err) {
        console.error(`screenshot of ${u.name}'s page failed: ${err.message}`);
      }
      try {
        writeFileSync(path.join(ARTIFACTS, `demo-${u.name}.console.log`), u.console.join('\n') + '\n');
      } catch {
        /* best effort */
      }
    }
    try {
      if (persistent) await persistent.close();
    } catch (err) {
      console.error(`closing the browser failed: ${err.message}`);
    }
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    await server.shutdown(); // problems stay in server.problems, for the last test
  })());

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    for (const f of ['demo-alice.png', 'demo-bob.png', 'demo-alice.console.log', 'demo-bob.console.log', 'luckysync.log']) {
      rmSync(path.join(ARTIFACTS, f), { force: true });
    }
    await server.start();
    profileDir = mkdtempSync(path.join(os.tmpdir(), 'luckysync-chromium-'));
    // A persistent context is how playwright takes our own fresh --user-data-dir (launch()
    // refuses that flag); its default context stays unused, each user gets a new context
    // (independent cookies and storage) of the same browser.
    persistent = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: WAIT_MS,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    browser = persistent.browser();
    assert.ok(browser, 'playwright gave no Browser for the persistent context');
    for (const name of ['alice', 'bob']) {
      const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
      const page = await context.newPage();
      page.setDefaultTimeout(WAIT_MS);
      const user = { name, context, page, console: [], pageErrors: [] };
      page.on('console', (m) => {
        const loc = m.location();
        user.console.push(`[${m.type()}] ${m.text()}${loc && loc.url ? ` (${loc.url})` : ''}`);
      });
      page.on('pageerror', (err) => user.pageErrors.push(String(err && err.stack || err)));
      users.push(user);
    }
  });

  after(async () => {
    await finish();
  });

  const [alice, bob] = [() => users[0], () => users[1]];

  step('both users open the page, log in and end up on a websocket', async () => {
    await Promise.all(users.map(async (u) => {
      const res = await u.page.goto(`${server.url}/`, { timeout: WAIT_MS });
      assert.equal(res.status(), 200, `${u.name}: GET / → ${res.status()}`);
      // The page first connects without a token (it does not try to join the room then).
      await waitInPage(u, 'the anonymous connection never came up', () =>
        document.getElementById('status').textContent === 'connected' &&
        document.getElementById('log').textContent.includes('connected anonymously'));
      await u.page.fill('#user', u.name);
      const [tokenRes] = await Promise.all([
        u.page.waitForResponse((r) => r.url().includes('/luckysync/dev-token'), { timeout: WAIT_MS }),
        u.page.click('#login'),
      ]);
      assert.equal(tokenRes.status(), 200, `${u.name}: dev-token → ${tokenRes.status()}`);
      assert.ok((await tokenRes.json()).token, `${u.name}: dev-token answer without a token`);
      // Logged in: the new connection joins the room (the anonymous one could not).
      await waitInPage(u, 'status "connected" and room "demo" joined after logging in', () =>
        document.getElementById('status').textContent === 'connected' &&
        document.getElementById('log').textContent.includes('joined ["demo"]'));
      // Stuck on polling with engine.transportState "pausing" and upgrading true (see the
      // failure message) means the client got 3probe and waits for its held polling GET to be
      // answered before it sends 5; until then it sends nothing at all.
      await waitInPage(u, 'the transport shown never became websocket', () =>
        document.getElementById('transport').textContent === '(websocket)');
    }));
    for (const u of users) {
      assert.equal(await text(u.page, '#status'), 'connected', `${u.name}: status`);
      assert.equal(await text(u.page, '#transport'), '(websocket)', `${u.name}: transport`);
    }
  });

  const cardTitle = `Browser card ${process.pid}-${Date.now() % 100000}`;

  step('alice adds a card: it shows in the todo lane on both pages', async () => {
    await alice().page.fill('#title', cardTitle);
    await alice().page.click('#add');
    for (const u of users) {
      await waitInPage(u, `card "${cardTitle}" never appeared in todo`, (title) =>
        [...document.querySelectorAll('#todo .card')].filter((c) => c.textContent.startsWith(title)).length === 1,
      cardTitle);
    }
    for (const u of users) {
      const lanes = await u.page.evaluate((title) => ['todo', 'doing', 'done'].map((l) =>
        [...document.querySelectorAll(`#${l} .card`)].filter((c) => c.textContent.startsWith(title)).length), cardTitle);
      assert.deepEqual(lanes, [1, 0, 0], `${u.name}: the card in lanes todo/doing/done`);
    }
  });

  step('bob clicks the card: it moves to doing on both pages', async () => {
    await bob().page.locator('#todo .card', { hasText: cardTitle }).click({ timeout: WAIT_MS });
    for (const u of users) {
      await waitInPage(u, `card "${cardTitle}" never moved to doing`, (title) => {
        const count = (l) => [...document.querySelectorAll(`#${l} .card`)].filter((c) => c.textContent.startsWith(title)).length;
        return count('doing') === 1 && count('todo') === 0 && count('done') === 0;
      }, cardTitle);
    }
  });

  step('alice asks the assistant: the answer streams into both pages', async (t) => {
    const expected = assistantAnswer(120); // the page asks for 120 tokens, 20 ms apart
    // Record every change of #answer on both pages, to see that it arrives in pieces.
    for (const u of users) {
      await u.page.evaluate(() => {
        const el = document.getElementById('answer');
        window.__answerSeen = [el.textContent];
        new MutationObserver(() => window.__answerSeen.push(el.textContent))
          .observe(el, { childList: true, characterData: true, subtree: true });
      });
    }
    await alice().page.click('#ask');
    for (const u of users) {
      await waitInPage(u, 'the streamed answer never completed', (exp) =>
        document.getElementById('answer').textContent === exp, expected);
    }
    await waitInPage(alice(), 'the log never showed "assistant 120 tokens"', () =>
      document.getElementById('log').textContent.includes('assistant 120 tokens'));
    for (const u of users) {
      const seen = await u.page.evaluate(() => window.__answerSeen);
      // Streamed: several growing prefixes of the answer before the whole of it.
      const partial = [...new Set(seen)].filter((s) => s.length > 0 && s.length < expected.length);
      assert.ok(partial.length >= 2, `${u.name}: the answer did not stream (states seen: ${JSON.stringify(seen)})`);
      t.diagnostic(`${u.name}: the answer arrived in ${partial.length + 1} pieces`);
      for (const s of seen) assert.ok(expected.startsWith(s), `${u.name}: #answer held ${JSON.stringify(s)}, not a prefix of the answer`);
      assert.equal(seen.at(-1), expected, `${u.name}: final #answer`);
      assert.equal(await text(u.page, '#answer'), expected, `${u.name}: #answer`);
    }
  });

  step('no page errors, no devError, no refused sync on either page', async () => {
    for (const u of users) {
      assert.deepEqual(u.pageErrors, [], `${u.name}: uncaught errors in the page`);
      // The page logs "joined …", "assistant N tokens" and "sync <fullName> <output>" when
      // things work; anything else ("sync error …", "addCard …", "move …", "devError …",
      // "token …") is a failure it reported.
      const log = await text(u.page, '#log');
      const bad = log.split('\n').filter((l) => l && !/^(joined |connected anonymously|assistant \d+ tokens$|sync sync\/)/.test(l));
      assert.deepEqual(bad, [], `${u.name}: the page logged errors:\n${log}`);
      // Only the missing favicon may fail to load.
      const errors = u.console.filter((c) => c.startsWith('[error]') && !c.includes('/favicon.ico'));
      assert.deepEqual(errors, [], `${u.name}: console errors`);
    }
  });

  // Runs even after a failed step: the pages are photographed, the server must stop cleanly.
  test('screenshots taken; luckysync stops cleanly (exit 0, no sanitizer report)', { timeout: TEST_MS }, async () => {
    await finish();
    for (const u of users) {
      assert.ok(existsSync(path.join(ARTIFACTS, `demo-${u.name}.png`)), `no screenshot of ${u.name}'s page`);
    }
    assert.deepEqual(server.problems, [], `luckysync problems; stderr tail:\n${server.tail(60)}`);
  });
});
