/* The configuration file (SPEC.md §2): the embedded defaults, every key
 * set, the SPEC example verbatim, listen address forms, and every kind of
 * error with the exact "FILE:LINE: [section] key: why" message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/config.h"
#include "util/limits.h"

static int load(struct sesame_config *c, const char *text, char *err, size_t errlen)
{
    return config_load_string(c, "t.conf", text, strlen(text), err, errlen);
}

static void test_defaults(void **state)
{
    (void)state;
    struct sesame_config c;
    config_defaults(&c);
    char host[256] = "";
    assert_int_equal(gethostname(host, sizeof host - 1), 0);
    assert_string_equal(c.hostname, host[0] ? host : "localhost");
    assert_string_equal(c.data_dir, "./var");
    assert_string_equal(c.store, "sqlite");
    assert_int_equal(c.workers, 16);
    assert_string_equal(c.mx.text, "127.0.0.1:2525");
    assert_string_equal(c.mx.host, "127.0.0.1");
    assert_int_equal(c.mx.port, 2525);
    assert_string_equal(c.submission.text, "127.0.0.1:5870");
    assert_int_equal(c.submission.port, 5870);
    assert_string_equal(c.http.text, "127.0.0.1:8080");
    assert_int_equal(c.http.port, 8080);
    assert_string_equal(c.tls_cert, "");
    assert_string_equal(c.tls_key, "");
    assert_string_equal(c.dns_servers, "");
    assert_int_equal(c.dns_timeout_ms, 5000);
    assert_int_equal(c.delivery_smtp_port, 25);
    assert_string_equal(c.delivery_relay, "");
    assert_true(c.max_message_size == SMTP_DEFAULT_MAX_MESSAGE_SIZE);
    assert_int_equal(c.max_recipients, SMTP_MAX_RECIPIENTS);
    assert_int_equal(c.max_connections, SMTP_MAX_CONNECTIONS);
    assert_int_equal(c.max_connections_per_ip, SMTP_MAX_CONNECTIONS_PER_IP);
    assert_int_equal(c.idle_timeout, SMTP_IDLE_TIMEOUT_S);
    assert_int_equal(c.session_timeout, SMTP_SESSION_TIMEOUT_S);
    assert_int_equal(c.max_errors, SMTP_MAX_ERRORS);
    assert_int_equal(c.auth_failures_per_ip, SMTP_AUTH_FAILURES_PER_IP);
    assert_string_equal(c.log_level, "info");

    /* an empty file and a file of comments are the defaults */
    struct sesame_config d;
    char err[256];
    assert_int_equal(load(&d, "", err, sizeof err), 0);
    assert_memory_equal(&c, &d, sizeof c);
    assert_int_equal(load(&d, "; nothing\n# here\n\n[server]\n[log]\n", err, sizeof err), 0);
    assert_memory_equal(&c, &d, sizeof c);
}

