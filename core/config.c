/* config.c: defaults, then the operator's Lua config file, then command-line flags.
 *
 * The file is run in a throwaway Lua state (it is trusted: full standard library, so it may
 * read environment variables or files) and the table it returns is walked against static
 * descriptor tables. Loading is transactional: the walk fills a staging copy of the config and
 * only a fully valid file is committed, so a failed load (or a failed reload) leaves the
 * previous values intact. The `auth.keys` section is read by config_keys.c, which shares this
 * file's table-walking helpers through config_int.h. */
#include "config.h"
#include "config_int.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"
#include "log.h"

#define CONFIG_ENV_SECRET "LUCKYSYNC_JWT_SECRET"
#define CONFIG_MAX_ORIGINS 256 /* entries in cors.allowedOrigins */
#define MB ((size_t)1024 * 1024)

/* ---- descriptors: one row per key of the file format (docs/CONFIG.md lists them all) ---- */

/* The row type, struct field, is in config_int.h. Each table below ends with a {0} row (name
 * NULL). */

#define OFF(m) offsetof(struct config, m)

static const struct field limits_fields[] = {
    {"maxPayload", K_SIZE, OFF(max_payload), 1024, 100000000, NULL},
    {"maxConnections", K_UINT, OFF(max_connections), 1, 1000000, NULL},
    {"wsReadBytes", K_UINT, OFF(ws_read_bytes), 1024, 4194304, NULL},
    {"maxRoomsPerSocket", K_UINT, OFF(max_rooms_per_socket), 1, 100000, NULL},
    {"maxRoomName", K_UINT, OFF(max_room_name), 1, 65536, NULL},
    {"handshakeTimeoutMs", K_UINT, OFF(handshake_timeout_ms), 100, 600000, NULL},
    {"sendQueueMaxBytes", K_SIZE, OFF(send_queue_max_bytes), 1024, 1073741824, NULL},
    {"sendQueueMaxFrames", K_UINT, OFF(send_queue_max_frames), 1, 1000000, NULL},
    {0},
};

static const struct field heartbeat_fields[] = {
    {"pingIntervalMs", K_UINT, OFF(ping_interval_ms), 100, 600000, NULL},
    {"pingTimeoutMs", K_UINT, OFF(ping_timeout_ms), 100, 600000, NULL},
    {0},
};

static const struct field cors_fields[] = {
    {"allowedOrigins", K_ORIGINS, 0, 0, 0, NULL},
    {0},
};

static const struct field rooms_fields[] = {
    {"policy", K_POLICY, OFF(room_policy), 0, 0, NULL},
    {0},
};

static const struct field auth_fields[] = {
    {"leewaySec", K_LONG, OFF(jwt_leeway_s), 0, 3600, NULL},
    {"sessionGraceMs", K_UINT, OFF(session_grace_ms), 0, 600000, NULL},
    {"keys", K_KEYS, 0, 0, 0, NULL},
    {0},
};

static const struct field throttle_fields[] = {
    {"flushEveryMs", K_UINT, OFF(sync_throttle_flush_ms), 1, 60000, NULL},
    {"flushAtChars", K_UINT, OFF(sync_throttle_flush_chars), 1, 1000000, NULL},
    {0},
};

static const struct field sync_fields[] = {
    {"vmPoolSize", K_UINT, OFF(sync_vm_pool_size), 1, 256, NULL},
    {"cpuBudgetMs", K_UINT, OFF(sync_cpu_budget_ms), 1, 600000, NULL},
    {"vmMemoryCapMb", K_MB, OFF(sync_vm_memory_cap), 1, 16384, NULL},
    {"fanoutSliceSize", K_UINT, OFF(sync_fanout_slice_size), 1, 1000000, NULL},
    {"rateLimit", K_UINT, OFF(sync_rate_limit), 1, 1000000, NULL},
    {"pressureBytes", K_SIZE, OFF(sync_pressure_bytes), 1024, 1073741824, NULL},
    {"maxPayload", K_SIZE, OFF(sync_max_payload), 16, 100000000, NULL},
    {"streamThrottle", K_SECTION, 0, 0, 0, throttle_fields},
    {0},
};

