/* The failed-authentication limiter: blocking after N failures within the
 * window, unblocking as the oldest failure ages out, clear after a success,
 * IPv6 counted per /64, and a table that stays bounded (and keeps refusing
 * a blocked address) when 100,000 other addresses fail once each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>

#include "service/ratelimit.h"

#define T0 ((time_t)1700000000)

static void blocks_after_n(void **state)
{
    struct authfail_limiter *l = authfail_new(3, 60);
    assert_non_null(l);
    assert_false(authfail_blocked(l, "192.0.2.1", T0));
    authfail_record(l, "192.0.2.1", T0);
    authfail_record(l, "192.0.2.1", T0 + 1);
    assert_false(authfail_blocked(l, "192.0.2.1", T0 + 2));
    assert_int_equal(authfail_retry_after(l, "192.0.2.1", T0 + 2), 0);
    authfail_record(l, "192.0.2.1", T0 + 2);
    assert_true(authfail_blocked(l, "192.0.2.1", T0 + 2));
    /* the oldest failure (T0) leaves the window at T0 + 60 */
    assert_int_equal(authfail_retry_after(l, "192.0.2.1", T0 + 2), 58);
    assert_true(authfail_blocked(l, "192.0.2.1", T0 + 59));
    /* another address is not affected */
    assert_false(authfail_blocked(l, "192.0.2.2", T0 + 2));
    authfail_record(l, "192.0.2.2", T0 + 2);
    assert_false(authfail_blocked(l, "192.0.2.2", T0 + 3));
    authfail_free(l);
}

static void unblocks_after_window(void **state)
{
    struct authfail_limiter *l = authfail_new(3, 60);
    authfail_record(l, "192.0.2.1", T0);
    authfail_record(l, "192.0.2.1", T0 + 10);
    authfail_record(l, "192.0.2.1", T0 + 20);
    assert_true(authfail_blocked(l, "192.0.2.1", T0 + 59));
    /* T0 ages out: two failures left in the window */
    assert_false(authfail_blocked(l, "192.0.2.1", T0 + 60));
    /* one more failure blocks again, until T0 + 10 ages out */
    authfail_record(l, "192.0.2.1", T0 + 61);
    assert_true(authfail_blocked(l, "192.0.2.1", T0 + 61));
    assert_int_equal(authfail_retry_after(l, "192.0.2.1", T0 + 61), 9);
    assert_false(authfail_blocked(l, "192.0.2.1", T0 + 70));
    /* long after, the entry is gone entirely */
    assert_false(authfail_blocked(l, "192.0.2.1", T0 + 1000));
    assert_int_equal(authfail_tracked(l), 0);
    authfail_free(l);
}

static void failures_while_blocked_extend(void **state)
{
    struct authfail_limiter *l = authfail_new(2, 60);
    authfail_record(l, "192.0.2.1", T0);
    authfail_record(l, "192.0.2.1", T0 + 1);
    assert_true(authfail_blocked(l, "192.0.2.1", T0 + 30));
    /* a client that keeps failing keeps the last max failures in the window */
    authfail_record(l, "192.0.2.1", T0 + 50);
    assert_true(authfail_blocked(l, "192.0.2.1", T0 + 60));
    assert_false(authfail_blocked(l, "192.0.2.1", T0 + 110));
    authfail_free(l);
}

static void clear_after_success(void **state)
{
    struct authfail_limiter *l = authfail_new(2, 600);
    authfail_record(l, "198.51.100.7", T0);
    authfail_record(l, "198.51.100.7", T0);
    assert_true(authfail_blocked(l, "198.51.100.7", T0));
    authfail_clear(l, "198.51.100.7");
    assert_false(authfail_blocked(l, "198.51.100.7", T0));
    assert_int_equal(authfail_tracked(l), 0);
    authfail_record(l, "198.51.100.7", T0);
    assert_false(authfail_blocked(l, "198.51.100.7", T0));
    authfail_clear(l, "203.0.113.1");   /* unknown: nothing happens */
    assert_int_equal(authfail_tracked(l), 1);
    authfail_free(l);
}

static void ipv6_per_64(void **state)
{
    struct authfail_limiter *l = authfail_new(3, 60);
    authfail_record(l, "2001:db8:1:2::1", T0);
    authfail_record(l, "2001:db8:1:2:ffff::9", T0);
    authfail_record(l, "2001:DB8:1:2:aaaa:bbbb:cccc:dddd", T0);
    assert_true(authfail_blocked(l, "2001:db8:1:2::77", T0));
    assert_false(authfail_blocked(l, "2001:db8:1:3::1", T0));
    /* IPv4-mapped addresses count as the IPv4 address */
    authfail_record(l, "::ffff:192.0.2.9", T0);
    authfail_record(l, "192.0.2.9", T0);
    authfail_record(l, "::ffff:192.0.2.9", T0);
    assert_true(authfail_blocked(l, "192.0.2.9", T0));
    assert_false(authfail_blocked(l, "192.0.2.10", T0));
    authfail_free(l);
}

