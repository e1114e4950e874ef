/* scen_rpc.c: the rpc and idle scenarios.
 *
 * rpc: N clients, each in a room of its own (the server requires the sender to be a member),
 * send `sync` requests to the trivial echo route with ignoreSelf, so nothing fans out and each
 * request costs one answer (`sync-<i>`). --window requests in flight per client, or --rate
 * requests/s in total (paced; a request beyond the window is shed and counted). The answer
 * echoes the send time: ack latency.
 *
 * idle: a few active rpc clients (paced, --rate, default 200/s) measured alone, then N idle
 * connections (Socket.IO connected, silent apart from pongs) are opened and the active clients
 * are measured again. The server's VmRSS (--server-pid) before and after the idle connections
 * gives the bytes each one costs. --on-ready / --on-done run around the second measurement. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"

#define ROUTE "sync/bench/echo/v1"

enum { ROLE_ACTIVE = 0, ROLE_IDLE = 1 };

struct rpc {
    unsigned n;
    unsigned joined;
    int sending;
    uint64_t t_pace;
    double per_client_rate;
    struct hist *cur; /* where answers' latency goes now (NULL: not recorded) */
    uint64_t sent, answered, counted, errs, shed;
    struct bconn **active;
};

static struct rpc *P(struct bench *b)
{
    return b->sd;
}

static void on_ready(struct bench *b, struct bconn *c)
{
    if (c->role != ROLE_ACTIVE)
        return;
    char pk[128];
    int n = snprintf(pk, sizeof pk, "42[\"joinRoom\",{\"group\":\"rpc-%u\",\"responseIndex\":0}]",
                     c->group);
    bench_send(b, c, pk, (size_t)n);
}

static void on_event(struct bench *b, struct bconn *c, const char *name, size_t nl,
                     const char *args, size_t n, size_t wire)
{
    (void)wire;
    struct rpc *p = P(b);
    const char *st = json_find(args, n, "status");
    int ok = st && (size_t)(args + n - st) >= 9 && memcmp(st, "\"success\"", 9) == 0;
    if (nl == 10 && memcmp(name, "joinRoom-0", 10) == 0) {
        if (ok)
            p->joined++;
        else
            bench_error(b, "connection %u: joinRoom failed: %.*s", c->idx, (int)(n < 80 ? n : 80),
                        args);
        return;
    }
    if (nl > 14 && memcmp(name, "sync-progress-", 14) == 0)
        return; /* LuckySync's cancel id */
    if (nl <= 5 || memcmp(name, "sync-", 5) != 0)
        return;
    c->last++;
    p->answered++;
    if (!ok) {
        p->errs++;
        const char *code = json_find(args, n, "errorCode");
        const char *s = NULL;
        size_t sl = 0;
        if (code)
            json_str(code, args + n, &s, &sl);
        bench_error(b, "connection %u: sync answered %.*s", c->idx, (int)(s ? sl : 40),
                    s ? s : args);
        return;
    }
    const char *ts = json_find(args, n, "t");
    int64_t t = 0;
    if (p->cur && ts && json_int(ts, args + n, &t) == 0) {
        hist_add(p->cur, b->now - (uint64_t)t);
        p->counted++;
    }
}

static const struct scenario_cb rpc_cb = {on_ready, on_event};

static void request(struct bench *b, struct rpc *p, struct bconn *c)
{
    char room[32];
    snprintf(room, sizeof room, "rpc-%u", c->group);
    c->seq++;
    p->sent++;
    size_t n = build_sync(b->sbuf, b->sbuf_cap, ROUTE, room, mono_ns(), c->seq, b->o.payload, 1);
    bench_send(b, c, b->sbuf, n);
}

