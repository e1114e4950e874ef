// `luckysync check --handlers DIR` (exit 0 and "ok" on a good tree; non-zero with one
// "file:line: message" line per problem on a broken one) and `luckysync types` (TypeScript
// declarations of the routes and their input types).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { REPO_ROOT, binPath } from './lib/server.mjs';
import { fixtureHandlers } from './lib/sync.mjs';

const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

/** Runs the binary; resolves { code, stdout, stderr, out (both) } (10 s limit). */
function run(args) {
  return new Promise((resolve) => {
    execFile(binPath(), args, { cwd: REPO_ROOT, timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : err.signal ?? 'error') : 0;
      assert.doesNotMatch(stderr, SANITIZER_RE, `sanitizer report:\n${stderr}`);
      resolve({ code, stdout, stderr, out: `${stdout}${stderr}` });
    });
  });
}

describe('luckysync check / types', () => {
  let tmp;
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'luckysync-check-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  /** A copy of a good tree with `files` ({relative path: content}) added; returns its dir. */
  let treeCounter = 0;
  function treeWith(files) {
    const dir = path.join(tmp, `tree-${++treeCounter}`, 'handlers');
    cpSync(fixtureHandlers('reload'), dir, { recursive: true });
    // reload's usesmod route needs lua/modver.lua next to the handlers.
    cpSync(path.join(fixtureHandlers('reload'), '..', 'lua'), path.join(dir, '..', 'lua'), { recursive: true });
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      writeFileSync(path.join(dir, rel), content);
    }
    return dir;
  }

  it('check: exit 0 and "ok" on good trees (the examples and the test fixtures)', async () => {
    for (const dir of ['handlers', fixtureHandlers('sync'), fixtureHandlers('reload')]) {
      const r = await run(['check', '--handlers', dir]);
      assert.equal(r.code, 0, `check ${dir}: exit ${r.code}\n${r.out}`);
      assert.match(r.stdout, /^ok: \d+ routes?$/m, `check ${dir}: ${r.out}`);
    }
  });

  it('check: a broken tree exits non-zero with one file:line line per problem (syntax error, missing main, bad schema)', async () => {
    const r = await run(['check', '--handlers', fixtureHandlers('check-broken')]);
    assert.notEqual(r.code, 0, `exit code: ${r.out}`);
    assert.doesNotMatch(r.stdout, /^ok/m);
    const lines = r.out.split('\n').filter((l) => /^\S+\.lua:\d+: /.test(l));
    const named = (file) => lines.find((l) => l.includes(file));
    assert.match(named('a/_sync/syntax_server_v1.lua') ?? '', /syntax_server_v1\.lua:3: /, r.out);
    assert.match(named('a/_sync/nomain_server_v1.lua') ?? '', /nomain_server_v1\.lua:\d+: .*main/, r.out);
    assert.match(named('a/_sync/badschema_server_v1.lua') ?? '', /badschema_server_v1\.lua:\d+: .*integr/, r.out);
    assert.equal(named('fine_server_v1.lua'), undefined, 'the good file is not reported');
    assert.equal(lines.length, 3, `three problems:\n${r.out}`);
  });

  it('check: each kind of problem alone is caught, with its file named', async () => {
    const cases = [
      ['syntax', { 'r/_sync/bad_server_v1.lua': 'return {\n  main = function(ctx)\n    if then\n  end,\n}\n' }, /r\/_sync\/bad_server_v1\.lua:3: /],
      ['no main', { 'r/_sync/bad_server_v1.lua': 'return { input = {} }\n' }, /r\/_sync\/bad_server_v1\.lua:\d+: /],
      ['not a table', { 'r/_sync/bad_server_v1.lua': 'return 42\n' }, /r\/_sync\/bad_server_v1\.lua:\d+: /],
      ['bad schema', { 'r/_sync/bad_server_v1.lua': 'return { input = { n = { type = "string", min = 5, max = 1 } }, main = function() end }\n' }, /r\/_sync\/bad_server_v1\.lua:\d+: .*min/],
      ['error at load', { 'r/_sync/bad_server_v1.lua': 'local x = 1\nerror("top-level failure")\nreturn { main = function() end }\n' }, /r\/_sync\/bad_server_v1\.lua:2: .*top-level failure/],
      ['missing module', { 'r/_sync/bad_server_v1.lua': 'local m = require("does_not_exist")\nreturn { main = function() end }\n' }, /bad_server_v1\.lua:1: .*does_not_exist/],
      ['unknown field', { 'r/_sync/bad_server_v1.lua': 'return { mian = function() end, main = function() end }\n' }, /r\/_sync\/bad_server_v1\.lua:\d+: .*mian/],
      ['client file without main', { 'r/_sync/ver_client_v1.lua': 'return {}\n' }, /r\/_sync\/ver_client_v1\.lua:\d+: /],
      ['bad hook', { '_hooks.lua': 'return { preSyncFanout = 42 }\n' }, /_hooks\.lua:\d+: .*preSyncFanout/],
      ['bad file name', { 'r/_sync/whatever.lua': 'return { main = function() end }\n' }, /r\/_sync\/whatever\.lua/],
    ];
    for (const [what, files, re] of cases) {
      const r = await run(['check', '--handlers', treeWith(files)]);
      assert.notEqual(r.code, 0, `${what}: must fail\n${r.out}`);
      assert.match(r.out, re, `${what}:\n${r.out}`);
    }
    const missing = await run(['check', '--handlers', path.join(tmp, 'no-such-dir')]);
    assert.notEqual(missing.code, 0, `a missing folder: ${missing.out}`);
  });

  it('types: TypeScript declarations with every route and its input type', async () => {
    const r = await run(['types', '--handlers', 'handlers']);
    assert.equal(r.code, 0, r.out);
    const ts = r.stdout;
    assert.match(ts, /export interface SyncRoutes \{/);
    assert.match(ts, /export type SyncRouteName = keyof SyncRoutes;/);
    for (const route of ['sync/board/addCard/v1', 'sync/board/moveCard/v1', 'sync/chat/sendMessage/v1', 'sync/counter/increment/v1']) {
      assert.ok(ts.includes(`"${route}"`), `${route} in:\n${ts}`);
    }
    assert.match(ts, /"sync\/counter\/increment\/v1": \{ input: \{ by: number; counter: string \} \};/);
    assert.match(ts, /"sync\/board\/moveCard\/v1": \{ input: \{[^\n]*toLane: "todo" \| "doing" \| "done"[^\n]*\} \};/);
    assert.match(ts, /pos\?: number/);
    // Balanced braces: a cheap syntax sanity check.
    assert.equal((ts.match(/\{/g) || []).length, (ts.match(/\}/g) || []).length);

    const f = await run(['types', '--handlers', fixtureHandlers('sync')]);
    assert.equal(f.code, 0, f.out);
    assert.ok(f.stdout.includes('"sync/t/deep/nested/v2": { input: Record<string, unknown> };'), f.stdout);
    assert.match(f.stdout, /"sync\/t\/typed\/v1": \{ input: \{ color: "red" \| "green"; n: number; pos\?: \{ x: number; y: number \}; s: string; tags\?: string\[\] \} \};/);

    const broken = await run(['types', '--handlers', fixtureHandlers('check-broken')]);
    assert.notEqual(broken.code, 0, 'types refuses a broken tree');
  });
});
