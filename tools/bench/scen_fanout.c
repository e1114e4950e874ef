/* scen_fanout.c: R rooms x M members, one publisher per room.
 *
 * Every member joins its room; the publisher joins it too (the server requires the sender to
 * be a member) and sends `sync` requests to the trivial echo route with ignoreSelf, so each
 * request reaches the M members exactly once. The request's data carries the send time and a
 * per-room sequence number; members check that sequences arrive in order without gaps and
 * record send → receive latency. Flow control: with --rate 0 each publisher keeps --window
 * requests in flight, a request counting as done when its answer is in and every member has
 * received it (so the server's queues stay bounded whoever is slower); with --rate N the
 * publishers are paced to N requests/s in total and a request that would exceed the window is
 * shed (counted), never queued. Latency counts every message sent inside the measured
 * window, even when it arrives during the drain. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define ROUTE "sync/bench/echo/v1"

enum { ROLE_MEMBER = 0, ROLE_PUB = 1 };
enum { PH_JOIN, PH_RUN, PH_DRAIN };

struct room {
    uint64_t sent, acked, acked_ok, delivered;
    struct bconn *pub;
};

struct fan {
    unsigned R, M;
    struct room *rooms;
    unsigned joined;
    int phase, sending;
    uint64_t t_pace, t_measure; /* pacing origin; start of the measured window (0: not yet) */
    double per_pub_rate;
    uint64_t shed, gaps, reordered, unexpected, acks_err;
    uint64_t win_delivered, win_acks, win_sent, win_wire;
    uint64_t lat_delivered; /* deliveries of messages sent in the window */
    struct hist lat, ack;
};

static struct fan *F(struct bench *b)
{
    return b->sd;
}

static void on_ready(struct bench *b, struct bconn *c)
{
    char pk[128];
    int n = snprintf(pk, sizeof pk, "42[\"joinRoom\",{\"group\":\"fan-%u\",\"responseIndex\":1}]",
                     c->group);
    bench_send(b, c, pk, (size_t)n);
}

static int is_name(const char *name, size_t nl, const char *lit)
{
    size_t l = strlen(lit);
    return nl == l && memcmp(name, lit, l) == 0;
}

static int status_success(const char *args, size_t n)
{
    const char *s = json_find(args, n, "status");
    return s && (size_t)(args + n - s) >= 9 && memcmp(s, "\"success\"", 9) == 0;
}

static void error_answer(struct bench *b, struct bconn *c, const char *what, const char *args,
                         size_t n)
{
    const char *code = json_find(args, n, "errorCode");
    const char *s = NULL;
    size_t sl = 0;
    if (code)
        json_str(code, args + n, &s, &sl);
    bench_error(b, "connection %u: %s answered %.*s", c->idx, what, (int)(s ? sl : 40),
                s ? s : args);
}

static void on_delivery(struct bench *b, struct bconn *c, const char *args, size_t n, size_t wire)
{
    struct fan *f = F(b);
    /* serverOutput is {"t":…,"s":…,"pad":…} in any order (a Lua table's) */
    const char *ts = json_find(args, n, "t"), *ss = json_find(args, n, "s");
    int64_t t = 0, s = 0;
    if (!ts || !ss || json_int(ts, args + n, &t) != 0 || json_int(ss, args + n, &s) != 0) {
        bench_error(b, "connection %u: a sync frame without t/s", c->idx);
        return;
    }
    struct room *rm = &f->rooms[c->group];
    rm->delivered++;
    uint64_t seq = (uint64_t)s;
    if (seq == c->last + 1) {
        c->last = seq;
    } else if (seq <= c->last) {
        f->reordered++;
    } else {
        f->gaps += seq - c->last - 1;
        c->last = seq;
    }
    if (f->t_measure && f->phase == PH_RUN) {
        f->win_delivered++;
        f->win_wire += wire;
    }
    if (f->t_measure && (uint64_t)t >= f->t_measure) {
        hist_add(&f->lat, b->now - (uint64_t)t);
        f->lat_delivered++;
    }
}

static void on_answer(struct bench *b, struct bconn *c, const char *args, size_t n)
{
    struct fan *f = F(b);
    struct room *rm = &f->rooms[c->group];
    rm->acked++;
    c->last++; /* answers received */
    if (!status_success(args, n)) {
        f->acks_err++;
        error_answer(b, c, "sync", args, n);
        return;
    }
    rm->acked_ok++;
    const char *ts = json_find(args, n, "t");
    int64_t t = 0;
    if (ts && json_int(ts, args + n, &t) == 0 && f->t_measure && (uint64_t)t >= f->t_measure)
        hist_add(&f->ack, b->now - (uint64_t)t);
    if (f->t_measure && f->phase == PH_RUN)
        f->win_acks++;
}

