/* client.c: the generator's client connections and its event loop.
 *
 * A connection goes TCP connect → HTTP upgrade to /socket.io/?EIO=4&transport=websocket
 * (RFC 6455 §4.1) → Engine.IO open packet → Socket.IO CONNECT "40" (with {"token"} when
 * given) → "40{sid}" → ready. Server frames are parsed straight out of one shared read buffer,
 * several per read when the server batches them; only a partial frame is copied aside. Client
 * frames are masked (§5.3) and queued per connection; every connection written to during a
 * loop pass is flushed with one write() at the end of the pass. Engine.IO pings ("2") are
 * answered with pongs ("3"). See bench.h. */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define RBUF_CAP (2u << 20) /* the largest server frame we accept, plus headers */
#define SBUF_CAP (1u << 20)
#define MAX_EVENTS 1024
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int bench_init(struct bench *b)
{
    b->ep = epoll_create1(EPOLL_CLOEXEC);
    b->rbuf = malloc(RBUF_CAP);
    b->rbuf_cap = RBUF_CAP;
    b->sbuf = malloc(SBUF_CAP);
    b->sbuf_cap = SBUF_CAP;
    b->rnd = (uint32_t)mono_ns() | 1u;
    if (b->ep < 0 || !b->rbuf || !b->sbuf)
        return -1;
    return 0;
}

static void conn_release(struct bconn *c)
{
    free(c->rx);
    free(c->msg);
    free(c->tx);
    free(c->text);
    free(c);
}

void bench_free(struct bench *b)
{
    for (uint32_t i = 0; i < b->nconns; i++) {
        if (b->conns[i]->fd >= 0)
            close(b->conns[i]->fd);
        conn_release(b->conns[i]);
    }
    free(b->conns);
    free(b->dirty);
    free(b->rbuf);
    free(b->sbuf);
    if (b->ep >= 0)
        close(b->ep);
}

void bench_error(struct bench *b, const char *fmt, ...)
{
    b->errors++;
    if (b->first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->first_error, sizeof b->first_error, fmt, ap);
    va_end(ap);
}

uint32_t bench_add_conns(struct bench *b, uint32_t n)
{
    uint32_t first = b->nconns;
    if (b->nconns + n > b->conns_cap) {
        uint32_t cap = b->conns_cap ? b->conns_cap : 64;
        while (cap < b->nconns + n)
            cap *= 2;
        b->conns = realloc(b->conns, cap * sizeof *b->conns);
        b->dirty = realloc(b->dirty, cap * sizeof *b->dirty);
        if (!b->conns || !b->dirty) {
            fprintf(stderr, "bench: out of memory\n");
            exit(2);
        }
        b->conns_cap = cap;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct bconn *c = calloc(1, sizeof *c);
        if (!c) {
            fprintf(stderr, "bench: out of memory\n");
            exit(2);
        }
        c->fd = -1;
        c->idx = b->nconns;
        c->mask_state = xorshift32(&b->rnd) | 1u;
        c->src = b->o.nsrc ? c->idx % b->o.nsrc : 0;
        b->conns[b->nconns++] = c;
    }
    return first;
}

/* ---- closing ---- */

static void conn_fail(struct bench *b, struct bconn *c, const char *why, int err)
{
    if (c->state == CS_CLOSED)
        return;
    if (c->state != CS_READY && c->state != CS_NEW)
        b->inflight--;
    if (c->state == CS_READY)
        b->nready--;
    if (!b->expect_close) {
        b->nfailed++;
        bench_error(b, "connection %u: %s%s%s", c->idx, why, err ? ": " : "",
                    err ? strerror(err) : "");
    }
    c->failed = 1;
    c->state = CS_CLOSED;
    b->nclosed++;
    if (c->fd >= 0) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(c->fd);
        c->fd = -1;
    }
    c->tx_len = c->tx_off = 0;
}

