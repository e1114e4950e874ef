/* events: the Socket.IO layer of a connection: CONNECT with its auth payload (the session),
 * EVENT dispatch of the LuckySync events (joinRoom, leaveRoom, getJoinedRooms, updateSession,
 * sync, syncCancel), answers on `<event>-<responseIndex>` and by Socket.IO ack, and the
 * implicit rooms of a session and of a user. Uses conn (ids and send queues), sio, session,
 * room, srooms and jansson for what it reads from the wire. */
#ifndef LUCKYSYNC_EVENTS_H
#define LUCKYSYNC_EVENTS_H

#include <stddef.h>

struct buf;
struct conn;
struct conn_table;

/* Prefix of implicit room names. Explicit room names may not contain control characters, so
 * a client can never join (or name) an implicit room. */
#define EVENTS_IMPLICIT_PREFIX '\x1f'

/* The *reason of an orderly Socket.IO DISCONNECT from the client (compare the pointer). */
extern const char EVENTS_CLIENT_DISCONNECT[];

/* Handle one Socket.IO packet (the data of an Engine.IO message). Returns 0, or -1 when the
 * connection must be closed, with *reason set to a static description. */
int events_on_packet(struct conn_table *t, struct conn *c, const char *p, size_t len,
                     const char **reason);
/* The connection is going away (called once, before its rooms are dropped). */
void events_on_close(struct conn_table *t, struct conn *c);

/* A `42["name",json]` frame (json may be NULL). Caller owns the returned reference. */
struct buf *events_event_frame(const char *name, const char *json, size_t json_len);

/* Implicit room names: "\x1fs:<session id>" and "\x1fu:<user id>". Write into out (cap
 * bytes, NUL-terminated); return the length or -1 when it does not fit. */
int events_session_room(char *out, size_t cap, const char *session_id);
int events_user_room(char *out, size_t cap, const char *user_id);

#endif
