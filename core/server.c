/* server.c: lws context, routes, timer tick, signals. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "conn.h"
#include "envelope.h"
#include "events.h"
#include "fanout.h"
#include "http_sync.h"
#include "jtext.h"
#include "jwt.h"
#include "log.h"
#include "reload.h"
#include "room.h"
#include "runtime.h"
#include "session.h"
#include "sio.h"
#include "srooms.h"
#include "wsock.h"

#define TICK_MS 100

struct server {
    const struct config *cfg;
    struct lws_context *ctx;
    struct room_registry *rooms;
    struct conn_table *conns;
    lws_sorted_usec_list_t tick;
    lws_sorted_usec_list_t rt_sul;
    int rt_ready; /* runtime work is ready: run it when poll() is woken */
    struct runtime *rt;
    struct reload *reload;
    struct wsock_server *wss; /* the listener and every WebSocket */
    char static_root[PATH_MAX];
    int has_static;
    int loop_ready; /* loop initialised (lws runs on it as its foreign loop) */
    uv_loop_t loop; /* the one loop of the process when uv */
    uv_signal_t sigs[2];
    uv_prepare_t flush_prepare; /* before the loop blocks: flush what timers queued */
    uv_check_t flush_check;     /* after the I/O callbacks of a pass: flush what they queued */
    uv_idle_t rt_idle;          /* keeps the loop from blocking while runtime work is ready */
    /* lws keeps the pointer: the protocols with this server's rx buffer size */
    struct lws_protocols protocols[3];
    int passes;           /* the pass_end handles are running */
    int no_loop_teardown; /* the context failed half-way: destroy it, never run the loop */
};

/* The signal flag is one of the two process globals STYLE.md allows. */
static volatile sig_atomic_t server_interrupted;
static struct lws_context *server_signal_ctx;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void stop_loop(struct server *s);

static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct server *s = lws_container_of(sul, struct server, tick);
    if (server_interrupted) { /* a signal arrived: leave the loop */
        stop_loop(s);
        return;
    }
    conn_table_tick(s->conns, mono_ms());
    if (s->wss)
        wsock_server_tick(s->wss);
    lws_sul_schedule(s->ctx, 0, &s->tick, on_tick, TICK_MS * LWS_US_PER_MS);
}

static const char *mime_for(const char *path)
{
    static const struct {
        const char *ext, *mime;
    } map[] = {{".html", "text/html; charset=utf-8"},
               {".js", "text/javascript; charset=utf-8"},
               {".mjs", "text/javascript; charset=utf-8"},
               {".css", "text/css; charset=utf-8"},
               {".json", "application/json"},
               {".map", "application/json"},
               {".svg", "image/svg+xml"},
               {".png", "image/png"},
               {".ico", "image/x-icon"},
               {".txt", "text/plain; charset=utf-8"},
               {".wasm", "application/wasm"}};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(dot, map[i].ext) == 0)
            return map[i].mime;
    return "application/octet-stream";
}

/* Serve a file under --static. Returns the lws callback result. */
static int serve_static(struct server *s, struct lws *wsi, struct conn_pss *pss, const char *uri)
{
    char want[PATH_MAX], real[PATH_MAX];
    if (!s->has_static || strstr(uri, "..") || uri[0] != '/')
        return conn_http_respond(wsi, pss, 404, "not found");
    size_t ulen = strlen(uri);
    int n = snprintf(want, sizeof want, "%s%s%s", s->static_root, uri,
                     uri[ulen - 1] == '/' ? "index.html" : "");
    if (n < 0 || (size_t)n >= sizeof want || !realpath(want, real))
        return conn_http_respond(wsi, pss, 404, "not found");
    size_t rlen = strlen(s->static_root);
    if (strncmp(real, s->static_root, rlen) != 0 || (real[rlen] != '/' && real[rlen] != '\0'))
        return conn_http_respond(wsi, pss, 404, "not found");
    int rc = lws_serve_http_file(wsi, real, mime_for(real), NULL, 0);
    if (rc < 0 || (rc > 0 && lws_http_transaction_completed(wsi)))
        return -1;
    return 0;
}

static int serve_stats(struct server *s, struct lws *wsi, struct conn_pss *pss)
{
    char body[512];
    struct fanout *f = conn_table_fanout(s->conns);
    snprintf(body, sizeof body,
             "{\"connections\":%u,\"rooms\":%zu,\"sessionsRemembered\":%zu,"
             "\"framesFanned\":%llu,\"deliveries\":%llu}",
             conn_table_count(s->conns), room_count(s->rooms),
             srooms_sessions(conn_table_srooms(s->conns)), fanout_frames(f), fanout_deliveries(f));
    return conn_http_respond(wsi, pss, 200, body);
}

