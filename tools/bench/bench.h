/* bench.h: luckysync-bench, the load generator of tools/bench (issue 5).
 *
 * One thread, one epoll loop, non-blocking sockets. Each client connection is a raw WebSocket
 * (RFC 6455, masked client frames) carrying Engine.IO v4 / Socket.IO v5 text packets, so no
 * Node sits in the measuring path. Modules:
 *   bench.c      command line, shared loop helpers, JSON and table output
 *   client.c     client connections: connect, HTTP upgrade, frames, Engine.IO, Socket.IO
 *   scen_*.c     the scenarios (fanout, rpc + idle, stream), written as sequential phases
 *   sink.c       `sink`: a trivial server with the same wire, to show the generator's ceiling
 *   hist.c       log-linear latency histogram
 *   util.c       clocks, JSON scanning (no allocation), SHA-1 and base64 for the handshake
 * Nothing here is shared with the server's code: the generator is an independent client. */
#ifndef LUCKYSYNC_BENCH_H
#define LUCKYSYNC_BENCH_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_SRC_IPS 16
#define BENCH_ERR_MAX 256

/* ---- util.c ---- */

uint64_t mono_ns(void);
/* Find `"key":` in s[0..n); returns the first byte after the colon, or NULL. */
const char *json_find(const char *s, size_t n, const char *key);
/* Parse an integer at p (leading spaces allowed). Returns 0 or -1. */
int json_int(const char *p, const char *end, int64_t *out);
/* p points at a JSON string ('"'): its raw content (escapes kept) in *str and *len, and the end
 * of the string (past the closing quote) as the return value; NULL if unterminated. */
const char *json_str(const char *p, const char *end, const char **str, size_t *len);
/* An RFC 6455 (§5.2) frame header at h[0..avail): the payload length and the header length
 * without the masking key. 0 when the header is not complete yet, else 1. */
int ws_frame_len(const unsigned char *h, size_t avail, uint64_t *len, size_t *hl);
/* The end of the JSON value starting at p (object, array, string, number, literal), or NULL. */
const char *json_value_end(const char *p, const char *end);
/* Unescape a JSON string's raw content into dst (cap bytes); returns the length or -1. */
long json_unescape(const char *s, size_t n, char *dst, size_t cap);
void sha1(const void *data, size_t len, unsigned char out[20]);
/* Standard base64 with padding; out must hold 4 * ((len + 2) / 3) + 1 bytes. */
void base64_encode(const unsigned char *in, size_t len, char *out);
/* A fast non-cryptographic generator for masking keys and ids. */
uint32_t xorshift32(uint32_t *state);

/* ---- hist.c ---- */

#define HIST_SUB_BITS 5
#define HIST_BUCKETS (64 << HIST_SUB_BITS)

