/* config: the server's settings. Defaults, then the Lua config file (a chunk returning a
 * table), then command-line flags, in that order. Also turns the `auth` section (or the
 * LUCKYSYNC_JWT_SECRET environment variable) into a jwt keyset. Uses Lua (a throwaway state for
 * reading the file), jwt and log. */
#ifndef LUCKYSYNC_CONFIG_H
#define LUCKYSYNC_CONFIG_H

#include <stddef.h>

#include "log.h"

struct jwt_keyset;

enum config_room_policy {
    CONFIG_ROOM_ANYONE = 0,
    CONFIG_ROOM_LOGGED_IN = 1, /* default */
    CONFIG_ROOM_HOOK = 2,      /* a Lua hook decides (Lua runtime issue) */
};

struct config {
    /* server */
    char *host;         /* "127.0.0.1" */
    int port;           /* 8080 */
    char *handlers_dir; /* "./handlers" */
    char *static_dir;   /* NULL: no static files */
    enum log_level log_level;
    int dev;        /* --dev: development mode (devError events, hot reload) */
    int hot_reload; /* hotReload: watch handlers in production too */

    /* limits */
    size_t max_payload;            /* 1 MB: Engine.IO maxPayload and max message */
    unsigned max_connections;      /* 10000 */
    unsigned ws_read_bytes;        /* 65536: the one WebSocket read buffer (wsock) */
    unsigned max_rooms_per_socket; /* 50 */
    unsigned max_room_name;        /* 256 */
    unsigned handshake_timeout_ms; /* 10000: open → Socket.IO CONNECT */
    unsigned ping_interval_ms;     /* 25000 */
    unsigned ping_timeout_ms;      /* 20000 */
    size_t send_queue_max_bytes;   /* 4 MB per connection */
    unsigned send_queue_max_frames; /* 4096 per connection */

    /* browsers: allowed Origin values; an empty list admits any origin. Requests without an
     * Origin header (non-browser clients) are always admitted. */
    char **allowed_origins;
    size_t allowed_origins_count;

    enum config_room_policy room_policy;

    /* auth */
    struct jwt_keyset *keys; /* owned; never NULL after config_init */
    long jwt_leeway_s;       /* 30 */
    unsigned session_grace_ms; /* 30000: time after sessionExpired before the close */

    /* sync section (Lua runtime and streaming issues) */
    unsigned sync_vm_pool_size;        /* 4 */
    unsigned sync_cpu_budget_ms;       /* 2000 */
    size_t sync_vm_memory_cap;         /* 64 MB */
    unsigned sync_fanout_slice_size;   /* 512 */
    unsigned sync_rate_limit;          /* 600 requests/minute/user */
    unsigned sync_throttle_flush_ms;   /* 50 */
    unsigned sync_throttle_flush_chars; /* 32 */
    size_t sync_pressure_bytes;        /* 256 KB */
    size_t sync_max_payload;           /* 256 KB: the encoded `data` of one sync request */
    char *lua_dir;                     /* NULL: <handlers>/../lua when it exists */

    /* offlineQueue section (browser client issue); served to clients as-is */
    unsigned offline_queue_max_items; /* 200 */
    unsigned offline_queue_ttl_ms;    /* 86400000 */
};

/* Fill with defaults (allocates the empty keyset). Returns 0 or -ENOMEM. */
int config_init(struct config *c);
/* Free the strings, origins and keyset; c is zeroed, so closing twice is harmless. */
void config_close(struct config *c);

/* Load a Lua config file over the current values. Unknown keys at any level are an error
 * (typos must not pass silently). All or nothing: on error c is unchanged. auth.keys, when
 * present, replaces the keyset. Returns 0, or -1 with a message in err. */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);

/* Apply server flags (argv[0] is skipped; "--flag=value" also accepted): --config FILE (loaded
 * first, wherever it appears; several load in order), --handlers DIR, --port N, --host ADDR,
 * --static DIR, --log-level L, --dev. Then, if the keyset is still empty and
 * LUCKYSYNC_JWT_SECRET is set, add it as an HS256 key. Returns 0, or -1 with err (a bad flag
 * changes nothing). */
int config_from_args(struct config *c, int argc, char **argv, char *err, size_t errlen);

#endif
