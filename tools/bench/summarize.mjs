// Summaries of luckysync-bench JSON lines (tools/bench/compare). Not in the measuring path.
//
//   node summarize.mjs table RESULTS.jsonl
//       medians per scenario and server, ratios LuckySync / Socket.IO against issue 5's
//       targets, as Markdown tables (the format docs/PERFORMANCE.md uses)
//   node summarize.mjs rate RESULTS.jsonl SCENARIO ROOMS MEMBERS PAYLOAD
//       the paced request rate for a latency run at the same offered load on both servers:
//       half of the slower server's median throughput (fanout: requests/s; rpc: answers/s)
import { readFileSync } from "node:fs";

const [mode, file, ...rest] = process.argv.slice(2);
const runs = readFileSync(file, "utf8")
  .split("\n")
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));

const median = (xs) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
// Runs disturbed by other processes on our cores (a shared machine) count only when no clean
// run of the same measurement exists.
const DISTURBED = 0.15;
const isDisturbed = (r) => r.foreign && (r.foreign.server_core > DISTURBED || r.foreign.gen_core > DISTURBED);
const clean = (list) => {
  const c = list.filter((r) => !isDisturbed(r));
  return c.length ? c : list;
};
const pick = (filter, label, f) => median(clean(runs.filter((r) => filter(r) && r.label === label)).map(f));
const fmt = (x, d = 0) =>
  Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }) : "–";
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b ? a / b : NaN);
const verdict = (ok) => (ok === undefined ? "" : ok ? "met" : "**missed**");
const LS = "luckysync";
const WIDE_LABEL = "luckysync-wide";
const SIO = "socketio";

if (mode === "rate") {
  const [scen, rooms, members, payload, load] = rest.map((x, i) => (i ? Number(x) : x));
  const share = load > 0 && load < 1 ? load : 0.5;
  let tput;
  if (scen === "fanout") {
    const f = (r) => r.scenario === "fanout" && r.rooms === rooms && r.members === members &&
      r.payload === payload && r.rate === 0 && r.ok;
    tput = Math.min(pick(f, LS, (r) => r.requests_per_s), pick(f, SIO, (r) => r.requests_per_s));
  } else {
    const f = (r) => r.scenario === "rpc" && r.rate === 0 && r.ok;
    tput = Math.min(pick(f, LS, (r) => r.answers_per_s), pick(f, SIO, (r) => r.answers_per_s));
  }
  console.log(Number.isFinite(tput) ? Math.max(1, Math.round(tput * share)) : 0);
  process.exit(0);
}

const out = [];
const p = (s = "") => out.push(s);
const usPer = (r, n) => (r.server && n ? (r.server.cpu_s * 1e6) / n : NaN);

// ---- fanout, throughput ----
const shapes = [...new Set(runs.filter((r) => r.scenario === "fanout").map((r) => `${r.rooms}x${r.members}x${r.payload}`))];
const fanRows = [];
for (const s of shapes) {
  const [rooms, members, payload] = s.split("x").map(Number);
  const f = (r) => r.scenario === "fanout" && r.rooms === rooms && r.members === members &&
    r.payload === payload && r.rate === 0;
  if (!runs.some(f)) continue;
  fanRows.push({ rooms, members, payload, f });
}
if (fanRows.length) {
  p("### Fanout: delivered messages/s (as fast as a window of requests per publisher allows; medians)");
  p();
  p("| rooms × members | payload | LuckySync msg/s | Socket.IO msg/s | ratio | target ≥ 10× | server CPU µs/msg LS / SIO | sink msg/s |");
  p("| --- | --- | ---: | ---: | ---: | --- | --- | ---: |");
  for (const { rooms, members, payload, f } of fanRows) {
    const a = pick(f, LS, (r) => r.deliveries_per_s), b = pick(f, SIO, (r) => r.deliveries_per_s);
    const ca = pick(f, LS, (r) => usPer(r, r.delivered)), cb = pick(f, SIO, (r) => usPer(r, r.delivered));
    const k = ratio(a, b);
    p(`| ${rooms} × ${members} | ${payload} B | ${fmt(a)} | ${fmt(b)} | ${fmt(k, 2)}× | ${verdict(Number.isFinite(k) ? k >= 10 : undefined)} | ${fmt(ca, 2)} / ${fmt(cb, 2)} | ${fmt(pick(f, "sink", (r) => r.deliveries_per_s))} |`);
  }
  p();
}

