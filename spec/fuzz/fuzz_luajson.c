/* fuzz_luajson.c: libFuzzer target for JSON → Lua → JSON (luajson over jansson). Invariant:
 * text that decodes encodes again, and that encoding decodes to an equal value. */
#include <jansson.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luajson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L;
    if (!L)
        L = luaL_newstate();
    char err[256];
    lua_settop(L, 0);
    if (luajson_decode(L, (const char *)data, size, 64, err, sizeof err) != 0)
        return 0;
    size_t n = 0;
    char *text = luajson_encode(L, -1, 64, &n, err, sizeof err);
    if (!text)
        abort();
    json_t *a = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    json_t *b = json_loadb(text, n, JSON_DECODE_ANY, NULL);
    if (!b || (a && !json_equal(a, b) && !json_is_real(a)))
        abort();
    json_decref(a);
    json_decref(b);
    free(text);
    lua_settop(L, 0);
    if (lua_gettop(L) == 0 && (size & 255) == 0)
        lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