void bench_close_all(struct bench *b)
{
    b->expect_close = 1;
    for (uint32_t i = 0; i < b->nconns; i++) {
        struct bconn *c = b->conns[i];
        if (c->fd >= 0) {
            struct linger lg = {1, 0}; /* RST: no TIME_WAIT left on our ports */
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(c->fd);
            c->fd = -1;
        }
        c->state = CS_CLOSED;
    }
}

/* ---- writing ---- */

static void set_events(struct bench *b, struct bconn *c, int out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(b->ep, c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) == 0) {
        c->in_epoll = 1;
        c->want_out = out != 0;
    }
}

static void tx_reserve(struct bconn *c, size_t more)
{
    if (c->tx_off && c->tx_off == c->tx_len)
        c->tx_off = c->tx_len = 0;
    if (c->tx_len + more <= c->tx_cap)
        return;
    if (c->tx_off) { /* compact first */
        memmove(c->tx, c->tx + c->tx_off, c->tx_len - c->tx_off);
        c->tx_len -= c->tx_off;
        c->tx_off = 0;
        if (c->tx_len + more <= c->tx_cap)
            return;
    }
    size_t cap = c->tx_cap ? c->tx_cap : 1024;
    while (cap < c->tx_len + more)
        cap *= 2;
    c->tx = realloc(c->tx, cap);
    if (!c->tx) {
        fprintf(stderr, "bench: out of memory\n");
        exit(2);
    }
    c->tx_cap = (uint32_t)cap;
}

static void mark_dirty(struct bench *b, struct bconn *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        b->dirty[b->ndirty++] = c;
    }
}

static void tx_raw(struct bench *b, struct bconn *c, const void *p, size_t n)
{
    tx_reserve(c, n);
    memcpy(c->tx + c->tx_len, p, n);
    c->tx_len += (uint32_t)n;
    mark_dirty(b, c);
}

/* Append one masked frame (RFC 6455 §5.2, §5.3). */
static void tx_frame(struct bench *b, struct bconn *c, int opcode, const char *p, size_t n)
{
    tx_reserve(c, n + 14);
    unsigned char *h = (unsigned char *)c->tx + c->tx_len;
    size_t hl = 2;
    h[0] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        h[1] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        h[1] = 0x80 | 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    uint32_t key = xorshift32(&c->mask_state);
    memcpy(h + hl, &key, 4);
    unsigned char *dst = h + hl + 4;
    uint64_t k8 = (uint64_t)key << 32 | key;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= k8;
        memcpy(dst + i, &v, 8);
    }
    const unsigned char *kb = (const unsigned char *)&key;
    for (; i < n; i++)
        dst[i] = (unsigned char)p[i] ^ kb[i & 3];
    c->tx_len += (uint32_t)(hl + 4 + n);
    b->frames_tx++;
    b->bytes_tx += hl + 4 + n;
    mark_dirty(b, c);
}

void bench_send(struct bench *b, struct bconn *c, const char *packet, size_t len)
{
    if (c->state == CS_CLOSED)
        return;
    tx_frame(b, c, 1, packet, len);
}

static void conn_flush(struct bench *b, struct bconn *c)
{
    while (c->tx_off < c->tx_len) {
        ssize_t n = write(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off);
        b->writes++;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (!c->want_out)
                    set_events(b, c, 1);
                return;
            }
            conn_fail(b, c, "write", errno);
            return;
        }
        c->tx_off += (uint32_t)n;
    }
    c->tx_off = c->tx_len = 0;
    if (c->want_out && c->state != CS_CONNECTING)
        set_events(b, c, 0);
}

static void flush_dirty(struct bench *b)
{
    for (uint32_t i = 0; i < b->ndirty; i++) {
        struct bconn *c = b->dirty[i];
        c->dirty = 0;
        if (c->state != CS_CLOSED && c->state != CS_CONNECTING && !c->want_out)
            conn_flush(b, c);
    }
    b->ndirty = 0;
}

/* ---- connecting ---- */

