/* bench.c: luckysync-bench's command line, measurement helpers and output.
 *
 *   luckysync-bench <fanout|rpc|idle|stream> --url http://127.0.0.1:PORT [options] [--json]
 *   luckysync-bench sink --port P
 *
 * One JSON line per run on stdout (with --json), a human table on stderr. The exit status is
 * 0 when the run had no functional error, 1 when it had one (lost or reordered messages, error
 * answers, failed connections, a stream that does not add up), 2 on bad usage. Speed never
 * fails a run. See bench.h for the module map and usage() for the options. */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

static struct bench *g_bench; /* for the SIGINT handler only */

static void usage(FILE *f)
{
    fputs("usage: luckysync-bench <scenario> --url http://HOST:PORT [options]\n"
          "       luckysync-bench sink --port PORT [--url http://HOST:PORT]\n"
          "scenarios:\n"
          "  fanout   R rooms x M members, one publisher per room sending sync requests\n"
          "  rpc      N clients sending sync requests to a trivial handler\n"
          "  idle     N idle connections: server RSS per connection, active clients' latency\n"
          "  stream   one streaming request (2000 tokens) to a room of M members\n"
          "  sink     a trivial server speaking the same wire (the generator's ceiling)\n"
          "options:\n"
          "  --rooms R --members M   fanout shape (default 10 x 100); stream: --members\n"
          "  --clients N             rpc clients; idle: active clients (default 100 / 4)\n"
          "  --idle N                idle connections (default 1000)\n"
          "  --payload BYTES         size of the request's data object (default 100)\n"
          "  --rate N                requests/s over all senders (default 0 = as fast as the\n"
          "                          window allows; idle: 200)\n"
          "  --window W              requests in flight per sender (default 16)\n"
          "  --duration S --warmup S --drain S   measured window, warmup, drain limit\n"
          "  --tokens N --repeat K   stream: tokens per request, requests (default 2000, 3)\n"
          "  --token JWT             Socket.IO CONNECT auth token\n"
          "  --src-ips A,B,...       bind client sockets to these source addresses in turn\n"
          "  --connect-parallel N    handshakes in flight (default 256)\n"
          "  --server-pid PID        read the server's RSS and CPU from /proc\n"
          "  --label TEXT            copied into the JSON line\n"
          "  --on-ready CMD --on-done CMD   shell commands around the measured window\n"
          "  --json                  print the JSON line on stdout\n",
          f);
}

static void on_signal(int sig)
{
    (void)sig;
    if (g_bench)
        g_bench->interrupted = 1;
}

/* ---- measuring ---- */

