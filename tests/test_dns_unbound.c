/* Tests of the real resolver path: dns_unbound.c (libunbound) forwarding to
 * the test DNS server on 127.0.0.1. Every record type sesame reads, names
 * under special-use zones (.test, .invalid, .localhost, private reverse
 * zones), CNAMEs, NXDOMAIN vs NODATA, a name that never answers (TEMPFAIL
 * within the timeout, and the next query still fine), answers too large for
 * UDP, bad names, caching, and concurrent queries. No internet needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "dns/dns_rdata.h"
#include "dns/dns_zone.h"
#include "testdns.h"
#include "util/buf.h"

#define TIMEOUT_MS 1000
#define BIG_STRINGS 80    /* x 255: a 20 KB TXT record */
#define HUGE_STRINGS 250  /* x 255: a 64 KB message */

struct fixture {
    struct dns_zone *zone;
    struct testdns *srv;
    struct dns_resolver *r;
};

static const char ZONE[] =
    "{"
    " \"a.example.test\": [{\"type\": \"A\", \"value\": \"192.0.2.1\"},"
    "                      {\"type\": \"A\", \"value\": \"192.0.2.2\"},"
    "                      {\"type\": \"AAAA\", \"value\": \"2001:db8::1\"}],"
    " \"example.test\": [{\"type\": \"MX\", \"value\": [10, \"mx1.example.test\"]},"
    "                    {\"type\": \"MX\", \"value\": [20, \"mx2.example.test\"]},"
    "                    {\"type\": \"TXT\", \"value\": [\"v=spf1 \", \"ip4:192.0.2.0/24 \", \"-all\"]},"
    "                    {\"type\": \"SPF\", \"value\": \"v=spf1 -all\"}],"
    " \"nullmx.example.test\": [{\"type\": \"MX\", \"value\": [0, \".\"]}],"
    " \"4.3.2.10.in-addr.arpa\": [{\"type\": \"PTR\", \"value\": \"host.example.test\"}],"
    " \"1.1.168.192.in-addr.arpa\": [{\"type\": \"PTR\", \"value\": \"lan.example.test\"}],"
    " \"1.0.16.172.in-addr.arpa\": [{\"type\": \"PTR\", \"value\": \"172.example.test\"}],"
    " \"5.2.0.192.in-addr.arpa\": [{\"type\": \"PTR\", \"value\": \"Mail.Example.TEST\"}],"
    " \"2.0.0.127.in-addr.arpa\": [{\"type\": \"PTR\", \"value\": \"loopback.example.test\"}],"
    " \"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa\":"
    "     [{\"type\": \"PTR\", \"value\": \"six.example.test\"}],"
    " \"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa\":"
    "     [{\"type\": \"PTR\", \"value\": \"doc.example.test\"}],"
    " \"x.invalid\": [{\"type\": \"A\", \"value\": \"192.0.2.3\"}],"
    " \"y.localhost\": [{\"type\": \"A\", \"value\": \"192.0.2.4\"}],"
    " \"z.onion\": [{\"type\": \"TXT\", \"value\": \"onion\"}],"
    " \"router.home.arpa\": [{\"type\": \"A\", \"value\": \"192.168.1.1\"}],"
    " \"alias.example.test\": [{\"type\": \"CNAME\", \"value\": \"a.example.test\"}],"
    " \"alias2.example.test\": [{\"type\": \"CNAME\", \"value\": \"ALIAS.example.test\"}],"
    " \"dangling.example.test\": [{\"type\": \"CNAME\", \"value\": \"gone.example.test\"}],"
    " \"loop.example.test\": [{\"type\": \"CNAME\", \"value\": \"loop.example.test\"}],"
    " \"empty.example.test\": [],"
    " \"slow.example.test\": [{\"type\": \"TIMEOUT\"}],"
    " \"slow2.example.test\": [{\"type\": \"TIMEOUT\"}],"
    " \"half.example.test\": [{\"type\": \"A\", \"value\": \"192.0.2.9\"}, {\"type\": \"TIMEOUT\"}],"
    " \"macro%percent  space%20url-space.example.test\": [{\"type\": \"TXT\", \"value\": \"odd\"}],"
    " \"foo:bar/baz.example.test\": [{\"type\": \"A\", \"value\": \"192.0.2.8\"}]"
    "}";

