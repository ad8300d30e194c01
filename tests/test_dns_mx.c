/* MX routing (dns_mx.c) against the in-memory zone resolver: a table of
 * domains (sorted preferences, equal preferences shuffled by a fake random,
 * implicit MX, null MX alone and mixed, NXDOMAIN, tempfail of the MX and of
 * hosts, hosts without address, IPv6-only hosts, IP literals as exchanges,
 * CNAMEs, duplicates, the host and address caps, address literals, address
 * order), then one route through libunbound against the test DNS server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "dns/dns_mx.h"
#include "dns/dns_zone.h"
#include "testdns.h"

static const char ZONE[] =
    "{\n"
    " \"normal.test\": [{\"type\": \"MX\", \"value\": [20, \"mx2.normal.test\"]},\n"
    "                  {\"type\": \"MX\", \"value\": [10, \"mx1.normal.test\"]},\n"
    "                  {\"type\": \"MX\", \"value\": [5, \"mx0.normal.test\"]}],\n"
    " \"mx0.normal.test\": [{\"type\": \"A\", \"value\": \"192.0.2.10\"}],\n"
    " \"mx1.normal.test\": [{\"type\": \"AAAA\", \"value\": \"2001:db8::11\"},\n"
    "                      {\"type\": \"A\", \"value\": \"192.0.2.11\"}],\n"
    " \"mx2.normal.test\": [{\"type\": \"A\", \"value\": \"192.0.2.12\"}],\n"
    " \"equal.test\": [{\"type\": \"MX\", \"value\": [10, \"a.equal.test\"]},\n"
    "                 {\"type\": \"MX\", \"value\": [20, \"d.equal.test\"]},\n"
    "                 {\"type\": \"MX\", \"value\": [10, \"b.equal.test\"]},\n"
    "                 {\"type\": \"MX\", \"value\": [10, \"c.equal.test\"]}],\n"
    " \"a.equal.test\": [{\"type\": \"A\", \"value\": \"192.0.2.1\"}],\n"
    " \"b.equal.test\": [{\"type\": \"A\", \"value\": \"192.0.2.2\"}],\n"
    " \"c.equal.test\": [{\"type\": \"A\", \"value\": \"192.0.2.3\"}],\n"
    " \"d.equal.test\": [{\"type\": \"A\", \"value\": \"192.0.2.4\"}],\n"
    " \"implicit.test\": [{\"type\": \"A\", \"value\": \"192.0.2.50\"},\n"
    "                    {\"type\": \"AAAA\", \"value\": \"2001:db8::50\"},\n"
    "                    {\"type\": \"TXT\", \"value\": \"v=spf1 -all\"}],\n"
    " \"empty.test\": [],\n"
    " \"null.test\": [{\"type\": \"MX\", \"value\": [0, \"\"]},\n"
    "                {\"type\": \"A\", \"value\": \"192.0.2.60\"}],\n"
    " \"nullmixed.test\": [{\"type\": \"MX\", \"value\": [0, \"\"]},\n"
    "                     {\"type\": \"MX\", \"value\": [10, \"mx.nullmixed.test\"]}],\n"
    " \"mx.nullmixed.test\": [{\"type\": \"A\", \"value\": \"192.0.2.61\"}],\n"
    " \"slow.test\": [{\"type\": \"TIMEOUT\"}],\n"
    " \"hostslow.test\": [{\"type\": \"MX\", \"value\": [10, \"mx.slow.test\"]}],\n"
    " \"mx.slow.test\": [{\"type\": \"TIMEOUT\"}],\n"
    " \"halfslow.test\": [{\"type\": \"MX\", \"value\": [10, \"mx.slow.test\"]},\n"
    "                    {\"type\": \"MX\", \"value\": [20, \"mx.halfslow.test\"]}],\n"
    " \"mx.halfslow.test\": [{\"type\": \"A\", \"value\": \"192.0.2.70\"}],\n"
    " \"noaddr.test\": [{\"type\": \"MX\", \"value\": [10, \"ghost.noaddr.test\"]},\n"
    "                  {\"type\": \"MX\", \"value\": [20, \"bare.noaddr.test\"]},\n"
    "                  {\"type\": \"MX\", \"value\": [30, \"mx.noaddr.test\"]}],\n"
    " \"bare.noaddr.test\": [{\"type\": \"TXT\", \"value\": \"no address here\"}],\n"
    " \"mx.noaddr.test\": [{\"type\": \"A\", \"value\": \"192.0.2.80\"}],\n"
    " \"allnoaddr.test\": [{\"type\": \"MX\", \"value\": [10, \"ghost.allnoaddr.test\"]}],\n"
    " \"v6only.test\": [{\"type\": \"MX\", \"value\": [10, \"mx.v6only.test\"]}],\n"
    " \"mx.v6only.test\": [{\"type\": \"AAAA\", \"value\": \"2001:db8::90\"},\n"
    "                     {\"type\": \"AAAA\", \"value\": \"2001:db8::91\"}],\n"
    " \"iplit.test\": [{\"type\": \"MX\", \"value\": [10, \"192.0.2.99\"]},\n"
    "                 {\"type\": \"MX\", \"value\": [20, \"mx.iplit.test\"]}],\n"
    " \"192.0.2.99\": [{\"type\": \"A\", \"value\": \"192.0.2.99\"}],\n"
    " \"mx.iplit.test\": [{\"type\": \"A\", \"value\": \"192.0.2.100\"}],\n"
    " \"onlyiplit.test\": [{\"type\": \"MX\", \"value\": [10, \"192.0.2.99\"]}],\n"
    " \"cname.test\": [{\"type\": \"MX\", \"value\": [10, \"alias.cname.test\"]}],\n"
    " \"alias.cname.test\": [{\"type\": \"CNAME\", \"value\": \"real.cname.test\"}],\n"
    " \"real.cname.test\": [{\"type\": \"A\", \"value\": \"192.0.2.110\"}],\n"
    " \"dup.test\": [{\"type\": \"MX\", \"value\": [20, \"MX.dup.test\"]},\n"
    "               {\"type\": \"MX\", \"value\": [10, \"mx.dup.test\"]}],\n"
    " \"mx.dup.test\": [{\"type\": \"A\", \"value\": \"192.0.2.120\"}],\n"
    " \"manyaddr.test\": [{\"type\": \"MX\", \"value\": [10, \"mx.manyaddr.test\"]}],\n"
    " \"mx.manyaddr.test\": [\n"
    "   {\"type\": \"A\", \"value\": \"198.51.100.1\"}, {\"type\": \"A\", \"value\": \"198.51.100.2\"},\n"
    "   {\"type\": \"A\", \"value\": \"198.51.100.3\"}, {\"type\": \"A\", \"value\": \"198.51.100.4\"},\n"
    "   {\"type\": \"A\", \"value\": \"198.51.100.5\"}, {\"type\": \"A\", \"value\": \"198.51.100.6\"},\n"
    "   {\"type\": \"A\", \"value\": \"198.51.100.7\"}, {\"type\": \"A\", \"value\": \"198.51.100.8\"},\n"
    "   {\"type\": \"A\", \"value\": \"198.51.100.9\"}, {\"type\": \"AAAA\", \"value\": \"2001:db8::1\"}]\n"
    "}\n";

static struct dns_zone *zone_new(void)
{
    struct dns_zone *z = dns_zone_new();
    assert_non_null(z);
    char err[256] = "";
    if (dns_zone_load_json(z, ZONE, strlen(ZONE), err, sizeof err) != 0)
        fail_msg("zone: %s", err);
    /* 20 MX hosts of one preference... and more */
    char name[64], value[80];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "h%02d.many.test", i);
        snprintf(value, sizeof value, "%d %s", 10 + i, name);
        assert_int_equal(dns_zone_add(z, "many.test", "MX", value), 0);
        snprintf(value, sizeof value, "192.0.2.%d", 200 + i);
        assert_int_equal(dns_zone_add(z, name, "A", value), 0);
    }
    return z;
}

