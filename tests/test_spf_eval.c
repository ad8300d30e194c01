/* check_host() on hostile and edge-case DNS data (in-memory zone): include
 * loops and deep chains, oversized and garbage records, the lookup, void
 * and MX limits, ptr and %{p}, exp=, the HELO identity, and the counters
 * the CLI reports. Never a crash or a hang; always the RFC's result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/spf.h"
#include "dns/dns_zone.h"

static struct dns_zone *zone;
static struct dns_resolver *dns;

static int setup(void **state)
{
    zone = dns_zone_new();
    dns = dns_zone_resolver_new(zone);
    return 0;
}

static int teardown(void **state)
{
    dns_resolver_free(dns);
    dns_zone_free(zone);
    return 0;
}

static void add(const char *name, const char *type, const char *value)
{
    assert_int_equal(dns_zone_add(zone, name, type, value), 0);
}

/* Runs check_host for sender from ip; returns the result, fills *out. */
static enum spf_result check(const char *ip, const char *sender, struct spf_response *out)
{
    struct spf_request req = { .sender = sender, .helo = "mail.client.test", .now = 1 };
    assert_int_equal(spf_ip_parse(ip, &req.ip), 0);
    spf_check_mailfrom(dns, &req, out);
    return out->result;
}

static void expect(const char *ip, const char *sender, enum spf_result want)
{
    struct spf_response r;
    enum spf_result got = check(ip, sender, &r);
    if (got != want)
        fail_msg("%s from %s: got %s (%s), want %s", sender, ip, spf_result_name(got), r.problem,
                 spf_result_name(want));
    spf_response_free(&r);
}

static void include_loop_is_permerror(void **state)
{
    add("loop.test", "TXT", "v=spf1 include:loop2.test -all");
    add("loop2.test", "TXT", "v=spf1 include:loop.test -all");
    struct spf_response r;
    assert_int_equal(check("192.0.2.1", "a@loop.test", &r), SPF_PERMERROR);
    assert_non_null(strstr(r.problem, "more than 10 DNS-querying terms"));
    assert_int_equal(r.dns_lookups, 11);
    spf_response_free(&r);
    add("self.test", "TXT", "v=spf1 redirect=self.test");
    expect("192.0.2.1", "a@self.test", SPF_PERMERROR);
}

static void deep_include_chain(void **state)
{
    /* 10 includes deep is allowed; the 11th DNS term is a permerror */
    char name[64], value[128];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "d%d.chain.test", i);
        snprintf(value, sizeof value, "v=spf1 include:d%d.chain.test -all", i + 1);
        add(name, "TXT", i < 11 ? value : "v=spf1 ip4:192.0.2.0/24 -all");
    }
    expect("192.0.2.1", "a@d0.chain.test", SPF_PERMERROR); /* 11 includes */
    expect("192.0.2.1", "a@d1.chain.test", SPF_PASS);      /* 10 includes */
    expect("198.51.100.1", "a@d1.chain.test", SPF_FAIL);
}

static void huge_and_garbage_records(void **state)
{
    /* a 64 KiB TXT SPF record: permerror, not a crash or a truncation */
    size_t n = 65000;
    char *big = malloc(n + 1);
    memcpy(big, "v=spf1", 6);
    for (size_t i = 6; i < n; i++)
        big[i] = (i % 2 == 0) ? ' ' : 'a';
    big[n] = '\0';
    add("big.test", "TXT", big);
    free(big);
    struct spf_response r;
    assert_int_equal(check("192.0.2.1", "a@big.test", &r), SPF_PERMERROR);
    assert_non_null(strstr(r.problem, "longer than"));
    spf_response_free(&r);

    add("garbage.test", "TXT", "v=spf1 \x01\x02\x03 -all");
    expect("192.0.2.1", "a@garbage.test", SPF_PERMERROR);
    add("garbage2.test", "TXT", "v=spf1 ip4:1.2.3.4/99 -all");
    expect("192.0.2.1", "a@garbage2.test", SPF_PERMERROR);
    add("notspf.test", "TXT", "v=spf10 -all");
    expect("192.0.2.1", "a@notspf.test", SPF_NONE);
    /* a syntax error after the matching term is still permerror (§4.6) */
    add("late.test", "TXT", "v=spf1 +all foo:bar");
    expect("192.0.2.1", "a@late.test", SPF_PERMERROR);
}

static void void_lookup_limit(void **state)
{
    add("voids.test", "TXT", "v=spf1 a:n1.voids.test a:n2.voids.test a:n3.voids.test -all");
    struct spf_response r;
    assert_int_equal(check("192.0.2.1", "a@voids.test", &r), SPF_PERMERROR);
    assert_int_equal(r.void_lookups, 3);
    spf_response_free(&r);
    add("twovoids.test", "TXT", "v=spf1 a:n1.voids.test exists:n2.voids.test -all");
    assert_int_equal(check("192.0.2.1", "a@twovoids.test", &r), SPF_FAIL);
    assert_int_equal(r.void_lookups, 2);
    spf_response_free(&r);
}

static void mx_limits(void **state)
{
    char host[64], value[80];
    add("manymx.test", "TXT", "v=spf1 mx -all");
    for (int i = 0; i < 11; i++) {
        snprintf(host, sizeof host, "mx%d.manymx.test", i);
        snprintf(value, sizeof value, "%d %s", i, host);
        add("manymx.test", "MX", value);
        add(host, "A", "192.0.2.200");
    }
    expect("192.0.2.200", "a@manymx.test", SPF_PERMERROR);
    add("tenmx.test", "TXT", "v=spf1 mx/24 -all");
    for (int i = 0; i < 10; i++) {
        snprintf(value, sizeof value, "%d mx%d.manymx.test", i, i);
        add("tenmx.test", "MX", value);
    }
    expect("192.0.2.7", "a@tenmx.test", SPF_PASS); /* 192.0.2.200/24 */
    expect("192.0.3.7", "a@tenmx.test", SPF_FAIL);
    /* null MX (RFC 7505) matches nothing and is not an error */
    add("nullmx.test", "TXT", "v=spf1 mx ~all");
    add("nullmx.test", "MX", "0 .");
    expect("192.0.2.200", "a@nullmx.test", SPF_SOFTFAIL);
}