static void add_txt_strings(struct dns_zone *z, const char *name, int nstrings)
{
    struct buf json;
    char s[256], err[256];
    buf_init(&json, 1 << 20);
    assert_int_equal(buf_printf(&json, "{\"%s\": [{\"type\": \"TXT\", \"value\": [", name), 0);
    for (int i = 0; i < nstrings; i++) {
        memset(s, 'a' + i % 26, 255);
        s[255] = '\0';
        assert_int_equal(buf_printf(&json, "%s\"%s\"", i ? "," : "", s), 0);
    }
    assert_int_equal(buf_append_str(&json, "]}]}"), 0);
    assert_int_equal(dns_zone_load_json(z, json.data, json.len, err, sizeof(err)), 0);
    buf_free(&json);
}

static struct fixture *fixture_new(void)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256];
    assert_non_null(f);
    f->zone = dns_zone_new();
    if (dns_zone_load_json(f->zone, ZONE, strlen(ZONE), err, sizeof(err)) != 0)
        fail_msg("zone: %s", err);
    add_txt_strings(f->zone, "big.example.test", BIG_STRINGS);
    add_txt_strings(f->zone, "huge.example.test", HUGE_STRINGS);
    f->srv = testdns_start(f->zone);
    assert_non_null(f->srv);
    f->r = dns_unbound_new(testdns_addr(f->srv), TIMEOUT_MS, err, sizeof(err));
    if (!f->r)
        fail_msg("dns_unbound_new: %s", err);
    return f;
}

static void fixture_free(struct fixture *f)
{
    dns_resolver_free(f->r);
    testdns_stop(f->srv);
    dns_zone_free(f->zone);
    free(f);
}

/* The group shares one server and resolver; tests that count the queries
 * the server receives use a private pair, as the shared one still sees
 * libunbound's background retries of queries that timed out. */
static int setup(void **state)
{
    *state = fixture_new();
    return 0;
}