/* The handshake key of a connection, derived from its index and a per-run salt, so the
 * expected Sec-WebSocket-Accept can be recomputed without storing it. */
static void ws_key(struct bench *b, struct bconn *c, char out[25])
{
    uint32_t s = c->idx * 2654435761u ^ (b->rnd | 1u);
    unsigned char raw[16];
    for (int i = 0; i < 16; i += 4) {
        uint32_t v = xorshift32(&s);
        memcpy(raw + i, &v, 4);
    }
    base64_encode(raw, 16, out);
}

static void start_connect(struct bench *b, struct bconn *c)
{
    b->inflight++;
    c->t_open = mono_ns();
    c->state = CS_CONNECTING;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_fail(b, c, "socket", errno);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (b->o.nsrc) {
        /* pick the port at connect() time, per destination, not at bind() */
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = b->o.src[c->src]};
        if (bind(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            conn_fail(b, c, "bind", errno);
            return;
        }
    }
    if (connect(c->fd, (struct sockaddr *)&b->dst, sizeof b->dst) != 0 && errno != EINPROGRESS) {
        conn_fail(b, c, "connect", errno);
        return;
    }
    set_events(b, c, 1);
}

static void send_upgrade(struct bench *b, struct bconn *c)
{
    char key[25], req[512];
    ws_key(b, c, key);
    int n = snprintf(req, sizeof req,
                     "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                     "Host: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     b->o.host_header, key);
    c->state = CS_UPGRADING;
    tx_raw(b, c, req, (size_t)n);
    set_events(b, c, 0);
}

/* Returns bytes consumed by the HTTP response (0: incomplete), or -1 after failing c. */
static long parse_upgrade(struct bench *b, struct bconn *c, const char *p, size_t n)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) {
        if (n > 8192) {
            conn_fail(b, c, "HTTP response too large", 0);
            return -1;
        }
        return 0;
    }
    size_t hlen = (size_t)(end - p) + 4;
    if (hlen < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) {
        char first[80];
        size_t fl = 0;
        while (fl < hlen && fl < sizeof first - 1 && p[fl] != '\r')
            fl++;
        memcpy(first, p, fl);
        first[fl] = '\0';
        conn_fail(b, c, first, 0);
        return -1;
    }
    char key[25], cat[64], want[32];
    unsigned char dig[20];
    ws_key(b, c, key);
    snprintf(cat, sizeof cat, "%s%s", key, WS_GUID);
    sha1(cat, strlen(cat), dig);
    base64_encode(dig, 20, want);
    if (!memmem(p, hlen, want, strlen(want))) {
        conn_fail(b, c, "bad Sec-WebSocket-Accept", 0);
        return -1;
    }
    c->state = CS_EIO_OPEN;
    return (long)hlen;
}

/* ---- Engine.IO / Socket.IO ---- */

static void on_sio_event(struct bench *b, struct bconn *c, const char *p, size_t n, size_t wire)
{
    const char *end = p + n;
    while (p < end && *p >= '0' && *p <= '9') /* an ack id (not used by these servers) */
        p++;
    if (p < end && *p == '/') { /* a namespace other than "/" */
        return;
    }
    if (p >= end || *p != '[') {
        bench_error(b, "connection %u: malformed event", c->idx);
        return;
    }
    const char *name;
    size_t nl;
    const char *q = json_str(p + 1, end, &name, &nl);
    if (!q) {
        bench_error(b, "connection %u: malformed event name", c->idx);
        return;
    }
    if (q < end && *q == ',')
        q++;
    if (b->cb && b->cb->event)
        b->cb->event(b, c, name, nl, q, (size_t)(end - q), wire);
}

