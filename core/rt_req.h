/* rt_req: the private state of the runtime and of one request, shared by runtime.c (the
 * lifecycle), rt_call.c (running one Lua call), rt_sync.c (entry checks, answers, cancel) and
 * rt_stream.c (stream primitives, throttles, backpressure, cancel). */
#ifndef LUCKYSYNC_RT_REQ_H
#define LUCKYSYNC_RT_REQ_H

#define RT_SENDER_BUCKETS 1024u /* requests by sender: connection ids hashed into this many */
#define RT_SENDER_MASK (RT_SENDER_BUCKETS - 1)

#include <jansson.h>
#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "jtext.h"
#include "runtime.h"
#include "timer.h"

struct rt_gen;
struct rt_vm;
struct rt_route;
struct ratelimit;
struct rt_throttle;

enum stage { ST_SERVER = 1, ST_PRE_FANOUT, ST_CLIENT, ST_POST_FANOUT, ST_ON_ERROR };
enum act { ACT_START, ACT_RESUME, ACT_DONE, ACT_FANOUT, ACT_CLIENT_NEXT, ACT_FINISH, ACT_WAIT };
enum outcome { OUT_OK, OUT_ERROR, OUT_KILLED, OUT_BADVALUE };
enum kill { KILL_NONE, KILL_TIMEOUT, KILL_OOM };

struct rt_req {
    struct rt_req *ready_next;
    struct rt_req *prev, *next; /* all requests in flight */
    /* the requests of the same sender (bucket rt->by_sender[sender & RT_SENDER_MASK]) */
    struct rt_req *sender_next, **sender_pprev;
    struct timer_node timer;
    struct runtime *rt;
    struct rt_gen *gen;
    struct rt_vm *vm;
    const struct rt_route *route;
    lua_State *co;
    int co_ref;
    int client_error_pending; /* onError for a client file, then back to the recipients */
    enum stage stage;
    enum act act;
    int queued, sleeping;
    enum kill kill;
    uint64_t sender;
    json_t *data, *ri, *user, *result, *server_output, *recipient;
    /* or, when data is NULL: the data object's JSON text (checked; from syncenv), pushed into
     * Lua straight from it */
    char *data_text;
    size_t data_len;
    /* The text path (no client file, no fanout hooks): a successful server result written
     * straight from Lua as JSON text, and where its serverOutput value lies in it (both 0:
     * there is none, and the whole result stands for it). result/server_output stay NULL. */
    char *result_text;
    size_t result_len, so_start, so_end;
    int64_t ack_id;
    char *receiver, *cb;
    int ignore_self;
    uint64_t cpu_used_ns, slice_start_ns;
    /* the outcome of the last Lua call */
    enum outcome out;
    json_t *out_value;
    char *out_error;
    /* fanout */
    uint64_t *recips;
    size_t nrecips, next_recip, delivered;
    struct buf *frame;
    /* onError */
    const char *fail_stage;
    char *fail_msg;
    /* streaming and cancel */
    char cancel_id[40];
    int cancelled, answered, broadcasted;
    struct rt_throttle *throttles;
    uint64_t pressure_threshold; /* flushPressure: bytes */
    uint64_t pressure_since_ns;  /* flushPressure: waiting since (0: not waiting) */
};

struct runtime {
    const struct config *cfg;
    struct runtime_host host;
    struct rt_gen *gen;
    char *lua_dir;
    struct timer_wheel *wheel;
    struct rt_req *ready_head, *ready_tail;
    struct rt_req *all;
    unsigned inflight;
    /* requests by sender: closing a connection or cancelling a request walks one bucket */
    struct rt_req *by_sender[RT_SENDER_BUCKETS];
    struct rt_req *running;
    struct ratelimit *rl;
    /* randomness for cancel ids, drawn from libsodium a block at a time */
    unsigned char rnd[4096]; /* 256 ids per getrandom() */
    unsigned rnd_pos; /* sizeof rnd: empty */
    /* the text of a frame being built (the success answer, the fanout frame), dropped as soon
     * as it is copied into its frames: kept from request to request (one block, not a
     * malloc/free and a chain of reallocs per frame), released past RT_TEXT_KEEP */
    struct jtext_buf text;
};

