/* log: structured logging, one JSON object per line on stderr.
 * Provides log_write() and the LOG_* macros; uses nothing but libc. The level threshold and the
 * sink are the process's only logging globals (see STYLE.md: the log sink is an exception). */
#ifndef LUCKYSYNC_LOG_H
#define LUCKYSYNC_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 };

/* Set the minimum level written. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "debug" | "info" | "warn" | "error" | "off"; returns 0 and sets *out, or -1. */
int log_parse_level(const char *text, enum log_level *out);

/* Write one line: {"ts":…,"level":…,"msg":msg, fields…}. `fields` is a printf format producing
 * further JSON members *without* a leading comma, e.g. "\"conn\":%llu,\"reason\":\"%s\"", or
 * NULL. String values passed through fields must be escaped by the caller with log_escape(). */
void log_write(enum log_level level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

/* Escape `in` for a JSON string body into `out` (always NUL-terminated, truncated to fit).
 * Returns out. */
const char *log_escape(const char *in, char *out, unsigned long outlen);

#define LOG_D(msg, ...) log_write(LOG_DEBUG, msg, __VA_ARGS__)
#define LOG_I(msg, ...) log_write(LOG_INFO, msg, __VA_ARGS__)
#define LOG_W(msg, ...) log_write(LOG_WARN, msg, __VA_ARGS__)
#define LOG_E(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

#endif
