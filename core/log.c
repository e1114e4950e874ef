/* log.c: JSON-lines logger on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level log_threshold = LOG_INFO;

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

enum log_level log_get_level(void)
{
    return log_threshold;
}

int log_parse_level(const char *text, enum log_level *out)
{
    for (int i = 0; i <= LOG_OFF; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *log_escape(const char *in, char *out, unsigned long outlen)
{
    unsigned long o = 0;
    if (outlen == 0)
        return out;
    for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p; p++) {
        char tmp[8];
        const char *add = tmp;
        size_t n;
        if (*p == '"' || *p == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)*p;
            n = 2;
        } else if (*p < 0x20) {
            n = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", *p);
        } else {
            tmp[0] = (char)*p;
            n = 1;
        }
        if (o + n + 1 > outlen)
            break;
        memcpy(out + o, add, n);
        o += n;
    }
    out[o] = '\0';
    return out;
}

void log_write(enum log_level level, const char *msg, const char *fields, ...)
{
    if (level < log_threshold || level >= LOG_OFF)
        return;
    char line[2048];
    char esc[512];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(line, sizeof line, "{\"ts\":%lld.%03ld,\"level\":\"%s\",\"msg\":\"%s\"",
                     (long long)ts.tv_sec, ts.tv_nsec / 1000000L, level_names[level],
                     log_escape(msg, esc, sizeof esc));
    if (n < 0 || (size_t)n >= sizeof line)
        n = (int)sizeof line - 1;
    if (fields && *fields && (size_t)n < sizeof line - 3) {
        line[n++] = ',';
        va_list ap;
        va_start(ap, fields);
        int m = vsnprintf(line + n, sizeof line - (size_t)n - 2, fields, ap);
        va_end(ap);
        if (m > 0)
            n += ((size_t)m < sizeof line - (size_t)n - 2) ? m : (int)(sizeof line - (size_t)n - 3);
    }
    line[n++] = '}';
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
}
