/* hostfn: ctx.functions for handlers (json, log, now, uuid, sleep, hash, hmac) and print.
 * See hostfn.h. */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "hostfn.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <sodium.h>

#include "log.h"
#include "luajson.h"

/* Every host function keeps the borrowed struct sandbox_host in upvalue 1. */
static const struct sandbox_host *host_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* The route of the request running in L, escaped for a JSON string body; NULL if none. */
static const char *route_escaped(lua_State *L, char *out, size_t outlen)
{
    const struct sandbox_host *host = host_of(L);
    const char *route = host && host->route ? host->route(host->ud, L) : NULL;

    return route ? log_escape(route, out, outlen) : NULL;
}

/* ---- log -------------------------------------------------------------------------------- */

/* log.<level>(msg, fields?): one JSON line with msg (tostring of non-strings), the route and
 * fields (a table encoded as a JSON object). Upvalue 2 is the level. */
static int l_log(lua_State *L)
{
    enum log_level level = (enum log_level)lua_tointeger(L, lua_upvalueindex(2));
    int ftype = lua_type(L, 2);
    char route[128];
    const char *rt, *msg;
    char *fields = NULL;
    size_t flen = 0;

    luaL_checkany(L, 1);
    if (ftype != LUA_TNONE && ftype != LUA_TNIL && ftype != LUA_TTABLE)
        return luaL_typeerror(L, 2, "table or nil");
    if (level < log_get_level())
        return 0;
    lua_settop(L, 2);
    msg = luaL_tolstring(L, 1, NULL); /* index 3: anchored while we log */
    if (ftype == LUA_TTABLE) {
        char err[256];

        /* Raw access only and never raises, so `fields` cannot leak through a Lua error. */
        fields = luajson_encode(L, 2, LUAJSON_MAX_DEPTH, &flen, err, sizeof err);
        if (!fields)
            return luaL_error(L, "log: fields: %s", err);
        if (fields[0] != '{') {
            free(fields);
            return luaL_error(L, "log: fields must be a table with string keys");
        }
    }
    rt = route_escaped(L, route, sizeof route);
    if (fields && flen > HOSTFN_LOG_FIELDS_MAX) {
        if (rt)
            log_write(level, msg, "\"route\":\"%s\",\"fields_truncated\":%zu", rt, flen);
        else
            log_write(level, msg, "\"fields_truncated\":%zu", flen);
    } else if (fields) {
        if (rt)
            log_write(level, msg, "\"route\":\"%s\",\"fields\":%s", rt, fields);
        else
            log_write(level, msg, "\"fields\":%s", fields);
    } else if (rt) {
        log_write(level, msg, "\"route\":\"%s\"", rt);
    } else {
        log_write(level, msg, NULL);
    }
    free(fields);
    return 0;
}

static int l_print(lua_State *L)
{
    int n = lua_gettop(L);
    char route[128];
    const char *rt;
    luaL_Buffer b;
    size_t room = HOSTFN_LOG_FIELDS_MAX;

    if (LOG_DEBUG < log_get_level())
        return 0;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n && room > 0; i++) {
        size_t len;
        const char *s;

        if (i > 1) {
            luaL_addchar(&b, '\t');
            room--;
        }
        s = luaL_tolstring(L, i, &len);
        if (len > room) {
            lua_pushlstring(L, s, room);
            lua_remove(L, -2);
            len = room;
        }
        luaL_addvalue(&b); /* the one buffer call that takes a value pushed above it */
        room -= len;
    }
    luaL_pushresult(&b);
    rt = route_escaped(L, route, sizeof route);
    if (rt)
        log_write(LOG_DEBUG, lua_tostring(L, -1), "\"route\":\"%s\",\"src\":\"print\"", rt);
    else
        log_write(LOG_DEBUG, lua_tostring(L, -1), "\"src\":\"print\"");
    return 0;
}

/* ---- time, ids, sleep ------------------------------------------------------------------ */

static int l_now(lua_State *L)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    return 1;
}

