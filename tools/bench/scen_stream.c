/* scen_stream.c: one streaming request to a room of M members, --repeat times in a row.
 *
 * The route sync/bench/stream/v1 (tools/bench/handlers) produces --tokens tokens of 1-4
 * characters, pushes each through ctx.functions.createStreamThrottle into ctx.broadcastStream
 * without sleeping, and returns the whole text in serverOutput. Every member concatenates the
 * `chunk` fields of the `status:"stream"` frames it receives and, on the final `sync` frame,
 * compares them with serverOutput.text: a lost, duplicated or reordered piece shows as a
 * mismatch. Reported: stream frames and wire bytes per token (per member), and the time from
 * the request to each member's final frame. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define ROUTE "sync/bench/stream/v1"
#define TEXT_MAX (4u << 20)

enum { ROLE_MEMBER = 0, ROLE_SENDER = 1 };

struct stream {
    unsigned M, joined, done, round;
    uint64_t t_sent;
    uint64_t frames, bytes, chars, mismatches, bad_frames, answers, answer_errs;
    uint64_t final_bytes;
    struct hist finish;
    char *tmp;
};

static struct stream *S(struct bench *b)
{
    return b->sd;
}

static void on_ready(struct bench *b, struct bconn *c)
{
    (void)c;
    static const char pk[] = "42[\"joinRoom\",{\"group\":\"stream-0\",\"responseIndex\":1}]";
    bench_send(b, c, pk, sizeof pk - 1);
}

static void append(struct bconn *c, const char *s, size_t n)
{
    if (c->text_len + n > c->text_cap) {
        size_t cap = c->text_cap ? c->text_cap : 8192;
        while (cap < c->text_len + n)
            cap *= 2;
        c->text = realloc(c->text, cap);
        if (!c->text)
            abort();
        c->text_cap = cap;
    }
    memcpy(c->text + c->text_len, s, n);
    c->text_len += n;
}

static void on_member_frame(struct bench *b, struct bconn *c, const char *args, size_t n,
                            size_t wire)
{
    struct stream *s = S(b);
    const char *end = args + n, *st = json_find(args, n, "status"), *v;
    size_t vl;
    if (!st || !json_str(st, end, &v, &vl)) {
        s->bad_frames++;
        return;
    }
    if (vl == 6 && memcmp(v, "stream", 6) == 0) {
        const char *ch = json_find(args, n, "chunk"), *cs;
        size_t cl;
        long ul;
        if (!ch || !json_str(ch, end, &cs, &cl) ||
            (ul = json_unescape(cs, cl, s->tmp, TEXT_MAX)) < 0) {
            s->bad_frames++;
            return;
        }
        append(c, s->tmp, (size_t)ul);
        s->frames++;
        s->bytes += wire;
        s->chars += (uint64_t)ul;
        return;
    }
    if (vl != 7 || memcmp(v, "success", 7) != 0) {
        s->bad_frames++;
        bench_error(b, "connection %u: sync frame with status %.*s", c->idx, (int)vl, v);
        return;
    }
    /* the final frame: serverOutput.text is the whole stream */
    const char *so = json_find(args, n, "serverOutput");
    const char *tx = so ? json_find(so, (size_t)(end - so), "text") : NULL, *ts;
    size_t tl;
    long ul;
    if (!tx || !json_str(tx, end, &ts, &tl) || (ul = json_unescape(ts, tl, s->tmp, TEXT_MAX)) < 0) {
        s->bad_frames++;
        bench_error(b, "connection %u: final frame without serverOutput.text", c->idx);
        return;
    }
    s->final_bytes += wire;
    if ((size_t)ul != c->text_len || memcmp(s->tmp, c->text, c->text_len) != 0) {
        s->mismatches++;
        bench_error(b,
                    "connection %u: streamed text (%zu chars) differs from serverOutput.text "
                    "(%ld chars)",
                    c->idx, c->text_len, ul);
    }
    c->text_len = 0;
    hist_add(&s->finish, b->now - s->t_sent);
    s->done++;
}

static void on_event(struct bench *b, struct bconn *c, const char *name, size_t nl,
                     const char *args, size_t n, size_t wire)
{
    struct stream *s = S(b);
    if (nl == 10 && memcmp(name, "joinRoom-1", 10) == 0) {
        s->joined++;
        return;
    }
    if (nl == 4 && memcmp(name, "sync", 4) == 0) {
        if (c->role == ROLE_MEMBER)
            on_member_frame(b, c, args, n, wire);
        return;
    }
    if (c->role == ROLE_SENDER && nl > 5 && memcmp(name, "sync-", 5) == 0 &&
        !(nl > 14 && memcmp(name, "sync-progress-", 14) == 0)) {
        s->answers++;
        const char *st = json_find(args, n, "status");
        if (!st || memcmp(st, "\"success\"", 9) != 0) {
            s->answer_errs++;
            bench_error(b, "stream request answered %.*s", (int)(n < 120 ? n : 120), args);
        }
    }
}

