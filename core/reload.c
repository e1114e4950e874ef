/* reload.c: inotify → debounced reload callback, on the lws loop. */
#include "reload.h"

#include <dirent.h>
#include <errno.h>
#include <libwebsockets.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define DEBOUNCE_MS 50
#define MAX_DIRS 8
#define MAX_DEPTH 16

struct reload {
    int fd;
    struct lws *wsi;
    struct lws_context *ctx;
    lws_sorted_usec_list_t sul;
    reload_cb cb;
    void *ud;
    char *dirs[MAX_DIRS];
    int ndirs;
};

static void watch_tree(struct reload *r, const char *dir, int depth)
{
    if (depth > MAX_DEPTH)
        return;
    inotify_add_watch(r->fd, dir,
                      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                          IN_DELETE_SELF | IN_ONLYDIR);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "node_modules") == 0)
            continue;
        char path[PATH_MAX];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            watch_tree(r, path, depth + 1);
    }
    closedir(d);
}

static void fire(lws_sorted_usec_list_t *sul)
{
    struct reload *r = lws_container_of(sul, struct reload, sul);
    for (int i = 0; i < r->ndirs; i++)
        watch_tree(r, r->dirs[i], 0); /* pick up new sub-folders */
    r->cb(r->ud);
}

int reload_lws_callback(struct lws *wsi, int reason, void *user, void *in, unsigned long len)
{
    (void)user;
    (void)in;
    (void)len;
    struct reload *r = lws_get_opaque_user_data(wsi);
    if (!r)
        return 0;
    if (reason == LWS_CALLBACK_RAW_RX_FILE) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n;
        int any = 0;
        while ((n = read(r->fd, buf, sizeof buf)) > 0)
            any = 1;
        if (any)
            lws_sul_schedule(r->ctx, 0, &r->sul, fire, DEBOUNCE_MS * LWS_US_PER_MS);
    } else if (reason == LWS_CALLBACK_RAW_CLOSE_FILE) {
        r->wsi = NULL;
    }
    return 0;
}

struct reload *reload_start(struct lws_context *ctx, struct lws_vhost *vh, const char *const *dirs, int n, reload_cb cb,
                            void *ud)
{
    struct reload *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cb = cb;
    r->ud = ud;
    r->ctx = ctx;
    r->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (r->fd < 0) {
        LOG_E("hot reload unavailable", "\"error\":\"inotify: %s\"", strerror(errno));
        free(r);
        return NULL;
    }
    for (int i = 0; i < n && r->ndirs < MAX_DIRS; i++) {
        struct stat st;
        if (!dirs[i] || stat(dirs[i], &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        r->dirs[r->ndirs] = strdup(dirs[i]);
        if (r->dirs[r->ndirs])
            watch_tree(r, r->dirs[r->ndirs++], 0);
    }
    lws_sock_file_fd_type u;
    u.filefd = (lws_filefd_type)r->fd;
    r->wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, u, "luckysync-watch", NULL);
    if (!r->wsi) {
        LOG_E("hot reload unavailable", "\"error\":\"cannot adopt the inotify descriptor\"");
        close(r->fd);
        for (int i = 0; i < r->ndirs; i++)
            free(r->dirs[i]);
        free(r);
        return NULL;
    }
    lws_set_opaque_user_data(r->wsi, r);
    LOG_I("hot reload on", "\"folders\":%d", r->ndirs);
    return r;
}

void reload_stop(struct reload *r)
{
    if (!r)
        return;
    lws_sul_cancel(&r->sul);
    if (r->wsi) {
        lws_set_opaque_user_data(r->wsi, NULL);
        /* lws closes the adopted fd with the wsi when the context is destroyed */
    } else {
        close(r->fd);
    }
    for (int i = 0; i < r->ndirs; i++)
        free(r->dirs[i]);
    free(r);
}
