/* routes: finds the handler files of a project and names their routes. A file
 * handlers/<area>[/<sub>…]/_sync/<name>_server_v<N>.lua (or _client_v<N>.lua) belongs to the
 * route "<area>[/<sub>…]/<name>/v<N>", whose wire name is "sync/<route>". handlers/_hooks.lua
 * holds the optional hooks. Pure filesystem walk, no Lua. */
#ifndef LUCKYSYNC_ROUTES_H
#define LUCKYSYNC_ROUTES_H

#include <stddef.h>

#define ROUTES_KEY_MAX 256

struct route_files {
    char *key;          /* "board/moveCard/v1" */
    char *server_path;  /* absolute path, or NULL */
    char *client_path;  /* absolute path, or NULL */
    char *server_chunk; /* "handlers/board/_sync/moveCard_server_v1.lua" (for messages) */
    char *client_chunk;
};

struct route_list {
    struct route_files *items; /* sorted by key */
    size_t count;
    char *hooks_path; /* absolute path of _hooks.lua, or NULL */
};

/* Walk handlers_dir (depth ≤ 16, at most 4096 routes; hidden folders and node_modules are
 * skipped). Returns 0, or -1 with err (unreadable folder, too many routes, a bad file name
 * under _sync/). */
int routes_scan(const char *handlers_dir, struct route_list *out, char *err, size_t errlen);
void routes_free(struct route_list *l);

/* Normalise a wire name ("sync/board/moveCard/v1", also without the "sync/" prefix, with
 * surrounding slashes or spaces) into a key "board/moveCard/v1". Needs at least an area, a
 * name and a version segment "v<digits>"; segments are [A-Za-z0-9_-]+. Returns the key length,
 * or -1 when the name is invalid. */
int routes_parse_name(const char *name, size_t len, char *key, size_t cap);

#endif
