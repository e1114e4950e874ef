/* routes.c: the handler tree walk and route names. */
#include "routes.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DEPTH 16
#define MAX_ROUTES 4096

struct walk {
    struct route_list *l;
    size_t cap;
    const char *root;
    char *err;
    size_t errlen;
};

static int seg_ok(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int version_ok(const char *s, size_t n)
{
    if (n < 2 || s[0] != 'v' || n > 10)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int routes_parse_name(const char *name, size_t len, char *key, size_t cap)
{
    while (len && (*name == ' ' || *name == '/')) {
        name++;
        len--;
    }
    while (len && (name[len - 1] == ' ' || name[len - 1] == '/'))
        len--;
    if (len >= 5 && memcmp(name, "sync/", 5) == 0) {
        name += 5;
        len -= 5;
    }
    if (len == 0 || len >= cap || len >= ROUTES_KEY_MAX)
        return -1;
    size_t segs = 0, start = 0, last_start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || name[i] == '/') {
            if (!seg_ok(name + start, i - start))
                return -1;
            last_start = start;
            segs++;
            start = i + 1;
        }
    }
    if (segs < 3 || !version_ok(name + last_start, len - last_start))
        return -1;
    memcpy(key, name, len);
    key[len] = '\0';
    return (int)len;
}

static char *dupf(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

static struct route_files *get_route(struct walk *w, const char *key)
{
    for (size_t i = 0; i < w->l->count; i++)
        if (strcmp(w->l->items[i].key, key) == 0)
            return &w->l->items[i];
    if (w->l->count == MAX_ROUTES)
        return NULL;
    if (w->l->count == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 16;
        struct route_files *ni = realloc(w->l->items, nc * sizeof *ni);
        if (!ni)
            return NULL;
        w->l->items = ni;
        w->cap = nc;
    }
    struct route_files *r = &w->l->items[w->l->count];
    memset(r, 0, sizeof *r);
    r->key = strdup(key);
    if (!r->key)
        return NULL;
    w->l->count++;
    return r;
}

/* A file in a _sync folder: area is the path from the root to the folder holding _sync. */
static int add_file(struct walk *w, const char *area, const char *dir_rel, const char *dir_abs,
                    const char *fname)
{
    size_t n = strlen(fname);
    if (n < 4 || strcmp(fname + n - 4, ".lua") != 0)
        return 0; /* not a handler: README, data files … */
    const char *kinds[2] = {"_server_v", "_client_v"};
    for (int k = 0; k < 2; k++) {
        const char *at = strstr(fname, kinds[k]);
        if (!at)
            continue;
        size_t name_len = (size_t)(at - fname);
        const char *ver = at + strlen(kinds[k]);
        size_t ver_len = (size_t)(fname + n - 4 - ver);
        char vbuf[16];
        if (ver_len == 0 || ver_len > 8)
            goto bad;
        snprintf(vbuf, sizeof vbuf, "v%.*s", (int)ver_len, ver);
        if (!seg_ok(fname, name_len) || !version_ok(vbuf, ver_len + 1))
            goto bad;
        char key[ROUTES_KEY_MAX];
        int kl = snprintf(key, sizeof key, "%s/%.*s/%s", area, (int)name_len, fname, vbuf);
        if (kl < 0 || (size_t)kl >= sizeof key)
            goto bad;
        struct route_files *r = get_route(w, key);
        if (!r) {
            snprintf(w->err, w->errlen, "too many routes (max %d) or out of memory", MAX_ROUTES);
            return -1;
        }
        char **path = k == 0 ? &r->server_path : &r->client_path;
        char **chunk = k == 0 ? &r->server_chunk : &r->client_chunk;
        free(*path);
        free(*chunk);
        *path = dupf(dir_abs, "/", fname);
        *chunk = dupf(dir_rel, "/", fname);
        return (*path && *chunk) ? 0 : -1;
    }
bad:
    snprintf(w->err, w->errlen,
             "%s/%s: a file in _sync/ must be named <name>_server_v<N>.lua or "
             "<name>_client_v<N>.lua",
             dir_rel, fname);
    return -1;
}

static int walk_dir(struct walk *w, const char *abs, const char *rel, const char *area, int depth)
{
    if (depth > MAX_DEPTH)
        return 0;
    DIR *d = opendir(abs);
    if (!d) {
        snprintf(w->err, w->errlen, "%s: %s", rel, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    int in_sync = strcmp(strrchr(abs, '/') ? strrchr(abs, '/') + 1 : abs, "_sync") == 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "node_modules") == 0)
            continue;
        char cabs[PATH_MAX], crel[PATH_MAX];
        struct stat st;
        if (snprintf(cabs, sizeof cabs, "%s/%s", abs, e->d_name) >= (int)sizeof cabs ||
            snprintf(crel, sizeof crel, "%s/%s", rel, e->d_name) >= (int)sizeof crel)
            continue;
        if (stat(cabs, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (in_sync)
                continue; /* no sub-folders inside _sync */
            char carea[ROUTES_KEY_MAX];
            int is_sync = strcmp(e->d_name, "_sync") == 0;
            if (is_sync) {
                if (!*area)
                    continue; /* handlers/_sync has no area */
                rc = walk_dir(w, cabs, crel, area, depth + 1);
            } else {
                if (!seg_ok(e->d_name, strlen(e->d_name)))
                    continue;
                snprintf(carea, sizeof carea, "%s%s%s", area, *area ? "/" : "", e->d_name);
                rc = walk_dir(w, cabs, crel, carea, depth + 1);
            }
        } else if (S_ISREG(st.st_mode) && in_sync) {
            rc = add_file(w, area, rel, abs, e->d_name);
        } else if (S_ISREG(st.st_mode) && depth == 0 && strcmp(e->d_name, "_hooks.lua") == 0) {
            w->l->hooks_path = strdup(cabs);
        }
    }
    closedir(d);
    return rc;
}

static int cmp_route(const void *a, const void *b)
{
    return strcmp(((const struct route_files *)a)->key, ((const struct route_files *)b)->key);
}

int routes_scan(const char *handlers_dir, struct route_list *out, char *err, size_t errlen)
{
    struct walk w = {.l = out, .cap = 0, .root = handlers_dir, .err = err, .errlen = errlen};
    memset(out, 0, sizeof *out);
    const char *base = strrchr(handlers_dir, '/');
    base = base && base[1] ? base + 1 : handlers_dir;
    if (walk_dir(&w, handlers_dir, base, "", 0) != 0) {
        routes_free(out);
        return -1;
    }
    if (out->count)
        qsort(out->items, out->count, sizeof *out->items, cmp_route);
    return 0;
}

void routes_free(struct route_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->items[i].key);
        free(l->items[i].server_path);
        free(l->items[i].client_path);
        free(l->items[i].server_chunk);
        free(l->items[i].client_chunk);
    }
    free(l->items);
    free(l->hooks_path);
    memset(l, 0, sizeof *l);
}
