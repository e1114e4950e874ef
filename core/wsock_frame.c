/* wsock_frame.c: the frames of an open WebSocket (RFC 6455 §5, §7): data frames and
 * reassembly of fragmented messages, pings, the closing handshake, protocol failures. */
#include <stdlib.h>
#include <string.h>

#include "wsock_int.h"
#include "wsproto.h"

static void fail(struct wsock *ws, unsigned code)
{
    wsock_wind_down(ws, code, 1);
}

static void deliver(struct wsock *ws, const char *p, size_t len)
{
    ws->srv->cb->message(ws->srv->ud, ws, ws->user, p, len);
}

static void on_frame(struct wsock *ws, const struct wsproto_frame *f, unsigned char *payload)
{
    size_t plen = (size_t)f->payload_len;
    switch (f->opcode) {
    case WSPROTO_TEXT:
    case WSPROTO_BINARY:
        if (ws->msg_open) {
            fail(ws, 1002); /* §5.4: a new message inside a fragmented one */
            return;
        }
        if (f->fin) {
            if (f->opcode == WSPROTO_BINARY)
                fail(ws, 1003);
            else
                deliver(ws, (const char *)payload, plen);
            return;
        }
        ws->msg = malloc(plen ? plen : 1);
        if (!ws->msg) {
            fail(ws, 1011);
            return;
        }
        if (plen)
            memcpy(ws->msg, payload, plen);
        ws->msg_len = plen;
        ws->msg_open = 1;
        ws->msg_op = (unsigned char)f->opcode;
        return;
    case WSPROTO_CONT: {
        if (!ws->msg_open) {
            fail(ws, 1002);
            return;
        }
        if (ws->msg_len + plen > ws->srv->opt.max_message) {
            fail(ws, 1009);
            return;
        }
        char *nb = realloc(ws->msg, ws->msg_len + plen + 1);
        if (!nb) {
            fail(ws, 1011);
            return;
        }
        memcpy(nb + ws->msg_len, payload, plen);
        ws->msg = nb;
        ws->msg_len += plen;
        if (!f->fin)
            return;
        char *m = ws->msg;
        size_t mlen = ws->msg_len;
        ws->msg = NULL;
        ws->msg_len = 0;
        ws->msg_open = 0;
        if (ws->msg_op == WSPROTO_BINARY)
            fail(ws, 1003);
        else
            deliver(ws, m, mlen);
        free(m);
        return;
    }
    case WSPROTO_PING: {
        unsigned char pong[10 + 125];
        size_t hl = wsproto_header_encode(pong, WSPROTO_PONG, plen);
        memcpy(pong + hl, payload, plen);
        if (wsock_raw_send(ws, pong, hl + plen) != 0)
            wsock_wind_down(ws, 0, 0);
        return;
    }
    case WSPROTO_PONG:
        return;
    case WSPROTO_CLOSE: {
        unsigned code = wsproto_close_code(payload, plen);
        if (!code)
            fail(ws, 1002);
        else {
            ws->close_code = (unsigned short)code; /* the peer's reason, not our answer's */
            wsock_wind_down(ws, code == 1005 ? 1000 : code, 1); /* §5.5.1: answer, then end */
        }
        return;
    }
    default:
        fail(ws, 1002);
    }
}

/* Frames in p[0..n) (mutable: unmasked in place); an incomplete tail is kept in ws->part. */
void wsock_process_frames(struct wsock *ws, unsigned char *p, size_t n)
{
    size_t max = ws->srv->opt.max_message;
    if (ws->part_len) {
        unsigned char *nb = realloc(ws->part, ws->part_len + n);
        if (!nb) {
            wsock_wind_down(ws, 0, 0);
            return;
        }
        memcpy(nb + ws->part_len, p, n);
        ws->part = nb;
        ws->part_len += n;
        p = ws->part;
        n = ws->part_len;
    }
    size_t off = 0;
    while (off < n && ws->state == WS_OPEN) {
        struct wsproto_frame f;
        int r = wsproto_frame_decode(p + off, n - off, max, &f);
        if (r == WSPROTO_FRAME_MORE)
            break;
        if (r < 0) {
            fail(ws, r == WSPROTO_FRAME_TOO_BIG ? 1009 : 1002);
            return;
        }
        if (n - off - f.header_len < f.payload_len)
            break;
        unsigned char *payload = p + off + f.header_len;
        wsproto_unmask(payload, (size_t)f.payload_len, f.mask, 0);
        off += f.header_len + (size_t)f.payload_len;
        on_frame(ws, &f, payload);
    }
    if (ws->state != WS_OPEN)
        return; /* wind_down freed part */
    size_t rest = n - off;
    if (p == ws->part) {
        if (!rest) {
            free(ws->part);
            ws->part = NULL;
        } else if (off) {
            memmove(ws->part, ws->part + off, rest);
        }
        ws->part_len = rest;
    } else if (rest) {
        ws->part = malloc(rest);
        if (!ws->part) {
            wsock_wind_down(ws, 0, 0);
            return;
        }
        memcpy(ws->part, p + off, rest);
        ws->part_len = rest;
    }
}