/* ---- the runtime's view of the transport: ids only ---- */

static int host_send(void *ud, uint64_t conn, struct buf *packet)
{
    struct server *s = ud;
    struct conn *c = conn_get(s->conns, conn);
    return c ? conn_send(s->conns, c, packet) : -ENOENT;
}

static int host_is_member(void *ud, uint64_t conn, const char *room, size_t len)
{
    struct server *s = ud;
    struct conn *c = conn_get(s->conns, conn);
    if (!c)
        return 0;
    if (!conn_is_virtual(c))
        return room_is_member(s->rooms, conn, room, len);
    /* An HTTP request is in the rooms its session has joined (reference §5.2). */
    const struct session *ss = conn_session(c);
    char *const *names;
    size_t n = ss ? srooms_list(conn_table_srooms(s->conns), ss->session_id, &names) : 0;
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == len && memcmp(names[i], room, len) == 0)
            return 1;
    return 0;
}

static int host_members(void *ud, const char *room, size_t len, uint64_t **out, size_t *n)
{
    struct server *s = ud;
    const room_member_t *m;
    size_t count;
    *out = NULL;
    *n = 0;
    if (room_members(s->rooms, room, len, &m, &count) != 0 || count == 0)
        return 0;
    *out = malloc(count * sizeof **out);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, m, count * sizeof **out);
    *n = count;
    return 0;
}

static const struct session *host_session(void *ud, uint64_t conn)
{
    struct server *s = ud;
    struct conn *c = conn_get(s->conns, conn);
    return c ? conn_session(c) : NULL;
}

static size_t host_broadcast(void *ud, const char *room, size_t len, struct buf *packet)
{
    struct server *s = ud;
    return fanout_room(conn_table_fanout(s->conns), room, len, packet, 0);
}

static size_t host_to_session(void *ud, const char *session_id, struct buf *packet)
{
    struct server *s = ud;
    char room[1100];
    int n = events_session_room(room, sizeof room, session_id);
    return n > 0 ? fanout_room(conn_table_fanout(s->conns), room, (size_t)n, packet, 0) : 0;
}

static size_t host_to_user(void *ud, const char *user_id, struct buf *packet)
{
    struct server *s = ud;
    char room[1100];
    int n = events_user_room(room, sizeof room, user_id);
    return n > 0 ? fanout_room(conn_table_fanout(s->conns), room, (size_t)n, packet, 0) : 0;
}

static size_t host_queued(void *ud, uint64_t conn)
{
    struct server *s = ud;
    struct conn *c = conn_get(s->conns, conn);
    return c ? conn_queued_bytes(c) : 0;
}

static void host_drop(void *ud, uint64_t conn, const char *reason)
{
    struct server *s = ud;
    struct conn *c = conn_get(s->conns, conn);
    if (c) {
        LOG_W("slow consumer", "\"reason\":\"%s\"", reason);
        conn_close_later(s->conns, c, reason);
    }
}

static void host_client_key(void *ud, uint64_t conn, char *out, size_t cap)
{
    struct server *s = ud;
    struct conn *c = conn_get(s->conns, conn);
    if (c && conn_peer(c))
        snprintf(out, cap, "ip:%s", conn_peer(c));
}

static void on_runtime(lws_sorted_usec_list_t *sul)
{
    struct server *s = lws_container_of(sul, struct server, rt_sul);
    runtime_poll(s->rt);
}

static void on_rt_idle(uv_idle_t *h)
{
    (void)h; /* its only job is a non-blocking poll while runtime work is ready */
}

static void host_wake(void *ud, uint64_t delay_ms)
{
    struct server *s = ud;
    if (!s->ctx)
        return;
    if (delay_ms == 0) {
        /* Ready work (a time-sliced handler, a fanout slice): run it at the end of this loop
         * pass (or, before the loop runs, when the loop is woken); a zero-delay sul would still
         * wait for lws's timer granularity and leave the core idle between slices. */
        s->rt_ready = 1;
        if (s->passes)
            uv_idle_start(&s->rt_idle, on_rt_idle);
        else
            lws_cancel_service(s->ctx);
        return;
    }
    lws_sul_schedule(s->ctx, 0, &s->rt_sul, on_runtime, (lws_usec_t)delay_ms * LWS_US_PER_MS);
}