static const struct field offline_fields[] = {
    {"maxItems", K_UINT, OFF(offline_queue_max_items), 1, 100000, NULL},
    {"ttlMs", K_UINT, OFF(offline_queue_ttl_ms), 1000, 2592000000LL, NULL}, /* 30 days */
    {0},
};

static const struct field top_fields[] = {
    {"host", K_STRING, OFF(host), 0, 0, NULL},
    {"port", K_INT, OFF(port), 1, 65535, NULL},
    {"handlers", K_STRING, OFF(handlers_dir), 0, 0, NULL},
    {"static", K_STRING, OFF(static_dir), 0, 0, NULL},
    {"lua", K_STRING, OFF(lua_dir), 0, 0, NULL},
    {"logLevel", K_LEVEL, OFF(log_level), 0, 0, NULL},
    {"dev", K_BOOL, OFF(dev), 0, 0, NULL},
    {"hotReload", K_BOOL, OFF(hot_reload), 0, 0, NULL},
    {"limits", K_SECTION, 0, 0, 0, limits_fields},
    {"heartbeat", K_SECTION, 0, 0, 0, heartbeat_fields},
    {"cors", K_SECTION, 0, 0, 0, cors_fields},
    {"rooms", K_SECTION, 0, 0, 0, rooms_fields},
    {"auth", K_SECTION, 0, 0, 0, auth_fields},
    {"sync", K_SECTION, 0, 0, 0, sync_fields},
    {"offlineQueue", K_SECTION, 0, 0, 0, offline_fields},
    {0},
};

/* The malloc'd string members, for commit and rollback. */
static const size_t string_offsets[] = {OFF(host), OFF(handlers_dir), OFF(static_dir),
                                        OFF(lua_dir)};

#define SLOT(cfg, off, type) ((type *)(void *)((char *)(cfg) + (off)))

/* ---- small helpers ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    int n = snprintf(err, errlen, "config: ");
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void free_origins(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- walking the returned table (runs inside lua_pcall: see load_protected) ---- */

/* Set the error message. */
void config_report(struct load_ctx *x, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_err(x->err, x->errlen, "%s", msg);
}

/* Lua's type name, with "float" for a non-integer number (integers are required). */
static const char *type_of(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TNUMBER && !lua_isinteger(L, idx))
        return "float";
    return luaL_typename(L, idx);
}

int config_type_error(struct load_ctx *x, lua_State *L, int idx, const char *path, const char *want)
{
    return CONFIG_FAIL(x, "%s: expected %s, got %s", path, want, type_of(L, idx));
}

void config_join_path(char *out, size_t n, const char *prefix, const char *name)
{
    if (*prefix)
        snprintf(out, n, "%s.%s", prefix, name);
    else
        snprintf(out, n, "%s", name);
}

/* The key at idx as it would be written in a path: prefix.name, prefix[3], prefix[<boolean>]. */
static void key_path(lua_State *L, int idx, const char *prefix, char *out, size_t n)
{
    if (lua_type(L, idx) == LUA_TSTRING)
        config_join_path(out, n, prefix, lua_tostring(L, idx));
    else if (lua_isinteger(L, idx))
        snprintf(out, n, "%s[%lld]", prefix, (long long)lua_tointeger(L, idx));
    else
        snprintf(out, n, "%s[<%s>]", prefix, type_of(L, idx));
}

