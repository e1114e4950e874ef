/* luajson_int.h: what luajson.c and luajson_text.c share. Private to those two files. */
#ifndef LUCKYSYNC_LUAJSON_INT_H
#define LUCKYSYNC_LUAJSON_INT_H

#include <stddef.h>

#include <lua.h>

/* Shape of a table's keys, from one raw traversal. */
struct shape {
    size_t nstr;        /* string keys */
    size_t nint;        /* integer keys >= 1 */
    size_t nother;      /* anything else */
    lua_Integer maxint; /* largest integer key */
    int other_type;     /* Lua type of the first "other" key */
};

/* The shape of the table at idx (raw traversal; allocates nothing). */
void luajson_table_shape(lua_State *L, int idx, struct shape *sh);
/* 1 if the table at idx carries the array marker metatable (looked up, never created). */
int luajson_has_array_mt(lua_State *L, int idx);
/* Strict UTF-8 without NUL bytes: 0, -1 (invalid UTF-8) or -2 (a NUL byte). */
int luajson_check_text(const char *str, size_t n);

#endif