// ---- fanout, latency at the same offered load ----
const paced = runs.filter((r) => r.scenario === "fanout" && r.rate > 0 && (r.label === LS || r.label === SIO));
const pacedKeys = [...new Set(paced.map((r) => `${r.rooms}x${r.members}x${r.payload}x${r.rate}`))];
if (pacedKeys.length) {
  p("### Fanout: end-to-end latency at the same offered load (paced at a share of the slower server's throughput; medians)");
  p();
  p("The last column is the measurement floor: the same paced load against `luckysync-bench sink`, a");
  p("trivial C server (no JSON, no handler), when `compare` ran it.");
  p();
  p("The load column is the offered rate over the slower server's median throughput in this file");
  p("(`compare --load`, 0.5 by default).");
  p();
  p("| rooms × members | payload | load | offered msg/s | LuckySync p50 / p99 / max ms | Socket.IO p50 / p99 / max ms | p99 ratio | target ≤ 0.2 | sink p50 / p99 ms |");
  p("| --- | --- | ---: | ---: | --- | --- | ---: | --- | --- |");
  for (const k of pacedKeys) {
    const [rooms, members, payload, rate] = k.split("x").map(Number);
    const f = (r) => r.scenario === "fanout" && r.rooms === rooms && r.members === members &&
      r.payload === payload && r.rate === rate;
    const lat = (lbl) => [0.5, 0.99, 1].map((q) => pick(f, lbl, (r) =>
      (q === 1 ? r.latency.max_us : q === 0.5 ? r.latency.p50_us : r.latency.p99_us) / 1000));
    const a = lat(LS), b = lat(SIO);
    const k99 = ratio(a[1], b[1]);
    const fl = lat("sink");
    const floor = Number.isFinite(fl[0]) ? `${fmt(fl[0], 2)} / ${fmt(fl[1], 2)}` : "–";
    const full = (r) => r.scenario === "fanout" && r.rooms === rooms && r.members === members &&
      r.payload === payload && r.rate === 0 && r.ok;
    const slower = Math.min(pick(full, LS, (r) => r.requests_per_s), pick(full, SIO, (r) => r.requests_per_s));
    const share = Number.isFinite(slower) && slower > 0 ? fmt(rate / slower, 2) : "–";
    p(`| ${rooms} × ${members} | ${payload} B | ${share} | ${fmt(rate * members)} | ${a.map((x) => fmt(x, 2)).join(" / ")} | ${b.map((x) => fmt(x, 2)).join(" / ")} | ${fmt(k99, 2)} | ${verdict(Number.isFinite(k99) ? k99 <= 0.2 : undefined)} | ${floor} |`);
  }
  p();
}

// ---- rpc ----
const rpcKeys = [...new Set(runs.filter((r) => r.scenario === "rpc").map((r) => `${r.clients}x${r.rate}x${r.window}`))];
if (rpcKeys.length) {
  p("### rpc: answers/s and ack latency (medians)");
  p();
  p("| clients | load | LuckySync answers/s | Socket.IO answers/s | ratio | target ≥ 5× | p50 / p99 ms LS | p50 / p99 ms SIO | server CPU µs/request LS / SIO | sink answers/s |");
  p("| --- | --- | ---: | ---: | ---: | --- | --- | --- | --- | ---: |");
  for (const key of rpcKeys) {
    const [clients, rate, window] = key.split("x").map(Number);
    const f = (r) => r.scenario === "rpc" && r.clients === clients && r.rate === rate && r.window === window;
    if (!runs.some((r) => f(r) && (r.label === LS || r.label === SIO))) continue;
    const a = pick(f, LS, (r) => r.answers_per_s), b = pick(f, SIO, (r) => r.answers_per_s);
    const k = ratio(a, b);
    const l = (lbl) => `${fmt(pick(f, lbl, (r) => r.latency.p50_us / 1000), 2)} / ${fmt(pick(f, lbl, (r) => r.latency.p99_us / 1000), 2)}`;
    p(`| ${clients} | ${rate ? `paced ${fmt(rate)}/s` : `window ${window}`} | ${fmt(a)} | ${fmt(b)} | ${fmt(k, 2)}× | ${rate ? "" : verdict(Number.isFinite(k) ? k >= 5 : undefined)} | ${l(LS)} | ${l(SIO)} | ${fmt(pick(f, LS, (r) => usPer(r, r.answers)), 2)} / ${fmt(pick(f, SIO, (r) => usPer(r, r.answers)), 2)} | ${fmt(pick(f, "sink", (r) => r.answers_per_s))} |`);
  }
  p();
}