static const struct field *find_field(const struct field *fields, const char *name)
{
    for (const struct field *f = fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* Every key of table t must be a string naming one of fields: a typo must not pass silently. */
int config_check_unknown(struct load_ctx *x, lua_State *L, int t, const char *prefix,
                         const struct field *fields)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING || !find_field(fields, lua_tostring(L, -1))) {
            char path[CONFIG_PATH_LEN];
            key_path(L, -1, prefix, path, sizeof path);
            lua_pop(L, 1);
            return CONFIG_FAIL(x, "unknown key %s", path);
        }
    }
    return 0;
}

/* The string at idx: no NUL byte unless allow_nul, 1..max bytes. The pointer stays valid while
 * the value is reachable from the returned table. */
int config_get_string(struct load_ctx *x, lua_State *L, int idx, const char *path, size_t max,
                      int allow_nul, const char **out, size_t *len)
{
    size_t n = 0;
    const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &n) : NULL;
    if (!s)
        return config_type_error(x, L, idx, path, "string");
    if (n == 0)
        return CONFIG_FAIL(x, "%s: must not be empty", path);
    if (n > max)
        return CONFIG_FAIL(x, "%s: longer than %zu bytes", path, max);
    if (!allow_nul && strlen(s) != n)
        return CONFIG_FAIL(x, "%s: contains a NUL byte", path);
    *out = s;
    if (len)
        *len = n;
    return 0;
}

static int get_integer(struct load_ctx *x, lua_State *L, int idx, const char *path, long long min,
                       long long max, long long *out)
{
    if (!lua_isinteger(L, idx))
        return config_type_error(x, L, idx, path, "integer");
    long long v = (long long)lua_tointeger(L, idx);
    if (v < min || v > max)
        return CONFIG_FAIL(x, "%s: %lld is out of range %lld..%lld", path, v, min, max);
    *out = v;
    return 0;
}

/* Table t must be a list: integer keys 1..n without holes, n <= max. */
int config_check_list(struct load_ctx *x, lua_State *L, int t, const char *path, size_t max,
                      size_t *out)
{
    if (!lua_istable(L, t))
        return config_type_error(x, L, t, path, "list (table)");
    size_t n = (size_t)lua_rawlen(L, t), count = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
            (lua_Unsigned)lua_tointeger(L, -1) > n) {
            char key[CONFIG_PATH_LEN];
            key_path(L, -1, path, key, sizeof key);
            lua_pop(L, 1);
            return CONFIG_FAIL(x, "unknown key %s (%s must be a list)", key, path);
        }
        count++;
    }
    if (count != n)
        return CONFIG_FAIL(x, "%s: must be a list without holes", path);
    if (n > max)
        return CONFIG_FAIL(x, "%s: at most %zu entries, got %zu", path, max, n);
    *out = n;
    return 0;
}

static int load_origins(struct load_ctx *x, lua_State *L, int t, const char *path)
{
    size_t n = 0;
    if (config_check_list(x, L, t, path, CONFIG_MAX_ORIGINS, &n) < 0)
        return -1;
    char **v = n ? calloc(n, sizeof *v) : NULL;
    if (n && !v)
        return CONFIG_FAIL(x, "out of memory");
    /* Owned by the staging copy from here on, so a failure below frees what was filled. */
    x->cfg->allowed_origins = v;
    x->cfg->allowed_origins_count = 0;
    x->origins_set = 1;
    for (size_t i = 0; i < n; i++) {
        char ipath[CONFIG_PATH_LEN + 32];
        const char *s;
        size_t len;
        snprintf(ipath, sizeof ipath, "%s[%zu]", path, i + 1);
        lua_rawgeti(L, t, (lua_Integer)(i + 1));
        int rc = config_get_string(x, L, -1, ipath, CONFIG_MAX_STRING, 0, &s, &len);
        lua_pop(L, 1);
        if (rc < 0)
            return -1;
        /* Browsers send scheme://host[:port] with no path; these two never match one. */
        if (strcmp(s, "*") == 0)
            return CONFIG_FAIL(x, "%s: \"*\" is not an origin (an empty list admits any origin)",
                               ipath);
        if (s[len - 1] == '/')
            return CONFIG_FAIL(x, "%s: an origin has no trailing '/' (\"%s\")", ipath, s);
        if (!(v[i] = strdup(s)))
            return CONFIG_FAIL(x, "out of memory");
        x->cfg->allowed_origins_count = i + 1;
    }
    return 0;
}