static void disabled_and_null(void **state)
{
    struct authfail_limiter *l = authfail_new(0, 60);
    assert_non_null(l);
    for (int i = 0; i < 100; i++)
        authfail_record(l, "192.0.2.1", T0);
    assert_false(authfail_blocked(l, "192.0.2.1", T0));
    authfail_free(l);
    /* NULL limiter (none configured) and NULL ip are harmless */
    assert_false(authfail_blocked(NULL, "192.0.2.1", T0));
    authfail_record(NULL, "192.0.2.1", T0);
    authfail_clear(NULL, "192.0.2.1");
    l = authfail_new(1, 60);
    authfail_record(l, NULL, T0);
    assert_true(authfail_blocked(l, NULL, T0));
    assert_false(authfail_blocked(l, "", T0 + 60));
    authfail_free(l);
}

static void eviction_bounded(void **state)
{
    struct authfail_limiter *l = authfail_new(3, 600);
    /* one address blocked first */
    for (int i = 0; i < 3; i++)
        authfail_record(l, "203.0.113.66", T0);
    assert_true(authfail_blocked(l, "203.0.113.66", T0));
    char ip[64];
    for (unsigned i = 0; i < 100000; i++) {
        snprintf(ip, sizeof ip, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        authfail_record(l, ip, T0 + 1);
        assert_true(authfail_tracked(l) <= AUTHFAIL_TABLE_SIZE);
    }
    assert_int_equal(authfail_tracked(l), AUTHFAIL_TABLE_SIZE);
    /* the blocked address survived the flood of one-off failures */
    assert_true(authfail_blocked(l, "203.0.113.66", T0 + 2));
    /* the most recent addresses are still counted... */
    snprintf(ip, sizeof ip, "10.%u.%u.%u", (99999u >> 16) & 255, (99999u >> 8) & 255, 99999u & 255);
    authfail_record(l, ip, T0 + 2);
    authfail_record(l, ip, T0 + 2);
    assert_true(authfail_blocked(l, ip, T0 + 2));
    /* ...and the oldest were evicted (one more failure does not block) */
    authfail_record(l, "10.0.0.0", T0 + 2);
    authfail_record(l, "10.0.0.0", T0 + 2);
    assert_false(authfail_blocked(l, "10.0.0.0", T0 + 2));
    authfail_free(l);
}

static void cap_on_max(void **state)
{
    struct authfail_limiter *l = authfail_new(100000, 60);
    assert_non_null(l);
    for (int i = 0; i < AUTHFAIL_MAX_TRACKED - 1; i++)
        authfail_record(l, "192.0.2.1", T0);
    assert_false(authfail_blocked(l, "192.0.2.1", T0));
    authfail_record(l, "192.0.2.1", T0);
    assert_true(authfail_blocked(l, "192.0.2.1", T0));
    authfail_free(l);
}

struct thread_arg {
    struct authfail_limiter *l;
    unsigned base;
};

static void *hammer(void *p)
{
    struct thread_arg *a = p;
    char ip[64];
    for (unsigned i = 0; i < 20000; i++) {
        snprintf(ip, sizeof ip, "10.%u.%u.%u", a->base, (i >> 8) & 255, i & 255);
        authfail_record(a->l, ip, T0);
        (void)authfail_blocked(a->l, ip, T0);
        if (i % 7 == 0)
            authfail_clear(a->l, ip);
    }
    return NULL;
}

static void threads(void **state)
{
    struct authfail_limiter *l = authfail_new(5, 60);
    pthread_t t[4];
    struct thread_arg args[4];
    for (unsigned i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){ l, i };
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &args[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_true(authfail_tracked(l) <= AUTHFAIL_TABLE_SIZE);
    authfail_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(blocks_after_n),
        cmocka_unit_test(unblocks_after_window),
        cmocka_unit_test(failures_while_blocked_extend),
        cmocka_unit_test(clear_after_success),
        cmocka_unit_test(ipv6_per_64),
        cmocka_unit_test(disabled_and_null),
        cmocka_unit_test(eviction_bounded),
        cmocka_unit_test(cap_on_max),
        cmocka_unit_test(threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