static unsigned rnd_zero_calls[8];
static size_t rnd_zero_ncalls;

static unsigned rnd_zero(unsigned n)
{
    if (rnd_zero_ncalls < 8)
        rnd_zero_calls[rnd_zero_ncalls] = n;
    rnd_zero_ncalls++;
    return 0;
}

static unsigned rnd_last(unsigned n)
{
    return n - 1;
}

/* one expected route: status, then "name/pref=addr,addr" per host */
struct route_case {
    const char *domain;
    enum mx_status status;
    bool implicit;
    const char *hosts[MX_MAX_HOSTS + 1];
    const char *why;   /* substring of why, or NULL */
};

static void format_host(const struct mx_host *h, char *out, size_t len)
{
    size_t o = (size_t)snprintf(out, len, "%s/%u=", h->name, h->preference);
    for (size_t i = 0; i < h->naddrs && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s", i ? "," : "", h->addrs[i]);
}

static void check_route(const struct route_case *c, const struct mx_route *r)
{
    if (r->status != c->status || r->implicit != c->implicit)
        fail_msg("%s: status %d implicit %d (want %d %d), why: %s", c->domain, r->status,
                 r->implicit, c->status, c->implicit, r->why);
    size_t n = 0;
    while (n <= MX_MAX_HOSTS && c->hosts[n])
        n++;
    if (r->nhosts != n)
        fail_msg("%s: %zu hosts, want %zu (why: %s)", c->domain, r->nhosts, n, r->why);
    for (size_t i = 0; i < n; i++) {
        char got[1024];
        format_host(&r->hosts[i], got, sizeof got);
        if (strcmp(got, c->hosts[i]) != 0)
            fail_msg("%s host %zu: %s, want %s", c->domain, i, got, c->hosts[i]);
    }
    if (c->why && !strstr(r->why, c->why))
        fail_msg("%s: why \"%s\" lacks \"%s\"", c->domain, r->why, c->why);
    if (r->status != MX_OK && !r->why[0])
        fail_msg("%s: no reason given", c->domain);
}

static const struct route_case CASES[] = {
    { "normal.test", MX_OK, false,
      { "mx0.normal.test/5=192.0.2.10", "mx1.normal.test/10=192.0.2.11,2001:db8::11",
        "mx2.normal.test/20=192.0.2.12" }, NULL },
    { "Normal.TEST.", MX_OK, false,
      { "mx0.normal.test/5=192.0.2.10", "mx1.normal.test/10=192.0.2.11,2001:db8::11",
        "mx2.normal.test/20=192.0.2.12" }, NULL },
    /* no random: equal preferences in answer order */
    { "equal.test", MX_OK, false,
      { "a.equal.test/10=192.0.2.1", "b.equal.test/10=192.0.2.2", "c.equal.test/10=192.0.2.3",
        "d.equal.test/20=192.0.2.4" }, NULL },
    { "implicit.test", MX_OK, true, { "implicit.test/0=192.0.2.50,2001:db8::50" },
      "implicit MX" },
    { "empty.test", MX_NO_ADDRESS, false, { NULL }, "no MX and no address" },
    { "null.test", MX_NULL, false, { NULL }, "null MX" },
    { "nullmixed.test", MX_OK, false, { "mx.nullmixed.test/10=192.0.2.61" },
      "null MX \".\" listed with other MX hosts: ignored" },
    { "nowhere.test", MX_NXDOMAIN, false, { NULL }, "NXDOMAIN" },
    { "a..b.test", MX_NXDOMAIN, false, { NULL }, "not a valid domain name" },
    { "", MX_NXDOMAIN, false, { NULL }, "not a valid domain name" },
    { "slow.test", MX_TEMPFAIL, false, { NULL }, "failed temporarily" },
    { "hostslow.test", MX_TEMPFAIL, false, { NULL }, "some lookups failed temporarily" },
    { "halfslow.test", MX_OK, false, { "mx.halfslow.test/20=192.0.2.70" },
      "MX mx.slow.test: address lookup failed temporarily" },
    { "noaddr.test", MX_OK, false, { "mx.noaddr.test/30=192.0.2.80" },
      "MX ghost.noaddr.test: no address; MX bare.noaddr.test: no address" },
    { "allnoaddr.test", MX_NO_ADDRESS, false, { NULL }, "no MX host of allnoaddr.test" },
    { "v6only.test", MX_OK, false, { "mx.v6only.test/10=2001:db8::90,2001:db8::91" }, NULL },
    { "iplit.test", MX_OK, false, { "mx.iplit.test/20=192.0.2.100" },
      "MX 192.0.2.99 is an address, not a host name: skipped" },
    { "onlyiplit.test", MX_NO_ADDRESS, false, { NULL }, "is an address" },
    { "cname.test", MX_OK, false, { "alias.cname.test/10=192.0.2.110" }, NULL },
    { "dup.test", MX_OK, false, { "mx.dup.test/10=192.0.2.120" }, NULL },
    { "manyaddr.test", MX_OK, false,
      { "mx.manyaddr.test/10=198.51.100.1,198.51.100.2,198.51.100.3,198.51.100.4,"
        "198.51.100.5,198.51.100.6,198.51.100.7,198.51.100.8" }, NULL },
    { "many.test", MX_OK, false,
      { "h00.many.test/10=192.0.2.200", "h01.many.test/11=192.0.2.201",
        "h02.many.test/12=192.0.2.202", "h03.many.test/13=192.0.2.203",
        "h04.many.test/14=192.0.2.204", "h05.many.test/15=192.0.2.205",
        "h06.many.test/16=192.0.2.206", "h07.many.test/17=192.0.2.207",
        "h08.many.test/18=192.0.2.208", "h09.many.test/19=192.0.2.209",
        "h10.many.test/20=192.0.2.210", "h11.many.test/21=192.0.2.211",
        "h12.many.test/22=192.0.2.212", "h13.many.test/23=192.0.2.213",
        "h14.many.test/24=192.0.2.214", "h15.many.test/25=192.0.2.215" },
      "only the best 16 MX hosts are used" },
    /* address literals: no DNS */
    { "[192.0.2.7]", MX_OK, true, { "[192.0.2.7]/0=192.0.2.7" }, "address literal" },
    { "[IPv6:2001:DB8::7]", MX_OK, true, { "[IPv6:2001:DB8::7]/0=2001:db8::7" }, NULL },
    { "[300.1.1.1]", MX_NO_ADDRESS, false, { NULL }, "not a valid address literal" },
    { "[192.0.2.7", MX_NO_ADDRESS, false, { NULL }, "not a valid address literal" },
};

static void route_table(void **state)
{
    (void)state;
    struct dns_zone *z = zone_new();
    struct dns_resolver *r = dns_zone_resolver_new(z);
    assert_non_null(r);
    struct mx_route *route = malloc(sizeof *route);
    assert_non_null(route);
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        memset(route, 0xa5, sizeof *route);
        dns_mx_route(r, CASES[i].domain, route, NULL);
        check_route(&CASES[i], route);
    }
    /* the literal needs no resolver at all */
    dns_mx_route(NULL, "[192.0.2.7]", route, NULL);
    assert_int_equal(route->status, MX_OK);
    /* no resolver: temporary */
    dns_mx_route(NULL, "normal.test", route, NULL);
    assert_int_equal(route->status, MX_TEMPFAIL);
    free(route);
    dns_resolver_free(r);
    dns_zone_free(z);
}

