/* wsock_head.c: a new connection's HTTP request head (read with MSG_PEEK), the WebSocket
 * upgrade (RFC 6455 §4.2.2) and its refusals, and the hand-over of plain HTTP to lws. */
#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "wsock_int.h"
#include "wsproto.h"

static const char *status_text(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 426:
        return "Upgrade Required";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

/* Answer a refused request and close after it. */
static void refuse(struct wsock *ws, int status, const char *body)
{
    char resp[512];
    if (!body)
        body = "";
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                     "%zu\r\nConnection: close\r\n%s\r\n%s",
                     status, status_text(status), strlen(body),
                     status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "", body);
    if (ws->state == WS_OPEN)
        wsock_state_set(ws, WS_HEAD); /* a refused upgrade: no owner to tell */
    if (n > 0 && (size_t)n < sizeof resp && wsock_raw_send(ws, resp, (size_t)n) == 0)
        wsock_wind_down(ws, 0, 1);
    else
        wsock_wind_down(ws, 0, 0);
}

/* Not a WebSocket: libwebsockets serves it, starting with the bytes read so far. */
static void hand_to_http(struct wsock *ws, const char *data, size_t len)
{
    struct wsock_server *s = ws->srv;
    if (!s->vh) {
        refuse(ws, 503, NULL);
        return;
    }
    int fd = ws->fd;
    ws->fd = -1; /* lws owns it now; finalize must leave it open */
    /* finalize stops our poll handle first (libuv drops the fd from epoll), so lws can poll
     * the same descriptor; the bytes are copied before our buffers go. */
    char *copy = len ? malloc(len) : NULL;
    if (len && !copy) {
        close(fd);
        wsock_finalize(ws);
        return;
    }
    if (len)
        memcpy(copy, data, len);
    wsock_finalize(ws);
    if (!lws_adopt_socket_vhost_readbuf(s->vh, fd, copy, len))
        LOG_D("http adoption failed", "\"fd\":%d", fd); /* lws closed fd */
    free(copy);
}

static void upgrade(struct wsock *ws, const struct wsproto_head *head)
{
    struct wsock_server *s = ws->srv;
    size_t vlen = 0, klen = 0;
    const char *ver = wsproto_head_header(head, "sec-websocket-version", &vlen);
    const char *key = wsproto_head_header(head, "sec-websocket-key", &klen);
    char accept[29];
    if (!ver || vlen != 2 || memcmp(ver, "13", 2) != 0) {
        refuse(ws, 426, NULL);
        return;
    }
    if (!key || wsproto_accept_key(key, klen, accept) != 0 ||
        !wsproto_head_has_token(head, "connection", "upgrade")) {
        refuse(ws, 400, "{\"code\":3,\"message\":\"Bad request\"}");
        return;
    }
    /* The owner decides; what it sends meanwhile is kept behind the 101. */
    wsock_state_set(ws, WS_OPEN);
    ws->holding = 1;
    const char *body = NULL;
    int status = s->cb->upgrade(s->ud, ws, head, &body);
    ws->holding = 0;
    if (status != 0) {
        free(ws->out);
        ws->out = NULL;
        ws->out_len = ws->out_off = 0;
        refuse(ws, status, body);
        return;
    }
    char resp[160];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    unsigned char *held = ws->out;
    size_t held_len = ws->out_len - ws->out_off, held_off = ws->out_off;
    ws->out = NULL;
    ws->out_len = ws->out_off = 0;
    int rc = wsock_raw_send(ws, resp, (size_t)n);
    if (rc == 0 && held_len)
        rc = wsock_raw_send(ws, held + held_off, held_len);
    free(held);
    if (rc != 0)
        wsock_wind_down(ws, 0, 0);
}

/* The head is read with MSG_PEEK and only its own bytes are ever taken from the socket: a
 * request that is not a WebSocket upgrade goes to lws with whatever follows its head (a POST
 * body, pipelined requests) still in the socket, and lws reads it as if it had accepted the
 * connection itself. A head that arrives in pieces is taken as it comes (so the loop does
 * not spin on bytes left in the socket) and given to lws as its read buffer. */
void wsock_read_head(struct wsock *ws)
{
    struct wsock_server *s = ws->srv;
    size_t want = WSPROTO_HEAD_MAX - ws->part_len;
    unsigned char *buf = s->rbuf;
    ssize_t n = recv(ws->fd, buf, want, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) { /* the peer's end, or a reset */
        wsock_drop(ws);
        return;
    }
    if (ws->part_len) { /* the head so far, then what the socket holds (not taken yet) */
        unsigned char *nb = realloc(ws->part, ws->part_len + (size_t)n);
        if (!nb) {
            wsock_wind_down(ws, 0, 0);
            return;
        }
        ws->part = nb;
        memcpy(nb + ws->part_len, buf, (size_t)n);
    }
    const char *text = ws->part_len ? (const char *)ws->part : (const char *)buf;
    size_t have = ws->part_len + (size_t)n;
    /* Only a GET can be an upgrade. Anything else goes to lws before a byte of it is taken:
     * lws 4.1.6 corrupts a request body that follows a head given as its first read buffer
     * (seen with POSTs: the body misread, then a busy loop), so only a GET's head is ever
     * handed over that way. */
    size_t cmp = have < 4 ? have : 4;
    if (memcmp(text, "GET ", cmp) != 0) {
        if (!ws->part_len)
            hand_to_http(ws, NULL, 0);
        else
            refuse(ws, 400, NULL); /* we took "G", "GE" or "GET", then something else */
        return;
    }
    struct wsproto_head head;
    int r = wsproto_head_parse(text, have, &head);
    if (r == WSPROTO_HEAD_MORE) { /* take what came; the rest of the head will follow */
        ssize_t got = recv(ws->fd, buf, (size_t)n, 0);
        if (got != n) {
            wsock_wind_down(ws, 0, 0);
            return;
        }
        if (!ws->part_len) {
            ws->part = malloc((size_t)n);
            if (!ws->part) {
                wsock_wind_down(ws, 0, 0);
                return;
            }
            memcpy(ws->part, buf, (size_t)n);
        }
        ws->part_len = have;
        return;
    }
    if (r != WSPROTO_HEAD_DONE) {
        refuse(ws, r == WSPROTO_HEAD_TOO_LARGE ? 431 : 400, NULL);
        return;
    }
    int is_ws = wsproto_is_upgrade(&head);
    if (!is_ws && !ws->part_len) {
        hand_to_http(ws, NULL, 0); /* nothing taken: lws reads all of it */
        return;
    }
    /* Take the head's own bytes; frames or a body behind it stay in the socket. */
    size_t take = head.len - ws->part_len;
    unsigned char sink[512];
    while (take) {
        size_t k = take < sizeof sink ? take : sizeof sink;
        ssize_t got = recv(ws->fd, sink, k, 0);
        if (got != (ssize_t)k) {
            wsock_wind_down(ws, 0, 0);
            return;
        }
        take -= k;
    }
    /* head points into part or rbuf: both stay put until the decision is made */
    unsigned char *owned = ws->part;
    ws->part = NULL;
    ws->part_len = 0;
    if (!is_ws)
        hand_to_http(ws, text, head.len);
    else if (head.path_len < 10 || memcmp(head.path, "/socket.io", 10) != 0 ||
             (head.path_len > 10 && head.path[10] != '/'))
        refuse(ws, 404, NULL);
    else
        upgrade(ws, &head);
    free(owned);
}
