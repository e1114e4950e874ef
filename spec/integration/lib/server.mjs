// Harness: runs a real build/luckysync for the integration tests.
//
// startServer(opts) picks a free port, writes a temporary Lua config, spawns the binary, waits
// for the "listening" log line and returns a LuckySync handle. The handle collects stderr (one
// JSON object per line), watches it for sanitizer reports, and stop() fails when the process
// crashed, exited non-zero or printed an AddressSanitizer/LeakSanitizer/UBSan report. Every
// process this module starts is SIGKILLed when the test process exits, whatever happened.
//
// Binary: $LUCKYSYNC_BIN (relative paths resolve against the repository root), default
// build/luckysync. Example for the sanitizer build: LUCKYSYNC_BIN=build-asan/luckysync.

import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const ARTIFACTS_DIR = path.join(REPO_ROOT, 'spec/integration/artifacts');
export const HOST = '127.0.0.1';

const READY_TIMEOUT_MS = 10_000;
/** Backstop for a whole test (every wait inside has its own, shorter timeout). */
export const TEST_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

export function binPath() {
  const bin = process.env.LUCKYSYNC_BIN || 'build/luckysync';
  return path.resolve(REPO_ROOT, bin);
}

export function binExists() {
  return existsSync(binPath());
}

/* Every child still alive when this process exits is killed (a failed or interrupted test
 * must not leave servers behind). */
const liveChildren = new Set();
function killAllChildren() {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
process.on('exit', killAllChildren);
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.once(sig, () => {
    killAllChildren();
    process.exit(code);
  });
}

/** A TCP port that was free a moment ago: listen on 0, read it, close. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/* ---------- keys and config ---------- */

export const HS_SECRET = 'integration-test-secret-0123456789abcdef';

/** A fresh Ed25519 key pair: { privateKey (KeyObject), publicKey (KeyObject), x (base64url) }. */
export function makeEdKeys() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const { x } = publicKey.export({ format: 'jwk' });
  return { privateKey, publicKey, x };
}