static void ptr_and_p_macro(void **state)
{
    add("1.2.0.192.in-addr.arpa", "PTR", "host.ptr.test");
    add("1.2.0.192.in-addr.arpa", "PTR", "liar.other.test");
    add("host.ptr.test", "A", "192.0.2.1");
    add("liar.other.test", "A", "203.0.113.9"); /* does not validate */
    add("ptr.test", "TXT", "v=spf1 ptr -all");
    expect("192.0.2.1", "a@ptr.test", SPF_PASS);
    add("other.test", "TXT", "v=spf1 ptr -all");
    expect("192.0.2.1", "a@other.test", SPF_FAIL);
    add("pmacro.test", "TXT", "v=spf1 -all exp=why.pmacro.test");
    add("why.pmacro.test", "TXT", "%{p} / %{i} / %{h}");
    struct spf_response r;
    assert_int_equal(check("192.0.2.1", "a@pmacro.test", &r), SPF_FAIL);
    assert_string_equal(r.explanation, "host.ptr.test / 192.0.2.1 / mail.client.test");
    spf_response_free(&r);
    assert_int_equal(check("192.0.2.77", "a@pmacro.test", &r), SPF_FAIL);
    assert_string_equal(r.explanation, "unknown / 192.0.2.77 / mail.client.test");
    spf_response_free(&r);
}

static void explanation_rules(void **state)
{
    add("exp.test", "TXT", "v=spf1 include:inc.exp.test -all exp=e.exp.test");
    add("inc.exp.test", "TXT", "v=spf1 -all exp=inner.exp.test");
    add("e.exp.test", "TXT", "%{l} at %{o} may not send from %{c}");
    add("inner.exp.test", "TXT", "never used");
    struct spf_response r;
    assert_int_equal(check("2001:db8::5", "bob@exp.test", &r), SPF_FAIL);
    assert_string_equal(r.explanation, "bob at exp.test may not send from 2001:db8::5");
    assert_string_equal(r.mechanism, "all");
    spf_response_free(&r);
    /* two TXT records at the exp name: no explanation */
    add("two.test", "TXT", "v=spf1 -all exp=e.two.test");
    add("e.two.test", "TXT", "one");
    add("e.two.test", "TXT", "two");
    assert_int_equal(check("192.0.2.1", "bob@two.test", &r), SPF_FAIL);
    assert_null(r.explanation);
    spf_response_free(&r);
    /* softfail and pass never carry an explanation */
    add("soft.test", "TXT", "v=spf1 ~all exp=e.exp.test");
    assert_int_equal(check("192.0.2.1", "bob@soft.test", &r), SPF_SOFTFAIL);
    assert_null(r.explanation);
    spf_response_free(&r);
}

static void identities_and_counters(void **state)
{
    add("client.test", "TXT", "v=spf1 a:mail.client.test -all");
    add("mail.client.test", "TXT", "v=spf1 a -all");
    add("mail.client.test", "A", "192.0.2.50");
    struct spf_request req = { .sender = "", .helo = "mail.client.test", .now = 1 };
    assert_int_equal(spf_ip_parse("192.0.2.50", &req.ip), 0);
    struct spf_response r;
    spf_check_mailfrom(dns, &req, &r); /* null sender → postmaster@helo */
    assert_int_equal(r.result, SPF_PASS);
    assert_string_equal(r.domain, "mail.client.test");
    assert_int_equal(r.dns_lookups, 1);
    spf_response_free(&r);
    req.sender = "someone@client.test";
    spf_check_helo(dns, &req, &r);
    assert_int_equal(r.result, SPF_PASS);
    assert_string_equal(r.domain, "mail.client.test");
    spf_response_free(&r);
    /* malformed and single-label domains: none, never a query */
    unsigned long before = dns_zone_resolver_queries(dns);
    expect("192.0.2.1", "a@localhost", SPF_NONE);
    expect("192.0.2.1", "a@[192.0.2.1]", SPF_NONE);
    expect("192.0.2.1", "a@bad..client.test", SPF_NONE);
    assert_int_equal(dns_zone_resolver_queries(dns), before);
    expect("192.0.2.1", "a@nxdomain.test", SPF_NONE);
}

static void dns_timeout_is_temperror(void **state)
{
    add("slow.test", "TIMEOUT", "");
    add("inc-slow.test", "TXT", "v=spf1 include:slow.test -all");
    expect("192.0.2.1", "a@slow.test", SPF_TEMPERROR);
    expect("192.0.2.1", "a@inc-slow.test", SPF_TEMPERROR);
    add("aslow.test", "TXT", "v=spf1 a:slow.test -all");
    expect("192.0.2.1", "a@aslow.test", SPF_TEMPERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(include_loop_is_permerror, setup, teardown),
        cmocka_unit_test_setup_teardown(deep_include_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(huge_and_garbage_records, setup, teardown),
        cmocka_unit_test_setup_teardown(void_lookup_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(mx_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(ptr_and_p_macro, setup, teardown),
        cmocka_unit_test_setup_teardown(explanation_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(identities_and_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(dns_timeout_is_temperror, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