static int teardown(void **state)
{
    fixture_free(*state);
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Queries and checks the status and count; the answer stays for the caller
 * (release it). */
static void ask(struct dns_resolver *r, const char *name, uint16_t type,
                enum dns_status st, size_t count, struct dns_answer *a)
{
    dns_query(r, name, type, a);
    if (a->status != st || a->count != count)
        fail_msg("%s/%s: got %s count %zu, want %s count %zu", name, dns_type_name(type),
                 dns_status_name(a->status), a->count, dns_status_name(st), count);
}

static void check(struct dns_resolver *r, const char *name, uint16_t type,
                  enum dns_status st, size_t count)
{
    struct dns_answer a;
    ask(r, name, type, st, count, &a);
    dns_answer_release(&a);
}

static void ptr_is(struct dns_resolver *r, const char *name, const char *want)
{
    struct dns_answer a;
    char host[256];
    ask(r, name, DNS_T_PTR, DNS_OK, 1, &a);
    assert_int_equal(dns_rdata_ptr(a.rrs[0].data, a.rrs[0].len, host, sizeof(host)), 0);
    assert_string_equal(host, want);
    dns_answer_release(&a);
}

/* ---- tests ---- */

static void a_and_aaaa(void **state)
{
    struct fixture *f = *state;
    struct dns_answer a;
    uint8_t ip[4], ip6[16];
    ask(f->r, "a.example.test", DNS_T_A, DNS_OK, 2, &a);
    int seen1 = 0, seen2 = 0; /* any order */
    for (size_t i = 0; i < a.count; i++) {
        assert_int_equal(dns_rdata_a(a.rrs[i].data, a.rrs[i].len, ip), 0);
        seen1 |= memcmp(ip, "\xc0\x00\x02\x01", 4) == 0;
        seen2 |= memcmp(ip, "\xc0\x00\x02\x02", 4) == 0;
    }
    assert_true(seen1 && seen2);
    assert_non_null(a.release);
    dns_answer_release(&a);
    ask(f->r, "A.EXAMPLE.TEST.", DNS_T_AAAA, DNS_OK, 1, &a);
    assert_int_equal(dns_rdata_aaaa(a.rrs[0].data, a.rrs[0].len, ip6), 0);
    assert_memory_equal(ip6, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    dns_answer_release(&a);
}

static void mx(void **state)
{
    struct fixture *f = *state;
    struct dns_answer a;
    char host[256];
    uint16_t pref;
    ask(f->r, "example.test", DNS_T_MX, DNS_OK, 2, &a);
    int seen = 0;
    for (size_t i = 0; i < a.count; i++) {
        assert_int_equal(dns_rdata_mx(a.rrs[i].data, a.rrs[i].len, &pref, host, sizeof(host)), 0);
        if (pref == 10 && strcmp(host, "mx1.example.test") == 0)
            seen |= 1;
        if (pref == 20 && strcmp(host, "mx2.example.test") == 0)
            seen |= 2;
    }
    assert_int_equal(seen, 3);
    dns_answer_release(&a);
    ask(f->r, "nullmx.example.test", DNS_T_MX, DNS_OK, 1, &a);
    assert_int_equal(dns_rdata_mx(a.rrs[0].data, a.rrs[0].len, &pref, host, sizeof(host)), 0);
    assert_int_equal(pref, 0);
    assert_string_equal(host, "");
    dns_answer_release(&a);
}

static void txt_strings_and_spf(void **state)
{
    struct fixture *f = *state;
    struct dns_answer a;
    struct buf b;
    size_t ns;
    buf_init(&b, 65536);
    ask(f->r, "example.test", DNS_T_TXT, DNS_OK, 1, &a);
    assert_int_equal(dns_rdata_txt(a.rrs[0].data, a.rrs[0].len, &b, &ns), 0);
    assert_int_equal(ns, 3); /* the strings arrive as published */
    assert_string_equal(buf_cstr(&b), "v=spf1 ip4:192.0.2.0/24 -all");
    dns_answer_release(&a);
    ask(f->r, "example.test", DNS_T_SPF, DNS_OK, 1, &a);
    assert_int_equal(dns_rdata_txt(a.rrs[0].data, a.rrs[0].len, &b, &ns), 0);
    assert_string_equal(buf_cstr(&b), "v=spf1 -all");
    dns_answer_release(&a);
    buf_free(&b);
}

static void special_use_zones_are_forwarded(void **state)
{
    struct fixture *f = *state;
    ptr_is(f->r, "4.3.2.10.in-addr.arpa", "host.example.test");
    ptr_is(f->r, "1.1.168.192.in-addr.arpa.", "lan.example.test");
    ptr_is(f->r, "1.0.16.172.in-addr.arpa", "172.example.test");
    ptr_is(f->r, "5.2.0.192.in-addr.arpa", "Mail.Example.TEST");
    ptr_is(f->r, "2.0.0.127.in-addr.arpa", "loopback.example.test");
    ptr_is(f->r, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
           "six.example.test");
    ptr_is(f->r, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
           "doc.example.test");
    check(f->r, "x.invalid", DNS_T_A, DNS_OK, 1);
    check(f->r, "y.localhost", DNS_T_A, DNS_OK, 1);
    check(f->r, "z.onion", DNS_T_TXT, DNS_OK, 1);
    check(f->r, "router.home.arpa", DNS_T_A, DNS_OK, 1);
    /* and their absence comes from the server too, not from unbound */
    struct fixture *own = fixture_new();
    check(own->r, "9.9.9.10.in-addr.arpa", DNS_T_PTR, DNS_NXDOMAIN, 0);
    check(own->r, "nothing.test", DNS_T_A, DNS_NXDOMAIN, 0);
    check(own->r, "localhost", DNS_T_A, DNS_NXDOMAIN, 0);
    check(own->r, "1.0.0.127.in-addr.arpa", DNS_T_PTR, DNS_NXDOMAIN, 0);
    assert_int_equal(testdns_queries(own->srv), 4);
    fixture_free(own);
}

static void cnames(void **state)
{
    struct fixture *f = *state;
    struct dns_answer a;
    uint8_t ip[4];
    ask(f->r, "alias.example.test", DNS_T_A, DNS_OK, 2, &a);
    assert_int_equal(dns_rdata_a(a.rrs[0].data, a.rrs[0].len, ip), 0);
    assert_int_equal(ip[0], 192);
    dns_answer_release(&a);
    check(f->r, "alias2.example.test", DNS_T_A, DNS_OK, 2);
    check(f->r, "alias2.example.test", DNS_T_AAAA, DNS_OK, 1);
    check(f->r, "alias.example.test", DNS_T_TXT, DNS_NODATA, 0);
    check(f->r, "dangling.example.test", DNS_T_A, DNS_NXDOMAIN, 0);
    /* asking for the CNAME itself */
    char host[256];
    ask(f->r, "alias2.example.test", DNS_T_CNAME, DNS_OK, 1, &a);
    assert_int_equal(dns_rdata_ptr(a.rrs[0].data, a.rrs[0].len, host, sizeof(host)), 0);
    assert_string_equal(host, "ALIAS.example.test");
    dns_answer_release(&a);
    check(f->r, "loop.example.test", DNS_T_A, DNS_TEMPFAIL, 0);
}

static void nxdomain_vs_nodata(void **state)
{
    struct fixture *f = *state;
    check(f->r, "nope.example.test", DNS_T_TXT, DNS_NXDOMAIN, 0);
    check(f->r, "empty.example.test", DNS_T_TXT, DNS_NODATA, 0);
    check(f->r, "a.example.test", DNS_T_MX, DNS_NODATA, 0);
    check(f->r, "a.example.test", DNS_T_SPF, DNS_NODATA, 0);
}

static void timeout_then_normal(void **state)
{
    struct fixture *f = *state;
    double t0 = now_s();
    check(f->r, "slow.example.test", DNS_T_TXT, DNS_TEMPFAIL, 0);
    double took = now_s() - t0;
    if (took < 0.9 || took > 1.6)
        fail_msg("TIMEOUT name took %.3f s, want about %d ms", took, TIMEOUT_MS);
    /* right after: normal answers, fast */
    t0 = now_s();
    check(f->r, "a.example.test", DNS_T_A, DNS_OK, 2);
    check(f->r, "example.test", DNS_T_MX, DNS_OK, 2);
    took = now_s() - t0;
    if (took > 0.5)
        fail_msg("queries after a timeout took %.3f s", took);
    /* a TIMEOUT name with records answers those, times out for others */
    check(f->r, "half.example.test", DNS_T_A, DNS_OK, 1);
    t0 = now_s();
    check(f->r, "half.example.test", DNS_T_TXT, DNS_TEMPFAIL, 0);
    took = now_s() - t0;
    assert_true(took < 1.6);
    /* several timeouts in a row do not make the server "down" */
    for (int i = 0; i < 3; i++)
        check(f->r, "slow2.example.test", (uint16_t)(i == 0 ? DNS_T_A : i == 1 ? DNS_T_MX : DNS_T_AAAA),
              DNS_TEMPFAIL, 0);
    check(f->r, "example.test", DNS_T_TXT, DNS_OK, 1);
    check(f->r, "nope2.example.test", DNS_T_A, DNS_NXDOMAIN, 0);
}

static void large_txt_over_tcp(void **state)
{
    struct fixture *f = *state;
    struct dns_answer a;
    struct buf b;
    size_t ns;
    buf_init(&b, 65536);
    unsigned long tcp = testdns_tcp_queries(f->srv);
    ask(f->r, "big.example.test", DNS_T_TXT, DNS_OK, 1, &a);
    assert_int_equal(dns_rdata_txt(a.rrs[0].data, a.rrs[0].len, &b, &ns), 0);
    assert_int_equal(ns, BIG_STRINGS);
    assert_int_equal(b.len, BIG_STRINGS * 255);
    for (int i = 0; i < BIG_STRINGS; i++)
        assert_int_equal(b.data[i * 255 + 7], 'a' + i % 26);
    dns_answer_release(&a);
    assert_true(testdns_tcp_queries(f->srv) > tcp); /* truncated over UDP, then TCP */

    ask(f->r, "huge.example.test", DNS_T_TXT, DNS_OK, 1, &a);
    assert_int_equal(dns_rdata_txt(a.rrs[0].data, a.rrs[0].len, &b, &ns), 0);
    assert_int_equal(ns, HUGE_STRINGS);
    assert_int_equal(b.len, HUGE_STRINGS * 255);
    dns_answer_release(&a);
    buf_free(&b);
}

static void bad_names_are_not_sent(void **state)
{
    struct fixture *f = *state;
    struct fixture *own = fixture_new();
    char name[100];
    memset(name, 'x', 64);
    snprintf(name + 64, sizeof(name) - 64, ".example.test");
    check(own->r, name, DNS_T_TXT, DNS_BADNAME, 0);
    check(own->r, "a..example.test", DNS_T_A, DNS_BADNAME, 0);
    assert_int_equal(testdns_queries(own->srv), 0);
    fixture_free(own);
    /* odd but valid octets go through unharmed */
    check(f->r, "macro%percent  space%20url-space.example.test", DNS_T_TXT, DNS_OK, 1);
    check(f->r, "foo:bar/baz.example.test", DNS_T_A, DNS_OK, 1);
    check(f->r, "foo:bar/baz\\.example.test", DNS_T_A, DNS_NXDOMAIN, 0);
}

static void zone_changes_are_seen(void **state)
{
    struct fixture *f = *state;
    check(f->r, "later.example.test", DNS_T_A, DNS_NXDOMAIN, 0);
    testdns_lock(f->srv);
    assert_int_equal(dns_zone_add(f->zone, "later.example.test", "A", "192.0.2.50"), 0);
    testdns_unlock(f->srv);
    /* TTL 0 by default: no stale negative answer */
    check(f->r, "later.example.test", DNS_T_A, DNS_OK, 1);
}

static void caching_with_ttl(void **state)
{
    (void)state;
    struct fixture *own = fixture_new();
    testdns_set_ttl(own->srv, 300);
    check(own->r, "example.test", DNS_T_MX, DNS_OK, 2);
    check(own->r, "example.test", DNS_T_MX, DNS_OK, 2);
    check(own->r, "cached-nx.example.test", DNS_T_A, DNS_NXDOMAIN, 0);
    check(own->r, "cached-nx.example.test", DNS_T_A, DNS_NXDOMAIN, 0);
    check(own->r, "empty.example.test", DNS_T_A, DNS_NODATA, 0);
    check(own->r, "empty.example.test", DNS_T_A, DNS_NODATA, 0);
    assert_int_equal(testdns_queries(own->srv), 3);
    fixture_free(own);
}

/* Timeouts for longer than libunbound's backoff needs to call the server
 * down (about 12 s with its defaults), then a normal query: it must still
 * be answered (infra-host-ttl, docs/dns.md). */
static void sustained_timeouts(void **state)
{
    struct fixture *f = *state;
    char err[256], name[64];
    struct dns_resolver *r = dns_unbound_new(testdns_addr(f->srv), 500, err, sizeof(err));
    assert_non_null(r);
    testdns_lock(f->srv);
    for (int i = 0; i < 28; i++) {
        snprintf(name, sizeof(name), "sustained%d.example.test", i);
        assert_int_equal(dns_zone_add_timeout(f->zone, name), 0);
    }
    testdns_unlock(f->srv);
    for (int i = 0; i < 28; i++) {
        snprintf(name, sizeof(name), "sustained%d.example.test", i);
        check(r, name, DNS_T_A, DNS_TEMPFAIL, 0);
    }
    check(r, "a.example.test", DNS_T_A, DNS_OK, 2);
    check(r, "nope3.example.test", DNS_T_A, DNS_NXDOMAIN, 0);
    dns_resolver_free(r);
}

struct worker {
    struct fixture *f;
    int id;
    int failures;
    double slowest_timeout;
};

static void *work(void *p)
{
    struct worker *w = p;
    static const char *const ok_names[] = { "a.example.test", "alias.example.test",
                                            "x.invalid", "router.home.arpa" };
    for (int i = 0; i < 12; i++) {
        struct dns_answer a;
        if (i == 5 && w->id % 2 == 0) {
            double t0 = now_s();
            dns_query(w->f->r, w->id % 4 ? "slow.example.test" : "slow2.example.test", DNS_T_TXT, &a);
            double took = now_s() - t0;
            if (took > w->slowest_timeout)
                w->slowest_timeout = took;
            w->failures += a.status != DNS_TEMPFAIL;
        } else if (i % 3 == 2) {
            char nx[64];
            snprintf(nx, sizeof(nx), "nx%d-%d.example.test", w->id, i);
            dns_query(w->f->r, nx, DNS_T_A, &a);
            w->failures += a.status != DNS_NXDOMAIN;
        } else {
            dns_query(w->f->r, ok_names[(i + w->id) % 4], DNS_T_A, &a);
            w->failures += a.status != DNS_OK || a.count == 0;
        }
        dns_answer_release(&a);
    }
    return NULL;
}

static void concurrent_queries(void **state)
{
    struct fixture *f = *state;
    enum { N = 8 };
    pthread_t th[N];
    struct worker w[N];
    double t0 = now_s();
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){ f, i, 0, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failures)
            fail_msg("worker %d: %d wrong answers", i, w[i].failures);
        if (w[i].slowest_timeout > 1.6)
            fail_msg("worker %d: a timeout took %.3f s", i, w[i].slowest_timeout);
    }
    /* the timeouts overlapped rather than queued */
    assert_true(now_s() - t0 < 4.0);
}