static void shuffle_equal_preferences(void **state)
{
    (void)state;
    struct dns_zone *z = zone_new();
    struct dns_resolver *r = dns_zone_resolver_new(z);
    struct mx_route *route = malloc(sizeof *route);
    assert_non_null(route);

    /* Fisher-Yates over the run of three 10s, random always 0:
     * [a b c] -> swap(2,0) [c b a] -> swap(1,0) [b c a]; d stays last */
    rnd_zero_ncalls = 0;
    dns_mx_route(r, "equal.test", route, rnd_zero);
    static const struct route_case zero = {
        "equal.test", MX_OK, false,
        { "b.equal.test/10=192.0.2.2", "c.equal.test/10=192.0.2.3", "a.equal.test/10=192.0.2.1",
          "d.equal.test/20=192.0.2.4" }, NULL };
    check_route(&zero, route);
    /* asked for 3 then 2; never for the single 20 */
    assert_int_equal(rnd_zero_ncalls, 2);
    assert_int_equal(rnd_zero_calls[0], 3);
    assert_int_equal(rnd_zero_calls[1], 2);

    /* random n-1 swaps each with itself: answer order */
    dns_mx_route(r, "equal.test", route, rnd_last);
    static const struct route_case last = {
        "equal.test", MX_OK, false,
        { "a.equal.test/10=192.0.2.1", "b.equal.test/10=192.0.2.2", "c.equal.test/10=192.0.2.3",
          "d.equal.test/20=192.0.2.4" }, NULL };
    check_route(&last, route);

    /* different preferences are never reordered by the random */
    rnd_zero_ncalls = 0;
    dns_mx_route(r, "normal.test", route, rnd_zero);
    check_route(&CASES[0], route);
    assert_int_equal(rnd_zero_ncalls, 0);

    free(route);
    dns_resolver_free(r);
    dns_zone_free(z);
}

