/* luajson: exact conversion between JSON (jansson's json_t, or JSON text) and Lua 5.4 values.
 * Integers stay Lua integers (64-bit, exact: 2^63-1 survives), reals stay floats (3.0 is encoded
 * as "3.0", so the subtype survives a round trip), and `[]` and `{}` stay distinct. Uses jansson
 * and the Lua C API only; no I/O, no globals beyond two private registry keys per lua_State.
 *
 * Mapping, JSON -> Lua: object -> table with string keys; array -> sequence table whose metatable
 * is the shared array marker (luajson_push_array_mt); integer -> integer; real -> float;
 * true/false -> boolean; null -> the null sentinel (luajson_push_null). Strings keep their bytes.
 * Mapping, Lua -> JSON: a table carrying the array marker, or whose keys are exactly 1..n (n >= 1),
 * -> array; any other table must have only string keys -> object (so an unmarked empty table is
 * `{}`); integer -> integer; float -> real (NaN and infinities refused); string -> string (must be
 * valid UTF-8 without NUL bytes); boolean -> true/false; the null sentinel and nil -> null.
 * Functions, threads, userdata, other keys (integers outside a sequence, booleans, floats) are
 * refused with the path of the offending value, e.g. "items[3].cb: cannot encode function"
 * (array indices in paths are Lua's, 1-based).
 *
 * Bounds: `max_depth` counts nested containers (the top-level table or array is level 1; 0 allows
 * scalars only). It also stops self-referencing Lua tables, which are refused as too deep, and it
 * bounds this module's C recursion, so keep it modest (LUAJSON_MAX_DEPTH). jansson's parser stops
 * on its own at 2048 levels. Input size is the caller's bound (the transport caps frames).
 *
 * Errors: functions return 0 or a negative errno: -EINVAL (bad input or an unencodable value),
 * -E2BIG (nesting deeper than max_depth, or a cycle), -ENOMEM (C or Lua allocation failure),
 * -EIO (an unexpected Lua error while pushing). `err` buffers may be NULL when errlen is 0; a
 * message is always NUL-terminated and truncated to fit. */
#ifndef LUCKYSYNC_LUAJSON_H
#define LUCKYSYNC_LUAJSON_H

#include <stddef.h>

#include <jansson.h>
#include <lua.h>

struct jtext_buf;

/* Default nesting bound for handler data and for the Lua module's encode/decode. */
#define LUAJSON_MAX_DEPTH 64u

/* Push the JSON null sentinel: a light userdata unique to this module, equal to itself in every
 * lua_State (handlers compare with `v == json.null`; `type(v)` is "userdata"). Never fails. */
void luajson_push_null(lua_State *L);
/* 1 if the value at idx is the null sentinel, else 0. Never fails. */
int luajson_is_null(lua_State *L, int idx);

/* Push the array marker metatable of this lua_State, creating it on first use in the registry
 * under a private light-userdata key. The marker is empty and locked (writes to it raise, its
 * own metatable is hidden), so exposing it to sandboxed code (json.array_mt) cannot change how
 * other handlers' arrays behave, short of rawset. May raise a Lua memory error on first use. */
void luajson_push_array_mt(lua_State *L);

/* Push v (borrowed; not modified or retained) as one Lua value. Returns 0 with one value pushed,
 * or a negative errno with the stack as it was: -E2BIG if v nests deeper than max_depth, -ENOMEM
 * if the Lua stack cannot grow. Tables are created unprotected, so this MAY RAISE a Lua memory
 * error: call it only where Lua is on the C stack, or use luajson_push_protected. */
int luajson_push(lua_State *L, const json_t *v, unsigned max_depth);
/* Push the JSON text text[0..len) (borrowed; an array or an object at the top, as jtext_load
 * accepts it) as luajson_push pushes jtext_load's value, without building it. Duplicate object
 * keys are not looked for (the last one wins): pass text already checked, such as a sync
 * request's data (syncenv). Returns 0 with one value pushed, or -EINVAL (not valid JSON),
 * -E2BIG (deeper than max_depth) or -ENOMEM (Lua stack) with the stack as it was. MAY RAISE a
 * Lua memory error (nothing leaks then): as luajson_push, call it where Lua is on the C stack. */
int luajson_push_text(lua_State *L, const char *text, size_t len, unsigned max_depth);
/* As luajson_push, but never raises: runs it under lua_pcall and returns -ENOMEM for a Lua memory
 * error, -EIO for any other Lua error. On failure nothing is left pushed. Usable from host C code
 * and from inside a lua_CFunction alike; L must not be a suspended (yielded) coroutine. */
int luajson_push_protected(lua_State *L, const json_t *v, unsigned max_depth);

/* Convert the Lua value at idx to a new json_t, stored in *out (caller owns it: json_decref).
 * Uses raw access only (no metamethods run) and never raises a Lua error; the Lua stack is left
 * as it was. On failure *out is NULL, err holds "path: reason", and the result is -EINVAL,
 * -E2BIG (too deep or a cycle) or -ENOMEM. */
int luajson_from_lua(lua_State *L, int idx, unsigned max_depth, json_t **out, char *err,
                     size_t errlen);

/* Append to b the compact JSON text of the Lua value at idx: byte for byte what jtext_dump_append
 * writes for the json_t luajson_from_lua builds from it (same member order), without building
 * it. When mark is not NULL and the value is a table encoded as an object with a top-level key
 * equal to mark, that member's value is b->data[*mark_start, *mark_end) (both 0 when absent).
 * Raw access, never raises, stack left as it was. On failure b is as it was and the result is
 * -EINVAL, -E2BIG or -ENOMEM, with no message: convert with luajson_from_lua for its path. */
int luajson_append_text(lua_State *L, int idx, unsigned max_depth, struct jtext_buf *b,
                        const char *mark, size_t *mark_start, size_t *mark_end);

/* Parse text[0..len) (borrowed; any JSON value at the top, duplicate object keys and "\u0000"
 * refused, trailing bytes refused) and push the result. Never raises. Returns 0 with one value
 * pushed, else -EINVAL (syntax; err names the byte offset), -E2BIG or -ENOMEM with nothing
 * pushed. Integers outside the 64-bit range are refused by jansson ("too big integer"). */
int luajson_decode(lua_State *L, const char *text, size_t len, unsigned max_depth, char *err,
                   size_t errlen);

/* Encode the Lua value at idx as compact JSON text: reals with 17 significant digits, object
 * keys sorted (so the output does not depend on Lua's hash order). Returns a NUL-terminated
 * malloc'd string (caller frees with free()), its length in *len if len is not NULL. Never
 * raises. On failure returns NULL with err set (same causes as luajson_from_lua). */
char *luajson_encode(lua_State *L, int idx, unsigned max_depth, size_t *len, char *err,
                     size_t errlen);

/* lua_CFunction in luaopen_ style: pushes a new module table {encode, decode, null, array_mt}.
 * encode(v) returns a string and decode(s) returns a value, both with LUAJSON_MAX_DEPTH; each
 * raises a Lua error "json.encode: <reason>" / "json.decode: <reason>" (or "not enough memory").
 * The sandbox exposes it to handlers as ctx.functions.json. */
int luajson_open(lua_State *L);

#endif
