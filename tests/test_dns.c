/* Unit tests of dns.c: name validation, status and type names, where the
 * DNS server comes from (--dns, $SESAME_DNS), and dns_query()'s checks
 * before any resolver is asked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns.h"

static void name_validity(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int valid;
    } cases[] = {
        { "example.com", 1 },
        { "example.com.", 1 },
        { "a", 1 },
        { "a.", 1 },
        { "_spf.Example.COM", 1 },
        { "macro%percent  space%20url-space.example.com", 1 },
        { "foo:bar/baz.example.com", 1 },
        { "", 0 },
        { ".", 0 },
        { "..", 0 },
        { ".a", 0 },
        { "a..b", 0 },
        { "a.b..", 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (dns_name_is_valid(cases[i].name, strlen(cases[i].name)) != cases[i].valid)
            fail_msg("\"%s\": want %d", cases[i].name, cases[i].valid);
    assert_int_equal(dns_name_is_valid(NULL, 0), 0);
    /* len is honoured: an embedded NUL is refused */
    assert_int_equal(dns_name_is_valid("a\0b", 3), 0);
    assert_int_equal(dns_name_is_valid("ab.cd", 2), 1);

    char buf[300];
    memset(buf, 'x', 63);
    assert_int_equal(dns_name_is_valid(buf, 63), 1);
    memset(buf, 'x', 64);
    assert_int_equal(dns_name_is_valid(buf, 64), 0);
    /* 253 octets valid (254 with the dot), 254 not */
    memset(buf, 'a', 254);
    for (int i = 63; i < 254; i += 64)
        buf[i] = '.';
    assert_int_equal(dns_name_is_valid(buf, 253), 1);
    buf[253] = '.';
    assert_int_equal(dns_name_is_valid(buf, 254), 1);
    buf[253] = 'a';
    assert_int_equal(dns_name_is_valid(buf, 254), 0);
}

static void names_of_things(void **state)
{
    (void)state;
    assert_string_equal(dns_status_name(DNS_OK), "OK");
    assert_string_equal(dns_status_name(DNS_NXDOMAIN), "NXDOMAIN");
    assert_string_equal(dns_status_name(DNS_NODATA), "NODATA");
    assert_string_equal(dns_status_name(DNS_TEMPFAIL), "TEMPFAIL");
    assert_string_equal(dns_status_name(DNS_BADNAME), "BADNAME");
    assert_string_equal(dns_status_name((enum dns_status)42), "UNKNOWN");
    assert_string_equal(dns_type_name(DNS_T_TXT), "TXT");
    assert_string_equal(dns_type_name(DNS_T_SPF), "SPF");
    assert_string_equal(dns_type_name(DNS_T_AAAA), "AAAA");
    assert_string_equal(dns_type_name(DNS_T_PTR), "PTR");
    assert_null(dns_type_name(255));
    assert_int_equal(dns_type_from_name("mx"), DNS_T_MX);
    assert_int_equal(dns_type_from_name("CNAME"), DNS_T_CNAME);
    assert_int_equal(dns_type_from_name("HINFO"), -1);
    assert_int_equal(dns_type_from_name(NULL), -1);
}

static void server_from_env(void **state)
{
    (void)state;
    unsetenv("SESAME_DNS");
    assert_null(dns_server_from_env(NULL));
    assert_null(dns_server_from_env(""));
    assert_string_equal(dns_server_from_env("127.0.0.1:5353"), "127.0.0.1:5353");
    setenv("SESAME_DNS", "192.0.2.53", 1);
    assert_string_equal(dns_server_from_env(NULL), "192.0.2.53");
    assert_string_equal(dns_server_from_env(""), "192.0.2.53");
    assert_string_equal(dns_server_from_env("[::1]:53"), "[::1]:53"); /* the flag wins */
    setenv("SESAME_DNS", "", 1);
    assert_null(dns_server_from_env(NULL));
    unsetenv("SESAME_DNS");
}

/* A resolver that records what it was asked. */
struct spy {
    struct dns_resolver base;
    int calls;
    int destroyed;
    char last[300];
};

static void spy_query(struct dns_resolver *r, const char *name, uint16_t type,
                      struct dns_answer *out)
{
    struct spy *s = (struct spy *)r;
    s->calls++;
    snprintf(s->last, sizeof(s->last), "%s", name);
    out->status = type == DNS_T_A ? DNS_NXDOMAIN : DNS_NODATA;
}

static void spy_destroy(struct dns_resolver *r)
{
    ((struct spy *)r)->destroyed = 1;
}

static const struct dns_resolver_ops spy_ops = { spy_query, spy_destroy };

static int released;
static void count_release(struct dns_answer *a)
{
    (void)a;
    released++;
}

static void query_checks_names(void **state)
{
    (void)state;
    struct spy s = { { &spy_ops }, 0, 0, "" };
    struct dns_answer a;
    memset(&a, 0x5a, sizeof(a)); /* garbage in: dns_query initialises */
    dns_query(&s.base, "Example.COM.", DNS_T_A, &a);
    assert_int_equal(a.status, DNS_NXDOMAIN);
    assert_int_equal(a.count, 0);
    assert_null(a.release);
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.last, "Example.COM.");

    char label[80];
    memset(label, 'q', 64);
    memcpy(label + 64, ".example.com", sizeof(".example.com"));
    dns_query(&s.base, label, DNS_T_TXT, &a);
    assert_int_equal(a.status, DNS_BADNAME);
    dns_query(&s.base, "", DNS_T_TXT, &a);
    assert_int_equal(a.status, DNS_BADNAME);
    dns_query(&s.base, NULL, DNS_T_TXT, &a);
    assert_int_equal(a.status, DNS_BADNAME);
    assert_int_equal(s.calls, 1); /* never asked */
    dns_query(NULL, "example.com", DNS_T_TXT, &a);
    assert_int_equal(a.status, DNS_TEMPFAIL);

    /* release calls the hook once and clears the records */
    static const struct dns_rr rr = { (const uint8_t *)"\x01x", 2 };
    a = (struct dns_answer){ DNS_OK, 1, &rr, count_release, NULL };
    dns_answer_release(&a);
    assert_int_equal(released, 1);
    assert_int_equal(a.count, 0);
    assert_null(a.rrs);
    dns_answer_release(&a);
    assert_int_equal(released, 1);
    dns_answer_release(NULL);

    dns_resolver_free(&s.base);
    assert_int_equal(s.destroyed, 1);
    dns_resolver_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(name_validity),
        cmocka_unit_test(names_of_things),
        cmocka_unit_test(server_from_env),
        cmocka_unit_test(query_checks_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