static void server_strings(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "example.com", "example.com:53", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:",
        "127.0.0.1:x", "[::1", "[::1]x", "[::1]:", "[127.0.0.1", "", "1.2.3.4.5",
        "[]:53",
    };
    static const char *const good[] = {
        "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]", "[::1]:5353", "[2001:db8::53]:53",
    };
    char err[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        struct dns_resolver *r = dns_unbound_new(bad[i], 0, err, sizeof(err));
        if (r)
            fail_msg("\"%s\" accepted", bad[i]);
        if (!strstr(err, "bad DNS server"))
            fail_msg("\"%s\": error \"%s\"", bad[i], err);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct dns_resolver *r = dns_unbound_new(good[i], 0, err, sizeof(err));
        if (!r)
            fail_msg("\"%s\" refused: %s", good[i], err);
        dns_resolver_free(r);
    }
    assert_null(dns_unbound_new("nonsense", 0, NULL, 0));
}

static void unreachable_server(void **state)
{
    (void)state;
    char err[256];
    /* nothing listens on port 1 of the loopback */
    struct dns_resolver *r = dns_unbound_new("127.0.0.1:1", 500, err, sizeof(err));
    assert_non_null(r);
    double t0 = now_s();
    check(r, "a.example.test", DNS_T_A, DNS_TEMPFAIL, 0);
    assert_true(now_s() - t0 < 1.1);
    dns_resolver_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_and_aaaa),
        cmocka_unit_test(mx),
        cmocka_unit_test(txt_strings_and_spf),
        cmocka_unit_test(special_use_zones_are_forwarded),
        cmocka_unit_test(cnames),
        cmocka_unit_test(nxdomain_vs_nodata),
        cmocka_unit_test(timeout_then_normal),
        cmocka_unit_test(large_txt_over_tcp),
        cmocka_unit_test(bad_names_are_not_sent),
        cmocka_unit_test(zone_changes_are_seen),
        cmocka_unit_test(caching_with_ttl),
        cmocka_unit_test(concurrent_queries),
        cmocka_unit_test(sustained_timeouts),
        cmocka_unit_test(server_strings),
        cmocka_unit_test(unreachable_server),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
