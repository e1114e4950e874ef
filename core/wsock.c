/* wsock.c: the sockets of the wsock module on libuv poll handles: the listener and accepts,
 * the lists of connections, output kept back until the socket drains, closing (linger and
 * reap), readiness events, and the public API. Heads: wsock_head.c; frames: wsock_frame.c. */
#include "wsock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "wsock_int.h"
#include "wsproto.h"

#define ACCEPTS_PER_EVENT 64
#define READS_PER_EVENT 4
#define EMFILE_PAUSE_MS 100 /* out of descriptors: stop accepting this long */

static void on_poll(uv_poll_t *h, int status, int events);

/* ---- lists ---- */

static void tl_push(struct tlist *l, struct wsock *ws)
{
    ws->tnext = NULL;
    ws->tprev = l->last;
    if (l->last)
        l->last->tnext = ws;
    else
        l->first = ws;
    l->last = ws;
    l->n++;
}

static void tl_remove(struct tlist *l, struct wsock *ws)
{
    if (ws->tprev)
        ws->tprev->tnext = ws->tnext;
    else
        l->first = ws->tnext;
    if (ws->tnext)
        ws->tnext->tprev = ws->tprev;
    else
        l->last = ws->tprev;
    ws->tprev = ws->tnext = NULL;
    l->n--;
}

static struct tlist *timed_list(struct wsock *ws)
{
    if (ws->state == WS_HEAD)
        return &ws->srv->heads;
    if (ws->state == WS_LINGER)
        return &ws->srv->lingers;
    return NULL;
}

void wsock_reap_queue(struct wsock *ws)
{
    if (ws->in_reap)
        return;
    ws->in_reap = 1;
    ws->reap_next = ws->srv->reap;
    ws->srv->reap = ws;
}

void wsock_events_set(struct wsock *ws, int events)
{
    if (ws->events == events || ws->fd < 0)
        return;
    ws->events = events;
    if (events)
        uv_poll_start(&ws->poll, events, on_poll);
    else
        uv_poll_stop(&ws->poll);
}

static void on_handle_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Release ws: its handle, descriptor and buffers. Not while the owner is owed a callback. */
void wsock_finalize(struct wsock *ws)
{
    struct wsock_server *s = ws->srv;
    struct tlist *l = timed_list(ws);
    if (l)
        tl_remove(l, ws);
    if (ws->prev)
        ws->prev->next = ws->next;
    else
        s->all = ws->next;
    if (ws->next)
        ws->next->prev = ws->prev;
    free(ws->out);
    free(ws->part);
    free(ws->msg);
    int fd = ws->fd;
    ws->fd = -1;
    ws->state = WS_DEAD;
    uv_close((uv_handle_t *)&ws->poll, on_handle_closed); /* stops polling fd at once */
    if (fd >= 0)
        close(fd);
}

void wsock_state_set(struct wsock *ws, enum ws_state st)
{
    struct tlist *l = timed_list(ws);
    if (l)
        tl_remove(l, ws);
    ws->state = (unsigned char)st;
    l = timed_list(ws);
    if (l)
        tl_push(l, ws);
}

/* ---- output ---- */

/* Keep iov[0..n) after its first `skip` bytes behind what is already kept, in one new block
 * (bounded by out_max). 0, -ENOBUFS over the bound, -ENOMEM. */
static int keep(struct wsock *ws, const struct iovec *iov, int n, size_t skip)
{
    size_t have = ws->out_len - ws->out_off, len = 0;
    for (int i = 0; i < n; i++)
        len += iov[i].iov_len;
    len -= skip;
    if (have + len > ws->srv->out_max)
        return -ENOBUFS;
    unsigned char *nb = malloc(have + len), *o = nb + have;
    if (!nb)
        return -ENOMEM;
    if (have)
        memcpy(nb, ws->out + ws->out_off, have);
    for (int i = 0; i < n; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(o, (const char *)iov[i].iov_base + skip, l - skip);
        o += l - skip;
        skip = 0;
    }
    free(ws->out);
    ws->out = nb;
    ws->out_off = 0;
    ws->out_len = have + len;
    return 0;
}

/* Send now what the kernel takes of iov[0..n) (n <= WSOCK_IOV_MAX), in order, and keep the
 * rest: one piece through wsock_raw_send, several with one sendmsg (a partial write means a
 * full send buffer: the rest is kept at once).
 * Returns 0 or a negative errno (the socket is unusable). */