/* Latency in nanoseconds, ~3 % resolution, exact max. Caller allocates (it is ~16 KB). */
struct hist {
    uint64_t count, max, sum;
    uint64_t b[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_add(struct hist *h, uint64_t v);
/* The value at quantile q (0..1), in ns; 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

/* ---- options ---- */

struct opts {
    const char *scenario;
    const char *host; /* server address, from --url */
    int port;
    char host_header[128]; /* host:port for the Host header */
    unsigned rooms, members, clients, idle, window, repeat, tokens;
    unsigned payload; /* bytes of the request's data object */
    double rate;      /* requests/s over all senders; 0 = as fast as the window allows */
    double duration, warmup, drain;
    const char *token; /* Socket.IO CONNECT auth token, or NULL */
    const char *label; /* free text copied into the JSON (e.g. the server's name) */
    int server_pid;
    const char *on_ready, *on_done; /* shell commands run around the measured window */
    struct in_addr src[BENCH_MAX_SRC_IPS];
    unsigned nsrc;
    unsigned connect_parallel; /* handshakes in flight at once */
    double connect_timeout;
    int json;
    int sink_port; /* sink: port to listen on */
};

/* ---- client.c ---- */

enum conn_state {
    CS_NEW = 0,
    CS_CONNECTING, /* TCP connect in progress */
    CS_UPGRADING,  /* HTTP upgrade sent, waiting for 101 */
    CS_EIO_OPEN,   /* waiting for the Engine.IO open packet */
    CS_SIO_WAIT,   /* Socket.IO CONNECT sent */
    CS_READY,      /* Socket.IO connected */
    CS_CLOSED,
};

struct bench;

/* One client connection. `user` fields belong to the scenario. */
struct bconn {
    int fd;
    uint32_t idx;
    enum conn_state state;
    unsigned dirty : 1, want_out : 1, in_epoll : 1, failed : 1;
    uint32_t mask_state;
    char *rx; /* a partial frame (or HTTP response) carried over between reads */
    uint32_t rx_len, rx_cap;
    char *msg; /* a fragmented message being reassembled */
    uint32_t msg_len, msg_cap;
    char *tx; /* bytes not yet written */
    uint32_t tx_len, tx_off, tx_cap;
    uint32_t src;    /* index into opts.src, for bind() */
    uint64_t t_open; /* when the connect started */
    /* scenario state */
    uint32_t group; /* room index */
    uint32_t role;
    uint64_t seq;    /* next request sequence number (senders) */
    uint64_t last;   /* last sequence seen (members) or answers (senders) */
    uint64_t out;    /* requests outstanding (senders) */
    uint64_t u1, u2; /* free per scenario */
    char *text;      /* stream: concatenated chunks */
    size_t text_len, text_cap;
};

/* What a scenario hears from the connections. */
struct scenario_cb {
    /* The connection finished the Socket.IO CONNECT. */
    void (*ready)(struct bench *b, struct bconn *c);
    /* One Socket.IO EVENT: name (raw) and the rest of the array after the name's comma
     * (args, ending with ']'). wire is the WebSocket frame's payload length. */
    void (*event)(struct bench *b, struct bconn *c, const char *name, size_t name_len,
                  const char *args, size_t args_len, size_t wire);
};

struct bench {
    struct opts o;
    int ep;
    struct sockaddr_in dst;
    struct bconn **conns;
    uint32_t nconns, conns_cap;
    uint32_t next_connect; /* conns[next_connect..] not yet started */
    uint32_t inflight;     /* connects + handshakes in progress */
    uint32_t nready, nclosed, nfailed;
    struct bconn **dirty;
    uint32_t ndirty;
    const struct scenario_cb *cb;
    void *sd; /* scenario data */
    uint64_t now;
    char *rbuf; /* shared read buffer */
    size_t rbuf_cap;
    char *sbuf; /* shared scratch for building packets */
    size_t sbuf_cap;
    uint32_t rnd;
    /* counters */
    uint64_t frames_rx, bytes_rx, frames_tx, bytes_tx, reads, writes, pings;
    uint64_t errors;
    char first_error[BENCH_ERR_MAX];
    int interrupted;
    int expect_close; /* closing at the end: server closes are not errors */
};

int bench_init(struct bench *b);
void bench_free(struct bench *b);
/* Record a functional error (kept: the first message). */
void bench_error(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Add n connections (state CS_NEW); they start connecting inside bench_loop, at most
 * opts.connect_parallel at a time. Returns the index of the first one. */
uint32_t bench_add_conns(struct bench *b, uint32_t n);
/* Run the loop until done(b) is true (returns 0) or deadline passes (returns -1; with
 * done == NULL reaching the deadline is the normal end and returns 0). tick (may be NULL) is
 * called at least every millisecond. */
int bench_loop(struct bench *b, int (*done)(struct bench *b), void (*tick)(struct bench *b),
               uint64_t deadline);
/* Queue a Socket.IO event packet text (e.g. `42["sync",{…}]`) as a masked text frame. */
void bench_send(struct bench *b, struct bconn *c, const char *packet, size_t len);
/* Close every connection (RST, so no TIME_WAIT piles up between runs). */
void bench_close_all(struct bench *b);

/* ---- scenarios ---- */

/* The result of one run, printed as one JSON line (and a table). Scenarios fill `json` with
 * their own fields (without braces) and `table` with human lines. */
struct result {
    char json[4096];
    size_t json_len;
    char table[4096];
    size_t table_len;
    int failed; /* functional failure: lost, reordered, mismatched, connection errors */
};

void result_add(struct result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void result_table(struct result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void result_hist(struct result *r, const char *name, const struct hist *h);

/* The measured window: wall time, the generator's CPU (getrusage) and the server's CPU
 * (/proc/<pid>/stat, with --server-pid). */
#define MEASURE_CPUS 64

/* Per-core jiffies from /proc/stat: busy (user, nice, system, irq, softirq), steal, total. */
struct core_times {
    unsigned n;
    unsigned long long busy[MEASURE_CPUS], steal[MEASURE_CPUS], total[MEASURE_CPUS];
};

struct measure {
    uint64_t t0, t1;
    double user0, sys0, user1, sys1;
    double srv0, srv1;
    struct core_times c0, c1;
};

void measure_begin(struct bench *b, struct measure *m);
void measure_end(struct bench *b, struct measure *m);
double measure_wall(const struct measure *m);
/* Add "window_s", "gen" and "server" CPU fields to r, and "cores": each core's busy and
 * steal fractions, plus "foreign" (busy time on the server's and the generator's cores not
 * spent by them, when each is pinned to one core: other processes on a shared machine). */
void result_measure(struct result *r, const struct bench *b, const struct measure *m);

/* Server-side probes (with --server-pid): resident set and CPU time so far. */
long server_rss_kb(int pid);
double server_cpu_s(int pid);
double self_cpu_s(void);
/* Run a user-provided shell command (the --on-ready/--on-done hooks). */
void run_hook(const char *what, const char *cmd);

/* Write a `42["sync",{…}]` request for route into buf: data = {t, s, pad}. Returns length. */
size_t build_sync(char *buf, size_t cap, const char *route, const char *room, uint64_t t,
                  uint64_t seq, unsigned payload, int ignore_self);

int scen_fanout(struct bench *b, struct result *r);
int scen_rpc(struct bench *b, struct result *r);
int scen_idle(struct bench *b, struct result *r);
int scen_stream(struct bench *b, struct result *r);
int sink_main(const struct opts *o);

#endif