static void on_message(struct bench *b, struct bconn *c, const char *p, size_t n, size_t wire)
{
    if (!n)
        return;
    switch (p[0]) {
    case '0': /* open */
        if (c->state == CS_EIO_OPEN) {
            c->state = CS_SIO_WAIT;
            if (b->o.token) {
                size_t tl = strlen(b->o.token);
                char *pk = b->sbuf;
                if (tl + 32 > b->sbuf_cap)
                    tl = b->sbuf_cap - 32;
                int k = snprintf(pk, b->sbuf_cap, "40{\"token\":\"%.*s\"}", (int)tl, b->o.token);
                tx_frame(b, c, 1, pk, (size_t)k);
            } else {
                tx_frame(b, c, 1, "40", 2);
            }
        }
        return;
    case '2': /* ping → pong, with the probe text if any */
        b->pings++;
        {
            char pong[16] = "3";
            size_t pl = n < sizeof pong ? n : 1;
            memcpy(pong + 1, p + 1, pl - 1);
            tx_frame(b, c, 1, pong, pl);
        }
        return;
    case '1':
        conn_fail(b, c, "Engine.IO close from the server", 0);
        return;
    case '4':
        break;
    default: /* pong, noop, upgrade */
        return;
    }
    if (n < 2)
        return;
    switch (p[1]) {
    case '0':
        if (c->state == CS_SIO_WAIT) {
            c->state = CS_READY;
            b->inflight--;
            b->nready++;
            if (b->cb && b->cb->ready)
                b->cb->ready(b, c);
        }
        return;
    case '2':
        on_sio_event(b, c, p + 2, n - 2, wire);
        return;
    case '4': {
        char msg[128];
        snprintf(msg, sizeof msg, "CONNECT_ERROR %.*s", (int)(n < 100 ? n - 2 : 98), p + 2);
        conn_fail(b, c, msg, 0);
        return;
    }
    case '1':
        conn_fail(b, c, "Socket.IO DISCONNECT from the server", 0);
        return;
    default:
        return;
    }
}

/* Parse server frames in p[0..n): returns bytes consumed (the rest is a partial frame). */
static size_t parse_frames(struct bench *b, struct bconn *c, char *p, size_t n)
{
    size_t off = 0;
    while (c->state != CS_CLOSED && n - off >= 2) {
        unsigned char *h = (unsigned char *)p + off;
        int fin = h[0] & 0x80, op = h[0] & 0x0f, masked = h[1] & 0x80;
        uint64_t len;
        size_t hl;
        if (!ws_frame_len(h, n - off, &len, &hl))
            break;
        if (masked)
            hl += 4;
        if (len > RBUF_CAP - 64) {
            conn_fail(b, c, "frame larger than the generator accepts", 0);
            return n;
        }
        if (n - off < hl + len)
            break;
        char *pl = p + off + hl;
        if (masked) {
            const unsigned char *k = h + hl - 4;
            for (uint64_t i = 0; i < len; i++)
                pl[i] = (char)(pl[i] ^ k[i & 3]);
        }
        size_t wire = hl + (size_t)len;
        off += wire;
        b->frames_rx++;
        switch (op) {
        case 0x8:
            if (!b->expect_close)
                conn_fail(b, c, "WebSocket close from the server", 0);
            return n;
        case 0x9:
            tx_frame(b, c, 0xA, pl, (size_t)len);
            continue;
        case 0xA:
            continue;
        case 0x0:
        case 0x1:
        case 0x2:
            break;
        default:
            conn_fail(b, c, "unknown WebSocket opcode", 0);
            return n;
        }
        if (op != 0 && fin && !c->msg_len) {
            on_message(b, c, pl, (size_t)len, wire);
            continue;
        }
        /* a fragmented message: reassemble (RFC 6455 §5.4) */
        if (c->msg_len + len > c->msg_cap) {
            size_t cap = c->msg_cap ? c->msg_cap : 4096;
            while (cap < c->msg_len + len)
                cap *= 2;
            c->msg = realloc(c->msg, cap);
            if (!c->msg) {
                fprintf(stderr, "bench: out of memory\n");
                exit(2);
            }
            c->msg_cap = (uint32_t)cap;
        }
        memcpy(c->msg + c->msg_len, pl, (size_t)len);
        c->msg_len += (uint32_t)len;
        if (fin) {
            size_t ml = c->msg_len;
            c->msg_len = 0;
            on_message(b, c, c->msg, ml, ml);
        }
    }
    return off;
}