static void host_dev_error(void *ud, const char *file, int line, const char *message)
{
    struct server *s = ud;
    if (!s->cfg->dev)
        return;
    json_t *j = json_pack("{s:s, s:i, s:s}", "file", file, "line", line, "message", message);
    char *text = j ? jtext_dump(j, NULL) : NULL;
    struct buf *b = text ? sio_event_encode("devError", 8, text, strlen(text), -1) : NULL;
    if (b)
        conn_table_broadcast(s->conns, b);
    buf_unref(b);
    free(text);
    json_decref(j);
}

static void on_reload(void *ud)
{
    struct server *s = ud;
    runtime_reload(s->rt);
}

/* --dev only: a token for the demo page (`?sub=alice`), signed with the configured key. */
static int serve_dev_token(struct server *s, struct lws *wsi, struct conn_pss *pss)
{
    char arg[80], sub[65];
    const char *v = lws_get_urlarg_by_name(wsi, "sub=", arg, sizeof arg);
    size_t n = 0;
    for (; v && v[n] && n < sizeof sub - 1; n++) {
        char c = v[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            break;
        sub[n] = c;
    }
    sub[n] = '\0';
    if (!n)
        return conn_http_respond(wsi, pss, 400, "{\"error\":\"sub=[A-Za-z0-9_-]+ required\"}");
    json_t *claims = json_pack("{s:s, s:s, s:[s], s:I}", "sub", sub, "name", sub, "roles", "editor",
                               "exp", (json_int_t)time(NULL) + 3600);
    char *token = NULL;
    int rc = claims ? jwt_sign(s->cfg->keys, NULL, claims, &token) : -1;
    json_decref(claims);
    if (rc != 0)
        return conn_http_respond(wsi, pss, 503, "{\"error\":\"no signing key configured\"}");
    char body[4096];
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", token);
    free(token);
    return conn_http_respond(wsi, pss, 200, body);
}

static int is_eio_path(const char *uri)
{
    return strncmp(uri, "/socket.io/", 11) == 0 || strcmp(uri, "/socket.io") == 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct server *s = lws_context_user(lws_get_context(wsi));
    struct conn_pss *pss = user;
    if (!s)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        const char *uri = in;
        if (is_eio_path(uri))
            return conn_http_request(s->conns, wsi, pss, uri);
        memset(pss, 0, sizeof *pss);
        if (strcmp(uri, "/luckysync/stats") == 0)
            return serve_stats(s, wsi, pss);
        if (s->cfg->dev && strcmp(uri, "/luckysync/dev-token") == 0)
            return serve_dev_token(s, wsi, pss);
        if (strncmp(uri, "/sync/", 6) == 0)
            return http_sync_request(s->conns, wsi, pss, uri);
        if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
            return conn_http_respond(wsi, pss, 405, "method not allowed");
        return serve_static(s, wsi, pss, uri);
    }
    case LWS_CALLBACK_HTTP_BODY:
        if (http_sync_owns(pss))
            return http_sync_body(s->conns, wsi, pss, in, len);
        return conn_http_body(s->conns, wsi, pss, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (http_sync_owns(pss))
            return http_sync_body_done(s->conns, wsi, pss);
        return conn_http_body_done(s->conns, wsi, pss);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (http_sync_owns(pss))
            return http_sync_writeable(s->conns, wsi, pss);
        return conn_http_writeable(s->conns, wsi, pss);
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (pss && http_sync_owns(pss))
            http_sync_closed(s->conns, wsi, pss);
        if (pss)
            conn_http_closed(s->conns, wsi, pss);
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* WebSocket upgrades are answered by wsock when a connection opens; an HTTP
         * keep-alive connection served by lws does not switch protocols. */
        return 1;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (s->rt_ready && s->rt) {
            s->rt_ready = 0;
            runtime_poll(s->rt);
        }
        return 0;
    default:
        return 0;
    }
}

static void lws_log_emit(int level, const char *line)
{
    char esc[512];
    size_t n = strlen(line);
    if (strstr(line, "adopt_socket_readbuf: calling service"))
        return; /* lws 4.1.6 logs every adoption with a first read buffer as an error */
    char trimmed[512];
    snprintf(trimmed, sizeof trimmed, "%.*s", (int)(n && line[n - 1] == '\n' ? n - 1 : n), line);
    log_write(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "libwebsockets", "\"line\":\"%s\"",
              log_escape(trimmed, esc, sizeof esc));
}