static int raw_sendv(struct wsock *ws, const struct iovec *iov, int n)
{
    if (ws->fd < 0)
        return -EPIPE;
    if (n == 1)
        return wsock_raw_send(ws, iov[0].iov_base, iov[0].iov_len);
    if (ws->holding || ws->out_len > ws->out_off)
        return keep(ws, iov, n, 0);
    size_t len = 0, off = 0;
    for (int i = 0; i < n; i++)
        len += iov[i].iov_len;
    struct msghdr msg = {.msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)n};
    for (;;) {
        ssize_t k = sendmsg(ws->fd, &msg, MSG_NOSIGNAL);
        if (k >= 0) {
            off = (size_t)k;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        return -EPIPE;
    }
    if (off == len)
        return 0;
    int rc = keep(ws, iov, n, off);
    if (rc == 0)
        wsock_events_set(ws, UV_READABLE | UV_WRITABLE);
    return rc;
}

/* Send now what the kernel takes, keep the rest. Returns 0 or a negative errno (the socket is
 * unusable). raw_sendv's one-piece case without an iovec: the path of most writes. */
int wsock_raw_send(struct wsock *ws, const void *data, size_t len)
{
    if (ws->fd < 0)
        return -EPIPE;
    if (ws->holding || ws->out_len > ws->out_off) {
        struct iovec v = {(void *)(uintptr_t)data, len};
        return keep(ws, &v, 1, 0);
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(ws->fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return -EPIPE;
    }
    if (off == len)
        return 0;
    struct iovec v = {(void *)(uintptr_t)data, len};
    int rc = keep(ws, &v, 1, off);
    if (rc == 0)
        wsock_events_set(ws, UV_READABLE | UV_WRITABLE);
    return rc;
}

/* Close the socket side: our close frame (code 0: none), then either wait for the peer's end
 * (linger: output is flushed, then FIN, reads discarded, bounded by LINGER_MS) or drop it at
 * once. The owner of an open connection is told from the reap. */
void wsock_wind_down(struct wsock *ws, unsigned code, int linger)
{
    if (ws->state == WS_LINGER || ws->state == WS_DEAD)
        return;
    if (ws->state == WS_OPEN) {
        ws->owed = 1;
        if (!ws->close_code)
            ws->close_code = (unsigned short)(code ? code : WSOCK_GONE);
    }
    ws->holding = 0;
    free(ws->msg);
    ws->msg = NULL;
    ws->msg_len = 0;
    ws->msg_open = 0;
    free(ws->part);
    ws->part = NULL;
    ws->part_len = 0;
    int ok = 1;
    if (code) {
        unsigned char frame[127];
        size_t n = wsproto_close_encode(frame, code, NULL);
        ok = wsock_raw_send(ws, frame, n) == 0;
    }
    if (linger && ok) {
        ws->deadline = uv_now(ws->srv->loop) + LINGER_MS;
        wsock_state_set(ws, WS_LINGER);
        if (ws->out_len == ws->out_off) {
            shutdown(ws->fd, SHUT_WR);
            ws->shut = 1;
            wsock_events_set(ws, UV_READABLE);
        }
    } else {
        wsock_state_set(ws, WS_DEAD);
        wsock_events_set(ws, 0);
    }
    if (ws->owed || ws->state == WS_DEAD)
        wsock_reap_queue(ws);
}

/* The socket is unusable or the peer is gone: an open connection winds down without a close
 * frame (its owner is told); any other is released at the reap. */
static void end_now(struct wsock *ws)
{
    if (ws->state == WS_OPEN) {
        wsock_wind_down(ws, 0, 0);
        return;
    }
    wsock_drop(ws);
}

void wsock_drop(struct wsock *ws)
{
    wsock_state_set(ws, WS_DEAD);
    wsock_events_set(ws, 0);
    wsock_reap_queue(ws);
}

static void flush_out(struct wsock *ws)
{
    while (ws->out_off < ws->out_len) {
        ssize_t n = send(ws->fd, ws->out + ws->out_off, ws->out_len - ws->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            ws->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        end_now(ws);
        return;
    }
    free(ws->out);
    ws->out = NULL;
    ws->out_len = ws->out_off = 0;
    wsock_events_set(ws, UV_READABLE);
    if (ws->state == WS_LINGER && !ws->shut) {
        shutdown(ws->fd, SHUT_WR);
        ws->shut = 1;
    } else if (ws->state == WS_OPEN) {
        ws->srv->cb->drained(ws->srv->ud, ws, ws->user);
    }
}

/* ---- events ---- */

static void on_readable(struct wsock *ws)
{
    struct wsock_server *s = ws->srv;
    if (ws->state == WS_HEAD) {
        wsock_read_head(ws);
        return;
    }
    for (int i = 0; i < READS_PER_EVENT; i++) {
        size_t cap = s->rcap;
        ssize_t n = recv(ws->fd, s->rbuf, cap, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) { /* the peer's end, or a reset */
            end_now(ws);
            return;
        }
        if (ws->state == WS_OPEN)
            wsock_process_frames(ws, s->rbuf, (size_t)n);
        if ((size_t)n < cap || ws->fd < 0 || ws->state == WS_DEAD)
            return;
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct wsock *ws = h->data;
    if (ws->fd < 0 || ws->state == WS_DEAD)
        return;
    if (status < 0) {
        if (ws->state == WS_OPEN)
            wsock_wind_down(ws, 0, 0);
        else {
            wsock_state_set(ws, WS_DEAD);
            wsock_events_set(ws, 0);
            wsock_reap_queue(ws);
        }
        return;
    }
    if (events & UV_WRITABLE)
        flush_out(ws);
    if ((events & UV_READABLE) && ws->fd >= 0 && ws->state != WS_DEAD)
        on_readable(ws);
}

static void pause_accepting(struct wsock_server *s, uint64_t resume_at)
{
    uv_poll_stop(s->lpoll);
    s->accepting = 0;
    s->resume_at = resume_at;
}

static void on_listen(uv_poll_t *h, int status, int events);

/* Accept again after a pause, once its time has come and the heads are under their bound. */
static void maybe_resume(struct wsock_server *s)
{
    if (s->accepting || uv_now(s->loop) < s->resume_at || s->heads.n >= s->opt.max_heads)
        return;
    s->accepting = 1;
    uv_poll_start(s->lpoll, UV_READABLE, on_listen);
}

static void accept_some(struct wsock_server *s)
{
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        if (s->heads.n >= s->opt.max_heads) {
            pause_accepting(s, 0); /* the rest wait in the backlog until heads complete */
            return;
        }
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                LOG_W("accept paused", "\"error\":\"%s\"", strerror(errno));
                pause_accepting(s, uv_now(s->loop) + EMFILE_PAUSE_MS);
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct wsock *ws = calloc(1, sizeof *ws);
        if (!ws || uv_poll_init(s->loop, &ws->poll, fd) != 0) {
            free(ws);
            close(fd);
            continue;
        }
        ws->poll.data = ws;
        ws->srv = s;
        ws->fd = fd;
        ws->next = s->all;
        if (s->all)
            s->all->prev = ws;
        s->all = ws;
        ws->deadline = uv_now(s->loop) + s->opt.head_timeout_ms;
        ws->state = WS_HEAD;
        tl_push(&s->heads, ws);
        wsock_events_set(ws, UV_READABLE);
    }
}

static void on_listen(uv_poll_t *h, int status, int events)
{
    (void)events;
    if (status == 0)
        accept_some(h->data);
}

/* ---- the server ---- */

int wsock_server_new(uv_loop_t *loop, const struct wsock_options *opt,
                     const struct wsock_callbacks *cb, void *ud, struct wsock_server **out)
{
    *out = NULL;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)opt->port);
    if (inet_pton(AF_INET, opt->host ? opt->host : "0.0.0.0", &sa.sin_addr) != 1)
        return -EINVAL;
    struct wsock_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->lfd = -1;
    s->loop = loop;
    s->opt = *opt;
    s->cb = cb;
    s->ud = ud;
    s->rcap = opt->read_bytes < WSPROTO_HEAD_MAX ? WSPROTO_HEAD_MAX : opt->read_bytes;
    s->out_max = opt->max_output ? opt->max_output : opt->max_message + 256 * 1024;
    s->rbuf = malloc(s->rcap);
    int rc = -ENOMEM;
    if (!s->rbuf)
        goto fail;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->lfd < 0) {
        rc = -errno;
        goto fail;
    }
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s->lfd, 1024) != 0) {
        rc = -errno;
        goto fail;
    }
    socklen_t sl = sizeof sa;
    getsockname(s->lfd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    s->lpoll = calloc(1, sizeof *s->lpoll);
    if (!s->lpoll || uv_poll_init(loop, s->lpoll, s->lfd) != 0) {
        free(s->lpoll);
        s->lpoll = NULL;
        rc = -ENOMEM;
        goto fail;
    }
    s->lpoll->data = s;
    uv_poll_start(s->lpoll, UV_READABLE, on_listen);
    s->accepting = 1;
    *out = s;
    return 0;
fail:
    if (s->lfd >= 0)
        close(s->lfd);
    free(s->rbuf);
    free(s);
    return rc;
}