// ---- idle ----
const idle = runs.filter((r) => r.scenario === "idle");
if (idle.length) {
  p("### idle: server RSS per idle connection, and the active clients' latency");
  p();
  p("| server | idle conns | connected | RSS before → after | bytes / conn | target ≤ 2048 B | active p50 / p99 ms alone | with idle |");
  p("| --- | ---: | ---: | --- | ---: | --- | --- | --- |");
  const idleKeys = [...new Set(idle.map((r) => `${r.label}|${r.idle}`))];
  for (const key of idleKeys) {
    const list = clean(idle.filter((r) => `${r.label}|${r.idle}` === key));
    const r = list[list.length - 1];
    const b = r.bytes_per_conn;
    p(`| ${r.label} | ${fmt(r.idle)} | ${fmt(r.idle_connected)} | ${fmt(r.rss_before_kb / 1024, 1)} → ${fmt(r.rss_after_kb / 1024, 1)} MB | ${fmt(b)} | ${r.label === LS || r.label === WIDE_LABEL ? verdict(b <= 2048) : ""} | ${fmt(r.latency_alone.p50_us / 1000, 2)} / ${fmt(r.latency_alone.p99_us / 1000, 2)} | ${fmt(r.latency_with_idle.p50_us / 1000, 2)} / ${fmt(r.latency_with_idle.p99_us / 1000, 2)} |`);
  }
  p();
}

// ---- stream ----
const streams = runs.filter((r) => r.scenario === "stream");
if (streams.length) {
  p("### stream: 2000 tokens through the throttle to a room (medians)");
  p();
  p("| server | members | frames / member | frames / token | wire bytes / token | request → final frame p50 / max ms | mismatches |");
  p("| --- | ---: | ---: | ---: | ---: | --- | ---: |");
  for (const lbl of [LS, SIO]) {
    const f = (r) => r.scenario === "stream";
    if (!runs.some((r) => f(r) && r.label === lbl)) continue;
    p(`| ${lbl} | ${pick(f, lbl, (r) => r.members)} | ${fmt(pick(f, lbl, (r) => r.frames_per_member), 1)} | ${fmt(pick(f, lbl, (r) => r.frames_per_token), 4)} | ${fmt(pick(f, lbl, (r) => r.bytes_per_token), 2)} | ${fmt(pick(f, lbl, (r) => r.finish.p50_us / 1000), 1)} / ${fmt(pick(f, lbl, (r) => r.finish.max_us / 1000), 1)} | ${runs.filter((r) => f(r) && r.label === lbl).reduce((s, r) => s + r.mismatches, 0)} |`);
  }
  p();
}

