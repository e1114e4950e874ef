/* http_sync: the HTTP/SSE fallback, POST /sync/<area>/<name>/<version> with a JSON body
 * {data, receiver, ignoreSelf, cb} and the session in `Authorization: Bearer`. The request runs
 * through the same runtime as a socket `sync` (one implementation): it gets a virtual
 * connection id, and what the runtime sends that id becomes the HTTP response — one JSON
 * envelope, or with `Accept: text/event-stream` (or ?stream=true) SSE events `stream` for
 * every sender chunk and one `final` or `error` event. The HTTP status follows the error.
 * Closing the connection cancels the request. Uses conn, runtime, session, envelope. */
#ifndef LUCKYSYNC_HTTP_SYNC_H
#define LUCKYSYNC_HTTP_SYNC_H

#include <stddef.h>

struct lws;
struct conn_pss;
struct conn_table;

/* 1 when pss belongs to an HTTP sync request (route the other callbacks here). */
int http_sync_owns(const struct conn_pss *pss);
int http_sync_request(struct conn_table *t, struct lws *wsi, struct conn_pss *pss,
                      const char *uri);
int http_sync_body(struct conn_table *t, struct lws *wsi, struct conn_pss *pss, const void *in,
                   size_t len);
int http_sync_body_done(struct conn_table *t, struct lws *wsi, struct conn_pss *pss);
int http_sync_writeable(struct conn_table *t, struct lws *wsi, struct conn_pss *pss);
void http_sync_closed(struct conn_table *t, struct lws *wsi, struct conn_pss *pss);

#endif