static int walk_table(struct load_ctx *x, lua_State *L, int t, const char *prefix,
                      const struct field *fields);

static int apply_field(struct load_ctx *x, lua_State *L, int v, const char *path,
                       const struct field *f)
{
    struct config *c = x->cfg;
    const char *s = NULL;
    long long n = 0;

    switch (f->kind) {
    case K_STRING:
        if (config_get_string(x, L, v, path, CONFIG_MAX_STRING, 0, &s, NULL) < 0)
            return -1;
        /* The old pointer belongs to the committed config: overwrite, never free, here. */
        if (!(*SLOT(c, f->off, char *) = strdup(s)))
            return CONFIG_FAIL(x, "out of memory");
        return 0;
    case K_BOOL:
        if (!lua_isboolean(L, v))
            return config_type_error(x, L, v, path, "boolean");
        *SLOT(c, f->off, int) = lua_toboolean(L, v);
        return 0;
    case K_INT:
    case K_UINT:
    case K_LONG:
    case K_SIZE:
    case K_MB:
        if (get_integer(x, L, v, path, f->min, f->max, &n) < 0)
            return -1;
        /* Every range fits its member's type (ranges are at most 2^32 - 1 and non-negative). */
        if (f->kind == K_INT)
            *SLOT(c, f->off, int) = (int)n;
        else if (f->kind == K_UINT)
            *SLOT(c, f->off, unsigned) = (unsigned)n;
        else if (f->kind == K_LONG)
            *SLOT(c, f->off, long) = (long)n;
        else if (f->kind == K_SIZE)
            *SLOT(c, f->off, size_t) = (size_t)n;
        else
            *SLOT(c, f->off, size_t) = (size_t)n * MB;
        return 0;
    case K_LEVEL:
        if (config_get_string(x, L, v, path, 16, 0, &s, NULL) < 0)
            return -1;
        if (log_parse_level(s, SLOT(c, f->off, enum log_level)) < 0)
            return CONFIG_FAIL(
                x,
                "%s: expected \"debug\", \"info\", \"warn\", \"error\" or \"off\", got "
                "\"%s\"",
                path, s);
        return 0;
    case K_POLICY:
        if (config_get_string(x, L, v, path, 16, 0, &s, NULL) < 0)
            return -1;
        if (strcmp(s, "anyone") == 0)
            c->room_policy = CONFIG_ROOM_ANYONE;
        else if (strcmp(s, "loggedIn") == 0)
            c->room_policy = CONFIG_ROOM_LOGGED_IN;
        else if (strcmp(s, "hook") == 0)
            c->room_policy = CONFIG_ROOM_HOOK;
        else
            return CONFIG_FAIL(x, "%s: expected \"anyone\", \"loggedIn\" or \"hook\", got \"%s\"",
                               path, s);
        return 0;
    case K_ORIGINS:
        return load_origins(x, L, v, path);
    case K_KEYS:
        return config_load_keys(x, L, v, path);
    case K_SECTION:
        if (!lua_istable(L, v))
            return config_type_error(x, L, v, path, "table");
        return walk_table(x, L, v, path, f->sub);
    case K_NONE:
        break;
    }
    return 0;
}