static void tick(struct bench *b)
{
    struct rpc *p = P(b);
    if (!p->sending)
        return;
    for (unsigned i = 0; i < p->n; i++) {
        struct bconn *c = p->active[i];
        if (c->state != CS_READY)
            continue;
        if (p->per_client_rate > 0) {
            /* client i's slots are offset by i/n of a slot (evenly spread arrivals) */
            uint64_t due = (uint64_t)((double)(b->now - p->t_pace) / 1e9 * p->per_client_rate +
                                      (double)i / p->n);
            while (c->u1 < due) {
                c->u1++;
                if (c->seq - c->last >= b->o.window)
                    p->shed++;
                else
                    request(b, p, c);
            }
        } else {
            while (c->seq - c->last < b->o.window)
                request(b, p, c);
        }
    }
}

static int all_ready(struct bench *b)
{
    return b->nready + b->nfailed >= b->nconns;
}

static int all_joined(struct bench *b)
{
    return P(b)->joined + b->nfailed >= P(b)->n || b->errors;
}

static int drained(struct bench *b)
{
    struct rpc *p = P(b);
    for (unsigned i = 0; i < p->n; i++)
        if (p->active[i]->state == CS_READY && p->active[i]->last < p->active[i]->seq)
            return 0;
    return 1;
}

/* Connect and join the active clients. Returns 0, or 1 after recording the failure. */
static int setup_active(struct bench *b, struct rpc *p, unsigned n, double rate)
{
    memset(p, 0, sizeof *p);
    p->n = n ? n : 1;
    p->active = calloc(p->n, sizeof *p->active);
    p->per_client_rate = rate > 0 ? rate / p->n : 0;
    b->sd = p;
    b->cb = &rpc_cb;
    uint32_t first = bench_add_conns(b, p->n);
    for (unsigned i = 0; i < p->n; i++) {
        struct bconn *c = b->conns[first + i];
        c->role = ROLE_ACTIVE;
        c->group = i;
        p->active[i] = c;
    }
    bench_loop(b, all_ready, NULL, mono_ns() + (uint64_t)(b->o.connect_timeout * 2e9));
    if (b->nready < b->nconns || bench_loop(b, all_joined, NULL, mono_ns() + 30000000000ull) ||
        p->joined < p->n) {
        bench_error(b, "setup: %u/%u connected, %u joined", b->nready, b->nconns, p->joined);
        return 1;
    }
    p->sending = 1;
    p->t_pace = mono_ns();
    return 0;
}

static void restart_pacing(struct rpc *p)
{
    p->t_pace = mono_ns();
    for (unsigned i = 0; i < p->n; i++)
        p->active[i]->u1 = 0;
}