/** Serialises a JS value as a Lua literal (objects → records, arrays → lists). */
export function toLua(value, indent = '') {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`toLua: ${value}`);
    return String(value);
  }
  if (typeof value === 'string') {
    let out = '"';
    for (const ch of Buffer.from(value, 'utf8')) {
      if (ch === 0x22 || ch === 0x5c) out += '\\' + String.fromCharCode(ch);
      else if (ch < 0x20 || ch >= 0x7f) out += '\\' + String(ch).padStart(3, '0');
      else out += String.fromCharCode(ch);
    }
    return out + '"';
  }
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '{}';
    return `{\n${value.map((v) => inner + toLua(v, inner)).join(',\n')}\n${indent}}`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const body = entries.map(([k, v]) => {
      const key = /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : `[${toLua(k)}]`;
      return `${inner}${key} = ${toLua(v, inner)}`;
    });
    return `{\n${body.join(',\n')}\n${indent}}`;
  }
  throw new Error(`toLua: unsupported ${typeof value}`);
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep merge for config objects; arrays and scalars in `over` replace those in `base`. */
export function deepMerge(base, over) {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

/** The config the tests use unless they override parts of it. */
export function defaultConfig(edX) {
  return {
    logLevel: 'debug',
    heartbeat: { pingIntervalMs: 300, pingTimeoutMs: 2000 }, // tolerant of a loaded CI machine
    limits: { maxPayload: 100000, handshakeTimeoutMs: 1000 },
    cors: { allowedOrigins: ['http://allowed.test'] },
    auth: {
      leewaySec: 0,
      sessionGraceMs: 500,
      keys: [
        { kid: 'hs', alg: 'HS256', secret: HS_SECRET },
        { kid: 'ed', alg: 'EdDSA', publicKey: edX },
      ],
    },
  };
}

/* ---------- the server process ---------- */

function tempDir(prefix) {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

let instanceCounter = 0;

export class LuckySync {
  /**
   * opts: { config (merged over defaultConfig; false: no config file, the binary's own
   *         defaults), edKeys, staticFiles: {name: content}, handlersDir, extraArgs: [],
   *         env: {extra environment variables}, label, artifactsDir (default ARTIFACTS_DIR) }
   */
  constructor(opts = {}) {
    this.opts = opts;
    this.edKeys = opts.edKeys || makeEdKeys();
    // One log file per label under artifactsDir (overwritten by the next run).
    this.label = opts.label || `luckysync-${process.pid}-${++instanceCounter}`;
    this.artifactsDir = opts.artifactsDir || ARTIFACTS_DIR;
    this.dir = tempDir('luckysync-it-');
    this.config = null;
    this.configPath = null;
    if (opts.config !== false) {
      this.config = deepMerge(defaultConfig(this.edKeys.x), opts.config || {});
      this.configPath = path.join(this.dir, 'config.lua');
      writeFileSync(this.configPath, `return ${toLua(this.config)}\n`);
    }
    this.handlersDir = opts.handlersDir || path.join(this.dir, 'handlers');
    mkdirSync(this.handlersDir, { recursive: true });
    if (opts.staticFiles) {
      this.staticDir = path.join(this.dir, 'static');
      mkdirSync(this.staticDir, { recursive: true });
      for (const [name, content] of Object.entries(opts.staticFiles)) {
        const file = path.join(this.staticDir, name);
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, content);
      }
    }
    this.port = 0;
    this.child = null;
    this.lines = []; // every stderr line of every run, in order
    this.problems = []; // crash / exit code / sanitizer reports, kept across restarts
    this.runs = 0;
  }

  get url() {
    return `http://${HOST}:${this.port}`;
  }

  get wsUrl() {
    return `ws://${HOST}:${this.port}`;
  }

  args() {
    const a = this.configPath ? ['--config', this.configPath] : [];
    a.push('--port', String(this.port), '--host', HOST, '--handlers', this.handlersDir);
    if (this.staticDir) a.push('--static', this.staticDir);
    return a.concat(this.opts.extraArgs || []);
  }

  /** Parsed JSON log records (lines that are not JSON are skipped). */
  logs() {
    const out = [];
    for (const line of this.lines) {
      try {
        const rec = JSON.parse(line);
        if (rec && typeof rec === 'object') out.push(rec);
      } catch {
        /* not JSON */
      }
    }
    return out;
  }

  tail(n = 60) {
    return this.lines.slice(-n).join('\n');
  }

  async start() {
    if (this.child) throw new Error('start(): already running');
    if (!this.port) this.port = await freePort();
    const bin = binPath();
    if (!existsSync(bin)) throw new Error(`luckysync binary not found at ${bin} (set LUCKYSYNC_BIN)`);
    this.runs++;
    this.lines.push(`--- run ${this.runs}: ${bin} ${this.args().join(' ')}`);
    const child = spawn(bin, this.args(), {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1',
        ...this.opts.env,
      },
    });
    this.child = child;
    liveChildren.add(child);
    child.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        liveChildren.delete(child);
        child.exitInfo = { code, signal };
        this.lines.push(`--- exit: code ${code}, signal ${signal}`);
        if (!child.stopping) {
          this.problems.push(`luckysync exited unexpectedly (code ${code}, signal ${signal})`);
        }
        resolve(child.exitInfo);
      });
    });
    child.on('error', (err) => this.problems.push(`spawn error: ${err.message}`));

    let buf = '';
    let onLine = () => {};
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.lines.push(line);
        if (SANITIZER_RE.test(line)) this.problems.push(`sanitizer: ${line}`);
        onLine(line);
      }
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      for (const line of chunk.split('\n')) if (line) this.lines.push(`[stdout] ${line}`);
    });

    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done();
        reject(new Error(`luckysync did not log "listening" within ${READY_TIMEOUT_MS} ms\n${this.tail()}`));
      }, READY_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        onLine = () => {};
      };
      onLine = (line) => {
        try {
          const rec = JSON.parse(line);
          if (rec && rec.msg === 'listening') {
            done();
            resolve();
          }
        } catch {
          /* not JSON */
        }
      };
      child.exited.then(({ code, signal }) => {
        done();
        reject(new Error(`luckysync exited before listening (code ${code}, signal ${signal})\n${this.tail()}`));
      });
    }).catch(async (err) => {
      await this.kill();
      throw err;
    });
    return this;
  }

  async kill() {
    const child = this.child;
    if (!child) return;
    child.stopping = true;
    if (!child.exitInfo) child.kill('SIGKILL');
    await child.exited;
    this.child = null;
  }

  /**
   * SIGTERM, wait up to 5 s (then SIGKILL). Records a problem when the process had to be
   * killed or did not exit with code 0. Does not throw: see check().
   */
  async halt() {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitInfo) return; // already dead: the exit handler recorded it
    child.stopping = true;
    child.kill('SIGTERM');
    let timer;
    const timedOut = await Promise.race([
      child.exited.then(() => false),
      new Promise((r) => { timer = setTimeout(() => r(true), STOP_TIMEOUT_MS); }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.problems.push(`luckysync did not stop within ${STOP_TIMEOUT_MS} ms of SIGTERM`);
      child.kill('SIGKILL');
      await child.exited;
      return;
    }
    const { code, signal } = child.exitInfo;
    // Graceful stop: exit code 0. Dying from the signal itself would also skip the
    // sanitizers' exit-time checks (LeakSanitizer), so it counts as a failure too.
    if (code !== 0) {
      this.problems.push(`luckysync exited with code ${code}, signal ${signal} after SIGTERM`);
    }
  }

  /** Throws when anything went wrong with the process so far (crash, sanitizer, exit code). */
  check() {
    if (this.problems.length) {
      throw new Error(`luckysync problems:\n  ${this.problems.join('\n  ')}\n--- stderr tail ---\n${this.tail(80)}`);
    }
  }

  /** Stops the process (see halt), saves its log under artifactsDir and cleans up. Does not
   * throw on process problems: they stay in `problems` (see check). */
  async shutdown() {
    try {
      await this.halt();
    } finally {
      this.saveLog();
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** shutdown(), then check(). */
  async stop() {
    await this.shutdown();
    this.check();
  }

  /** Stops and starts again on the same port. */
  async restart() {
    await this.halt();
    this.check();
    // The port was ours a moment ago; retry briefly in case the kernel still holds it.
    let lastErr;
    for (let attempt = 0; attempt < 5; attempt++) {
      const before = this.problems.length;
      try {
        return await this.start();
      } catch (err) {
        lastErr = err;
        this.problems.length = before; // the failed attempt is reported through lastErr
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw lastErr;
  }

  saveLog() {
    try {
      mkdirSync(this.artifactsDir, { recursive: true });
      writeFileSync(path.join(this.artifactsDir, `${this.label}.log`), this.lines.join('\n') + '\n');
    } catch {
      /* best effort */
    }
  }

  /** GET /luckysync/stats, parsed. */
  async stats() {
    const res = await fetch(`${this.url}/luckysync/stats`, { signal: AbortSignal.timeout(2000) });
    if (res.status !== 200) throw new Error(`GET /luckysync/stats → ${res.status}`);
    return res.json();
  }

  /** Polls stats until pred(stats) holds; throws with the last stats after timeoutMs. */
  async waitForStats(pred, timeoutMs = 3000, what = 'condition') {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      last = await this.stats();
      if (pred(last)) return last;
      if (Date.now() > deadline) {
        throw new Error(`stats never satisfied ${what} within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Creates and starts a server. On a start failure the process is already gone. */
export async function startServer(opts = {}) {
  const srv = new LuckySync(opts);
  try {
    await srv.start();
  } catch (err) {
    srv.saveLog();
    rmSync(srv.dir, { recursive: true, force: true });
    throw err;
  }
  return srv;
}

/**
 * Wraps a test body so that a failure carries the server's stderr tail (and anything the
 * harness noticed about the process). getServer is called at failure time.
 */
export function withServerLog(getServer, fn) {
  return async (t) => {
    try {
      await fn(t);
    } catch (err) {
      const srv = getServer();
      if (srv && err && typeof err === 'object') {
        const extra = `\n--- luckysync stderr (last 60 lines) ---\n${srv.tail(60)}` +
          (srv.problems.length ? `\n--- process problems ---\n${srv.problems.join('\n')}` : '');
        try {
          err.message += extra;
        } catch {
          /* read-only message */
        }
      }
      throw err;
    }
    // A crash or sanitizer report during the test fails that test, not only the teardown.
    const srv = getServer();
    if (srv && srv.problems.length) srv.check();
  };
}