/* The template of the server's protocols (HTTP only: wsock serves the WebSockets). */
static const struct lws_protocols protocols[] = {
    {
        .name = "luckysync",
        .callback = callback,
        .per_session_data_size = sizeof(struct conn_pss),
        .tx_packet_size = 65536,
    },
    {
        .name = "luckysync-watch",
        .callback = (lws_callback_function *)reload_lws_callback,
    },
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Leave the loop: uv_run returns once stopped. */
static void stop_loop(struct server *s)
{
    uv_stop(&s->loop);
}

/* The end of a libuv loop pass (after the I/O callbacks, and again before the loop blocks):
 * tell the table of the WebSockets that closed, run the runtime work that is ready, then
 * write each connection's frames with one write. */
static void pass_end(struct server *s)
{
    if (s->wss)
        wsock_server_reap(s->wss);
    if (s->rt_ready && s->rt) {
        s->rt_ready = 0;
        runtime_poll(s->rt);
    }
    conn_table_flush(s->conns);
    if (!s->rt_ready)
        uv_idle_stop(&s->rt_idle);
}

static void on_flush_prepare(uv_prepare_t *h)
{
    pass_end(h->data);
}

static void on_flush_check(uv_check_t *h)
{
    pass_end(h->data);
}

static void on_uv_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    server_interrupted = 1;
    stop_loop(h->data);
}

struct server *server_new(const struct config *cfg)
{
    struct server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = cfg;
    if (cfg->static_dir) {
        if (!realpath(cfg->static_dir, s->static_root)) {
            LOG_E("static folder not found", "\"path\":\"%s\"", cfg->static_dir);
            goto fail;
        }
        s->has_static = 1;
    }
    s->rooms = room_registry_new();
    s->conns = s->rooms ? conn_table_new(cfg, s->rooms, mono_ms()) : NULL;
    if (!s->conns)
        goto fail;

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    /* wsock owns the listening socket and hands plain HTTP connections to lws's vhost. */
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    memcpy(s->protocols, protocols, sizeof protocols);
    info.protocols = s->protocols;
    info.user = s;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    void *loops[1];
    /* libuv (epoll) as lws's foreign loop: the cost of an event does not grow with idle
     * connections (docs/ARCHITECTURE.md, "The event loop"); wsock's sockets are on it too. */
    if (uv_loop_init(&s->loop) != 0) {
        LOG_E("cannot start", "\"error\":\"uv_loop_init\"");
        goto fail;
    }
    s->loop_ready = 1;
    loops[0] = &s->loop;
    info.foreign_loops = loops;
    info.options |= LWS_SERVER_OPTION_LIBUV;
    info.max_http_header_pool = 64; /* held polls give theirs back (conn.c) */
    info.max_http_header_data = 4096;
    info.keepalive_timeout = 30;
    info.timeout_secs = 20;
    /* lws indexes its sockets by descriptor: any descriptor of the process may become an HTTP
     * connection, whatever wsock's WebSockets already hold. */
    struct rlimit rl;
    unsigned fds = cfg->max_connections + 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > fds)
        fds = (unsigned)rl.rlim_cur;
    info.fd_limit_per_thread = fds;
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        LOG_E("cannot start", "\"host\":\"%s\",\"port\":%d", cfg->host, cfg->port);
        goto fail;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(s->ctx, "default");
    if (!vh) {
        LOG_E("cannot start", "\"error\":\"no vhost\"");
        s->no_loop_teardown = 1;
        goto fail;
    }
    struct wsock_options wo = {.host = cfg->host,
                               .port = cfg->port,
                               .max_message = cfg->max_payload,
                               .read_bytes = cfg->ws_read_bytes,
                               .head_timeout_ms = cfg->handshake_timeout_ms,
                               .max_heads = 4096,
                               /* a send queue's worth plus one batch */
                               .max_output = cfg->send_queue_max_bytes + 128 * 1024};
    int lrc = wsock_server_new(&s->loop, &wo, conn_ws_callbacks(), s->conns, &s->wss);
    if (lrc != 0) {
        LOG_E("cannot listen", "\"host\":\"%s\",\"port\":%d,\"error\":\"%s\"", cfg->host, cfg->port,
              lrc == -EADDRINUSE ? "address in use" : strerror(-lrc));
        goto fail;
    }
    wsock_server_set_http(s->wss, vh);
    conn_table_set_context(s->conns, s->ctx);
    lws_sul_schedule(s->ctx, 0, &s->tick, on_tick, TICK_MS * LWS_US_PER_MS);

    struct runtime_host host = {.send = host_send,
                                .is_member = host_is_member,
                                .members = host_members,
                                .session = host_session,
                                .broadcast = host_broadcast,
                                .to_session = host_to_session,
                                .to_user = host_to_user,
                                .queued = host_queued,
                                .drop = host_drop,
                                .client_key = host_client_key,
                                .wake = host_wake,
                                .dev_error = host_dev_error,
                                .ud = s};
    char err[8192];
    s->rt = runtime_new(cfg, cfg->lua_dir, &host, err, sizeof err);
    if (!s->rt) {
        char esc[4096];
        LOG_E("cannot load handlers", "\"error\":\"%s\"", log_escape(err, esc, sizeof esc));
        goto fail;
    }
    conn_table_set_runtime(s->conns, s->rt);
    if (cfg->dev || cfg->hot_reload) {
        char hreal[PATH_MAX], lreal[PATH_MAX + 16];
        const char *dirs[2] = {realpath(cfg->handlers_dir, hreal), NULL};
        if (cfg->lua_dir)
            dirs[1] = realpath(cfg->lua_dir, lreal);
        else if (dirs[0]) {
            snprintf(lreal, sizeof lreal, "%s/../lua", hreal);
            dirs[1] = lreal;
        }
        s->reload =
            reload_start(s->ctx, lws_get_vhost_by_name(s->ctx, "default"), dirs, 2, on_reload, s);
    }
    return s;
