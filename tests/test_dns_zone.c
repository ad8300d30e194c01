/* Unit tests of dns_zone.c: the JSON loader (every type, and its errors),
 * presentation-form adds, lookup semantics (OK / NXDOMAIN / NODATA /
 * TEMPFAIL), CNAME chains and loops through the zone resolver, query
 * counting, concurrent readers, and loading every zone of the RFC 7208
 * suite (when $SESAME_SPF_SUITE names its JSON). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "dns/dns.h"
#include "dns/dns_rdata.h"
#include "dns/dns_zone.h"
#include "util/buf.h"

static const char ZONE_JSON[] =
    "{\n"
    " \"Example.COM.\": [\n"
    "   {\"type\": \"TXT\", \"value\": [\"v=spf1 \", \"ip4:192.0.2.0/24 \", \"-all\"]},\n"
    "   {\"type\": \"TXT\", \"value\": \"second record\"},\n"
    "   {\"type\": \"SPF\", \"value\": \"v=spf1 -all\"},\n"
    "   {\"type\": \"A\", \"value\": \"192.0.2.1\"},\n"
    "   {\"type\": \"A\", \"value\": \"192.0.2.2\"},\n"
    "   {\"type\": \"AAAA\", \"value\": \"2001:db8::1\"},\n"
    "   {\"type\": \"MX\", \"value\": [10, \"mx.example.com\"]},\n"
    "   {\"type\": \"MX\", \"value\": [20, \"mx2.example.com.\"]}],\n"
    " \"mx.example.com\": [{\"type\": \"A\", \"value\": \"192.0.2.10\"}],\n"
    " \"null.example.com\": [{\"type\": \"MX\", \"value\": [0, \"\"]},\n"
    "                        {\"type\": \"TXT\", \"value\": []}],\n"
    " \"1.2.0.192.in-addr.arpa\": [{\"type\": \"PTR\", \"value\": \"Example.com\"}],\n"
    " \"www.example.com\": [{\"type\": \"CNAME\", \"value\": \"example.com\"}],\n"
    " \"empty.example.com\": [],\n"
    " \"slow.example.com\": [{\"type\": \"TIMEOUT\"}],\n"
    " \"half.example.com\": [{\"type\": \"TXT\", \"value\": \"v=spf1 -all\"}, {\"type\": \"TIMEOUT\"}],\n"
    " \"odd name:with/chars% .example.com\": [{\"type\": \"TXT\", \"value\": \"odd\"}]\n"
    "}\n";

static struct dns_zone *load(const char *json)
{
    char err[256] = "";
    struct dns_zone *z = dns_zone_new();
    assert_non_null(z);
    int rc = dns_zone_load_json(z, json, strlen(json), err, sizeof(err));
    if (rc != 0)
        fail_msg("load: %s", err);
    return z;
}

static void expect(const struct dns_zone *z, const char *name, uint16_t type,
                   enum dns_status st, size_t count)
{
    const struct dns_rr *rrs = NULL;
    size_t n = 99;
    enum dns_status got = dns_zone_lookup(z, name, type, &rrs, &n, NULL);
    if (got != st || n != count)
        fail_msg("%s/%u: got %s count %zu, want %s count %zu", name, type,
                 dns_status_name(got), n, dns_status_name(st), count);
    if (count)
        assert_non_null(rrs);
}

static void loader_all_types(void **state)
{
    (void)state;
    struct dns_zone *z = load(ZONE_JSON);
    const struct dns_rr *rrs;
    size_t n;
    struct buf b;
    buf_init(&b, 65536);

    /* TXT: two records, the first of three strings */
    assert_int_equal(dns_zone_lookup(z, "example.com", DNS_T_TXT, &rrs, &n, NULL), DNS_OK);
    assert_int_equal(n, 2);
    size_t ns = 0;
    assert_int_equal(dns_rdata_txt(rrs[0].data, rrs[0].len, &b, &ns), 0);
    assert_int_equal(ns, 3);
    assert_string_equal(buf_cstr(&b), "v=spf1 ip4:192.0.2.0/24 -all");
    assert_int_equal(dns_rdata_txt(rrs[1].data, rrs[1].len, &b, &ns), 0);
    assert_string_equal(buf_cstr(&b), "second record");

    /* SPF is type 99 */
    assert_int_equal(dns_zone_lookup(z, "example.com", DNS_T_SPF, &rrs, &n, NULL), DNS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(dns_rdata_txt(rrs[0].data, rrs[0].len, &b, &ns), 0);
    assert_string_equal(buf_cstr(&b), "v=spf1 -all");

    uint8_t a[4], aaaa[16];
    assert_int_equal(dns_zone_lookup(z, "example.com", DNS_T_A, &rrs, &n, NULL), DNS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(dns_rdata_a(rrs[1].data, rrs[1].len, a), 0);
    assert_memory_equal(a, "\xc0\x00\x02\x02", 4);
    assert_int_equal(dns_zone_lookup(z, "example.com", DNS_T_AAAA, &rrs, &n, NULL), DNS_OK);
    assert_int_equal(dns_rdata_aaaa(rrs[0].data, rrs[0].len, aaaa), 0);
    assert_int_equal(aaaa[0], 0x20);
    assert_int_equal(aaaa[15], 1);

    char host[256];
    uint16_t pref;
    assert_int_equal(dns_zone_lookup(z, "example.com", DNS_T_MX, &rrs, &n, NULL), DNS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(dns_rdata_mx(rrs[1].data, rrs[1].len, &pref, host, sizeof(host)), 0);
    assert_int_equal(pref, 20);
    assert_string_equal(host, "mx2.example.com");

    /* null MX, and TXT [] = one empty string */
    assert_int_equal(dns_zone_lookup(z, "null.example.com", DNS_T_MX, &rrs, &n, NULL), DNS_OK);
    assert_int_equal(dns_rdata_mx(rrs[0].data, rrs[0].len, &pref, host, sizeof(host)), 0);
    assert_int_equal(pref, 0);
    assert_string_equal(host, "");
    assert_int_equal(dns_zone_lookup(z, "null.example.com", DNS_T_TXT, &rrs, &n, NULL), DNS_OK);
    assert_int_equal(rrs[0].len, 1);
    assert_int_equal(dns_rdata_txt(rrs[0].data, rrs[0].len, &b, &ns), 0);
    assert_int_equal(ns, 1);
    assert_int_equal(b.len, 0);

    assert_int_equal(dns_zone_lookup(z, "1.2.0.192.in-addr.arpa", DNS_T_PTR, &rrs, &n, NULL), DNS_OK);
    assert_int_equal(dns_rdata_ptr(rrs[0].data, rrs[0].len, host, sizeof(host)), 0);
    assert_string_equal(host, "Example.com");

    expect(z, "odd name:with/chars% .example.com", DNS_T_TXT, DNS_OK, 1);
    buf_free(&b);
    dns_zone_free(z);
}

static void lookup_semantics(void **state)
{
    (void)state;
    struct dns_zone *z = load(ZONE_JSON);
    /* case and trailing dot do not matter */
    expect(z, "EXAMPLE.com", DNS_T_A, DNS_OK, 2);
    expect(z, "example.com.", DNS_T_A, DNS_OK, 2);
    expect(z, "nowhere.example.com", DNS_T_A, DNS_NXDOMAIN, 0);
    expect(z, "com", DNS_T_A, DNS_NXDOMAIN, 0);         /* no implied parents */
    expect(z, "mx.example.com", DNS_T_TXT, DNS_NODATA, 0);
    expect(z, "empty.example.com", DNS_T_A, DNS_NODATA, 0);
    expect(z, "slow.example.com", DNS_T_TXT, DNS_TEMPFAIL, 0);
    expect(z, "slow.example.com", DNS_T_A, DNS_TEMPFAIL, 0);
    /* TIMEOUT only for the types without records */
    expect(z, "half.example.com", DNS_T_TXT, DNS_OK, 1);
    expect(z, "half.example.com", DNS_T_SPF, DNS_TEMPFAIL, 0);
    /* invalid names are simply absent */
    expect(z, "a..example.com", DNS_T_A, DNS_NXDOMAIN, 0);
    expect(z, "", DNS_T_A, DNS_NXDOMAIN, 0);
    /* the CNAME is reported, not followed */
    const char *cname = NULL;
    const struct dns_rr *rrs;
    size_t n;
    assert_int_equal(dns_zone_lookup(z, "www.example.com", DNS_T_A, &rrs, &n, &cname), DNS_NODATA);
    assert_string_equal(cname, "example.com");
    assert_int_equal(dns_zone_lookup(z, "www.example.com", DNS_T_CNAME, &rrs, &n, &cname), DNS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(dns_zone_lookup(z, "example.com", DNS_T_A, &rrs, &n, &cname), DNS_OK);
    assert_null(cname);
    /* NULL out-parameters are allowed */
    assert_int_equal(dns_zone_lookup(z, "example.com", DNS_T_A, NULL, NULL, NULL), DNS_OK);
    dns_zone_free(z);
}

static void loader_errors(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want;
    } cases[] = {
        { "{", "line" },
        { "[]", "JSON object" },
        { "{\"a.example\": {}}", "a.example: records must be an array" },
        { "{\"a.example\": [1]}", "a.example: a record must be" },
        { "{\"a.example\": [{\"value\": \"x\"}]}", "a.example: a record must be" },
        { "{\"b.example\": [{\"type\": \"HINFO\", \"value\": \"x\"}]}", "b.example: unsupported record type \"HINFO\"" },
        { "{\"b.example\": [{\"type\": \"A\"}]}", "b.example: A record without a \"value\"" },
        { "{\"c.example\": [{\"type\": \"A\", \"value\": \"192.0.2.256\"}]}", "c.example: A: value must be an IPv4 address" },
        { "{\"c.example\": [{\"type\": \"A\", \"value\": \"2001:db8::1\"}]}", "c.example: A:" },
        { "{\"c.example\": [{\"type\": \"AAAA\", \"value\": \"192.0.2.1\"}]}", "c.example: AAAA:" },
        { "{\"d.example\": [{\"type\": \"MX\", \"value\": \"10 mx\"}]}", "d.example: MX:" },
        { "{\"d.example\": [{\"type\": \"MX\", \"value\": [70000, \"mx\"]}]}", "d.example: MX:" },
        { "{\"d.example\": [{\"type\": \"MX\", \"value\": [10]}]}", "d.example: MX:" },
        { "{\"e.example\": [{\"type\": \"TXT\", \"value\": 5}]}", "e.example: TXT: value must be" },
        { "{\"e.example\": [{\"type\": \"TXT\", \"value\": [\"a\", 5]}]}", "e.example: TXT:" },
        { "{\"f.example\": [{\"type\": \"PTR\", \"value\": \"a..b\"}]}", "f.example: PTR: value must be a domain name" },
        { "{\"f.example\": [{\"type\": \"CNAME\", \"value\": 3}]}", "f.example: CNAME:" },
        { "{\"g..example\": []}", "g..example: not a valid domain name" },
        { "{\"a.example\": [], \"a.example\": []}", "duplicate" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        struct dns_zone *z = dns_zone_new();
        assert_int_equal(dns_zone_load_json(z, cases[i].json, strlen(cases[i].json), err, sizeof(err)), -1);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, cases[i].want);
        dns_zone_free(z);
    }

    /* a TXT string of 256 bytes is refused, 255 is fine; the owner is named */
    char json[700], s[300];
    memset(s, 'x', 256);
    s[256] = '\0';
    snprintf(json, sizeof(json), "{\"long.example\": [{\"type\": \"TXT\", \"value\": [\"%s\"]}]}", s);
    char err[256];
    struct dns_zone *z = dns_zone_new();
    assert_int_equal(dns_zone_load_json(z, json, strlen(json), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "long.example: TXT: a string is longer than 255 bytes"));
    s[255] = '\0';
    snprintf(json, sizeof(json), "{\"long.example\": [{\"type\": \"TXT\", \"value\": \"%s\"}]}", s);
    assert_int_equal(dns_zone_load_json(z, json, strlen(json), err, sizeof(err)), 0);
    expect(z, "long.example", DNS_T_TXT, DNS_OK, 1);
    /* a 64-octet label is not a name */
    char label[80];
    memset(label, 'l', 64);
    label[64] = '\0';
    snprintf(json, sizeof(json), "{\"%s.example\": []}", label);
    assert_int_equal(dns_zone_load_json(z, json, strlen(json), err, sizeof(err)), -1);
    assert_non_null(strstr(err, label));
    /* err may be NULL */
    assert_int_equal(dns_zone_load_json(z, "{", 1, NULL, 0), -1);
    dns_zone_free(z);
}

static void add_presentation(void **state)
{
    (void)state;
    struct dns_zone *z = dns_zone_new();
    assert_int_equal(dns_zone_add(z, "a.test", "A", "192.0.2.7"), 0);
    assert_int_equal(dns_zone_add(z, "a.test", "a", "192.0.2.7"), 0); /* same record: deduplicated */
    expect(z, "a.test", DNS_T_A, DNS_OK, 1);
    assert_int_equal(dns_zone_add(z, "a.test", "AAAA", "::1"), 0);
    assert_int_equal(dns_zone_add(z, "a.test", "MX", "10 mx.a.test"), 0);
    assert_int_equal(dns_zone_add(z, "n.test", "MX", "0 ."), 0);
    assert_int_equal(dns_zone_add(z, "a.test", "PTR", "x.test"), 0);
    assert_int_equal(dns_zone_add(z, "a.test", "NS", "ns.test"), 0);
    assert_int_equal(dns_zone_add(z, "a.test", "SPF", "v=spf1 -all"), 0);
    assert_int_equal(dns_zone_add(z, "c.test", "CNAME", "a.test"), 0);
    assert_int_equal(dns_zone_add(z, "t.test", "TIMEOUT", NULL), 0);
    expect(z, "t.test", DNS_T_A, DNS_TEMPFAIL, 0);
    assert_int_equal(dns_zone_add_empty(z, "e.test"), 0);
    expect(z, "e.test", DNS_T_A, DNS_NODATA, 0);
    assert_int_equal(dns_zone_add_timeout(z, "e.test"), 0);
    expect(z, "e.test", DNS_T_A, DNS_TEMPFAIL, 0);

    /* a long TXT is split in 255-octet strings */
    char big[600];
    memset(big, 'k', 600);
    big[599] = '\0';
    assert_int_equal(dns_zone_add(z, "k.test", "TXT", big), 0);
    const struct dns_rr *rrs;
    size_t n, ns;
    assert_int_equal(dns_zone_lookup(z, "k.test", DNS_T_TXT, &rrs, &n, NULL), DNS_OK);
    struct buf b;
    buf_init(&b, 65536);
    assert_int_equal(dns_rdata_txt(rrs[0].data, rrs[0].len, &b, &ns), 0);
    assert_int_equal(ns, 3);
    assert_int_equal(b.len, 599);
    assert_int_equal(rrs[0].data[0], 255);
    buf_free(&b);
    assert_int_equal(dns_zone_add(z, "k2.test", "TXT", ""), 0);
    assert_int_equal(dns_zone_lookup(z, "k2.test", DNS_T_TXT, &rrs, &n, NULL), DNS_OK);
    assert_int_equal(rrs[0].len, 1);

    /* refused */
    assert_int_equal(dns_zone_add(z, "a.test", "A", "192.0.2"), -1);
    assert_int_equal(dns_zone_add(z, "a.test", "A", NULL), -1);
    assert_int_equal(dns_zone_add(z, "a.test", "AAAA", "192.0.2.1"), -1);
    assert_int_equal(dns_zone_add(z, "a.test", "MX", "mx.a.test"), -1);
    assert_int_equal(dns_zone_add(z, "a.test", "MX", "65536 mx.a.test"), -1);
    assert_int_equal(dns_zone_add(z, "a.test", "PTR", "a..test"), -1);
    assert_int_equal(dns_zone_add(z, "a.test", "HINFO", "x"), -1);
    assert_int_equal(dns_zone_add(z, "a..test", "A", "192.0.2.1"), -1);
    assert_int_equal(dns_zone_add(z, "", "A", "192.0.2.1"), -1);
    assert_int_equal(dns_zone_add_rdata(z, "r.test", DNS_T_CNAME, (const uint8_t *)"\xc0\x0c", 2), -1);
    expect(z, "r.test", DNS_T_CNAME, DNS_NXDOMAIN, 0); /* nothing half-added */
    dns_zone_free(z);
}

static void many_names(void **state)
{
    (void)state;
    struct dns_zone *z = dns_zone_new();
    char name[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "host%d.Example.test", i);
        assert_int_equal(dns_zone_add(z, name, "A", "192.0.2.1"), 0);
    }
    for (int i = 0; i < 5000; i += 7) {
        snprintf(name, sizeof(name), "HOST%d.example.TEST.", i);
        expect(z, name, DNS_T_A, DNS_OK, 1);
    }
    expect(z, "host5000.example.test", DNS_T_A, DNS_NXDOMAIN, 0);
    dns_zone_free(z);
}

/* ---- the zone resolver ---- */

static void resolve(struct dns_resolver *r, const char *name, uint16_t type,
                    enum dns_status st, size_t count)
{
    struct dns_answer a;
    dns_query(r, name, type, &a);
    if (a.status != st || a.count != count)
        fail_msg("%s/%u: got %s count %zu, want %s count %zu", name, type,
                 dns_status_name(a.status), a.count, dns_status_name(st), count);
    assert_null(a.release);
    dns_answer_release(&a);
    assert_int_equal(a.count, 0);
    assert_null(a.rrs);
}

static void resolver_cname_chains(void **state)
{
    (void)state;
    struct dns_zone *z = dns_zone_new();
    char name[64], target[64];
    /* c0 -> c1 -> ... -> c9, and c9 has the A */
    for (int i = 0; i < 9; i++) {
        snprintf(name, sizeof(name), "c%d.test", i);
        snprintf(target, sizeof(target), "C%d.TEST.", i + 1);
        assert_int_equal(dns_zone_add(z, name, "CNAME", target), 0);
    }
    assert_int_equal(dns_zone_add(z, "c9.test", "A", "192.0.2.9"), 0);
    assert_int_equal(dns_zone_add(z, "loop.test", "CNAME", "LOOP.test"), 0);
    assert_int_equal(dns_zone_add(z, "l1.test", "CNAME", "l2.test"), 0);
    assert_int_equal(dns_zone_add(z, "l2.test", "CNAME", "l1.test"), 0);
    assert_int_equal(dns_zone_add(z, "dangling.test", "CNAME", "gone.test"), 0);
    assert_int_equal(dns_zone_add(z, "toslow.test", "CNAME", "slow.test"), 0);
    assert_int_equal(dns_zone_add(z, "toempty.test", "CNAME", "empty.test"), 0);
    assert_int_equal(dns_zone_add_timeout(z, "slow.test"), 0);
    assert_int_equal(dns_zone_add_empty(z, "empty.test"), 0);
    /* a CNAME wins over the TIMEOUT flag at its name */
    assert_int_equal(dns_zone_add(z, "cslow.test", "CNAME", "c9.test"), 0);
    assert_int_equal(dns_zone_add_timeout(z, "cslow.test"), 0);

    struct dns_resolver *r = dns_zone_resolver_new(z);
    assert_non_null(r);
    resolve(r, "c9.test", DNS_T_A, DNS_OK, 1);
    resolve(r, "c1.test", DNS_T_A, DNS_OK, 1);     /* 8 CNAMEs: the limit */
    resolve(r, "c0.test", DNS_T_A, DNS_TEMPFAIL, 0); /* 9: too long */
    resolve(r, "c5.test", DNS_T_CNAME, DNS_OK, 1);  /* not followed */
    resolve(r, "c5.test", DNS_T_TXT, DNS_NODATA, 0);
    resolve(r, "loop.test", DNS_T_A, DNS_TEMPFAIL, 0);
    resolve(r, "l1.test", DNS_T_TXT, DNS_TEMPFAIL, 0);
    resolve(r, "dangling.test", DNS_T_A, DNS_NXDOMAIN, 0);
    resolve(r, "toslow.test", DNS_T_A, DNS_TEMPFAIL, 0);
    resolve(r, "toempty.test", DNS_T_A, DNS_NODATA, 0);
    resolve(r, "cslow.test", DNS_T_A, DNS_OK, 1);
    resolve(r, "cslow.test", DNS_T_TXT, DNS_NODATA, 0);

    /* the records are the target's, pointing into the zone */
    struct dns_answer a;
    dns_query(r, "c3.test", DNS_T_A, &a);
    assert_int_equal(a.status, DNS_OK);
    uint8_t ip[4];
    assert_int_equal(dns_rdata_a(a.rrs[0].data, a.rrs[0].len, ip), 0);
    assert_memory_equal(ip, "\xc0\x00\x02\x09", 4);
    const struct dns_rr *zr;
    size_t n;
    assert_int_equal(dns_zone_lookup(z, "c9.test", DNS_T_A, &zr, &n, NULL), DNS_OK);
    assert_ptr_equal(a.rrs, zr);
    dns_answer_release(&a);

    /* the same through dns_zone_resolve */
    assert_int_equal(dns_zone_resolve(z, "c2.test", DNS_T_A, &zr, &n), DNS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(dns_zone_resolve(z, "c0.test", DNS_T_A, &zr, &n), DNS_TEMPFAIL);
    assert_int_equal(n, 0);

    dns_resolver_free(r);
    dns_zone_free(z);
}

static void resolver_counts_queries(void **state)
{
    (void)state;
    struct dns_zone *z = load(ZONE_JSON);
    struct dns_resolver *r = dns_zone_resolver_new(z);
    assert_int_equal(dns_zone_resolver_queries(r), 0);
    resolve(r, "example.com", DNS_T_TXT, DNS_OK, 2);
    resolve(r, "www.example.com", DNS_T_MX, DNS_OK, 2);
    resolve(r, "nope.example.com", DNS_T_MX, DNS_NXDOMAIN, 0);
    assert_int_equal(dns_zone_resolver_queries(r), 3);
    /* a bad name never reaches the resolver */
    char label[70];
    memset(label, 'a', 64);
    label[64] = '\0';
    resolve(r, label, DNS_T_A, DNS_BADNAME, 0);
    resolve(r, "a..b", DNS_T_A, DNS_BADNAME, 0);
    assert_int_equal(dns_zone_resolver_queries(r), 3);
    assert_int_equal(dns_zone_resolver_queries(NULL), 0);
    assert_null(dns_zone_resolver_new(NULL));
    dns_resolver_free(r);
    dns_zone_free(z);
}

struct reader_arg {
    struct dns_resolver *r;
    int failures;
};

static void *reader(void *p)
{
    struct reader_arg *ra = p;
    for (int i = 0; i < 20000; i++) {
        struct dns_answer a;
        dns_query(ra->r, (i & 1) ? "www.example.com" : "nope.example.com", DNS_T_A, &a);
        if (a.status != ((i & 1) ? DNS_OK : DNS_NXDOMAIN) || a.count != ((i & 1) ? 2u : 0u))
            ra->failures++;
        dns_answer_release(&a);
    }
    return NULL;
}

static void resolver_threads(void **state)
{
    (void)state;
    struct dns_zone *z = load(ZONE_JSON);
    struct dns_resolver *r = dns_zone_resolver_new(z);
    pthread_t th[4];
    struct reader_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct reader_arg){ r, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    assert_int_equal(dns_zone_resolver_queries(r), 80000);
    dns_resolver_free(r);
    dns_zone_free(z);
}

static void load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/sesame-zone-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, ZONE_JSON, strlen(ZONE_JSON)), (ssize_t)strlen(ZONE_JSON));
    close(fd);
    char err[256];
    struct dns_zone *z = dns_zone_new();
    assert_int_equal(dns_zone_load_file(z, path, err, sizeof(err)), 0);
    expect(z, "example.com", DNS_T_MX, DNS_OK, 2);
    unlink(path);
    assert_int_equal(dns_zone_load_file(z, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    dns_zone_free(z);

    /* a bad file names the file and the owner */
    memcpy(path + strlen(path) - 6, "XXXXXX", 6);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *bad = "{\"x.test\": [{\"type\": \"A\", \"value\": \"nope\"}]}";
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    z = dns_zone_new();
    assert_int_equal(dns_zone_load_file(z, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "x.test: A"));
    unlink(path);
    dns_zone_free(z);
}

/* Every zone of the RFC 7208 suite loads. */
static void spf_suite_zones(void **state)
{
    (void)state;
    const char *path = getenv("SESAME_SPF_SUITE");
    if (!path || access(path, R_OK) != 0) {
        skip();
        return;
    }
    json_error_t je;
    json_t *root = json_load_file(path, JSON_ALLOW_NUL, &je);
    assert_non_null(root);
    json_t *scenarios = json_object_get(root, "scenarios");
    assert_true(json_array_size(scenarios) > 0);
    size_t i;
    json_t *sc;
    int timeouts = 0;
    json_array_foreach(scenarios, i, sc) {
        char err[256];
        struct dns_zone *z = dns_zone_new();
        if (dns_zone_load_object(z, json_object_get(sc, "zone"), err, sizeof(err)) != 0)
            fail_msg("scenario %zu: %s", i, err);
        if (dns_zone_lookup(z, "example.com", DNS_T_TXT, NULL, NULL, NULL) == DNS_TEMPFAIL)
            timeouts++;
        dns_zone_free(z);
    }
    assert_true(timeouts >= 1); /* "Initial processing" has example.com TIMEOUT */
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loader_all_types),
        cmocka_unit_test(lookup_semantics),
        cmocka_unit_test(loader_errors),
        cmocka_unit_test(add_presentation),
        cmocka_unit_test(many_names),
        cmocka_unit_test(resolver_cname_chains),
        cmocka_unit_test(resolver_counts_queries),
        cmocka_unit_test(resolver_threads),
        cmocka_unit_test(load_file),
        cmocka_unit_test(spf_suite_zones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