static const struct scenario_cb stream_cb = {on_ready, on_event};

static int all_ready(struct bench *b)
{
    return b->nready + b->nfailed >= b->nconns;
}

static int all_joined(struct bench *b)
{
    return S(b)->joined + b->nfailed >= b->nconns || b->errors;
}

static int round_done(struct bench *b)
{
    struct stream *s = S(b);
    return (s->done >= (uint64_t)s->M * (s->round + 1) && s->answers >= s->round + 1) || b->errors;
}

int scen_stream(struct bench *b, struct result *r)
{
    static struct stream s;
    memset(&s, 0, sizeof s);
    hist_init(&s.finish);
    s.M = b->o.members ? b->o.members : 1;
    s.tmp = malloc(TEXT_MAX);
    b->sd = &s;
    b->cb = &stream_cb;
    unsigned tokens = b->o.tokens ? b->o.tokens : 2000;
    unsigned repeat = b->o.repeat ? b->o.repeat : 1;
    uint32_t first = bench_add_conns(b, s.M + 1);
    struct bconn *sender = b->conns[first];
    sender->role = ROLE_SENDER;
    bench_loop(b, all_ready, NULL, mono_ns() + (uint64_t)(b->o.connect_timeout * 2e9));
    if (b->nready < b->nconns || bench_loop(b, all_joined, NULL, mono_ns() + 30000000000ull) ||
        s.joined < b->nconns) {
        bench_error(b, "setup: %u/%u connected, %u joined", b->nready, b->nconns, s.joined);
        r->failed = 1;
        free(s.tmp);
        return 1;
    }
    run_hook("on-ready", b->o.on_ready);
    struct measure m;
    measure_begin(b, &m);
    int timeouts = 0;
    for (s.round = 0; s.round < repeat && !b->errors; s.round++) {
        char pk[512];
        int n = snprintf(pk, sizeof pk,
                         "42[\"sync\",{\"name\":\"%s\",\"data\":{\"tokens\":%u,\"seed\":%u},"
                         "\"receiver\":\"stream-0\",\"ignoreSelf\":true,\"cb\":\"s%u\","
                         "\"responseIndex\":%u}]",
                         ROUTE, tokens, s.round + 1, s.round + 1, s.round + 1);
        s.t_sent = mono_ns();
        bench_send(b, sender, pk, (size_t)n);
        if (bench_loop(b, round_done, NULL, mono_ns() + (uint64_t)(b->o.drain * 1e9)) != 0) {
            timeouts++;
            bench_error(b, "stream round %u: %llu/%u members finished", s.round + 1,
                        (unsigned long long)(s.done - (uint64_t)s.M * s.round), s.M);
            break;
        }
    }
    measure_end(b, &m);
    run_hook("on-done", b->o.on_done);
    double per_member = s.done ? (double)s.frames / (double)s.done : 0;
    double fpt = per_member / tokens, bpt = s.done ? (double)s.bytes / (double)s.done / tokens : 0;
    double chars = s.done ? (double)s.chars / (double)s.done : 0;
    result_add(r, "\"members\":%u,\"tokens\":%u,\"repeat\":%u,\"finished\":%llu", s.M, tokens,
               repeat, (unsigned long long)s.done);
    result_add(r,
               "\"frames_per_member\":%.1f,\"frames_per_token\":%.4f,\"bytes_per_token\":%.2f,"
               "\"chars_per_request\":%.0f,\"final_frame_bytes\":%.0f",
               per_member, fpt, bpt, chars, s.done ? (double)s.final_bytes / (double)s.done : 0.0);
    result_hist(r, "finish", &s.finish);
    result_add(r, "\"mismatches\":%llu,\"bad_frames\":%llu,\"timeouts\":%d",
               (unsigned long long)s.mismatches, (unsigned long long)s.bad_frames, timeouts);
    result_measure(r, b, &m);
    result_table(r, "  %u tokens to %u members, %u requests: %.1f frames per member per request\n",
                 tokens, s.M, repeat, per_member);
    result_table(r, "  frames/token %.4f   wire bytes/token %.2f   (text %.0f chars)\n", fpt, bpt,
                 chars);
    result_table(r, "  request -> each member's final frame: p50 %.1f ms  max %.1f ms\n",
                 hist_quantile(&s.finish, .5) / 1e6, (double)s.finish.max / 1e6);
    result_table(r, "  mismatches %llu   bad frames %llu\n", (unsigned long long)s.mismatches,
                 (unsigned long long)s.bad_frames);
    if (s.mismatches || s.bad_frames || timeouts || s.done < (uint64_t)s.M * repeat ||
        s.answer_errs)
        r->failed = 1;
    free(s.tmp);
    return 0;
}