static void on_event(struct bench *b, struct bconn *c, const char *name, size_t nl,
                     const char *args, size_t n, size_t wire)
{
    struct fan *f = F(b);
    if (is_name(name, nl, "sync")) {
        if (c->role == ROLE_MEMBER)
            on_delivery(b, c, args, n, wire);
        else
            f->unexpected++;
    } else if (is_name(name, nl, "joinRoom-1")) {
        if (status_success(args, n))
            f->joined++;
        else
            error_answer(b, c, "joinRoom", args, n);
    } else if (nl > 14 && memcmp(name, "sync-progress-", 14) == 0) {
        /* LuckySync's cancel id, first on the progress channel: not an answer */
    } else if (nl > 5 && memcmp(name, "sync-", 5) == 0 && c->role == ROLE_PUB) {
        on_answer(b, c, args, n);
    }
}

static const struct scenario_cb fanout_cb = {on_ready, on_event};

/* Requests of this publisher not yet complete: answered and received by every member. */
static uint64_t outstanding(struct fan *f, struct bconn *p)
{
    struct room *rm = &f->rooms[p->group];
    uint64_t done = rm->delivered / f->M;
    if (p->last < done)
        done = p->last;
    return p->seq > done ? p->seq - done : 0;
}

static void publish(struct bench *b, struct bconn *p)
{
    struct fan *f = F(b);
    char room[32];
    snprintf(room, sizeof room, "fan-%u", p->group);
    p->seq++;
    f->rooms[p->group].sent++;
    if (f->t_measure && f->phase == PH_RUN)
        f->win_sent++;
    size_t n = build_sync(b->sbuf, b->sbuf_cap, ROUTE, room, mono_ns(), p->seq, b->o.payload, 1);
    bench_send(b, p, b->sbuf, n);
}

static void tick(struct bench *b)
{
    struct fan *f = F(b);
    if (!f->sending)
        return;
    for (unsigned r = 0; r < f->R; r++) {
        struct bconn *p = f->rooms[r].pub;
        if (p->state != CS_READY)
            continue;
        if (b->o.rate > 0) {
            /* publisher r's slots are offset by r/R of a slot: the rooms' requests arrive
             * evenly spread, not all publishers at the same instant */
            uint64_t due = (uint64_t)((double)(b->now - f->t_pace) / 1e9 * f->per_pub_rate +
                                      (double)r / f->R);
            while (p->u1 < due) { /* u1: pacing slots used */
                p->u1++;
                if (outstanding(f, p) >= b->o.window)
                    f->shed++;
                else
                    publish(b, p);
            }
        } else {
            while (outstanding(f, p) < b->o.window)
                publish(b, p);
        }
    }
}

static int all_ready(struct bench *b)
{
    return b->nready + b->nfailed >= b->nconns;
}

static int all_joined(struct bench *b)
{
    return F(b)->joined + b->nfailed >= b->nconns || b->errors;
}

static int drained(struct bench *b)
{
    struct fan *f = F(b);
    for (unsigned r = 0; r < f->R; r++) {
        struct room *rm = &f->rooms[r];
        if (rm->pub->state == CS_CLOSED)
            continue;
        if (rm->acked < rm->sent || rm->delivered < rm->acked_ok * f->M)
            return 0;
    }
    return 1;
}