/* Recursion depth is that of the static descriptor tables (three levels). */
static int walk_table(struct load_ctx *x, lua_State *L, int t, const char *prefix,
                      const struct field *fields)
{
    luaL_checkstack(L, 8, "config");
    if (config_check_unknown(x, L, t, prefix, fields) < 0)
        return -1;
    for (const struct field *f = fields; f->name; f++) {
        char path[CONFIG_PATH_LEN];
        config_join_path(path, sizeof path, prefix, f->name);
        lua_pushstring(L, f->name);
        if (lua_rawget(L, t) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        int rc = apply_field(x, L, lua_gettop(L), path, f);
        lua_pop(L, 1);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Runs under lua_pcall so a Lua memory error cannot unwind past us; every allocation is
 * recorded in the staging copy at once, so the rollback frees it either way. */
static int load_protected(lua_State *L)
{
    struct load_ctx *x = lua_touserdata(L, 1);
    x->rc = walk_table(x, L, 2, "", top_fields);
    return 0;
}

static int open_protected(lua_State *L)
{
    luaL_openlibs(L);
    return 0;
}

/* Rules between keys, checked on the final values. */
static int check_consistency(struct load_ctx *x)
{
    const struct config *c = x->cfg;
    if (c->send_queue_max_bytes < c->max_payload)
        return CONFIG_FAIL(
            x,
            "limits.sendQueueMaxBytes (%zu) must be at least limits.maxPayload (%zu): "
            "one message must fit in the queue",
            c->send_queue_max_bytes, c->max_payload);
    if (c->sync_pressure_bytes > c->send_queue_max_bytes)
        return CONFIG_FAIL(
            x, "sync.pressureBytes (%zu) must not exceed limits.sendQueueMaxBytes (%zu)",
            c->sync_pressure_bytes, c->send_queue_max_bytes);
    return 0;
}

/* Free in `drop` whatever it owns that `keep` does not share. */
static void release_unshared(struct config *drop, const struct config *keep, int origins_differ)
{
    for (size_t i = 0; i < sizeof string_offsets / sizeof string_offsets[0]; i++) {
        char *d = *SLOT(drop, string_offsets[i], char *);
        if (d != *SLOT(keep, string_offsets[i], char *))
            free(d);
    }
    if (origins_differ)
        free_origins(drop->allowed_origins, drop->allowed_origins_count);
    if (drop->keys != keep->keys)
        jwt_keyset_free(drop->keys);
}

/* ---- public API ---- */

/* Fill c with the defaults; c->keys is a new empty keyset. Returns 0, or -ENOMEM (nothing to
 * close then). */
int config_init(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->host = strdup("127.0.0.1");
    c->port = 8080;
    c->handlers_dir = strdup("./handlers");
    c->static_dir = NULL;
    c->log_level = LOG_INFO;
    c->dev = 0;

    c->max_payload = 1000000;
    c->max_connections = 10000;
    c->ws_read_bytes = 65536;
    c->max_rooms_per_socket = 50;
    c->max_room_name = 256;
    c->handshake_timeout_ms = 10000;
    c->ping_interval_ms = 25000;
    c->ping_timeout_ms = 20000;
    c->send_queue_max_bytes = 4 * MB;
    c->send_queue_max_frames = 4096;

    c->allowed_origins = NULL;
    c->allowed_origins_count = 0;
    c->room_policy = CONFIG_ROOM_LOGGED_IN;

    c->keys = jwt_keyset_new();
    c->jwt_leeway_s = 30;
    c->session_grace_ms = 30000;

    c->sync_vm_pool_size = 4;
    c->sync_cpu_budget_ms = 2000;
    c->sync_vm_memory_cap = 64 * MB;
    c->sync_fanout_slice_size = 512;
    c->sync_rate_limit = 600;
    c->sync_throttle_flush_ms = 50;
    c->sync_throttle_flush_chars = 32;
    c->sync_pressure_bytes = 256 * 1024;
    c->sync_max_payload = 256 * 1024;

    c->offline_queue_max_items = 200;
    c->offline_queue_ttl_ms = 86400000;

    if (!c->host || !c->handlers_dir || !c->keys) {
        config_close(c);
        return -ENOMEM;
    }
    return 0;
}

/* Free every string, the origin list and the keyset (wiping its secrets); c is zeroed, so a
 * second close is harmless. */
void config_close(struct config *c)
{
    if (!c)
        return;
    free(c->host);
    free(c->handlers_dir);
    free(c->static_dir);
    free(c->lua_dir);
    free_origins(c->allowed_origins, c->allowed_origins_count);
    jwt_keyset_free(c->keys);
    memset(c, 0, sizeof *c);
}

/* Run the Lua file at path and apply the table it returns over c. All or nothing: on any error
 * (I/O, syntax as "file:line: …", non-table result, unknown key, type, range) c is unchanged
 * and -1 is returned with a message in err. */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
    struct config next = *c;
    struct load_ctx x = {.cfg = &next, .rc = -1, .err = err, .errlen = errlen};
    lua_State *L = NULL;
    int rc = -1;

    /* luaL_loadfilex reads stdin when given NULL. */
    if (!path || !*path) {
        set_err(err, errlen, "no config file name");
        return -1;
    }
    if (!(L = luaL_newstate())) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    lua_pushcfunction(L, open_protected);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        set_err(err, errlen, "out of memory");
        goto done;
    }
    /* Messages already read "path:line: …" (the chunk is named "@path"). */
    if (luaL_loadfilex(L, path, "t") != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (msg)
            set_err(err, errlen, "%s", msg);
        else
            set_err(err, errlen, "%s: error object is a %s value", path, luaL_typename(L, -1));
        goto done;
    }
    if (!lua_istable(L, -1)) {
        set_err(err, errlen, "%s must return a table, got %s", path, luaL_typename(L, -1));
        goto done;
    }
    lua_pushcfunction(L, load_protected);
    lua_pushlightuserdata(L, &x);
    lua_pushvalue(L, -3);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        set_err(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "out of memory");
        goto done;
    }
    if (x.rc == 0 && check_consistency(&x) == 0)
        rc = 0;
done:
    lua_close(L);
    if (rc == 0) {
        release_unshared(c, &next, x.origins_set);
        *c = next;
    } else {
        release_unshared(&next, c, x.origins_set);
    }
    return rc;
}