static unsigned lcg_state = 12345;

static unsigned rnd_lcg(unsigned n)
{
    lcg_state = lcg_state * 1103515245u + 12345u;
    return (lcg_state >> 16) % n;
}

static void shuffle_is_uniform_enough(void **state)
{
    (void)state;
    struct dns_zone *z = zone_new();
    struct dns_resolver *r = dns_zone_resolver_new(z);
    struct mx_route *route = malloc(sizeof *route);
    assert_non_null(route);
    int first[3] = { 0, 0, 0 };
    int perms[6] = { 0 };
    for (int i = 0; i < 600; i++) {
        dns_mx_route(r, "equal.test", route, rnd_lcg);
        assert_int_equal(route->nhosts, 4);
        assert_string_equal(route->hosts[3].name, "d.equal.test");
        int a = route->hosts[0].name[0] - 'a', b = route->hosts[1].name[0] - 'a';
        first[a]++;
        perms[a * 2 + (b > a ? b - 1 : b)]++;
    }
    for (int i = 0; i < 3; i++)
        assert_in_range(first[i], 140, 260);
    for (int i = 0; i < 6; i++)
        assert_in_range(perms[i], 50, 150);
    free(route);
    dns_resolver_free(r);
    dns_zone_free(z);
}

static void address_order(void **state)
{
    (void)state;
    struct dns_zone *z = zone_new();
    struct dns_resolver *r = dns_zone_resolver_new(z);
    struct mx_route *route = malloc(sizeof *route);
    assert_non_null(route);
    char got[256];

    dns_mx_route_order(r, "normal.test", route, NULL, MX_ADDR_IPV6_FIRST);
    format_host(&route->hosts[1], got, sizeof got);
    assert_string_equal(got, "mx1.normal.test/10=2001:db8::11,192.0.2.11");

    unsigned long before = dns_zone_resolver_queries(r);
    dns_mx_route_order(r, "normal.test", route, NULL, MX_ADDR_IPV4_ONLY);
    /* one MX query, then only A for the three hosts */
    assert_int_equal(dns_zone_resolver_queries(r) - before, 4);
    format_host(&route->hosts[1], got, sizeof got);
    assert_string_equal(got, "mx1.normal.test/10=192.0.2.11");

    /* IPv6 only: the IPv4-only hosts drop out */
    dns_mx_route_order(r, "normal.test", route, NULL, MX_ADDR_IPV6_ONLY);
    assert_int_equal(route->status, MX_OK);
    assert_int_equal(route->nhosts, 1);
    format_host(&route->hosts[0], got, sizeof got);
    assert_string_equal(got, "mx1.normal.test/10=2001:db8::11");
    assert_non_null(strstr(route->why, "MX mx0.normal.test: no address"));

    dns_mx_route_order(r, "implicit.test", route, NULL, MX_ADDR_IPV6_FIRST);
    format_host(&route->hosts[0], got, sizeof got);
    assert_string_equal(got, "implicit.test/0=2001:db8::50,192.0.2.50");
    free(route);
    dns_resolver_free(r);
    dns_zone_free(z);
}