/* The kernel's slab (socket buffers and structures live there, outside any RSS), in kB. */
static long slab_kb(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    char line[128];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Slab:", 5) == 0) {
            kb = strtol(line + 5, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static void add_hist_table(struct result *r, const char *what, const struct hist *h)
{
    result_table(r, "  %s latency us  p50 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n", what,
                 hist_quantile(h, .5) / 1e3, hist_quantile(h, .99) / 1e3,
                 hist_quantile(h, .999) / 1e3, (double)h->max / 1e3);
}

int scen_rpc(struct bench *b, struct result *r)
{
    static struct rpc p;
    static struct hist h;
    hist_init(&h);
    double rate = b->o.rate > 0 ? b->o.rate : 0;
    unsigned n = b->o.clients ? b->o.clients : 100;
    if (setup_active(b, &p, n, rate)) {
        r->failed = 1;
        free(p.active);
        return 1;
    }
    if (b->o.warmup > 0)
        bench_loop(b, NULL, tick, mono_ns() + (uint64_t)(b->o.warmup * 1e9));
    if (b->o.on_ready) {
        p.sending = 0;
        bench_loop(b, drained, NULL, mono_ns() + (uint64_t)(b->o.drain * 1e9));
        run_hook("on-ready", b->o.on_ready);
        p.sending = 1;
        restart_pacing(&p);
    }
    struct measure m;
    measure_begin(b, &m);
    uint64_t a0 = p.answered, s0 = p.sent;
    p.cur = &h;
    bench_loop(b, NULL, tick, m.t0 + (uint64_t)(b->o.duration * 1e9));
    measure_end(b, &m);
    uint64_t answers = p.answered - a0, sent = p.sent - s0;
    p.cur = NULL;
    p.sending = 0;
    int drain_rc = bench_loop(b, drained, NULL, mono_ns() + (uint64_t)(b->o.drain * 1e9));
    run_hook("on-done", b->o.on_done);
    uint64_t unanswered = 0;
    for (unsigned i = 0; i < p.n; i++)
        unanswered += p.active[i]->seq - p.active[i]->last;
    double wall = measure_wall(&m);
    result_add(r, "\"clients\":%u,\"payload\":%u,\"rate\":%.0f,\"window\":%u", p.n, b->o.payload,
               rate, b->o.window);
    result_add(r, "\"sent\":%llu,\"answers\":%llu,\"answers_per_s\":%.0f", (unsigned long long)sent,
               (unsigned long long)answers, (double)answers / wall);
    result_hist(r, "latency", &h);
    result_add(r, "\"unanswered\":%llu,\"error_answers\":%llu,\"shed\":%llu,\"drained\":%s",
               (unsigned long long)unanswered, (unsigned long long)p.errs,
               (unsigned long long)p.shed, drain_rc == 0 ? "true" : "false");
    result_measure(r, b, &m);
    result_table(r, "  %u clients, payload %u B, ", p.n, b->o.payload);
    if (rate > 0)
        result_table(r, "paced %.0f req/s\n", rate);
    else
        result_table(r, "window %u per client\n", b->o.window);
    result_table(r, "  answers/s %.0f   unanswered %llu   errors %llu   shed %llu\n",
                 (double)answers / wall, (unsigned long long)unanswered, (unsigned long long)p.errs,
                 (unsigned long long)p.shed);
    add_hist_table(r, "ack", &h);
    if (unanswered || p.errs || drain_rc)
        r->failed = 1;
    free(p.active);
    return 0;
}

int scen_idle(struct bench *b, struct result *r)
{
    static struct rpc p;
    static struct hist h0, h1;
    hist_init(&h0);
    hist_init(&h1);
    double rate = b->o.rate >= 0 ? b->o.rate : 200;
    unsigned n = b->o.clients ? b->o.clients : 4;
    unsigned nidle = b->o.idle;
    if (setup_active(b, &p, n, rate)) {
        r->failed = 1;
        free(p.active);
        return 1;
    }
    double half = b->o.duration / 2;
    if (b->o.warmup > 0)
        bench_loop(b, NULL, tick, mono_ns() + (uint64_t)(b->o.warmup * 1e9));
    long rss0 = server_rss_kb(b->o.server_pid), slab0 = slab_kb();
    struct measure m0, m1;
    measure_begin(b, &m0);
    uint64_t a0 = p.answered;
    p.cur = &h0;
    bench_loop(b, NULL, tick, m0.t0 + (uint64_t)(half * 1e9));
    measure_end(b, &m0);
    uint64_t ans0 = p.answered - a0;
    p.cur = NULL;

    /* open the idle connections while the active clients keep going (not recorded) */
    uint32_t first = bench_add_conns(b, nidle);
    for (unsigned i = 0; i < nidle; i++)
        b->conns[first + i]->role = ROLE_IDLE;
    uint64_t t_conn = mono_ns();
    bench_loop(b, all_ready, tick,
               t_conn + (uint64_t)((b->o.connect_timeout + nidle / 200.0) * 1e9));
    double connect_s = (double)(mono_ns() - t_conn) / 1e9;
    unsigned idle_ok = 0;
    for (unsigned i = 0; i < nidle; i++)
        idle_ok += b->conns[first + i]->state == CS_READY;
    /* let the server settle (freed handshake state, pongs) before reading its RSS */
    bench_loop(b, NULL, tick, mono_ns() + 2000000000ull);
    long rss1 = server_rss_kb(b->o.server_pid), slab1 = slab_kb();

    run_hook("on-ready", b->o.on_ready); /* e.g. a profiler, for the window with idle conns */
    measure_begin(b, &m1);
    a0 = p.answered;
    p.cur = &h1;
    bench_loop(b, NULL, tick, m1.t0 + (uint64_t)(half * 1e9));
    measure_end(b, &m1);
    run_hook("on-done", b->o.on_done);
    uint64_t ans1 = p.answered - a0;
    p.cur = NULL;
    p.sending = 0;
    int drain_rc = bench_loop(b, drained, NULL, mono_ns() + (uint64_t)(b->o.drain * 1e9));
    long rss2 = server_rss_kb(b->o.server_pid);
    unsigned still = 0;
    for (unsigned i = 0; i < nidle; i++)
        still += b->conns[first + i]->state == CS_READY;
    uint64_t unanswered = 0;
    for (unsigned i = 0; i < p.n; i++)
        unanswered += p.active[i]->seq - p.active[i]->last;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    double per_conn =
        rss0 > 0 && rss1 > 0 && idle_ok ? (double)(rss1 - rss0) * 1024.0 / idle_ok : -1;
    result_add(r, "\"idle\":%u,\"idle_connected\":%u,\"idle_still_connected\":%u", nidle, idle_ok,
               still);
    result_add(r, "\"connect_s\":%.3f,\"connects_per_s\":%.0f", connect_s,
               connect_s > 0 ? idle_ok / connect_s : 0.0);
    result_add(r, "\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"rss_end_kb\":%ld", rss0, rss1,
               rss2);
    if (per_conn >= 0)
        result_add(r, "\"bytes_per_conn\":%.0f", per_conn);
    else
        result_add(r, "\"bytes_per_conn\":null");
    /* both ends of every connection live on this machine: the slab grows by a pair each */
    double slab_pair =
        slab0 > 0 && slab1 > 0 && idle_ok ? (double)(slab1 - slab0) * 1024.0 / idle_ok : -1;
    result_add(r, "\"slab_before_kb\":%ld,\"slab_after_kb\":%ld,\"kernel_bytes_per_pair\":%.0f",
               slab0, slab1, slab_pair);
    result_add(r, "\"active_clients\":%u,\"active_rate\":%.0f", p.n, rate);
    result_hist(r, "latency_alone", &h0);
    result_hist(r, "latency_with_idle", &h1);
    result_add(r, "\"answers_alone\":%llu,\"answers_with_idle\":%llu,\"unanswered\":%llu",
               (unsigned long long)ans0, (unsigned long long)ans1, (unsigned long long)unanswered);
    result_add(r, "\"gen_max_rss_kb\":%ld", ru.ru_maxrss);
    result_measure(r, b, &m1);
    result_table(r, "  %u idle connections: %u connected in %.1f s (%.0f/s), %u still at the end\n",
                 nidle, idle_ok, connect_s, connect_s > 0 ? idle_ok / connect_s : 0.0, still);
    if (per_conn >= 0)
        result_table(r, "  server RSS %ld -> %ld kB: %.0f bytes per idle connection\n", rss0, rss1,
                     per_conn);
    if (slab_pair >= 0)
        result_table(r, "  kernel slab %ld -> %ld kB: %.0f bytes per connection (both ends)\n",
                     slab0, slab1, slab_pair);
    result_table(r, "  %u active clients at %.0f req/s:\n", p.n, rate);
    add_hist_table(r, "alone    ", &h0);
    add_hist_table(r, "with idle", &h1);
    if (idle_ok < nidle || still < idle_ok || unanswered || p.errs || drain_rc)
        r->failed = 1;
    free(p.active);
    return 0;
}
