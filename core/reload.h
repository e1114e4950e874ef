/* reload: watches the handlers and lua/ folders with inotify (the descriptor adopted into the
 * lws loop as a raw file) and, 50 ms after the last change, calls back so the runtime compiles
 * a new generation. Sub-folders are watched as they appear. Uses libwebsockets and log. */
#ifndef LUCKYSYNC_RELOAD_H
#define LUCKYSYNC_RELOAD_H

struct lws;
struct lws_context;
struct lws_vhost;
struct reload;

typedef void (*reload_cb)(void *ud);

/* Start watching dirs[0..n) (missing ones are skipped). NULL on failure (logged). */
struct reload *reload_start(struct lws_context *ctx, struct lws_vhost *vh, const char *const *dirs, int n, reload_cb cb,
                            void *ud);
void reload_stop(struct reload *r);

/* The lws protocol callback of the adopted inotify descriptor (protocol "luckysync-watch"). */
int reload_lws_callback(struct lws *wsi, int reason, void *user, void *in, unsigned long len);

#endif