static void test_every_key(void **state)
{
    (void)state;
    const char *text =
        "[server]\n"
        "hostname = mx.example.test\n"
        "data_dir = /srv/sesame\n"
        "store = postgresql://sesame@db.example.test/sesame\n"
        "workers = 4\n"
        "[listen]\n"
        "mx = 0.0.0.0:25\n"
        "submission = [::1]:587\n"
        "http =\n"
        "[tls]\n"
        "cert = /etc/sesame/cert.pem\n"
        "key = /etc/sesame/key.pem\n"
        "[dns]\n"
        "servers = 127.0.0.1:5353\n"
        "timeout_ms = 1500\n"
        "[delivery]\n"
        "smtp_port = 2526\n"
        "relay = smarthost.example.test:587\n"
        "[limits]\n"
        "max_message_size = 10M\n"
        "max_recipients = 50\n"
        "max_connections = 500\n"
        "max_connections_per_ip = 5\n"
        "idle_timeout = 60\n"
        "session_timeout = 600\n"
        "max_errors = 3\n"
        "auth_failures_per_ip = 7\n"
        "[log]\n"
        "level = debug\n";
    struct sesame_config c;
    char err[256] = "";
    assert_int_equal(load(&c, text, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_string_equal(c.hostname, "mx.example.test");
    assert_string_equal(c.data_dir, "/srv/sesame");
    assert_string_equal(c.store, "postgresql://sesame@db.example.test/sesame");
    assert_int_equal(c.workers, 4);
    assert_string_equal(c.mx.host, "0.0.0.0");
    assert_int_equal(c.mx.port, 25);
    assert_string_equal(c.submission.text, "[::1]:587");
    assert_string_equal(c.submission.host, "::1");
    assert_int_equal(c.submission.port, 587);
    assert_string_equal(c.http.text, "");
    assert_int_equal(c.http.port, 0);
    assert_string_equal(c.tls_cert, "/etc/sesame/cert.pem");
    assert_string_equal(c.tls_key, "/etc/sesame/key.pem");
    assert_string_equal(c.dns_servers, "127.0.0.1:5353");
    assert_int_equal(c.dns_timeout_ms, 1500);
    assert_int_equal(c.delivery_smtp_port, 2526);
    assert_string_equal(c.delivery_relay, "smarthost.example.test:587");
    assert_true(c.max_message_size == 10u * 1024 * 1024);
    assert_int_equal(c.max_recipients, 50);
    assert_int_equal(c.max_connections, 500);
    assert_int_equal(c.max_connections_per_ip, 5);
    assert_int_equal(c.idle_timeout, 60);
    assert_int_equal(c.session_timeout, 600);
    assert_int_equal(c.max_errors, 3);
    assert_int_equal(c.auth_failures_per_ip, 7);
    assert_string_equal(c.log_level, "debug");
}

/* SPEC.md §2, verbatim */
static void test_spec_example(void **state)
{
    (void)state;
    const char *text =
        "[server]\n"
        "hostname = mx.example.test          ; EHLO name and Authentication-Results authserv-id\n"
        "data_dir = ./var                    ; embedded store (SQLite) and keys\n"
        "store    = sqlite                   ; or postgresql://... (several nodes share it)\n"
        "[listen]\n"
        "mx         = 127.0.0.1:2525         ; inbound MX (port 25 in production)\n"
        "submission = 127.0.0.1:5870         ; SMTP submission, AUTH required (587)\n"
        "http       = 127.0.0.1:8080         ; HTTP API, confirmation links, metrics\n"
        "[tls]\n"
        "cert = ...                          ; STARTTLS; self-signed generated when absent\n"
        "key  = ...\n"
        "[dns]\n"
        "servers = 127.0.0.1:5353            ; absent: system resolver\n"
        "[delivery]\n"
        "smtp_port = 25                      ; port dialled on recipient MX hosts\n"
        "relay     =                         ; optional smarthost host:port\n";
    struct sesame_config c;
    char err[256] = "";
    assert_int_equal(load(&c, text, err, sizeof err), 0);
    assert_string_equal(c.hostname, "mx.example.test");
    assert_string_equal(c.data_dir, "./var");
    assert_string_equal(c.store, "sqlite");
    assert_string_equal(c.mx.text, "127.0.0.1:2525");
    assert_string_equal(c.submission.text, "127.0.0.1:5870");
    assert_string_equal(c.http.text, "127.0.0.1:8080");
    assert_string_equal(c.tls_cert, "...");
    assert_string_equal(c.tls_key, "...");
    assert_string_equal(c.dns_servers, "127.0.0.1:5353");
    assert_int_equal(c.delivery_smtp_port, 25);
    assert_string_equal(c.delivery_relay, "");
}

static void test_value_forms(void **state)
{
    (void)state;
    struct sesame_config c;
    char err[256];
    /* CRLF, indentation, tabs, "key: value", a BOM */
    assert_int_equal(load(&c, "\xEF\xBB\xBF[server]\r\n  workers\t=  3  \r\n", err, sizeof err), 0);
    assert_int_equal(c.workers, 3);
    assert_int_equal(load(&c, "[server]\nworkers: 5\n", err, sizeof err), 0);
    assert_int_equal(c.workers, 5);
    /* no newline at the end */
    assert_int_equal(load(&c, "[log]\nlevel = error", err, sizeof err), 0);
    assert_string_equal(c.log_level, "error");

    /* percentages ([reputation]): parts per million */
    static const struct { const char *v; unsigned want; } pct[] = {
        { "5%", 50000 }, { "0.1%", 1000 }, { "0.05%", 500 }, { "100%", 1000000 },
        { "0%", 0 }, { "12.3456%", 123456 },
    };
    for (size_t i = 0; i < sizeof pct / sizeof pct[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "[reputation]\nbounce_pause = %s\n", pct[i].v);
        assert_int_equal(load(&c, text, err, sizeof err), 0);
        assert_int_equal(c.reputation_bounce_pause, pct[i].want);
    }
    static const char *const bad_pct[] = { "5", "%", "101%", "0.12345%", "1.%", "-1%", "1e2%",
                                           "5 %", "1000%" };
    for (size_t i = 0; i < sizeof bad_pct / sizeof bad_pct[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "[reputation]\nbounce_pause = %s\n", bad_pct[i]);
        if (load(&c, text, err, sizeof err) == 0)
            fail_msg("accepted %s", bad_pct[i]);
        assert_non_null(strstr(err, "t.conf:2: [reputation] bounce_pause"));
    }
    config_defaults(&c);
    assert_int_equal(c.reputation_complaint_warning, 1000);   /* 0.1 % */
    assert_int_equal(c.reputation_min_sends, 500);

    static const struct { const char *v; uint64_t want; } sizes[] = {
        { "65536", 65536 }, { "512k", 512 * 1024 }, { "512K", 512 * 1024 },
        { "25M", 25u * 1024 * 1024 }, { "1g", 1024u * 1024 * 1024 },
        { "4G", 4ull * 1024 * 1024 * 1024 },
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "[limits]\nmax_message_size = %s\n", sizes[i].v);
        assert_int_equal(load(&c, text, err, sizeof err), 0);
        assert_true(c.max_message_size == sizes[i].want);
    }
    static const char *stores[] = { "sqlite", "postgres://h/db", "postgresql:///sesame?host=/run" };
    for (size_t i = 0; i < 3; i++) {
        char text[128];
        snprintf(text, sizeof text, "[server]\nstore = %s\n", stores[i]);
        assert_int_equal(load(&c, text, err, sizeof err), 0);
        assert_string_equal(c.store, stores[i]);
    }
    static const char *dns[] = { "127.0.0.1", "127.0.0.1:53", "::1", "[::1]:5353", "" };
    for (size_t i = 0; i < 5; i++) {
        char text[128];
        snprintf(text, sizeof text, "[dns]\nservers = %s\n", dns[i]);
        assert_int_equal(load(&c, text, err, sizeof err), 0);
        assert_string_equal(c.dns_servers, dns[i]);
    }
    static const char *relays[] = { "smart.example.test", "smart:25", "10.0.0.1:2525", "[::1]:25" };
    for (size_t i = 0; i < 4; i++) {
        char text[128];
        snprintf(text, sizeof text, "[delivery]\nrelay = %s\n", relays[i]);
        assert_int_equal(load(&c, text, err, sizeof err), 0);
        assert_string_equal(c.delivery_relay, relays[i]);
    }
    /* range edges are inclusive */
    assert_int_equal(load(&c, "[server]\nworkers = 1\n", err, sizeof err), 0);
    assert_int_equal(load(&c, "[server]\nworkers = 1024\n", err, sizeof err), 0);
    assert_int_equal(c.workers, 1024);
    /* a string of the largest length fits */
    char text[CONFIG_STR_MAX + 64];
    char big[CONFIG_STR_MAX];
    memset(big, 'd', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    snprintf(text, sizeof text, "[server]\ndata_dir = %s\n", big);
    assert_int_equal(load(&c, text, err, sizeof err), 0);
    assert_string_equal(c.data_dir, big);
}

static void test_listen_forms(void **state)
{
    (void)state;
    static const struct { const char *text, *host; unsigned port; } good[] = {
        { "127.0.0.1:25", "127.0.0.1", 25 },
        { "0.0.0.0:65535", "0.0.0.0", 65535 },
        { "[::1]:25", "::1", 25 },
        { "[::]:2525", "::", 2525 },
        { "[2001:db8::5]:587", "2001:db8::5", 587 },
        { "", "", 0 },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct config_listen l;
        memset(&l, 0x55, sizeof l);
        assert_int_equal(config_parse_listen(good[i].text, &l), 0);
        assert_string_equal(l.text, good[i].text);
        assert_string_equal(l.host, good[i].host);
        assert_int_equal(l.port, good[i].port);
    }
    static const char *bad[] = {
        "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:99999999999",
        ":25", "localhost:25", "::1:25", "::1", "[::1]25", "[::1]", "[::1]:", "[]:25",
        "[127.0.0.1]:25", "1.2.3.4:25x", "1.2.3.4:+25", "1.2.3.4:-1", "1.2.3.4: 25",
        "999.1.1.1:25", "1.2.3:25", "[::1:25", "[fe80::1%eth0]:25", "*:25",
        "[::1]:25:25", "1.2.3.4:25:25",
        "[1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee:ffff:0000]:25",
        "111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
        "111111111111111111111111111111111111111111111111111111111:25",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct config_listen l = { .port = 7 };
        if (config_parse_listen(bad[i], &l) != -1)
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(l.port, 7);   /* untouched */
    }
    /* and through the file */
    struct sesame_config c;
    char err[256];
    assert_int_equal(load(&c, "[listen]\nmx = [::1]:25\n", err, sizeof err), 0);
    assert_string_equal(c.mx.host, "::1");
    assert_int_equal(c.mx.port, 25);
    assert_int_equal(load(&c, "[listen]\nmx = ; off\n", err, sizeof err), 0);
    assert_string_equal(c.mx.text, "");
    assert_int_equal(c.mx.port, 0);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct { const char *text, *err; } cases[] = {
        { "[server]\nworkers = 4\n[nope]\nx = 1\n", "t.conf:3: [nope]: unknown section" },
        { "[empty]\n", "t.conf:1: [empty]: unknown section" },
        { "[ server ]\n", "t.conf:1: [ server ]: unknown section" },
        { "workers = 4\n", "t.conf:1: workers: key before any [section]" },
        { "[server]\n\nworker = 4\n", "t.conf:3: [server] worker: unknown key" },
        { "[listen]\nhostname = x\n", "t.conf:2: [listen] hostname: unknown key" },
        { "[server]\nworkers = 4\n[log]\nlevel = info\n[server]\nworkers = 5\n",
          "t.conf:6: [server] workers: duplicate key (first set on line 2)" },
        { "[server]\nworkers = 0\n", "t.conf:2: [server] workers: must be between 1 and 1024" },
        { "[server]\nworkers = 1025\n", "t.conf:2: [server] workers: must be between 1 and 1024" },
        { "[server]\nworkers = 99999999999999999999999\n",
          "t.conf:2: [server] workers: must be between 1 and 1024" },
        { "[server]\nworkers = -1\n", "t.conf:2: [server] workers: expected a number" },
        { "[server]\nworkers = 4x\n", "t.conf:2: [server] workers: expected a number" },
        { "[server]\nworkers = 4 4\n", "t.conf:2: [server] workers: expected a number" },
        { "[server]\nworkers =\n", "t.conf:2: [server] workers: expected a number" },
        { "[server]\nworkers = 0x10\n", "t.conf:2: [server] workers: expected a number" },
        { "[limits]\nmax_message_size = 10T\n",
          "t.conf:2: [limits] max_message_size: expected a number of bytes, optionally with K, "
          "M or G" },
        { "[limits]\nmax_message_size = M\n",
          "t.conf:2: [limits] max_message_size: expected a number of bytes, optionally with K, "
          "M or G" },
        { "[limits]\nmax_message_size = 1K\n",
          "t.conf:2: [limits] max_message_size: must be between 65536 and 4294967296" },
        { "[limits]\nmax_message_size = 99999999999999G\n",
          "t.conf:2: [limits] max_message_size: must be between 65536 and 4294967296" },
        { "[delivery]\nsmtp_port = 65536\n",
          "t.conf:2: [delivery] smtp_port: must be between 1 and 65535" },
        { "[dns]\ntimeout_ms = 10\n", "t.conf:2: [dns] timeout_ms: must be between 100 and 60000" },
        { "[log]\nlevel = verbose\n",
          "t.conf:2: [log] level: expected one of debug info warn error" },
        { "[server]\nstore = mysql://x\n",
          "t.conf:2: [server] store: expected sqlite or a postgresql:// URL" },
        { "[server]\nstore =\n", "t.conf:2: [server] store: must not be empty" },
        { "[server]\ndata_dir =\n", "t.conf:2: [server] data_dir: must not be empty" },
        { "[server]\nhostname = mx example\n",
          "t.conf:2: [server] hostname: not a host name (letters, digits, '-', '.')" },
        { "[server]\nhostname = a..b\n", "t.conf:2: [server] hostname: empty label" },
        { "[server]\nhostname = \x01x\n", "t.conf:2: [server] hostname: control character in value" },
        { "[listen]\n\n\nmx = 127.0.0.1\n",
          "t.conf:4: [listen] mx: expected IPV4:PORT or [IPV6]:PORT with a port from 1 to 65535, "
          "or nothing to disable" },
        { "[listen]\nhttp = localhost:80\n",
          "t.conf:2: [listen] http: expected IPV4:PORT or [IPV6]:PORT with a port from 1 to "
          "65535, or nothing to disable" },
        { "[dns]\nservers = dns.example.test\n",
          "t.conf:2: [dns] servers: expected ADDR, ADDR:PORT or [V6]:PORT (an IP address)" },
        { "[delivery]\nrelay = host:0\n",
          "t.conf:2: [delivery] relay: expected HOST, HOST:PORT or [V6]:PORT" },
        { "[delivery]\nrelay = :25\n",
          "t.conf:2: [delivery] relay: expected HOST, HOST:PORT or [V6]:PORT" },
        { "[tls]\ncert = /c.pem\n",
          "t.conf:2: [tls] cert: set without [tls] key (both or neither)" },
        { "[tls]\n\nkey = /k.pem\n", "t.conf:3: [tls] key: set without [tls] cert (both or neither)" },
        { "[server]\nthis is not a key\n",
          "t.conf:2: syntax error: expected [section] or key = value" },
        { "[server\n", "t.conf:1: syntax error: expected [section] or key = value" },
        { "[log]\nlevel = info\nlevel = info\n",
          "t.conf:3: [log] level: duplicate key (first set on line 2)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sesame_config c;
        config_defaults(&c);
        struct sesame_config before = c;
        char err[512] = "";
        if (load(&c, cases[i].text, err, sizeof err) != -1)
            fail_msg("accepted case %zu: %s", i, cases[i].text);
        if (strcmp(err, cases[i].err) != 0)
            fail_msg("case %zu:\n got  %s\n want %s", i, err, cases[i].err);
        assert_memory_equal(&c, &before, sizeof c);   /* untouched on error */
    }
}

static void test_bad_bytes(void **state)
{
    (void)state;
    struct sesame_config c;
    char err[256];
    /* NUL byte on line 2 */
    const char nul[] = "[server]\nwork\0ers = 4\n";
    assert_int_equal(config_load_string(&c, "t.conf", nul, sizeof nul - 1, err, sizeof err), -1);
    assert_string_equal(err, "t.conf:2: NUL byte");
    /* an overlong line (libinih alone would split it into two lines) */
    size_t n = CONFIG_LINE_MAX + 100;
    char *text = malloc(n + 64);
    assert_non_null(text);
    int off = snprintf(text, 64, "[server]\n\ndata_dir = ");
    memset(text + off, 'a', n);
    memcpy(text + off + n, "\n", 2);
    assert_int_equal(load(&c, text, err, sizeof err), -1);
    assert_string_equal(err, "t.conf:3: line longer than 4094 characters");
    /* a value longer than its field */
    memset(text + off, 'a', CONFIG_STR_MAX);
    memcpy(text + off + CONFIG_STR_MAX, "\n", 2);
    assert_int_equal(load(&c, text, err, sizeof err), -1);
    assert_string_equal(err, "t.conf:3: [server] data_dir: too long (at most 1023 characters)");
    snprintf(text, 64, "[log]\nlevel = debugdebugdebugdebug\n");
    assert_int_equal(load(&c, text, err, sizeof err), -1);
    assert_string_equal(err, "t.conf:2: [log] level: expected one of debug info warn error");
    free(text);
    /* a small error buffer truncates, it does not overflow */
    char small[8];
    assert_int_equal(load(&c, "[nope]\n", small, sizeof small), -1);
    assert_string_equal(small, "t.conf:");
    assert_int_equal(load(&c, "[nope]\n", NULL, 0), -1);
}

static void test_files(void **state)
{
    (void)state;
    char path[] = "/tmp/sesame-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "[server]\nworkers = 2\n[limits]\nmax_errors = 0\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct sesame_config c;
    char err[512], want[512];
    assert_int_equal(config_load(&c, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:4: [limits] max_errors: must be between 1 and 10000", path);
    assert_string_equal(err, want);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[server]\nworkers = 2\n", f);
    fclose(f);
    assert_int_equal(config_load(&c, path, err, sizeof err), 0);
    assert_int_equal(c.workers, 2);
    unlink(path);

    assert_int_equal(config_load(&c, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    assert_string_equal(err, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_value_forms),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_bad_bytes),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