int scen_fanout(struct bench *b, struct result *r)
{
    static struct fan f;
    memset(&f, 0, sizeof f);
    f.R = b->o.rooms ? b->o.rooms : 1;
    f.M = b->o.members ? b->o.members : 1;
    f.rooms = calloc(f.R, sizeof *f.rooms);
    hist_init(&f.lat);
    hist_init(&f.ack);
    b->sd = &f;
    b->cb = &fanout_cb;
    double rate = b->o.rate > 0 ? b->o.rate : 0;
    f.per_pub_rate = rate / f.R;

    uint32_t first = bench_add_conns(b, f.R * (f.M + 1));
    for (unsigned rm = 0; rm < f.R; rm++)
        for (unsigned i = 0; i <= f.M; i++) {
            struct bconn *c = b->conns[first + rm * (f.M + 1) + i];
            c->group = rm;
            c->role = i == 0 ? ROLE_PUB : ROLE_MEMBER;
            if (i == 0)
                f.rooms[rm].pub = c;
        }
    uint64_t t_conn = mono_ns();
    bench_loop(b, all_ready, NULL, t_conn + (uint64_t)(b->o.connect_timeout * 2e9));
    double connect_s = (double)(mono_ns() - t_conn) / 1e9;
    if (b->nready < b->nconns || bench_loop(b, all_joined, NULL, mono_ns() + 30000000000ull) ||
        f.joined < b->nconns) {
        bench_error(b, "setup: %u/%u connected, %u joined", b->nready, b->nconns, f.joined);
        r->failed = 1;
        free(f.rooms);
        return 1;
    }

    f.phase = PH_RUN;
    f.sending = 1;
    f.t_pace = mono_ns();
    if (b->o.warmup > 0)
        bench_loop(b, NULL, tick, mono_ns() + (uint64_t)(b->o.warmup * 1e9));
    if (b->o.on_ready) {
        /* quiesce first so the hook sees an idle server, then restart pacing */
        f.sending = 0;
        bench_loop(b, drained, NULL, mono_ns() + (uint64_t)(b->o.drain * 1e9));
        run_hook("on-ready", b->o.on_ready);
        f.sending = 1;
        f.t_pace = mono_ns();
        for (unsigned rm = 0; rm < f.R; rm++)
            f.rooms[rm].pub->u1 = 0;
    }
    struct measure m;
    measure_begin(b, &m);
    f.t_measure = m.t0;
    bench_loop(b, NULL, tick, m.t0 + (uint64_t)(b->o.duration * 1e9));
    measure_end(b, &m);
    f.sending = 0;
    f.phase = PH_DRAIN;
    uint64_t t_drain = mono_ns();
    int drain_rc = bench_loop(b, drained, NULL, t_drain + (uint64_t)(b->o.drain * 1e9));
    double drain_s = (double)(mono_ns() - t_drain) / 1e9;
    run_hook("on-done", b->o.on_done);

    uint64_t lost = 0, unanswered = 0, sent = 0, delivered = 0;
    for (unsigned rm = 0; rm < f.R; rm++) {
        struct room *x = &f.rooms[rm];
        sent += x->sent;
        delivered += x->delivered;
        unanswered += x->sent - x->acked;
        if (x->delivered < x->acked_ok * f.M)
            lost += x->acked_ok * f.M - x->delivered;
    }
    double wall = measure_wall(&m);
    double dps = (double)f.win_delivered / wall;
    result_add(r, "\"rooms\":%u,\"members\":%u,\"payload\":%u,\"rate\":%.0f,\"window\":%u", f.R,
               f.M, b->o.payload, rate, b->o.window);
    result_add(r, "\"connect_s\":%.3f", connect_s);
    result_add(r,
               "\"sent\":%llu,\"answers\":%llu,\"delivered\":%llu,\"deliveries_per_s\":%.0f,"
               "\"requests_per_s\":%.1f,\"offered_deliveries_per_s\":%.0f",
               (unsigned long long)f.win_sent, (unsigned long long)f.win_acks,
               (unsigned long long)f.win_delivered, dps, (double)f.win_acks / wall, rate * f.M);
    result_add(r, "\"bytes_per_delivery\":%.1f",
               f.win_delivered ? (double)f.win_wire / (double)f.win_delivered : 0.0);
    result_hist(r, "latency", &f.lat);
    result_hist(r, "ack_latency", &f.ack);
    result_add(r,
               "\"total_sent\":%llu,\"total_delivered\":%llu,\"lost\":%llu,\"unanswered\":%llu,"
               "\"gaps\":%llu,\"reordered\":%llu,\"unexpected\":%llu,\"shed\":%llu,"
               "\"error_answers\":%llu,\"drained\":%s,\"drain_s\":%.3f",
               (unsigned long long)sent, (unsigned long long)delivered, (unsigned long long)lost,
               (unsigned long long)unanswered, (unsigned long long)f.gaps,
               (unsigned long long)f.reordered, (unsigned long long)f.unexpected,
               (unsigned long long)f.shed, (unsigned long long)f.acks_err,
               drain_rc == 0 ? "true" : "false", drain_s);
    result_measure(r, b, &m);
    result_table(r, "  %u rooms x %u members, payload %u B, %s", f.R, f.M, b->o.payload,
                 rate > 0 ? "paced" : "window");
    if (rate > 0)
        result_table(r, " %.0f req/s (offered %.0f deliveries/s)", rate, rate * f.M);
    else
        result_table(r, " %u per publisher", b->o.window);
    result_table(r, "\n  deliveries/s %.0f   requests/s %.1f   bytes/delivery %.0f\n", dps,
                 (double)f.win_acks / wall,
                 f.win_delivered ? (double)f.win_wire / (double)f.win_delivered : 0.0);
    result_table(r, "  latency us  p50 %.0f  p99 %.0f  max %.0f   (ack p50 %.0f p99 %.0f)\n",
                 hist_quantile(&f.lat, .5) / 1e3, hist_quantile(&f.lat, .99) / 1e3,
                 (double)f.lat.max / 1e3, hist_quantile(&f.ack, .5) / 1e3,
                 hist_quantile(&f.ack, .99) / 1e3);
    result_table(r, "  lost %llu  gaps %llu  reordered %llu  unanswered %llu  shed %llu\n",
                 (unsigned long long)lost, (unsigned long long)f.gaps,
                 (unsigned long long)f.reordered, (unsigned long long)unanswered,
                 (unsigned long long)f.shed);
    if (lost || f.gaps || f.reordered || unanswered || f.unexpected || f.acks_err || drain_rc != 0)
        r->failed = 1;
    free(f.rooms);
    return 0;
}