/* The same through libunbound against the test DNS server. */
static void through_unbound(void **state)
{
    (void)state;
    struct dns_zone *z = zone_new();
    struct testdns *t = testdns_start(z);
    assert_non_null(t);
    char err[256] = "";
    struct dns_resolver *r = dns_unbound_new(testdns_addr(t), 2000, err, sizeof err);
    if (!r)
        fail_msg("unbound: %s", err);
    struct mx_route *route = malloc(sizeof *route);
    assert_non_null(route);
    static const char *const domains[] = {
        "normal.test", "implicit.test", "null.test", "nowhere.test", "noaddr.test",
        "cname.test", "iplit.test", "nullmixed.test",
    };
    for (size_t i = 0; i < sizeof domains / sizeof domains[0]; i++) {
        const struct route_case *c = NULL;
        for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++)
            if (strcmp(CASES[k].domain, domains[i]) == 0)
                c = &CASES[k];
        assert_non_null(c);
        dns_mx_route(r, domains[i], route, NULL);
        check_route(c, route);
    }
    /* an RRset's order is the resolver's business: compare as a set */
    dns_mx_route(r, "v6only.test", route, NULL);
    assert_int_equal(route->status, MX_OK);
    assert_int_equal(route->nhosts, 1);
    assert_int_equal(route->hosts[0].naddrs, 2);
    assert_true((strcmp(route->hosts[0].addrs[0], "2001:db8::90") == 0 &&
                 strcmp(route->hosts[0].addrs[1], "2001:db8::91") == 0) ||
                (strcmp(route->hosts[0].addrs[0], "2001:db8::91") == 0 &&
                 strcmp(route->hosts[0].addrs[1], "2001:db8::90") == 0));
    free(route);
    dns_resolver_free(r);
    testdns_stop(t);
    dns_zone_free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(route_table),
        cmocka_unit_test(shuffle_equal_preferences),
        cmocka_unit_test(shuffle_is_uniform_enough),
        cmocka_unit_test(address_order),
        cmocka_unit_test(through_unbound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
