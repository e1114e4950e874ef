/* sink.c: `luckysync-bench sink --port P`, a trivial server speaking the benchmark's wire.
 *
 * It answers the same traffic as LuckySync with as little work as possible, to show the
 * generator's own ceiling: WebSocket upgrade (RFC 6455 §4.2), the Engine.IO open packet,
 * Socket.IO CONNECT, `joinRoom` (join + `joinRoom-<i>`), and `sync` (membership check, the
 * answer `sync-<i>` echoing data as serverOutput, and one `sync` frame to every room member,
 * framed once and copied into each member's output). No JSON parser, no Lua, no pings, no
 * limits beyond memory. Every connection written to during a loop pass is flushed with one
 * write() at the end of the pass. It runs until SIGINT or SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define RBUF (2u << 20)
#define MAX_EVENTS 1024
#define ROOM_BUCKETS 65536
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct sroom;

struct sconn {
    int fd;
    int ws; /* upgraded */
    int dirty, want_out;
    char *rx;
    size_t rx_len, rx_cap;
    char *tx;
    size_t tx_len, tx_off, tx_cap;
    struct sroom **rooms;
    unsigned nrooms, rooms_cap;
    struct sconn *dead_next;
};

struct sroom {
    struct sroom *next;
    struct sconn **m;
    unsigned n, cap;
    size_t name_len;
    char name[];
};