static void on_listener_closed(uv_handle_t *h)
{
    free(h);
}

void wsock_server_free(struct wsock_server *s)
{
    if (!s)
        return;
    wsock_server_reap(s);
    while (s->all) {
        struct wsock *ws = s->all;
        if (ws->state == WS_OPEN || ws->owed) {
            ws->owed = 0;
            ws->state = WS_DEAD;
            s->cb->closed(s->ud, ws, ws->user, ws->close_code ? ws->close_code : WSOCK_GONE);
        }
        ws->in_reap = 0;
        wsock_finalize(ws);
    }
    s->reap = NULL;
    if (s->lpoll) {
        s->lpoll->data = s->lpoll;
        uv_close((uv_handle_t *)s->lpoll, on_listener_closed);
    }
    if (s->lfd >= 0)
        close(s->lfd);
    free(s->rbuf);
    free(s);
}

void wsock_server_set_http(struct wsock_server *s, struct lws_vhost *vh)
{
    s->vh = vh;
}

int wsock_server_port(const struct wsock_server *s)
{
    return s->port;
}

void wsock_server_reap(struct wsock_server *s)
{
    while (s->reap) {
        struct wsock *ws = s->reap;
        s->reap = ws->reap_next;
        ws->in_reap = 0;
        if (ws->owed) {
            ws->owed = 0;
            s->cb->closed(s->ud, ws, ws->user, ws->close_code ? ws->close_code : WSOCK_GONE);
        }
        if (ws->state == WS_DEAD)
            wsock_finalize(ws);
    }
    maybe_resume(s);
}

