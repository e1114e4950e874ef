/* test_config: defaults, the Lua config file (every key, errors with their key path), flags
 * over the file, EdDSA key forms, the LUCKYSYNC_JWT_SECRET fallback, and the example file at
 * the repo root (ctest runs from the source directory). */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "jwt.h"
#include "testlib.h"

#define EXAMPLE_FILE "luckysync.config.lua"

/* Write text to a new temporary file; path receives its name (caller unlinks). */
static void write_tmp(const char *text, char path[64])
{
    strcpy(path, "/tmp/test_config_XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    size_t n = strlen(text);
    CHECK(write(fd, text, n) == (ssize_t)n);
    close(fd);
}

/* Load text as a config file over fresh defaults; returns config_load_file's result. */
static int load_text(struct config *c, const char *text, char *err, size_t errlen)
{
    char path[64];
    write_tmp(text, path);
    int rc = config_load_file(c, path, err, errlen);
    unlink(path);
    return rc;
}

/* Expect text to be refused with a message containing want. */
static void expect_error(const char *text, const char *want)
{
    struct config c;
    char err[512] = "";
    CHECK_EQ_INT(config_init(&c), 0);
    int rc = load_text(&c, text, err, sizeof err);
    CHECK_EQ_INT(rc, -1);
    if (rc != -1 || !strstr(err, want) || strncmp(err, "config: ", 8) != 0)
        fprintf(stderr, "  for %s\n  wanted \"%s\" in \"%s\"\n", text, want, err);
    CHECK(strstr(err, want) != NULL);
    /* A refused file changes nothing. */
    CHECK_EQ_STR(c.host, "127.0.0.1");
    CHECK_EQ_INT(c.port, 8080);
    CHECK_EQ_INT(c.max_payload, 1000000);
    CHECK_EQ_INT(c.allowed_origins_count, 0);
    CHECK_EQ_INT(jwt_keyset_count(c.keys), 0);
    config_close(&c);
}

static void b64(const unsigned char *in, size_t len, char *out, size_t cap)
{
    CHECK(jwt_b64url_encode(in, len, out, cap) > 0);
}

static void check_defaults(const struct config *c)
{
    CHECK_EQ_STR(c->host, "127.0.0.1");
    CHECK_EQ_INT(c->port, 8080);
    CHECK_EQ_STR(c->handlers_dir, "./handlers");
    CHECK(c->static_dir == NULL);
    CHECK_EQ_INT(c->log_level, LOG_INFO);
    CHECK_EQ_INT(c->dev, 0);
    CHECK_EQ_INT(c->max_payload, 1000000);
    CHECK_EQ_INT(c->max_connections, 10000);
    CHECK_EQ_INT(c->ws_read_bytes, 65536);
    CHECK_EQ_INT(c->max_rooms_per_socket, 50);
    CHECK_EQ_INT(c->max_room_name, 256);
    CHECK_EQ_INT(c->handshake_timeout_ms, 10000);
    CHECK_EQ_INT(c->ping_interval_ms, 25000);
    CHECK_EQ_INT(c->ping_timeout_ms, 20000);
    CHECK_EQ_INT(c->send_queue_max_bytes, 4194304);
    CHECK_EQ_INT(c->send_queue_max_frames, 4096);
    CHECK_EQ_INT(c->allowed_origins_count, 0);
    CHECK_EQ_INT(c->room_policy, CONFIG_ROOM_LOGGED_IN);
    CHECK(c->keys != NULL);
    CHECK_EQ_INT(jwt_keyset_count(c->keys), 0);
    CHECK_EQ_INT(c->jwt_leeway_s, 30);
    CHECK_EQ_INT(c->session_grace_ms, 30000);
    CHECK_EQ_INT(c->sync_vm_pool_size, 4);
    CHECK_EQ_INT(c->sync_cpu_budget_ms, 2000);
    CHECK_EQ_INT(c->sync_vm_memory_cap, 64 * 1024 * 1024);
    CHECK_EQ_INT(c->sync_fanout_slice_size, 512);
    CHECK_EQ_INT(c->sync_rate_limit, 600);
    CHECK_EQ_INT(c->sync_throttle_flush_ms, 50);
    CHECK_EQ_INT(c->sync_throttle_flush_chars, 32);
    CHECK_EQ_INT(c->sync_pressure_bytes, 262144);
    CHECK_EQ_INT(c->offline_queue_max_items, 200);
    CHECK_EQ_INT(c->offline_queue_ttl_ms, 86400000);
}

static void test_defaults(void)
{
    struct config c;
    CHECK_EQ_INT(config_init(&c), 0);
    check_defaults(&c);
    config_close(&c);
    config_close(&c); /* a second close is harmless */
}

static void test_full_file(void)
{
    unsigned char pk[32], sk[64];
    char pub[64], seed[64], text[4096], err[512] = "";
    crypto_sign_keypair(pk, sk);
    b64(pk, 32, pub, sizeof pub);
    b64(sk, 32, seed, sizeof seed);
    snprintf(text, sizeof text,
             "local big = 2 * 1024 * 1024\n"
             "return {\n"
             "  host = '0.0.0.0', port = 9001, handlers = '/srv/h', static = '/srv/www',\n"
             "  logLevel = 'debug', dev = true,\n"
             "  limits = { maxPayload = 2000000, maxConnections = 77, maxRoomsPerSocket = 5,\n"
             "             wsReadBytes = 4096,\n"
             "             maxRoomName = 64, handshakeTimeoutMs = 3000,\n"
             "             sendQueueMaxBytes = big * 4, sendQueueMaxFrames = 100 },\n"
             "  heartbeat = { pingIntervalMs = 1000, pingTimeoutMs = 2000 },\n"
             "  cors = { allowedOrigins = { 'http://localhost:5173', 'https://app.example' } },\n"
             "  rooms = { policy = 'hook' },\n"
             "  auth = {\n"
             "    leewaySec = 5, sessionGraceMs = 1500,\n"
             "    keys = {\n"
             "      { kid = 'k1', alg = 'HS256', secret = string.rep('s', 40) },\n"
             "      { kid = 'k2', alg = 'EdDSA', publicKey = '%s' },\n"
             "      { alg = 'EdDSA', privateKey = '%s', publicKey = '%s' },\n"
             "    },\n"
             "  },\n"
             "  sync = { vmPoolSize = 8, cpuBudgetMs = 250, vmMemoryCapMb = 16,\n"
             "           fanoutSliceSize = 64, rateLimit = 60, pressureBytes = 65536,\n"
             "           streamThrottle = { flushEveryMs = 20, flushAtChars = 8 } },\n"
             "  offlineQueue = { maxItems = 10, ttlMs = 60000 },\n"
             "}\n",
             pub, seed, pub);
    struct config c;
    CHECK_EQ_INT(config_init(&c), 0);
    int rc = load_text(&c, text, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    if (rc)
        fprintf(stderr, "  %s\n", err);
    CHECK_EQ_STR(c.host, "0.0.0.0");
    CHECK_EQ_INT(c.port, 9001);
    CHECK_EQ_STR(c.handlers_dir, "/srv/h");
    CHECK_EQ_STR(c.static_dir, "/srv/www");
    CHECK_EQ_INT(c.log_level, LOG_DEBUG);
    CHECK_EQ_INT(c.dev, 1);
    CHECK_EQ_INT(c.max_payload, 2000000);
    CHECK_EQ_INT(c.max_connections, 77);
    CHECK_EQ_INT(c.ws_read_bytes, 4096);
    CHECK_EQ_INT(c.max_rooms_per_socket, 5);
    CHECK_EQ_INT(c.max_room_name, 64);
    CHECK_EQ_INT(c.handshake_timeout_ms, 3000);
    CHECK_EQ_INT(c.send_queue_max_bytes, 8 * 1024 * 1024);
    CHECK_EQ_INT(c.send_queue_max_frames, 100);
    CHECK_EQ_INT(c.ping_interval_ms, 1000);
    CHECK_EQ_INT(c.ping_timeout_ms, 2000);
    CHECK_EQ_INT(c.allowed_origins_count, 2);
    if (c.allowed_origins_count == 2) {
        CHECK_EQ_STR(c.allowed_origins[0], "http://localhost:5173");
        CHECK_EQ_STR(c.allowed_origins[1], "https://app.example");
    }
    CHECK_EQ_INT(c.room_policy, CONFIG_ROOM_HOOK);
    CHECK_EQ_INT(c.jwt_leeway_s, 5);
    CHECK_EQ_INT(c.session_grace_ms, 1500);
    CHECK_EQ_INT(jwt_keyset_count(c.keys), 3);
    CHECK_EQ_INT(c.sync_vm_pool_size, 8);
    CHECK_EQ_INT(c.sync_cpu_budget_ms, 250);
    CHECK_EQ_INT(c.sync_vm_memory_cap, 16 * 1024 * 1024);
    CHECK_EQ_INT(c.sync_fanout_slice_size, 64);
    CHECK_EQ_INT(c.sync_rate_limit, 60);
    CHECK_EQ_INT(c.sync_pressure_bytes, 65536);
    CHECK_EQ_INT(c.sync_throttle_flush_ms, 20);
    CHECK_EQ_INT(c.sync_throttle_flush_chars, 8);
    CHECK_EQ_INT(c.offline_queue_max_items, 10);
    CHECK_EQ_INT(c.offline_queue_ttl_ms, 60000);

    /* Loading over loaded values replaces them (ASan checks the old ones are freed); keys
     * given again replace the keyset rather than adding to it. */
    rc = load_text(&c,
                   "return { host = 'h2', static = 's2', cors = { allowedOrigins = {} },\n"
                   "  auth = { keys = { { kid = 'k1', alg = 'HS256', secret = 'x' } } } }\n",
                   err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_STR(c.host, "h2");
    CHECK_EQ_STR(c.static_dir, "s2");
    CHECK_EQ_STR(c.handlers_dir, "/srv/h");
    CHECK_EQ_INT(c.allowed_origins_count, 0);
    CHECK_EQ_INT(jwt_keyset_count(c.keys), 1);
    CHECK_EQ_INT(c.port, 9001);

    /* A failing load keeps every previous value, including ones it set before failing. */
    rc = load_text(&c,
                   "return { host = 'h3', cors = { allowedOrigins = { 'http://a' } },\n"
                   "  auth = { keys = {} }, port = 0 }\n",
                   err, sizeof err);
    CHECK_EQ_INT(rc, -1);
    CHECK_EQ_STR(c.host, "h2");
    CHECK_EQ_INT(c.allowed_origins_count, 0);
    CHECK_EQ_INT(jwt_keyset_count(c.keys), 1);
    config_close(&c);
}

static void test_flags_override_file(void)
{
    char path[64], err[512] = "";
    write_tmp("return { host = '10.0.0.1', port = 1234, handlers = 'fh', static = 'fs',\n"
              "  logLevel = 'error', limits = { maxConnections = 99 } }\n",
              path);
    /* Flags before and after --config, in both spellings. */
    char *argv[] = {"luckysync",  "--port", "9000",        "--host=0.0.0.0", "--config", path,
                    "--handlers", "ah",     "--static=as", "--log-level",    "debug",    "--dev"};
    struct config c;
    CHECK_EQ_INT(config_init(&c), 0);
    int rc = config_from_args(&c, (int)(sizeof argv / sizeof argv[0]), argv, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    if (rc)
        fprintf(stderr, "  %s\n", err);
    CHECK_EQ_INT(c.port, 9000);
    CHECK_EQ_STR(c.host, "0.0.0.0");
    CHECK_EQ_STR(c.handlers_dir, "ah");
    CHECK_EQ_STR(c.static_dir, "as");
    CHECK_EQ_INT(c.log_level, LOG_DEBUG);
    CHECK_EQ_INT(c.dev, 1);
    CHECK_EQ_INT(c.max_connections, 99); /* from the file */
    config_close(&c);

    /* --config=FILE with no other flags: the file's values stand. */
    char cfgflag[80];
    snprintf(cfgflag, sizeof cfgflag, "--config=%s", path);
    char *argv2[] = {"luckysync", cfgflag};
    CHECK_EQ_INT(config_init(&c), 0);
    CHECK_EQ_INT(config_from_args(&c, 2, argv2, err, sizeof err), 0);
    CHECK_EQ_INT(c.port, 1234);
    CHECK_EQ_STR(c.host, "10.0.0.1");
    CHECK_EQ_INT(c.log_level, LOG_ERROR);
    CHECK_EQ_INT(c.dev, 0);
    config_close(&c);
    unlink(path);
}

static void expect_flag_error(int argc, char **argv, const char *want)
{
    struct config c;
    char err[512] = "";
    CHECK_EQ_INT(config_init(&c), 0);
    CHECK_EQ_INT(config_from_args(&c, argc, argv, err, sizeof err), -1);
    if (!strstr(err, want))
        fprintf(stderr, "  wanted \"%s\" in \"%s\"\n", want, err);
    CHECK(strstr(err, want) != NULL);
    CHECK_EQ_INT(c.port, 8080); /* a bad flag changes nothing */
    config_close(&c);
}

static void test_flag_errors(void)
{
    char *a1[] = {"ls", "--nope"};
    expect_flag_error(2, a1, "unknown flag '--nope'");
    char *a2[] = {"ls", "--port"};
    expect_flag_error(2, a2, "missing value for --port");
    char *a3[] = {"ls", "--port", "80x"};
    expect_flag_error(3, a3, "--port");
    char *a4[] = {"ls", "--port=70000"};
    expect_flag_error(2, a4, "1..65535");
    char *a5[] = {"ls", "--port", "0"};
    expect_flag_error(3, a5, "--port");
    char *a6[] = {"ls", "--log-level", "loud"};
    expect_flag_error(3, a6, "--log-level");
    char *a7[] = {"ls", "--dev=yes"};
    expect_flag_error(2, a7, "--dev takes no value");
    char *a8[] = {"ls", "serve"};
    expect_flag_error(2, a8, "unexpected argument 'serve'");
    char *a9[] = {"ls", "--handlers", "--dev"};
    expect_flag_error(3, a9, "missing value for --handlers");
    char *a10[] = {"ls", "--host="};
    expect_flag_error(2, a10, "empty value for --host");
    char *a11[] = {"ls", "--port", "9000", "--config", "/nonexistent/luckysync.lua"};
    expect_flag_error(5, a11, "/nonexistent/luckysync.lua");
    char *a12[] = {"ls", "--dev", "--porta=1"};
    expect_flag_error(3, a12, "unknown flag '--porta'");
}

static void test_unknown_keys(void)
{
    expect_error("return { portz = 1 }", "config: unknown key portz");
    expect_error("return { limits = { maxPayloadz = 1 } }",
                 "config: unknown key limits.maxPayloadz");
    expect_error("return { sync = { streamThrottle = { flushEvery = 1 } } }",
                 "unknown key sync.streamThrottle.flushEvery");
    expect_error("return { auth = { keys = { { alg = 'HS256', secret = 'x', scret = 'y' } } } }",
                 "unknown key auth.keys[1].scret");
    expect_error("return { 'positional' }", "unknown key [1]");
    expect_error("return { cors = { 'http://a' } }", "unknown key cors[1]");
    expect_error("return { cors = { allowedOrigins = { x = 'http://a' } } }",
                 "unknown key cors.allowedOrigins.x");
}

static void test_wrong_types(void)
{
    expect_error("return { port = '8080' }", "port: expected integer, got string");
    expect_error("return { port = 8080.0 }", "port: expected integer, got float");
    expect_error("return { dev = 1 }", "dev: expected boolean, got number");
    expect_error("return { host = 5 }", "host: expected string, got number");
    expect_error("return { limits = 5 }", "limits: expected table, got number");
    expect_error("return { logLevel = 'loud' }", "logLevel: expected \"debug\"");
    expect_error("return { rooms = { policy = 'everyone' } }", "rooms.policy: expected");
    expect_error("return { cors = { allowedOrigins = 'http://a' } }",
                 "cors.allowedOrigins: expected list (table), got string");
    expect_error("return { cors = { allowedOrigins = { 'http://a', 7 } } }",
                 "cors.allowedOrigins[2]: expected string, got number");
    expect_error("return { auth = { keys = { 'k' } } }",
                 "auth.keys[1]: expected table, got string");
    expect_error("return { host = '' }", "host: must not be empty");
    expect_error("return { host = 'a\\0b' }", "host: contains a NUL byte");
}

static void test_ranges(void)
{
    expect_error("return { port = 0 }", "port: 0 is out of range 1..65535");
    expect_error("return { port = 65536 }", "port: 65536 is out of range");
    expect_error("return { limits = { maxPayload = 200000000 } }", "limits.maxPayload:");
    expect_error("return { limits = { maxConnections = -1 } }", "limits.maxConnections: -1");
    expect_error("return { limits = { wsReadBytes = 512 } }",
                 "limits.wsReadBytes: 512 is out of range 1024..4194304");
    expect_error("return { limits = { wsReadBytes = 4194305 } }", "limits.wsReadBytes:");
    expect_error("return { heartbeat = { pingIntervalMs = 50 } }", "heartbeat.pingIntervalMs:");
    expect_error("return { sync = { vmPoolSize = 0 } }", "sync.vmPoolSize:");
    expect_error("return { offlineQueue = { ttlMs = 1 << 40 } }", "offlineQueue.ttlMs:");
    expect_error("return { limits = { maxPayload = 8000000 } }",
                 "limits.sendQueueMaxBytes (4194304) must be at least limits.maxPayload");
    expect_error("return { sync = { pressureBytes = 8000000 } }", "sync.pressureBytes");
    expect_error("return { cors = { allowedOrigins = { 'http://a/' } } }", "trailing '/'");
    expect_error("return { cors = { allowedOrigins = { '*' } } }", "empty list admits any");
}

static void test_bad_files(void)
{
    char path[64], want[96], err[512] = "";
    struct config c;
    CHECK_EQ_INT(config_init(&c), 0);

    /* A syntax error names file:line (the error is on line 3). */
    write_tmp("return {\n  port = 1,\n  host = = 'x',\n}\n", path);
    CHECK_EQ_INT(config_load_file(&c, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:3:", path);
    CHECK(strstr(err, want) != NULL);
    unlink(path);

    /* So does a runtime error. */
    write_tmp("local t = {}\nreturn t.a.b\n", path);
    CHECK_EQ_INT(config_load_file(&c, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:2:", path);
    CHECK(strstr(err, want) != NULL);
    unlink(path);

    write_tmp("return 42\n", path);
    CHECK_EQ_INT(config_load_file(&c, path, err, sizeof err), -1);
    CHECK(strstr(err, "must return a table, got number") != NULL);
    unlink(path);

    write_tmp("local x = 1\n", path);
    CHECK_EQ_INT(config_load_file(&c, path, err, sizeof err), -1);
    CHECK(strstr(err, "must return a table, got nil") != NULL);
    unlink(path);

    /* Text only: a precompiled chunk is refused. */
    write_tmp("\x1bLua", path);
    CHECK_EQ_INT(config_load_file(&c, path, err, sizeof err), -1);
    CHECK(strstr(err, "binary") != NULL);
    unlink(path);

    CHECK_EQ_INT(config_load_file(&c, "/nonexistent/x.lua", err, sizeof err), -1);
    CHECK(strstr(err, "/nonexistent/x.lua") != NULL);
    CHECK_EQ_INT(config_load_file(&c, NULL, err, sizeof err), -1);
    check_defaults(&c);
    config_close(&c);
}

/* Sign with one config's key and verify with another's. */
static int sign_verify(const struct config *signer, const struct config *verifier)
{
    json_t *claims = json_pack("{s:s}", "sub", "u1"), *got = NULL;
    char *tok = NULL;
    int rc = jwt_sign(signer->keys, "a", claims, &tok);
    if (rc == 0)
        rc = jwt_verify(verifier->keys, tok, strlen(tok), 1000, 0, &got);
    json_decref(got);
    json_decref(claims);
    free(tok);
    return rc;
}

static void test_eddsa_forms(void)
{
    unsigned char pk[32], sk[64], bad[64];
    char pub[64], seed[64], full[128], badfull[128], text[1024], err[512] = "";
    struct config by_seed, by_full, by_pub;

    CHECK(sodium_init() >= 0);
    crypto_sign_keypair(pk, sk);
    b64(pk, 32, pub, sizeof pub);
    b64(sk, 32, seed, sizeof seed);
    b64(sk, 64, full, sizeof full);
    memcpy(bad, sk, 64);
    bad[40] ^= 1;
    b64(bad, 64, badfull, sizeof badfull);

    CHECK_EQ_INT(config_init(&by_seed), 0);
    CHECK_EQ_INT(config_init(&by_full), 0);
    CHECK_EQ_INT(config_init(&by_pub), 0);
#define KEY(field, val)                                                                            \
    (snprintf(text, sizeof text,                                                                   \
              "return { auth = { keys = { { kid = 'a', alg = 'EdDSA', " field " } } } }", val),    \
     text)
    CHECK_EQ_INT(load_text(&by_seed, KEY("privateKey = '%s'", seed), err, sizeof err), 0);
    CHECK_EQ_INT(load_text(&by_full, KEY("privateKey = '%s'", full), err, sizeof err), 0);
    CHECK_EQ_INT(load_text(&by_pub, KEY("publicKey = '%s'", pub), err, sizeof err), 0);
    CHECK_EQ_INT(jwt_keyset_count(by_seed.keys), 1);
    CHECK_EQ_INT(jwt_keyset_count(by_full.keys), 1);
    /* The 32-byte seed and the 64-byte key are the same key; both match the public key. */
    CHECK_EQ_INT(sign_verify(&by_seed, &by_pub), 0);
    CHECK_EQ_INT(sign_verify(&by_full, &by_pub), 0);
    CHECK_EQ_INT(sign_verify(&by_seed, &by_full), 0);
    /* A public key alone cannot sign. */
    CHECK(sign_verify(&by_pub, &by_seed) != 0);
    config_close(&by_seed);
    config_close(&by_full);
    config_close(&by_pub);

    expect_error(KEY("privateKey = '%s'", badfull), "public half does not match its seed");
    expect_error(KEY("privateKey = '%s', publicKey = '"
                     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'",
                     seed),
                 "publicKey does not match privateKey");
    expect_error(KEY("privateKey = '%s=='", seed), "auth.keys[1].privateKey: expected base64url");
    expect_error(KEY("privateKey = '%s'", "AAAA"), "expected 32 bytes (seed) or 64 bytes");
    expect_error(KEY("publicKey = '%s'", "AAAA"), "auth.keys[1].publicKey: expected 32 bytes");
    expect_error(KEY("publicKey = '%s'", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                 "not a valid Ed25519 public key");
    expect_error(KEY("secret = '%s'", "x"), "auth.keys[1].secret: not allowed with alg EdDSA");
    expect_error("return { auth = { keys = { { alg = 'EdDSA' } } } }",
                 "needs publicKey or privateKey");
#undef KEY
}

static void test_key_rules(void)
{
    expect_error("return { auth = { keys = { { kid = 'a', alg = 'HS256', secret = 'x' },\n"
                 "  { kid = 'a', alg = 'HS256', secret = 'y' } } } }",
                 "auth.keys[2].kid: duplicate kid \"a\"");
    expect_error("return { auth = { keys = { { alg = 'none', secret = 'x' } } } }",
                 "auth.keys[1].alg: expected \"HS256\" or \"EdDSA\"");
    expect_error("return { auth = { keys = { { secret = 'x' } } } }", "auth.keys[1].alg: missing");
    expect_error("return { auth = { keys = { { alg = 'HS256' } } } }",
                 "auth.keys[1].secret: missing");
    expect_error("return { auth = { keys = { { alg = 'HS256', secret = '' } } } }",
                 "auth.keys[1].secret: must not be empty");
    expect_error(
        "return { auth = { keys = { { alg = 'HS256', secret = 'x', publicKey = 'y' } } } }",
        "auth.keys[1].publicKey: not allowed with alg HS256");
    expect_error("return { auth = { keys = { [2] = { alg = 'HS256', secret = 'x' } } } }",
                 "auth.keys");

    /* Keys without a kid may repeat; a short secret is accepted (with a warning). */
    struct config c;
    char err[512] = "";
    CHECK_EQ_INT(config_init(&c), 0);
    CHECK_EQ_INT(load_text(&c,
                           "return { auth = { keys = { { alg = 'HS256', secret = 'short' },\n"
                           "  { alg = 'HS256', secret = 'other\\0binary' } } } }",
                           err, sizeof err),
                 0);
    CHECK_EQ_INT(jwt_keyset_count(c.keys), 2);
    config_close(&c);
}

static void test_env_secret(void)
{
    char path[64], err[512] = "";
    char *argv[] = {"luckysync"};
    struct config c;

    setenv("LUCKYSYNC_JWT_SECRET", "an environment secret of 32+ bytes!!", 1);
    CHECK_EQ_INT(config_init(&c), 0);
    CHECK_EQ_INT(config_from_args(&c, 1, argv, err, sizeof err), 0);
    CHECK_EQ_INT(jwt_keyset_count(c.keys), 1);
    config_close(&c);

    /* Configured keys win: the variable is not added to them. */
    write_tmp("return { auth = { keys = { { kid = 'f', alg = 'HS256', secret = 'file' } } } }",
              path);
    char *argv2[] = {"luckysync", "--config", path};
    CHECK_EQ_INT(config_init(&c), 0);
    CHECK_EQ_INT(config_from_args(&c, 3, argv2, err, sizeof err), 0);
    CHECK_EQ_INT(jwt_keyset_count(c.keys), 1);
    config_close(&c);
    unlink(path);

    setenv("LUCKYSYNC_JWT_SECRET", "", 1);
    CHECK_EQ_INT(config_init(&c), 0);
    CHECK_EQ_INT(config_from_args(&c, 1, argv, err, sizeof err), 0);
    CHECK_EQ_INT(jwt_keyset_count(c.keys), 0);
    config_close(&c);

    unsetenv("LUCKYSYNC_JWT_SECRET");
    CHECK_EQ_INT(config_init(&c), 0);
    CHECK_EQ_INT(config_from_args(&c, 1, argv, err, sizeof err), 0);
    CHECK_EQ_INT(jwt_keyset_count(c.keys), 0);
    config_close(&c);
}

static void test_example_file(void)
{
    struct config c;
    char err[512] = "";
    CHECK_EQ_INT(config_init(&c), 0);
    int rc = config_load_file(&c, EXAMPLE_FILE, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    if (rc)
        fprintf(stderr, "  %s\n", err);
    /* The example documents the defaults: loading it changes nothing. */
    check_defaults(&c);
    config_close(&c);
}

int main(void)
{
    unsetenv("LUCKYSYNC_JWT_SECRET");
    test_defaults();
    test_full_file();
    test_flags_override_file();
    test_flag_errors();
    test_unknown_keys();
    test_wrong_types();
    test_ranges();
    test_bad_files();
    test_eddsa_forms();
    test_key_rules();
    test_env_secret();
    test_example_file();
    TEST_MAIN_END();
}