struct sink {
    int ep, lfd;
    struct sconn **byfd;
    size_t nfd;
    struct sconn **dirty;
    size_t ndirty;
    struct sconn *dead;
    struct sroom *buckets[ROOM_BUCKETS];
    char *rbuf, *out;
    size_t out_cap;
    unsigned long long conns, frames_in, frames_out;
};

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) {
        fprintf(stderr, "sink: out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- output ---- */

static void out_append(struct sink *s, struct sconn *c, const void *p, size_t n)
{
    if (c->tx_off == c->tx_len)
        c->tx_off = c->tx_len = 0;
    if (c->tx_len + n > c->tx_cap) {
        size_t cap = c->tx_cap ? c->tx_cap : 4096;
        while (cap < c->tx_len + n)
            cap *= 2;
        c->tx = xrealloc(c->tx, cap);
        c->tx_cap = cap;
    }
    memcpy(c->tx + c->tx_len, p, n);
    c->tx_len += n;
    if (!c->dirty) {
        c->dirty = 1;
        s->dirty[s->ndirty++] = c;
    }
}

/* The header of an unmasked server text frame (§5.2) of n bytes into h; returns its size. */
static size_t frame_header(unsigned char *h, size_t n)
{
    h[0] = 0x81;
    if (n < 126) {
        h[1] = (unsigned char)n;
        return 2;
    }
    if (n < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    return 10;
}

/* Frame p into s->out (once, for many recipients); returns the frame length. */
static size_t frame(struct sink *s, const char *p, size_t n)
{
    if (n + 10 > s->out_cap) {
        s->out_cap = n + 10;
        s->out = xrealloc(s->out, s->out_cap);
    }
    size_t hl = frame_header((unsigned char *)s->out, n);
    memcpy(s->out + hl, p, n);
    return hl + n;
}

static void send_text(struct sink *s, struct sconn *c, const char *p, size_t n)
{
    unsigned char h[10];
    size_t hl = frame_header(h, n);
    out_append(s, c, h, hl);
    out_append(s, c, p, n);
    s->frames_out++;
}

static void conn_close(struct sink *s, struct sconn *c)
{
    for (unsigned i = 0; i < c->nrooms; i++) {
        struct sroom *r = c->rooms[i];
        for (unsigned j = 0; j < r->n; j++)
            if (r->m[j] == c) {
                r->m[j] = r->m[--r->n];
                break;
            }
    }
    c->nrooms = 0;
    s->byfd[c->fd] = NULL;
    close(c->fd);
    c->fd = -1;
    /* freed at the end of the loop pass: later events of this pass may still name it */
    c->dead_next = s->dead;
    s->dead = c;
}

static void free_dead(struct sink *s)
{
    while (s->dead) {
        struct sconn *c = s->dead;
        s->dead = c->dead_next;
        free(c->rx);
        free(c->tx);
        free(c->rooms);
        free(c);
    }
}

static int flush(struct sink *s, struct sconn *c)
{
    while (c->tx_off < c->tx_len) {
        ssize_t n = write(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (!c->want_out) {
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
                    c->want_out = 1;
                }
                return 0;
            }
            return -1;
        }
        c->tx_off += (size_t)n;
    }
    c->tx_off = c->tx_len = 0;
    if (c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = 0;
    }
    return 0;
}

/* ---- rooms ---- */

static uint32_t hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static struct sroom *room_get(struct sink *s, const char *name, size_t n, int create)
{
    uint32_t b = hash(name, n) & (ROOM_BUCKETS - 1);
    for (struct sroom *r = s->buckets[b]; r; r = r->next)
        if (r->name_len == n && memcmp(r->name, name, n) == 0)
            return r;
    if (!create)
        return NULL;
    struct sroom *r = calloc(1, sizeof *r + n + 1);
    if (!r)
        exit(2);
    memcpy(r->name, name, n);
    r->name_len = n;
    r->next = s->buckets[b];
    s->buckets[b] = r;
    return r;
}

static int in_room(struct sconn *c, struct sroom *r)
{
    for (unsigned i = 0; i < c->nrooms; i++)
        if (c->rooms[i] == r)
            return 1;
    return 0;
}

static void join(struct sconn *c, struct sroom *r)
{
    if (in_room(c, r))
        return;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->m = xrealloc(r->m, r->cap * sizeof *r->m);
    }
    r->m[r->n++] = c;
    if (c->nrooms == c->rooms_cap) {
        c->rooms_cap = c->rooms_cap ? c->rooms_cap * 2 : 4;
        c->rooms = xrealloc(c->rooms, c->rooms_cap * sizeof *c->rooms);
    }
    c->rooms[c->nrooms++] = r;
}

/* ---- Socket.IO events ---- */

static int str_field(const char *args, size_t n, const char *key, const char **v, size_t *vl)
{
    const char *p = json_find(args, n, key);
    return p && json_str(p, args + n, v, vl) ? 0 : -1;
}

static void on_join(struct sink *s, struct sconn *c, const char *args, size_t n)
{
    const char *g, *ri = json_find(args, n, "responseIndex");
    size_t gl;
    int64_t i = 0;
    if (str_field(args, n, "group", &g, &gl) != 0 || !ri || json_int(ri, args + n, &i) != 0)
        return;
    join(c, room_get(s, g, gl, 1));
    char *pk = malloc(gl + 96);
    int k =
        snprintf(pk, gl + 96, "42[\"joinRoom-%lld\",{\"status\":\"success\",\"rooms\":[\"%.*s\"]}]",
                 (long long)i, (int)gl, g);
    send_text(s, c, pk, (size_t)k);
    free(pk);
}

static void on_sync(struct sink *s, struct sconn *c, const char *args, size_t n)
{
    const char *end = args + n, *name, *recv, *cb = NULL;
    size_t nl, rl, cbl = 0;
    const char *ri = json_find(args, n, "responseIndex"), *data = json_find(args, n, "data");
    int64_t i = 0;
    if (str_field(args, n, "name", &name, &nl) != 0 ||
        str_field(args, n, "receiver", &recv, &rl) != 0 || !ri || json_int(ri, end, &i) != 0 ||
        !data)
        return;
    str_field(args, n, "cb", &cb, &cbl);
    while (data < end && *data == ' ')
        data++;
    const char *dend = json_value_end(data, end);
    if (!dend)
        return;
    size_t dl = (size_t)(dend - data);
    const char *ig = json_find(args, n, "ignoreSelf");
    int ignore_self = ig && end - ig >= 4 && memcmp(ig, "true", 4) == 0;
    struct sroom *r = room_get(s, recv, rl, 0);
    size_t cap = dl + 2 * nl + rl + cbl + 256;
    char *pk = malloc(cap);
    int k;
    if (!r || !in_room(c, r)) {
        k = snprintf(
            pk, cap,
            "42[\"sync-%lld\",{\"status\":\"error\",\"errorCode\":\"sync.notRoomMember\"}]",
            (long long)i);
        send_text(s, c, pk, (size_t)k);
        free(pk);
        return;
    }
    k = snprintf(pk, cap,
                 "42[\"sync-%lld\",{\"status\":\"success\",\"message\":\"sync %.*s success\","
                 "\"result\":{\"status\":\"success\",\"serverOutput\":%.*s}}]",
                 (long long)i, (int)nl, name, (int)dl, data);
    send_text(s, c, pk, (size_t)k);
    k = snprintf(pk, cap,
                 "42[\"sync\",{\"cb\":\"%.*s\",\"fullName\":\"%.*s\",\"status\":\"success\","
                 "\"serverOutput\":%.*s,\"clientOutput\":{},\"message\":\"%.*s sync success\"}]",
                 (int)(cb ? cbl : nl), cb ? cb : name, (int)nl, name, (int)dl, data, (int)nl, name);
    size_t fl = frame(s, pk, (size_t)k);
    free(pk);
    for (unsigned j = 0; j < r->n; j++) {
        if (ignore_self && r->m[j] == c)
            continue;
        out_append(s, r->m[j], s->out, fl);
        s->frames_out++;
    }
}

static void on_packet(struct sink *s, struct sconn *c, const char *p, size_t n)
{
    s->frames_in++;
    if (n >= 2 && p[0] == '4' && p[1] == '0') {
        static const char ok[] = "40{\"sid\":\"sinksinksinksinksink\"}";
        send_text(s, c, ok, sizeof ok - 1);
        return;
    }
    if (n < 3 || p[0] != '4' || p[1] != '2')
        return; /* pongs and the rest */
    const char *q = p + 2, *end = p + n, *name;
    size_t nl;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    if (q >= end || *q != '[' || !(q = json_str(q + 1, end, &name, &nl)))
        return;
    if (q < end && *q == ',')
        q++;
    if (nl == 4 && memcmp(name, "sync", 4) == 0)
        on_sync(s, c, q, (size_t)(end - q));
    else if (nl == 8 && memcmp(name, "joinRoom", 8) == 0)
        on_join(s, c, q, (size_t)(end - q));
}

/* ---- input ---- */

static long on_http(struct sink *s, struct sconn *c, const char *p, size_t n)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        return n > 8192 ? -1 : 0;
    const char *k = memmem(p, (size_t)(end - p), "Sec-WebSocket-Key:", 18);
    if (!k)
        return -1;
    k += 18;
    while (*k == ' ')
        k++;
    const char *ke = k;
    while (ke < end && *ke != '\r')
        ke++;
    char cat[128], acc[32], resp[512];
    unsigned char dig[20];
    snprintf(cat, sizeof cat, "%.*s%s", (int)(ke - k), k, WS_GUID);
    sha1(cat, strlen(cat), dig);
    base64_encode(dig, 20, acc);
    int rn = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                      acc);
    out_append(s, c, resp, (size_t)rn);
    static const char open[] = "0{\"sid\":\"sinksinksinksinksink\",\"upgrades\":[],"
                               "\"pingInterval\":25000,\"pingTimeout\":20000,"
                               "\"maxPayload\":1000000}";
    send_text(s, c, open, sizeof open - 1);
    c->ws = 1;
    return end + 4 - p;
}

