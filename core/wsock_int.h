/* wsock_int.h: private to the wsock module (core/wsock.c, wsock_head.c, wsock_frame.c): the
 * fields of a connection and of the server, and the helpers the three files share. wsock.c owns
 * the sockets (lists, output, events, the server); wsock_head.c a new connection's request head
 * and the upgrade; wsock_frame.c the frames of an open WebSocket. */
#ifndef LUCKYSYNC_WSOCK_INT_H
#define LUCKYSYNC_WSOCK_INT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "wsock.h"

#define LINGER_MS 2000 /* bound on waiting for the peer's end after our close */

enum ws_state { WS_HEAD, WS_OPEN, WS_LINGER, WS_DEAD };

struct wsock {
    uv_poll_t poll; /* poll.data = this */
    struct wsock_server *srv;
    int fd;
    unsigned char state;
    unsigned holding : 1, /* inside the upgrade callback: sends wait behind the 101 */
        owed : 1,         /* the owner has not been told of the close yet */
        in_reap : 1, msg_open : 1, shut : 1;
    unsigned char msg_op;
    unsigned short close_code; /* told to the owner: see wsock_callbacks.closed */
    int events;                /* uv events asked for */
    uint64_t user;
    uint64_t deadline;           /* HEAD: end of the head; LINGER: end of the wait */
    struct wsock *prev, *next;   /* every connection of the server */
    struct wsock *tprev, *tnext; /* the timed list of its state (heads or lingers) */
    struct wsock *reap_next;
    unsigned char *out; /* kept-back output, out[out_off..out_len) */
    size_t out_len, out_off;
    unsigned char *part; /* an incomplete frame (or the head read so far) */
    size_t part_len;
    char *msg; /* a fragmented message being reassembled */
    size_t msg_len;
};

struct tlist {
    struct wsock *first, *last;
    unsigned n;
};

struct wsock_server {
    uv_loop_t *loop;
    uv_poll_t *lpoll;
    int lfd, port, accepting;
    uint64_t resume_at;
    struct wsock_options opt;
    const struct wsock_callbacks *cb;
    void *ud;
    struct lws_vhost *vh;
    unsigned char *rbuf;
    size_t rcap;
    size_t out_max;
    struct wsock *all;
    struct tlist heads, lingers;
    struct wsock *reap;
};

/* Move ws to state st, and to the timed list of that state (heads, lingers). */
void wsock_state_set(struct wsock *ws, enum ws_state st);
/* The uv events polled for ws (0: none). */
void wsock_events_set(struct wsock *ws, int events);
/* Queue ws for wsock_server_reap (the owner's closed callback, then the release). */
void wsock_reap_queue(struct wsock *ws);
/* Drop ws at once (WS_DEAD, no more events); released at the reap. Not for an open one whose
 * owner must be told: that is wsock_wind_down. */
void wsock_drop(struct wsock *ws);
/* Release ws: handle, descriptor (unless -1), buffers. Not while the owner is owed a call. */
void wsock_finalize(struct wsock *ws);
/* Send what the kernel takes now, keep the rest. Returns 0 or a negative errno. */
int wsock_raw_send(struct wsock *ws, const void *data, size_t len);
/* Close: our close frame (code 0: none), then linger (flush, FIN, wait for the peer's end,
 * bounded) or drop at once. The owner of an open connection is told from the reap. */
void wsock_wind_down(struct wsock *ws, unsigned code, int linger);
/* A readable connection in WS_HEAD: read its head, then upgrade, refuse or hand it to lws. */
void wsock_read_head(struct wsock *ws);
/* Frames in p[0..n) (unmasked in place); an incomplete tail is kept in ws->part. */
void wsock_process_frames(struct wsock *ws, unsigned char *p, size_t n);

#endif