static void self_times(double *user, double *sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

double self_cpu_s(void)
{
    double u, s;
    self_times(&u, &s);
    return u + s;
}

double server_cpu_s(int pid)
{
    if (pid <= 0)
        return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* after "pid (comm)": state is field 3; utime and stime are fields 14 and 15 */
    unsigned long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long server_rss_kb(int pid)
{
    if (pid <= 0)
        return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static void core_times(struct core_times *ct)
{
    ct->n = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    char line[512];
    while (ct->n < MEASURE_CPUS && fgets(line, sizeof line, f)) {
        unsigned cpu;
        unsigned long long v[8] = {0};
        if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9')
            continue;
        if (sscanf(line + 3, "%u %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 9 ||
            cpu >= MEASURE_CPUS)
            continue;
        /* user nice system idle iowait irq softirq steal */
        ct->busy[cpu] = v[0] + v[1] + v[2] + v[5] + v[6];
        ct->steal[cpu] = v[7];
        ct->total[cpu] = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
        if (cpu + 1 > ct->n)
            ct->n = cpu + 1;
    }
    fclose(f);
}

void measure_begin(struct bench *b, struct measure *m)
{
    core_times(&m->c0);
    m->t0 = mono_ns();
    self_times(&m->user0, &m->sys0);
    m->srv0 = server_cpu_s(b->o.server_pid);
}

void measure_end(struct bench *b, struct measure *m)
{
    m->t1 = mono_ns();
    self_times(&m->user1, &m->sys1);
    m->srv1 = server_cpu_s(b->o.server_pid);
    core_times(&m->c1);
}

/* The one core pid (0: ourselves) may run on, or -1 when it may run on several. */
static int pinned_core(int pid)
{
    cpu_set_t set;
    if (sched_getaffinity(pid, sizeof set, &set) != 0 || CPU_COUNT(&set) != 1)
        return -1;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set))
            return i;
    return -1;
}

double measure_wall(const struct measure *m)
{
    return (double)(m->t1 - m->t0) / 1e9;
}

void run_hook(const char *what, const char *cmd)
{
    if (!cmd || !*cmd)
        return;
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "bench: %s hook exited with %d: %s\n", what, rc, cmd);
}

size_t build_sync(char *buf, size_t cap, const char *route, const char *room, uint64_t t,
                  uint64_t seq, unsigned payload, int ignore_self)
{
    int n = snprintf(buf, cap,
                     "42[\"sync\",{\"name\":\"%s\",\"data\":{\"t\":%llu,\"s\":%llu,\"pad\":\"",
                     route, (unsigned long long)t, (unsigned long long)seq);
    /* data = {"t":…,"s":…,"pad":"…"}: pad to `payload` bytes of data JSON */
    int data_start = (int)(strstr(buf, "\"data\":") - buf) + 7;
    long pad = (long)payload - (n - data_start) - 2;
    if (pad < 0)
        pad = 0;
    if ((size_t)n + (size_t)pad + 256 > cap)
        pad = (long)cap - n - 256;
    memset(buf + n, 'x', (size_t)pad);
    n += (int)pad;
    n += snprintf(buf + n, cap - (size_t)n,
                  "\"},\"receiver\":\"%s\",\"ignoreSelf\":%s,\"responseIndex\":%llu}]", room,
                  ignore_self ? "true" : "false", (unsigned long long)seq);
    return (size_t)n;
}

/* ---- results ---- */

static void vappendv(char *dst, size_t cap, size_t *len, const char *fmt, va_list ap)
{
    if (*len >= cap)
        return;
    int n = vsnprintf(dst + *len, cap - *len, fmt, ap);
    if (n > 0)
        *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

static void vappend(char *dst, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void vappend(char *dst, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vappendv(dst, cap, len, fmt, ap);
    va_end(ap);
}

static void vappend_lit(struct result *r, const char *s)
{
    size_t n = strlen(s);
    if (r->json_len + n < sizeof r->json) {
        memcpy(r->json + r->json_len, s, n + 1);
        r->json_len += n;
    }
}

void result_add(struct result *r, const char *fmt, ...)
{
    va_list ap;
    if (r->json_len && r->json_len + 1 < sizeof r->json) {
        r->json[r->json_len++] = ',';
        r->json[r->json_len] = '\0';
    }
    va_start(ap, fmt);
    vappendv(r->json, sizeof r->json, &r->json_len, fmt, ap);
    va_end(ap);
}

void result_table(struct result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vappendv(r->table, sizeof r->table, &r->table_len, fmt, ap);
    va_end(ap);
}

void result_hist(struct result *r, const char *name, const struct hist *h)
{
    result_add(r,
               "\"%s\":{\"count\":%llu,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
               "\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f}",
               name, (unsigned long long)h->count, hist_quantile(h, 0.5) / 1e3,
               hist_quantile(h, 0.9) / 1e3, hist_quantile(h, 0.99) / 1e3,
               hist_quantile(h, 0.999) / 1e3, (double)h->max / 1e3,
               h->count ? (double)h->sum / (double)h->count / 1e3 : 0.0);
}

void result_measure(struct result *r, const struct bench *b, const struct measure *m)
{
    double wall = measure_wall(m);
    double user = m->user1 - m->user0, sys = m->sys1 - m->sys0;
    result_add(r, "\"window_s\":%.3f", wall);
    result_add(r, "\"gen\":{\"user_s\":%.3f,\"sys_s\":%.3f,\"cpu_s\":%.3f,\"util\":%.3f}", user,
               sys, user + sys, wall > 0 ? (user + sys) / wall : 0.0);
    if (b->o.server_pid > 0 && m->srv0 >= 0 && m->srv1 >= 0)
        result_add(r, "\"server\":{\"pid\":%d,\"cpu_s\":%.2f,\"util\":%.3f}", b->o.server_pid,
                   m->srv1 - m->srv0, wall > 0 ? (m->srv1 - m->srv0) / wall : 0.0);
    const struct core_times *a = &m->c0, *z = &m->c1;
    double busy[MEASURE_CPUS] = {0};
    unsigned n = a->n < z->n ? a->n : z->n;
    result_add(r, "\"cores\":[");
    for (unsigned i = 0; i < n; i++) {
        double tot = (double)(z->total[i] - a->total[i]);
        busy[i] = tot > 0 ? (double)(z->busy[i] - a->busy[i]) / tot : 0;
        double steal = tot > 0 ? (double)(z->steal[i] - a->steal[i]) / tot : 0;
        vappend(r->json, sizeof r->json, &r->json_len, "%s{\"busy\":%.3f,\"steal\":%.3f}",
                i ? "," : "", busy[i], steal);
    }
    vappend_lit(r, "]");
    int sc = b->o.server_pid > 0 ? pinned_core(b->o.server_pid) : -1, gc = pinned_core(0);
    double srv_util = wall > 0 && m->srv0 >= 0 ? (m->srv1 - m->srv0) / wall : 0;
    double gen_util = wall > 0 ? (user + sys) / wall : 0;
    if (sc >= 0 && gc >= 0 && sc != gc && (unsigned)sc < n && (unsigned)gc < n) {
        double fs = busy[sc] - srv_util, fg = busy[gc] - gen_util;
        result_add(r, "\"foreign\":{\"server_core\":%.3f,\"gen_core\":%.3f}", fs < 0 ? 0 : fs,
                   fg < 0 ? 0 : fg);
        if (fs > 0.1 || fg > 0.1)
            result_table(r,
                         "  note: other processes used %.0f %% of the server's core and %.0f %% "
                         "of the generator's\n",
                         100 * (fs < 0 ? 0 : fs), 100 * (fg < 0 ? 0 : fg));
    }
    result_table(r, "  window %.2f s   generator CPU %.2f s (%.0f %% of a core)", wall, user + sys,
                 wall > 0 ? 100 * (user + sys) / wall : 0.0);
    if (b->o.server_pid > 0 && m->srv0 >= 0 && m->srv1 >= 0)
        result_table(r, "   server CPU %.2f s (%.0f %%)", m->srv1 - m->srv0,
                     wall > 0 ? 100 * (m->srv1 - m->srv0) / wall : 0.0);
    result_table(r, "\n");
}

static void json_escape(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* ---- command line ---- */

static int parse_url(struct opts *o, const char *url)
{
    static char host[64];
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strncmp(p, "ws://", 5) == 0)
        p += 5;
    const char *colon = strchr(p, ':');
    if (!colon || colon - p >= (long)sizeof host)
        return -1;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    o->host = host;
    o->port = atoi(colon + 1);
    if (o->port <= 0 || o->port > 65535)
        return -1;
    snprintf(o->host_header, sizeof o->host_header, "%s:%d", host, o->port);
    return 0;
}

static int parse_ips(struct opts *o, const char *list)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    o->nsrc = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->nsrc == BENCH_MAX_SRC_IPS || inet_pton(AF_INET, t, &o->src[o->nsrc]) != 1)
            return -1;
        o->nsrc++;
    }
    return o->nsrc ? 0 : -1;
}