/* The largest frame text rt->text keeps between requests. */
#define RT_TEXT_KEEP (64 * 1024)

uint64_t rt_mono_ns(void);
/* The by_sender bucket of a connection id (ids are slot | generation << 32: mix both). */
static inline unsigned rt_sender_bucket(uint64_t conn)
{
    return (unsigned)((conn ^ (conn >> 32)) * 0x9E3779B1u >> 7) & RT_SENDER_MASK;
}
/* The request whose Lua is running on L's VM right now (NULL outside a request). */
struct rt_req *rt_current(lua_State *L);
/* Put req on the ready queue (runs on the next runtime_poll). */
void rt_ready_push(struct rt_req *req);

/* Arm host->wake for the next thing due (the ready queue, then the timer wheel). */
void rt_rearm(struct runtime *rt);
/* A new request from conn (ACT_START), linked into rt's list and holding a reference to the
 * current generation; rt_req_free unlinks and frees it. NULL when out of memory. */
struct rt_req *rt_req_new(struct runtime *rt, uint64_t conn, int64_t ack_id);
void rt_req_free(struct rt_req *req);
/* Drive req until it waits or ends (req may be freed on return). */
void rt_step(struct rt_req *req);

/* rt_call.c */
/* Start the call of stage st in req's coroutine (a fresh one after an error or a kill), or
 * resume the suspended one; req->act tells what comes next (ACT_DONE: req->out is set). */
void rt_call_start(struct rt_req *req, enum stage st);
void rt_call_resume(struct rt_req *req, int nargs);
/* A VM (the least loaded) and a coroutine in it for req. 0 or -1. */
int rt_attach_vm(struct rt_req *req);
/* Load rt->cfg->handlers_dir as a new generation whose VMs call back into rt (sleep, oom,
 * route). NULL with err on failure. */
struct rt_gen *rt_load_gen(struct runtime *rt, char *err, size_t errlen);

/* rt_sync.c */
/* Answer the sender (env stolen) on sync-<i> and by ack; once per request. */
void rt_answer(struct rt_req *req, json_t *env);
/* Answer the sender with an error code (params stolen, may be NULL). */
void rt_answer_error(struct rt_req *req, const char *code, json_t *params);
/* Answer the sender with the server handler's success result. */
void rt_answer_success(struct rt_req *req);
/* The recipients' frame text, serialised once into rt->text (*len set; valid until
 * rt_text_done). NULL on failure. */
const char *rt_fanout_text(struct rt_req *req, size_t *len);
/* Done with rt->text: keep its block unless it grew past RT_TEXT_KEEP. */
void rt_text_done(struct runtime *rt);
/* The user table of conn's session as handlers see it (new reference), NULL if anonymous. */
json_t *rt_user_of(struct runtime *rt, uint64_t conn);

/* rt_stream.c */
/* Give the ctx table at the top of L the VM's ctx metatable (ctx.stream, ctx.broadcastStream,
 * ctx.streamTo, ctx.streamToUsers, ctx.cancelled come through its __index) and a per-request
 * ctx.functions table over flushPressure, createStreamThrottle and the VM's shared functions. */
void rt_stream_push_ctx(lua_State *L, struct rt_req *req);
/* Flush every throttle of req that still holds text (before the final answer). */
void rt_stream_flush_all(struct rt_req *req);
/* Detach req's throttles (request ending). */
void rt_stream_release(struct rt_req *req);
/* Continuations of sleep/flushPressure raise request.aborted once req is cancelled. */
int rt_sleep_k(lua_State *L, int status, lua_KContext k);

#endif