/* RFC 4122 section 4.4: random bits, version 4, variant 10. */
static int l_uuid(lua_State *L)
{
    unsigned char b[16];
    char s[37];
    size_t o = 0;

    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            s[o++] = '-';
        sodium_bin2hex(s + o, 3, b + i, 1);
        o += 2;
    }
    lua_pushlstring(L, s, 36);
    return 1;
}

static int l_sleep(lua_State *L)
{
    const struct sandbox_host *host = host_of(L);
    lua_Integer ms = luaL_checkinteger(L, 1);

    luaL_argcheck(L, ms >= 0, 1, "must not be negative");
    if (!host || !host->sleep)
        return luaL_error(L, "sleep: not available in this VM");
    return host->sleep(host->ud, L, ms);
}

/* ---- hashes ----------------------------------------------------------------------------- */

static int push_hex(lua_State *L, const unsigned char *bin, size_t len)
{
    char hex[2 * 64 + 1];

    sodium_bin2hex(hex, sizeof hex, bin, len);
    lua_pushlstring(L, hex, 2 * len);
    return 1;
}

static int l_hash(lua_State *L)
{
    size_t len;
    const unsigned char *data = (const unsigned char *)luaL_checklstring(L, 1, &len);
    const char *alg = luaL_optstring(L, 2, "sha256");
    unsigned char out[32];

    if (strcmp(alg, "sha256") == 0)
        crypto_hash_sha256(out, data, len);
    else if (strcmp(alg, "blake2b") == 0)
        crypto_generichash(out, sizeof out, data, len, NULL, 0);
    else
        return luaL_error(L, "hash: unknown algorithm '%s' (sha256 or blake2b)", alg);
    return push_hex(L, out, sizeof out);
}

/* HMAC-SHA-256 (RFC 2104); libsodium hashes keys longer than the block size, as the RFC says. */
static int l_hmac(lua_State *L)
{
    size_t klen, dlen;
    const unsigned char *key = (const unsigned char *)luaL_checklstring(L, 1, &klen);
    const unsigned char *data = (const unsigned char *)luaL_checklstring(L, 2, &dlen);
    crypto_auth_hmacsha256_state st;
    unsigned char out[crypto_auth_hmacsha256_BYTES];

    crypto_auth_hmacsha256_init(&st, key, klen);
    crypto_auth_hmacsha256_update(&st, data, dlen);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
    return push_hex(L, out, sizeof out);
}

/* ---- tables ----------------------------------------------------------------------------- */

static void set_closure(lua_State *L, const struct sandbox_host *host, lua_CFunction f,
                        const char *name)
{
    lua_pushlightuserdata(L, (void *)host);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, -2, name);
}

void hostfn_push_functions(lua_State *L, const struct sandbox_host *host)
{
    static const struct {
        const char *name;
        enum log_level level;
    } levels[] = {
        {"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warn", LOG_WARN}, {"error", LOG_ERROR}};

    lua_createtable(L, 0, 7);

    lua_pushcfunction(L, luajson_open);
    lua_call(L, 0, 1);
    sandbox_push_readonly(L, -1);
    lua_setfield(L, -3, "json");
    lua_pop(L, 1);

    lua_createtable(L, 0, 4);
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        lua_pushlightuserdata(L, (void *)host);
        lua_pushinteger(L, levels[i].level);
        lua_pushcclosure(L, l_log, 2);
        lua_setfield(L, -2, levels[i].name);
    }
    sandbox_push_readonly(L, -1);
    lua_setfield(L, -3, "log");
    lua_pop(L, 1);

    set_closure(L, host, l_now, "now");
    set_closure(L, host, l_uuid, "uuid");
    set_closure(L, host, l_sleep, "sleep");
    set_closure(L, host, l_hash, "hash");
    set_closure(L, host, l_hmac, "hmac");
}

void hostfn_push_print(lua_State *L, const struct sandbox_host *host)
{
    lua_pushlightuserdata(L, (void *)host);
    lua_pushcclosure(L, l_print, 1);
}