/* ---- command-line flags ---- */

enum flag_id {
    FLAG_CONFIG,
    FLAG_HANDLERS,
    FLAG_PORT,
    FLAG_HOST,
    FLAG_STATIC,
    FLAG_LOG_LEVEL,
    FLAG_DEV
};

static const struct flag {
    const char *name;
    int has_value;
} flag_table[] = {
    [FLAG_CONFIG] = {"config", 1}, [FLAG_HANDLERS] = {"handlers", 1},
    [FLAG_PORT] = {"port", 1},     [FLAG_HOST] = {"host", 1},
    [FLAG_STATIC] = {"static", 1}, [FLAG_LOG_LEVEL] = {"log-level", 1},
    [FLAG_DEV] = {"dev", 0},
};

/* Parse the flag at argv[*i] ("--name value" or "--name=value"), advancing *i past a separate
 * value. *value is NULL for a flag without one. */
static int next_flag(int argc, char **argv, int *i, enum flag_id *id, const char **value, char *err,
                     size_t errlen)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0) {
        set_err(err, errlen, "unexpected argument '%s'", a);
        return -1;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t namelen = eq ? (size_t)(eq - name) : strlen(name);
    for (size_t f = 0; f < sizeof flag_table / sizeof flag_table[0]; f++) {
        if (strlen(flag_table[f].name) != namelen || strncmp(flag_table[f].name, name, namelen))
            continue;
        *id = (enum flag_id)f;
        *value = NULL;
        if (!flag_table[f].has_value) {
            if (eq) {
                set_err(err, errlen, "--%s takes no value", flag_table[f].name);
                return -1;
            }
            return 0;
        }
        if (eq) {
            *value = eq + 1;
        } else if (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) {
            /* A following "--flag" is taken as a forgotten value, not as the value. */
            *value = argv[++*i];
        } else {
            set_err(err, errlen, "missing value for --%s", flag_table[f].name);
            return -1;
        }
        if (!**value) {
            set_err(err, errlen, "empty value for --%s", flag_table[f].name);
            return -1;
        }
        return 0;
    }
    set_err(err, errlen, "unknown flag '%.*s'", (int)(namelen + 2), a);
    return -1;
}

