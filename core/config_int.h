/* config_int.h: private to the config module. Only core/config.c and core/config_keys.c may
 * include it; everything else sees config.h. It holds the descriptor row type, the state of one
 * load (the staging copy and its error message), and the table-walking helpers config.c shares
 * with the key loader (config_keys.c). The helpers run inside the load's lua_pcall and return 0,
 * or -1 with the message set. */
#ifndef LUCKYSYNC_CONFIG_INT_H
#define LUCKYSYNC_CONFIG_INT_H

#include <lua.h>
#include <stddef.h>

#include "config.h"

#define CONFIG_MAX_STRING 4096 /* host, directories, one origin */
#define CONFIG_PATH_LEN 128    /* a key path such as "auth.keys[12].privateKey" */

enum kind {
    K_NONE,    /* a known key handled by its parent (key entries) */
    K_STRING,  /* char * (malloc'd) */
    K_BOOL,    /* int 0/1 */
    K_INT,     /* int */
    K_UINT,    /* unsigned */
    K_LONG,    /* long */
    K_SIZE,    /* size_t */
    K_MB,      /* size_t, given in megabytes */
    K_LEVEL,   /* enum log_level */
    K_POLICY,  /* enum config_room_policy */
    K_ORIGINS, /* allowed_origins + count */
    K_KEYS,    /* the jwt keyset */
    K_SECTION, /* a nested table described by sub */
};

struct field {
    const char *name;
    enum kind kind;
    size_t off; /* into struct config */
    long long min, max;
    const struct field *sub; /* K_SECTION */
};

struct load_ctx {
    struct config *cfg; /* the staging copy being filled */
    int origins_set;    /* cfg->allowed_origins is a new array owned by the staging copy */
    int rc;             /* 0, or -1 with err set */
    char *err;
    size_t errlen;
};

/* ---- config.c: walking the returned table ---- */

/* Set the error message. */
void config_report(struct load_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* config_report() and evaluate to -1, for "return CONFIG_FAIL(...)": visibly failing to static
 * analysers, which do not follow variadic calls. */
#define CONFIG_FAIL(x, ...) (config_report((x), __VA_ARGS__), -1)

/* "path: expected want, got <type of idx>"; returns -1. */
int config_type_error(struct load_ctx *x, lua_State *L, int idx, const char *path,
                      const char *want);
/* prefix.name, or name when prefix is empty, truncated to n bytes. */
void config_join_path(char *out, size_t n, const char *prefix, const char *name);
/* Every key of table t must be a string naming one of fields (ended by a {0} row). */
int config_check_unknown(struct load_ctx *x, lua_State *L, int t, const char *prefix,
                         const struct field *fields);
/* The string at idx: no NUL byte unless allow_nul, 1..max bytes; *len may be NULL. Borrowed:
 * valid while the value is reachable from the returned table. */
int config_get_string(struct load_ctx *x, lua_State *L, int idx, const char *path, size_t max,
                      int allow_nul, const char **out, size_t *len);
/* Table t must be a list: integer keys 1..n without holes, n <= max. */
int config_check_list(struct load_ctx *x, lua_State *L, int t, const char *path, size_t max,
                      size_t *out);

/* ---- config_keys.c: the jwt keyset ---- */

/* Add an HS256 secret (copied) under kid (may be NULL) to ks, warning when it is short; where
 * names it in the warning. Returns a JWT_* code. */
int config_add_hs256(struct jwt_keyset *ks, const char *kid, const char *secret, size_t len,
                     const char *where);
/* The auth.keys list at t: replaces the staging copy's keyset (even when empty). */
int config_load_keys(struct load_ctx *x, lua_State *L, int t, const char *path);

#endif
