/* server: the process's one event loop (libwebsockets' own loop: lws_sul timers, and later
 * raw-fd adoption for inotify and hiredis), the vhost and its single protocol, the HTTP
 * routes (Engine.IO polling, static files, stats) and signal handling. Uses conn, room,
 * config and log. */
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
