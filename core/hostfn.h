/* hostfn: the host functions a handler reaches as ctx.functions (json, log, now, uuid, sleep,
 * hash, hmac) and the sandbox's print. A sub-module of sandbox: it builds the tables, the
 * sandbox makes them read-only and keeps one per VM. Uses luajson, log and libsodium (the
 * caller has run sodium_init()); talks to the VM pool only through struct sandbox_host. */
#ifndef LUCKYSYNC_HOSTFN_H
#define LUCKYSYNC_HOSTFN_H

#include <lua.h>

#include "sandbox.h"

/* Largest encoded `fields` object a log call writes; larger ones are replaced by
 * "fields_truncated":<bytes> so the log line stays valid JSON. */
#define HOSTFN_LOG_FIELDS_MAX 1024u

/* Push a new table {json, log = {debug, info, warn, error}, now, uuid, sleep, hash, hmac}.
 * json and log are read-only proxies; the table itself is plain (the caller wraps it). host is
 * borrowed and must outlive L. Raises Lua errors (memory): call it protected. */
void hostfn_push_functions(lua_State *L, const struct sandbox_host *host);

/* Push print(...): tostring of each argument, tab-separated (at most HOSTFN_LOG_FIELDS_MAX
 * bytes), logged at debug level with the route. Same ownership and errors as above. */
void hostfn_push_print(lua_State *L, const struct sandbox_host *host);

#endif