static int parse_args(struct opts *o, int argc, char **argv)
{
    o->rooms = 10;
    o->members = 100;
    o->clients = 0;
    o->idle = 1000;
    o->window = 16;
    o->payload = 100;
    o->duration = 5;
    o->warmup = 1;
    o->drain = 10;
    o->tokens = 2000;
    o->repeat = 3;
    o->connect_parallel = 256;
    o->connect_timeout = 30;
    o->rate = -1;
    o->label = "";
    o->scenario = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (strcmp(a, name) == 0 && v && ++i)
        if (OPT("--url")) {
            if (parse_url(o, v) != 0) {
                fprintf(stderr, "bench: bad --url %s\n", v);
                return -1;
            }
        } else if (OPT("--rooms"))
            o->rooms = (unsigned)atoi(v);
        else if (OPT("--members"))
            o->members = (unsigned)atoi(v);
        else if (OPT("--clients"))
            o->clients = (unsigned)atoi(v);
        else if (OPT("--idle"))
            o->idle = (unsigned)atoi(v);
        else if (OPT("--window"))
            o->window = (unsigned)atoi(v);
        else if (OPT("--payload"))
            o->payload = (unsigned)atoi(v);
        else if (OPT("--rate"))
            o->rate = atof(v);
        else if (OPT("--duration"))
            o->duration = atof(v);
        else if (OPT("--warmup"))
            o->warmup = atof(v);
        else if (OPT("--drain"))
            o->drain = atof(v);
        else if (OPT("--tokens"))
            o->tokens = (unsigned)atoi(v);
        else if (OPT("--repeat"))
            o->repeat = (unsigned)atoi(v);
        else if (OPT("--token"))
            o->token = v;
        else if (OPT("--label"))
            o->label = v;
        else if (OPT("--server-pid"))
            o->server_pid = atoi(v);
        else if (OPT("--connect-parallel"))
            o->connect_parallel = (unsigned)atoi(v);
        else if (OPT("--connect-timeout"))
            o->connect_timeout = atof(v);
        else if (OPT("--on-ready"))
            o->on_ready = v;
        else if (OPT("--on-done"))
            o->on_done = v;
        else if (OPT("--port"))
            o->sink_port = atoi(v);
        else if (OPT("--src-ips")) {
            if (parse_ips(o, v) != 0) {
                fprintf(stderr, "bench: bad --src-ips %s\n", v);
                return -1;
            }
        } else if (strcmp(a, "--json") == 0)
            o->json = 1;
        else {
            fprintf(stderr, "bench: unknown or incomplete option %s\n", a);
            return -1;
        }
#undef OPT
    }
    if (o->window == 0)
        o->window = 1;
    if (o->connect_parallel == 0)
        o->connect_parallel = 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static struct bench b;
    b.ep = -1;
    if (parse_args(&b.o, argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit nofile; /* the idle scenario needs every descriptor the hard limit allows */
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (strcmp(b.o.scenario, "sink") == 0) {
        if (!b.o.host)
            b.o.host = "127.0.0.1";
        if (b.o.sink_port <= 0)
            b.o.sink_port = b.o.port;
        return sink_main(&b.o);
    }
    int (*run)(struct bench *, struct result *) = NULL;
    if (strcmp(b.o.scenario, "fanout") == 0)
        run = scen_fanout;
    else if (strcmp(b.o.scenario, "rpc") == 0)
        run = scen_rpc;
    else if (strcmp(b.o.scenario, "idle") == 0)
        run = scen_idle;
    else if (strcmp(b.o.scenario, "stream") == 0)
        run = scen_stream;
    if (!run) {
        fprintf(stderr, "bench: unknown scenario %s\n", b.o.scenario);
        usage(stderr);
        return 2;
    }
    if (!b.o.host) {
        fprintf(stderr, "bench: --url is required\n");
        return 2;
    }
    b.dst.sin_family = AF_INET;
    b.dst.sin_port = htons((uint16_t)b.o.port);
    if (inet_pton(AF_INET, b.o.host, &b.dst.sin_addr) != 1) {
        fprintf(stderr, "bench: --url needs a numeric IPv4 address\n");
        return 2;
    }
    if (bench_init(&b) != 0) {
        fprintf(stderr, "bench: init failed: %s\n", strerror(errno));
        return 2;
    }
    g_bench = &b;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    static struct result r;
    int rc = run(&b, &r);
    if (b.errors || b.interrupted)
        r.failed = 1;
    bench_close_all(&b);

    if (b.o.json) {
        printf("{\"scenario\":\"%s\",\"label\":", b.o.scenario);
        json_escape(stdout, b.o.label);
        printf(",\"url\":\"http://%s\",%s%s\"conns\":%u,\"conn_failures\":%u,\"errors\":%llu,"
               "\"first_error\":",
               b.o.host_header, r.json, r.json_len ? "," : "", b.nconns, b.nfailed,
               (unsigned long long)b.errors);
        json_escape(stdout, b.first_error);
        printf(",\"ok\":%s}\n", r.failed || rc ? "false" : "true");
        fflush(stdout);
    }
    fprintf(stderr, "== %s %s%s%s\n%s", b.o.scenario, b.o.host_header, b.o.label[0] ? "  " : "",
            b.o.label, r.table);
    if (b.errors)
        fprintf(stderr, "  errors: %llu (first: %s)\n", (unsigned long long)b.errors,
                b.first_error);
    fprintf(stderr, "  result: %s\n", r.failed || rc ? "FAILED" : "ok");
    bench_free(&b);
    return r.failed || rc ? 1 : 0;
}
