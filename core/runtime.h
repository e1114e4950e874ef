/* runtime: the Lua handler runtime — routes loaded into a sandboxed VM pool, and the lifecycle
 * of one sync request: envelope checks, auth, rate limit, room membership, input validation,
 * the server handler (a coroutine that may sleep and is time-sliced), the preSyncFanout hook,
 * recipients, the client handler per recipient, the answers and the fanout (in slices), the
 * postSyncFanout hook; onError for every handler failure. Hot reload swaps generations.
 *
 * It never sees a socket: connections are 64-bit ids and everything it needs from the
 * transport goes through struct runtime_host. Time is its own timer wheel; the host calls
 * runtime_poll() when runtime_next_in() says so (and whenever host->wake asks). */
#ifndef LUCKYSYNC_RUNTIME_H
#define LUCKYSYNC_RUNTIME_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct buf;
struct config;
struct session;
struct runtime;

struct runtime_host {
    /* Queue an Engine.IO packet (borrowed buf) for connection conn. 0, or negative when the
     * connection is gone or over its queue bound. */
    int (*send)(void *ud, uint64_t conn, struct buf *packet);
    /* 1 when conn is a member of room. */
    int (*is_member)(void *ud, uint64_t conn, const char *room, size_t len);
    /* Snapshot of a room's members: *out is malloc'd (caller frees), *n its length. 0 or
     * -ENOMEM. An unknown room gives 0 members. */
    int (*members)(void *ud, const char *room, size_t len, uint64_t **out, size_t *n);
    /* The session of conn (NULL: anonymous or gone). Borrowed until control returns. */
    const struct session *(*session)(void *ud, uint64_t conn);
    /* Stream audiences (frames are borrowed): every member of a room, every socket of a
     * session, every socket of a user. Return how many connections took it. */
    size_t (*broadcast)(void *ud, const char *room, size_t len, struct buf *packet);
    size_t (*to_session)(void *ud, const char *session_id, struct buf *packet);
    size_t (*to_user)(void *ud, const char *user_id, struct buf *packet);
    /* Bytes queued for conn (backpressure); 0 when unknown or gone. */
    size_t (*queued)(void *ud, uint64_t conn);
    /* Disconnect conn (deferred) with a logged reason: a member that held a stream back for
     * too long. May be NULL. */
    void (*drop)(void *ud, uint64_t conn, const char *reason);
    /* The rate-limit identity of an anonymous sender (e.g. "ip:1.2.3.4" for an HTTP request,
     * "c:<id>" for a socket) into out. May be NULL (then "c:<id>"). */
    void (*client_key)(void *ud, uint64_t conn, char *out, size_t cap);
    /* Something became due in delay_ms: call runtime_poll then (0 = next loop turn). */
    void (*wake)(void *ud, uint64_t delay_ms);
    /* A reload failed in development: tell clients (devError). May be NULL. */
    void (*dev_error)(void *ud, const char *file, int line, const char *message);
    /* Observer of hook calls (the busted harness records them): name, route, the hook's
     * return value (borrowed, may be NULL) and the recipient count (postSyncFanout) or -1.
     * May be NULL. */
    void (*hook_called)(void *ud, const char *name, const char *route, const json_t *result,
                        long recipients);
    void *ud;
};

/* Load every handler under cfg->handlers_dir (and `require` roots lua_dir, may be NULL).
 * host is copied. NULL with err ("file:line: message" lines) when loading fails. */
struct runtime *runtime_new(const struct config *cfg, const char *lua_dir,
                            const struct runtime_host *host, char *err, size_t errlen);
/* Fails every request in flight (no answers are sent) and frees everything. */
void runtime_free(struct runtime *rt);

/* A `sync` event from conn: payload is its argument (borrowed, shared: never modified; any
 * JSON value), ack_id the Socket.IO ack id or -1, raw_len the size of the packet it came in
 * (bounds the data for sync.maxPayload; 0: measure). Never fails: every problem is answered
 * with an error envelope. */
void runtime_sync(struct runtime *rt, uint64_t conn, const json_t *payload, int64_t ack_id,
                  size_t raw_len);

struct syncenv;
/* The same for a `sync` event read by syncenv_read (its fields borrowed for the call; its data
 * is JSON text already checked as jtext_load checks it). raw_len as above. */
void runtime_sync_env(struct runtime *rt, uint64_t conn, const struct syncenv *env,
                      int64_t ack_id, size_t raw_len);
/* Run due timers and ready work. */
void runtime_poll(struct runtime *rt);
/* Milliseconds until runtime_poll has work (UINT64_MAX: nothing scheduled). */
uint64_t runtime_next_in(struct runtime *rt);
/* The connection went away: its requests are cancelled (no answer is sent). */
void runtime_conn_closed(struct runtime *rt, uint64_t conn);
/* `syncCancel {cb}` from conn: cancel its request with that cancel id (a no-op when unknown).
 * The sender is answered with request.aborted at once. */
void runtime_cancel(struct runtime *rt, uint64_t conn, const char *cancel_id);

/* rooms.policy = "hook": ask the `roomJoin` hook of _hooks.lua whether conn may join room.
 * The hook runs synchronously with a 50 ms budget and may not sleep. Returns 1 (allowed) or
 * 0 with *code set to its errorCode or "room.forbidden" (also when it fails or is absent). */
int runtime_room_allowed(struct runtime *rt, uint64_t conn, const char *room, size_t len,
                         const char **code);

/* Recompile every handler into a new generation; on success new requests use it and the old
 * one is freed when its last request ends. On failure the old generation stays, the error is
 * logged and host->dev_error is told. Returns 0 or -1. */
int runtime_reload(struct runtime *rt);

/* Load all handlers the way the server does and print one "file:line: message" line per
 * problem to out. Returns the number of problems (0: all good). */
int runtime_check(const struct config *cfg, const char *lua_dir, FILE *out);

/* The routes and their input types as TypeScript declarations (tools/gen-types). Returns 0
 * or -1 (problems printed to stderr). */
int runtime_typescript(const struct config *cfg, const char *lua_dir, FILE *out);

/* Counters for stats. */
unsigned runtime_inflight(const struct runtime *rt);
unsigned runtime_generation(const struct runtime *rt);

#endif