static void conn_readable(struct bench *b, struct bconn *c)
{
    for (;;) {
        size_t have = c->rx_len;
        if (have)
            memcpy(b->rbuf, c->rx, have);
        ssize_t n = read(c->fd, b->rbuf + have, b->rbuf_cap - have);
        b->reads++;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                conn_fail(b, c, "read", errno);
            return;
        }
        if (n == 0) {
            if (!b->expect_close)
                conn_fail(b, c, "connection closed by the server", 0);
            return;
        }
        b->now = mono_ns();
        b->bytes_rx += (uint64_t)n;
        size_t total = have + (size_t)n, off = 0;
        if (c->state == CS_UPGRADING) {
            long k = parse_upgrade(b, c, b->rbuf, total);
            if (k < 0)
                return;
            off = (size_t)k;
        }
        if (c->state != CS_UPGRADING)
            off += parse_frames(b, c, b->rbuf + off, total - off);
        if (c->state == CS_CLOSED)
            return;
        size_t left = total - off;
        if (left > c->rx_cap) {
            c->rx = realloc(c->rx, left);
            if (!c->rx) {
                fprintf(stderr, "bench: out of memory\n");
                exit(2);
            }
            c->rx_cap = (uint32_t)left;
        }
        if (left)
            memcpy(c->rx, b->rbuf + off, left);
        c->rx_len = (uint32_t)left;
        if (total < b->rbuf_cap)
            return; /* the socket is most likely drained: skip the EAGAIN read */
    }
}

static void on_event(struct bench *b, struct bconn *c, uint32_t ev)
{
    if (c->state == CS_CLOSED)
        return;
    if (c->state == CS_CONNECTING) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err) {
                conn_fail(b, c, "connect", err);
                return;
            }
            send_upgrade(b, c);
        }
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_readable(b, c);
    if (c->state != CS_CLOSED && (ev & EPOLLOUT))
        conn_flush(b, c);
}

static void check_timeouts(struct bench *b)
{
    uint64_t limit = (uint64_t)(b->o.connect_timeout * 1e9);
    for (uint32_t i = 0; i < b->next_connect; i++) {
        struct bconn *c = b->conns[i];
        if (c->state != CS_READY && c->state != CS_CLOSED && b->now - c->t_open > limit) {
            static const char *const names[] = {"new", "TCP connect", "HTTP upgrade",
                                                "Engine.IO open", "Socket.IO CONNECT"};
            char why[96];
            snprintf(why, sizeof why, "timed out in %s", names[c->state]);
            conn_fail(b, c, why, 0);
        }
    }
}

int bench_loop(struct bench *b, int (*done)(struct bench *b), void (*tick)(struct bench *b),
               uint64_t deadline)
{
    struct epoll_event evs[MAX_EVENTS];
    uint64_t next_check = 0;
    for (;;) {
        while (b->inflight < b->o.connect_parallel && b->next_connect < b->nconns)
            start_connect(b, b->conns[b->next_connect++]);
        flush_dirty(b);
        if (done && done(b))
            return 0;
        b->now = mono_ns();
        if (b->interrupted)
            return -1;
        if (deadline && b->now >= deadline)
            return done ? -1 : 0;
        int timeout = 100;
        if (tick)
            timeout = 1;
        else if (deadline && (deadline - b->now) / 1000000u < 100)
            timeout = (int)((deadline - b->now) / 1000000u) + 1;
        int n = epoll_wait(b->ep, evs, MAX_EVENTS, timeout);
        b->now = mono_ns();
        for (int i = 0; i < n; i++)
            on_event(b, evs[i].data.ptr, evs[i].events);
        if (tick)
            tick(b);
        if (b->inflight && b->now >= next_check) {
            check_timeouts(b);
            next_check = b->now + 100000000u;
        }
    }
}