// ---- wide reads: limits.wsReadBytes = 4096 (compare's third server) ----
const WIDE = "luckysync-wide";
if (runs.some((r) => r.label === WIDE)) {
  p("### Wide reads: the same server with `limits.wsReadBytes = 4096` (medians)");
  p();
  p("lws reads at most `wsReadBytes` of a WebSocket per readiness event, and every connection holds a");
  p("receive buffer of that size. The default (256) keeps an idle connection under 2 KB; 4096 reads a");
  p("burst of requests in a few reads instead of about one read per request.");
  p();
  p("| measurement | LuckySync (256) | LuckySync (4096) | Socket.IO | ratio 256 / 4096 | target |");
  p("| --- | ---: | ---: | ---: | --- | --- |");
  const rpcF = (r) => r.scenario === "rpc" && r.rate === 0 && r.clients === 100 && r.window === 16;
  if (runs.some((r) => rpcF(r) && r.label === WIDE)) {
    const a = pick(rpcF, LS, (r) => r.answers_per_s), w = pick(rpcF, WIDE, (r) => r.answers_per_s), b = pick(rpcF, SIO, (r) => r.answers_per_s);
    p(`| rpc answers/s (100 clients, window 16) | ${fmt(a)} | ${fmt(w)} | ${fmt(b)} | ${fmt(ratio(a, b), 2)}× / ${fmt(ratio(w, b), 2)}× | ≥ 5×: ${verdict(ratio(a, b) >= 5)} / ${verdict(ratio(w, b) >= 5)} |`);
  }
  for (const payload of [100, 1000]) {
    const f = (r) => r.scenario === "fanout" && r.rate === 0 && r.rooms === 100 && r.members === 10 && r.payload === payload;
    if (!runs.some((r) => f(r) && r.label === WIDE)) continue;
    const a = pick(f, LS, (r) => r.deliveries_per_s), w = pick(f, WIDE, (r) => r.deliveries_per_s), b = pick(f, SIO, (r) => r.deliveries_per_s);
    p(`| fanout 100 × 10, ${payload} B, msg/s | ${fmt(a)} | ${fmt(w)} | ${fmt(b)} | ${fmt(ratio(a, b), 2)}× / ${fmt(ratio(w, b), 2)}× | ≥ 10×: ${verdict(ratio(a, b) >= 10)} / ${verdict(ratio(w, b) >= 10)} |`);
  }
  const idleF = (r) => r.scenario === "idle" && r.idle === 10000;
  if (runs.some((r) => idleF(r) && r.label === WIDE)) {
    const a = pick(idleF, LS, (r) => r.bytes_per_conn), w = pick(idleF, WIDE, (r) => r.bytes_per_conn), b = pick(idleF, SIO, (r) => r.bytes_per_conn);
    p(`| RSS per idle connection (10k), bytes | ${fmt(a)} | ${fmt(w)} | ${fmt(b)} | | ≤ 2048: ${verdict(a <= 2048)} / ${verdict(w <= 2048)} |`);
  }
  p();
}

// ---- the generator's ceiling: the same traffic against the sink ----
const sinkRuns = runs.filter((r) => r.label === "sink" && !(r.rate > 0)); // paced rows: the latency table
if (sinkRuns.length) {
  p("### The generator's ceiling: the same scenarios against `luckysync-bench sink`");
  p();
  p("| scenario | shape | payload | msg/s (fanout: delivered; rpc: answers) | generator CPU | sink CPU |");
  p("| --- | --- | ---: | ---: | ---: | ---: |");
  for (const r of sinkRuns) {
    const shape = r.scenario === "fanout" ? `${r.rooms} × ${r.members}, window ${r.window}` : `${r.clients} clients, window ${r.window}`;
    const v = r.scenario === "fanout" ? r.deliveries_per_s : r.answers_per_s;
    p(`| ${r.scenario} | ${shape} | ${r.payload} B | ${fmt(v)} | ${fmt(r.gen.util * 100)} % | ${r.server ? fmt(r.server.util * 100) : "–"} % |`);
  }
  p();
}

// ---- generator ----
const gen = runs.filter((r) => r.gen);
if (gen.length) {
  const maxUtil = Math.max(...gen.map((r) => r.gen.util));
  p(`Generator CPU: at most ${fmt(maxUtil * 100)} % of its core in any run (median ${fmt(median(gen.map((r) => r.gen.util)) * 100)} %).`);
}
const nd = runs.filter(isDisturbed).length;
if (nd) p(`Runs disturbed by other processes (> ${DISTURBED * 100} % of a core on the server's or the generator's core): ${nd} of ${runs.length}, left out of the medians where a clean run of the same measurement exists.`);
const bad = runs.filter((r) => !r.ok);
p(`Functional errors: ${bad.length ? bad.map((r) => `${r.label} ${r.scenario}: ${r.first_error || "see JSON"}`).join("; ") : "none"} (${runs.length} runs).`);
console.log(out.join("\n"));