void wsock_server_tick(struct wsock_server *s)
{
    uint64_t now = uv_now(s->loop);
    while (s->heads.first && s->heads.first->deadline <= now) {
        struct wsock *ws = s->heads.first;
        wsock_drop(ws);
    }
    while (s->lingers.first && s->lingers.first->deadline <= now) {
        struct wsock *ws = s->lingers.first;
        wsock_drop(ws);
    }
    wsock_server_reap(s); /* and resume accepting when it may */
}

void wsock_set_user(struct wsock *ws, uint64_t user)
{
    ws->user = user;
}

uint64_t wsock_user(const struct wsock *ws)
{
    return ws->user;
}

/* A send's outcome for the owner: an unusable socket (or output over its bound: 1008) closes
 * ws, and the owner sees -EPIPE. */
static int sent(struct wsock *ws, int rc)
{
    if (rc == 0)
        return 0;
    wsock_wind_down(ws, rc == -ENOBUFS ? 1008 : 0, 0);
    return -EPIPE;
}

int wsock_send(struct wsock *ws, const void *data, size_t len)
{
    if (ws->state != WS_OPEN)
        return -EPIPE;
    return sent(ws, wsock_raw_send(ws, data, len));
}

int wsock_sendv(struct wsock *ws, const struct iovec *iov, int n)
{
    if (ws->state != WS_OPEN)
        return -EPIPE;
    if (n < 1 || n > WSOCK_IOV_MAX)
        return -EINVAL;
    return sent(ws, raw_sendv(ws, iov, n));
}

size_t wsock_pending(const struct wsock *ws)
{
    return ws->out_len - ws->out_off;
}

void wsock_close(struct wsock *ws, unsigned code)
{
    if (ws->state != WS_OPEN)
        return;
    wsock_wind_down(ws, code ? code : 1000, 1);
}