/* Parse masked client frames; returns bytes consumed or -1 to close. */
static long on_frames(struct sink *s, struct sconn *c, char *p, size_t n)
{
    size_t off = 0;
    while (n - off >= 2) {
        unsigned char *h = (unsigned char *)p + off;
        int op = h[0] & 0x0f;
        uint64_t len;
        size_t hl;
        if (!ws_frame_len(h, n - off, &len, &hl))
            break;
        if (!(h[1] & 0x80) || len > RBUF - 64)
            return -1; /* client frames must be masked (§5.1) */
        hl += 4;
        if (n - off < hl + len)
            break;
        unsigned char *pl = h + hl, *key = h + hl - 4;
        for (uint64_t i = 0; i < len; i++)
            pl[i] ^= key[i & 3];
        off += hl + (size_t)len;
        if (op == 0x8)
            return -1;
        if (op == 0x1)
            on_packet(s, c, (char *)pl, (size_t)len);
    }
    return (long)off;
}

static void on_readable(struct sink *s, struct sconn *c)
{
    for (;;) {
        size_t have = c->rx_len;
        if (have)
            memcpy(s->rbuf, c->rx, have);
        ssize_t n = read(c->fd, s->rbuf + have, RBUF - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            conn_close(s, c);
            return;
        }
        size_t total = have + (size_t)n, off = 0;
        if (!c->ws) {
            long k = on_http(s, c, s->rbuf, total);
            if (k < 0) {
                conn_close(s, c);
                return;
            }
            off = (size_t)k;
        }
        if (c->ws) {
            long k = on_frames(s, c, s->rbuf + off, total - off);
            if (k < 0) {
                conn_close(s, c);
                return;
            }
            off += (size_t)k;
        }
        size_t left = total - off;
        if (left > c->rx_cap) {
            c->rx = xrealloc(c->rx, left);
            c->rx_cap = left;
        }
        memcpy(c->rx, s->rbuf + off, left);
        c->rx_len = left;
        if (total < RBUF)
            return;
    }
}

