/* schema: the small schema language of a route's `input` (the language: docs/SCHEMA.md; where
 * `input` sits in a handler module: docs/HANDLERS.md): compiled once from the Lua declaration
 * when handlers load, then used to validate each request's data (a jansson value, before it
 * enters Lua) and to generate TypeScript declarations. Pure; the compiled form is plain C,
 * immutable, independent of the lua_State, and can be shared by every VM of a generation. */
#ifndef LUCKYSYNC_SCHEMA_H
#define LUCKYSYNC_SCHEMA_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>

struct schema;

/* Bounds (docs/SCHEMA.md, "Limits"). A declaration past one is a compile error; data nested
 * deeper than SCHEMA_MAX_DATA_DEPTH containers fails with "tooDeep". */
#define SCHEMA_MAX_DEPTH 32      /* spec nesting: the fields of `input` are level 1 */
#define SCHEMA_MAX_DATA_DEPTH 64 /* data containers: the top-level object is level 1 */
#define SCHEMA_MAX_FIELDS 256    /* fields of one object */
#define SCHEMA_MAX_ENUM 256      /* values of one enum */
#define SCHEMA_MAX_NODES 4096    /* specs in one schema */
#define SCHEMA_MAX_NAME 128      /* bytes of a field name */
#define SCHEMA_MAX_TEXT 1024     /* bytes of an enum string or a description */

/* Compile the declaration at stack index idx (a table: field name → type spec). Reads with raw
 * access only (no metamethods) inside a lua_pcall, never raises; the stack is left as it was.
 * Returns NULL and a message naming the offending path in err ("input.tags.items: unknown type
 * 'strng'"), or "out of memory" when a C or Lua allocation fails. The result owns no Lua state:
 * free it with schema_free (NULL is a no-op). */
struct schema *schema_compile(lua_State *L, int idx, char *err, size_t errlen);
void schema_free(struct schema *s);

/* Validate data against s. Returns 0, or -1 with the failing field path (e.g. "cards[2].title",
 * "" for the top level) in field and a stable reason code in *reason ("required", "type",
 * "unknownKey", "tooShort", "tooLong", "tooSmall", "tooLarge", "notInteger", "enum",
 * "tooFew", "tooMany", "tooDeep"). Array indices are 0-based; the path is truncated to fit
 * fieldlen (field may be NULL when fieldlen is 0). The first error is deterministic: declared
 * fields in name order, then undeclared keys in name order, array items in index order.
 * *reason is a static string (NULL on success). Allocates nothing. */
int schema_validate(const struct schema *s, const json_t *data, char *field, size_t fieldlen,
                    const char **reason);

/* The TypeScript type of data accepted by s (an object type literal on one line, fields in
 * name order), malloc'd: the caller frees it. NULL when out of memory. */
char *schema_to_typescript(const struct schema *s);

#endif