static int parse_port(const char *s, int *out)
{
    long v = 0;
    if (!s || !*s)
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > 65535)
            return -1;
    }
    if (v < 1)
        return -1;
    *out = (int)v;
    return 0;
}

/* Apply argv[1..argc) over c (argv[0], the program name, is skipped). Every flag is checked
 * first, then each --config is loaded in the order given, then the other flags override it
 * (the last of a repeated flag wins), then LUCKYSYNC_JWT_SECRET fills an empty keyset.
 * Returns 0, or -1 with err; a bad flag changes nothing, a failing --config file keeps what
 * earlier ones loaded. */
int config_from_args(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
    const char *str[FLAG_DEV + 1] = {NULL};
    char *dup[FLAG_DEV + 1] = {NULL};
    int port = 0, dev = 0, have_level = 0;
    enum log_level level = LOG_INFO;
    enum flag_id id;
    const char *v;
    int rc = -1;

    for (int i = 1; i < argc; i++) {
        if (next_flag(argc, argv, &i, &id, &v, err, errlen) < 0)
            return -1;
        if (id == FLAG_PORT && parse_port(v, &port) < 0) {
            set_err(err, errlen, "--port: expected an integer in 1..65535, got '%s'", v);
            return -1;
        }
        if (id == FLAG_LOG_LEVEL) {
            if (log_parse_level(v, &level) < 0) {
                set_err(err, errlen,
                        "--log-level: expected debug, info, warn, error or off, got '%s'", v);
                return -1;
            }
            have_level = 1;
        }
        if (id == FLAG_DEV)
            dev = 1;
        if (id == FLAG_HOST || id == FLAG_HANDLERS || id == FLAG_STATIC)
            str[id] = v;
    }
    for (int f = 0; f <= FLAG_DEV; f++) {
        if (str[f] && !(dup[f] = strdup(str[f]))) {
            set_err(err, errlen, "out of memory");
            goto fail;
        }
    }
    for (int i = 1; i < argc; i++) {
        next_flag(argc, argv, &i, &id, &v, err, errlen); /* checked above */
        if (id == FLAG_CONFIG && config_load_file(c, v, err, errlen) < 0)
            goto fail;
    }

    if (dup[FLAG_HOST]) {
        free(c->host);
        c->host = dup[FLAG_HOST];
    }
    if (dup[FLAG_HANDLERS]) {
        free(c->handlers_dir);
        c->handlers_dir = dup[FLAG_HANDLERS];
    }
    if (dup[FLAG_STATIC]) {
        free(c->static_dir);
        c->static_dir = dup[FLAG_STATIC];
    }
    memset(dup, 0, sizeof dup);
    if (port)
        c->port = port;
    if (have_level)
        c->log_level = level;
    if (dev)
        c->dev = 1;

    const char *secret = getenv(CONFIG_ENV_SECRET);
    if (jwt_keyset_count(c->keys) == 0 && secret && *secret) {
        int jrc = config_add_hs256(c->keys, NULL, secret, strlen(secret), CONFIG_ENV_SECRET);
        if (jrc != JWT_OK) {
            set_err(err, errlen, "%s: rejected by jwt: %s", CONFIG_ENV_SECRET, jwt_strerror(jrc));
            goto fail;
        }
    }
    rc = 0;
fail:
    for (int f = 0; f <= FLAG_DEV; f++)
        free(dup[f]);
    return rc;
}
