/* server: the process's one event loop (libuv, handed to libwebsockets as its foreign loop:
 * lws_sul timers, raw-fd adoption for inotify and later hiredis, uv signal handles), the
 * listener and WebSockets (wsock, its callbacks into conn), the vhost that serves plain HTTP
 * on connections wsock hands over, the HTTP routes (Engine.IO polling, POST /sync, static
 * files, stats, the --dev token) and the handler runtime's view of the transport. Uses conn,
 * wsock, http_sync, reload, runtime, room, config, log. */
#ifndef LUCKYSYNC_SERVER_H
#define LUCKYSYNC_SERVER_H

struct config;
struct server;

/* Create the server and bind its port. cfg is borrowed and must outlive the server.
 * NULL on failure (logged). */
struct server *server_new(const struct config *cfg);
/* Run the loop until SIGINT/SIGTERM or server_stop. Returns 0. */
int server_run(struct server *s);
/* Ask the loop to stop (safe from a signal handler). */
void server_stop(struct server *s);
void server_free(struct server *s);

#endif