static void on_accept(struct sink *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if ((size_t)fd >= s->nfd) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct sconn *c = calloc(1, sizeof *c);
        if (!c)
            exit(2);
        c->fd = fd;
        s->byfd[fd] = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev);
        s->conns++;
    }
}

int sink_main(const struct opts *o)
{
    static struct sink s;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    s.nfd = rl.rlim_cur > 1u << 20 ? 1u << 20 : rl.rlim_cur;
    s.byfd = calloc(s.nfd, sizeof *s.byfd);
    s.dirty = calloc(s.nfd, sizeof *s.dirty);
    s.rbuf = malloc(RBUF);
    s.out_cap = 1 << 16;
    s.out = malloc(s.out_cap);
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    s.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->sink_port)};
    inet_pton(AF_INET, o->host ? o->host : "127.0.0.1", &sa.sin_addr);
    if (!s.byfd || !s.dirty || !s.rbuf || !s.out || s.ep < 0 || s.lfd < 0 ||
        bind(s.lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s.lfd, 4096) != 0) {
        fprintf(stderr, "sink: cannot listen on port %d: %s\n", o->sink_port, strerror(errno));
        return 2;
    }
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &lev);
    struct sigaction sig = {.sa_handler = on_stop};
    sigaction(SIGINT, &sig, NULL);
    sigaction(SIGTERM, &sig, NULL);
    fprintf(stderr, "sink: listening on %s:%d\n", o->host ? o->host : "127.0.0.1", o->sink_port);
    struct epoll_event evs[MAX_EVENTS];
    while (!stop_flag) {
        int n = epoll_wait(s.ep, evs, MAX_EVENTS, 200);
        for (int i = 0; i < n; i++) {
            struct sconn *c = evs[i].data.ptr;
            if (!c) {
                on_accept(&s);
                continue;
            }
            if (c->fd < 0)
                continue; /* closed earlier in this pass */
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(&s, c);
            if (c->fd >= 0 && (evs[i].events & EPOLLOUT) && flush(&s, c) != 0)
                conn_close(&s, c);
        }
        for (size_t i = 0; i < s.ndirty; i++) {
            struct sconn *c = s.dirty[i];
            c->dirty = 0;
            if (c->fd >= 0 && !c->want_out && flush(&s, c) != 0)
                conn_close(&s, c);
        }
        s.ndirty = 0;
        free_dead(&s);
    }
    fprintf(stderr, "sink: %llu connections, %llu frames in, %llu frames out\n", s.conns,
            s.frames_in, s.frames_out);
    return 0;
}