fail:
    server_free(s);
    return NULL;
}

int server_run(struct server *s)
{
    /* SIGINT/SIGTERM as loop callbacks (uv signal handles). */
    int sig[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        uv_signal_init(&s->loop, &s->sigs[i]);
        s->sigs[i].data = s;
        uv_signal_start(&s->sigs[i], on_uv_signal, sig[i]);
    }
    /* One write per connection per loop pass (conn_table_flush). */
    uv_prepare_init(&s->loop, &s->flush_prepare);
    s->flush_prepare.data = s;
    uv_prepare_start(&s->flush_prepare, on_flush_prepare);
    uv_check_init(&s->loop, &s->flush_check);
    s->flush_check.data = s;
    uv_check_start(&s->flush_check, on_flush_check);
    uv_idle_init(&s->loop, &s->rt_idle);
    s->rt_idle.data = s;
    conn_table_set_deferred_flush(s->conns, 1);
    s->passes = 1;
    signal(SIGPIPE, SIG_IGN);
    server_signal_ctx = s->ctx;
    LOG_I("listening", "\"host\":\"%s\",\"port\":%d,\"maxConnections\":%u", s->cfg->host,
          s->wss ? wsock_server_port(s->wss) : s->cfg->port, s->cfg->max_connections);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 2; i++) {
        uv_signal_stop(&s->sigs[i]);
        uv_close((uv_handle_t *)&s->sigs[i], NULL);
    }
    conn_table_flush(s->conns);
    conn_table_set_deferred_flush(s->conns, 0);
    s->passes = 0;
    uv_idle_stop(&s->rt_idle);
    uv_close((uv_handle_t *)&s->rt_idle, NULL);
    uv_prepare_stop(&s->flush_prepare);
    uv_close((uv_handle_t *)&s->flush_prepare, NULL);
    uv_check_stop(&s->flush_check);
    uv_close((uv_handle_t *)&s->flush_check, NULL);
    LOG_I("stopping", "\"connections\":%u", conn_table_count(s->conns));
    server_signal_ctx = NULL;
    return 0;
}

void server_stop(struct server *s)
{
    (void)s;
    server_interrupted = 1;
    if (server_signal_ctx)
        lws_cancel_service(server_signal_ctx);
}

void server_free(struct server *s)
{
    if (!s)
        return;
    if (s->ctx) {
        wsock_server_free(s->wss); /* closed callbacks while the table and lws still exist */
        s->wss = NULL;
        lws_sul_cancel(&s->tick);
        lws_sul_cancel(&s->rt_sul);
        reload_stop(s->reload);
        conn_table_set_context(s->conns, NULL);
        lws_context_destroy(s->ctx);
        if (s->loop_ready && !s->no_loop_teardown) {
            /* Foreign loop: lws closes its handles on the loop, then a second destroy call
             * finishes the context. */
            for (int i = 0; i < 1000 && uv_run(&s->loop, UV_RUN_NOWAIT); i++)
                ;
            lws_context_destroy(s->ctx);
            for (int i = 0; i < 1000 && uv_run(&s->loop, UV_RUN_NOWAIT); i++)
                ;
            uv_loop_close(&s->loop);
        }
    } else if (s->loop_ready) {
        uv_loop_close(&s->loop);
    }
    if (s->conns)
        conn_table_set_runtime(s->conns, NULL);
    runtime_free(s->rt);
    conn_table_free(s->conns);
    room_registry_free(s->rooms);
    free(s);
}
