/* Tests of the test DNS server itself (tests/support/testdns.c), with raw
 * DNS messages over UDP and TCP: header flags, question echo, CNAME chains,
 * negative answers with SOA, silence for TIMEOUT names, EDNS0 sizes and
 * truncation, a 64 KiB answer over TCP, garbage, zone swaps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "dns/dns_rdata.h"
#include "dns/dns_zone.h"
#include "testdns.h"
#include "util/buf.h"

#define BIG_TXT_STRINGS 250 /* x 255 octets: a ~64 KB answer */

struct fixture {
    struct dns_zone *zone;
    struct testdns *srv;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->zone = dns_zone_new();
    dns_zone_add(f->zone, "a.example.test", "A", "192.0.2.1");
    dns_zone_add(f->zone, "a.example.test", "SPF", "v=spf1 -all");
    dns_zone_add(f->zone, "alias.example.test", "CNAME", "a.example.test");
    dns_zone_add(f->zone, "loop.example.test", "CNAME", "loop.example.test");
    dns_zone_add_timeout(f->zone, "slow.example.test");
    char s[256];
    memset(s, 'm', 255);
    s[255] = '\0';
    for (int i = 0; i < 12; i++) { /* 3 KB of TXT: over 512 and 1232 */
        s[0] = (char)('a' + i);
        assert_int_equal(dns_zone_add(f->zone, "mid.example.test", "TXT", s), 0);
    }
    /* one record of many strings, a ~64 KB message */
    struct buf json;
    buf_init(&json, 1 << 20);
    assert_int_equal(buf_append_str(&json, "{\"big.example.test\": [{\"type\": \"TXT\", \"value\": ["), 0);
    for (int i = 0; i < BIG_TXT_STRINGS; i++) {
        memset(s, 'a' + i % 26, 255);
        assert_int_equal(buf_printf(&json, "%s\"%s\"", i ? "," : "", s), 0);
    }
    assert_int_equal(buf_append_str(&json, "]}]}"), 0);
    char err[256];
    assert_int_equal(dns_zone_load_json(f->zone, json.data, json.len, err, sizeof(err)), 0);
    buf_free(&json);
    f->srv = testdns_start(f->zone);
    assert_non_null(f->srv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    testdns_stop(f->srv);
    dns_zone_free(f->zone);
    free(f);
    return 0;
}

/* ---- a tiny DNS client ---- */

static size_t make_query(uint8_t *q, uint16_t id, const char *name, uint16_t type,
                         int rd, unsigned edns)
{
    size_t n = 12;
    memset(q, 0, 12);
    q[0] = (uint8_t)(id >> 8);
    q[1] = (uint8_t)id;
    q[2] = rd ? 0x01 : 0;
    q[5] = 1;
    int w = dns_wire_name(name, q + n, 256);
    assert_true(w > 0);
    n += (size_t)w;
    q[n++] = (uint8_t)(type >> 8);
    q[n++] = (uint8_t)type;
    q[n++] = 0;
    q[n++] = 1;
    if (edns) {
        q[11] = 1;
        const uint8_t opt[11] = { 0, 0, 41, (uint8_t)(edns >> 8), (uint8_t)edns, 0, 0, 0, 0, 0, 0 };
        memcpy(q + n, opt, sizeof(opt));
        n += sizeof(opt);
    }
    return n;
}

static int connect_to(const struct testdns *t, int type)
{
    int fd = socket(AF_INET, type, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(testdns_port(t)) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static int wait_readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, ms) == 1;
}

/* Returns the reply length, or -1 when nothing came within ms. */
static ssize_t udp_ask(const struct testdns *t, const uint8_t *q, size_t qlen,
                       uint8_t *resp, size_t cap, int ms)
{
    int fd = connect_to(t, SOCK_DGRAM);
    assert_int_equal(send(fd, q, qlen, 0), (ssize_t)qlen);
    ssize_t n = wait_readable(fd, ms) ? recv(fd, resp, cap, 0) : -1;
    close(fd);
    return n;
}

static int read_full(int fd, uint8_t *p, size_t n, int ms)
{
    size_t got = 0;
    while (got < n) {
        if (!wait_readable(fd, ms))
            return -1;
        ssize_t r = recv(fd, p + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static ssize_t tcp_read_msg(int fd, uint8_t *resp, size_t cap, int ms)
{
    uint8_t l[2];
    if (read_full(fd, l, 2, ms) != 0)
        return -1;
    size_t len = (size_t)l[0] << 8 | l[1];
    assert_true(len <= cap);
    return read_full(fd, resp, len, ms) == 0 ? (ssize_t)len : -1;
}

static ssize_t tcp_ask(const struct testdns *t, const uint8_t *q, size_t qlen,
                       uint8_t *resp, size_t cap, int ms)
{
    int fd = connect_to(t, SOCK_STREAM);
    uint8_t frame[2] = { (uint8_t)(qlen >> 8), (uint8_t)qlen };
    assert_int_equal(send(fd, frame, 2, 0), 2);
    assert_int_equal(send(fd, q, qlen, 0), (ssize_t)qlen);
    ssize_t n = tcp_read_msg(fd, resp, cap, ms);
    close(fd);
    return n;
}

struct rr {
    uint16_t type;
    const uint8_t *rdata;
    size_t rdlen;
};

struct reply {
    uint16_t id, flags;
    unsigned qd, an, ns, ar;
    struct rr rrs[16];
    size_t nrrs;
};

static size_t skip_name(const uint8_t *m, size_t len, size_t off)
{
    while (off < len) {
        uint8_t l = m[off];
        if ((l & 0xC0) == 0xC0)
            return off + 2;
        off += (size_t)l + 1;
        if (l == 0)
            return off;
    }
    fail_msg("bad name in reply");
    return len;
}

static void parse_reply(const uint8_t *m, size_t len, struct reply *r)
{
    assert_true(len >= 12);
    memset(r, 0, sizeof(*r));
    r->id = (uint16_t)(m[0] << 8 | m[1]);
    r->flags = (uint16_t)(m[2] << 8 | m[3]);
    r->qd = (unsigned)(m[4] << 8 | m[5]);
    r->an = (unsigned)(m[6] << 8 | m[7]);
    r->ns = (unsigned)(m[8] << 8 | m[9]);
    r->ar = (unsigned)(m[10] << 8 | m[11]);
    size_t off = 12;
    for (unsigned i = 0; i < r->qd; i++)
        off = skip_name(m, len, off) + 4;
    for (unsigned i = 0; i < r->an + r->ns + r->ar; i++) {
        off = skip_name(m, len, off);
        assert_true(off + 10 <= len);
        struct rr *rr = &r->rrs[r->nrrs < 16 ? r->nrrs : 15];
        rr->type = (uint16_t)(m[off] << 8 | m[off + 1]);
        rr->rdlen = (size_t)(m[off + 8] << 8 | m[off + 9]);
        rr->rdata = m + off + 10;
        off += 10 + rr->rdlen;
        assert_true(off <= len);
        r->nrrs++;
    }
    assert_int_equal(off, len); /* nothing left over */
}

#define QR 0x8000
#define AA 0x0400
#define TC 0x0200
#define RD 0x0100
#define RA 0x0080
#define RCODE(r) ((r).flags & 0xF)

/* ---- tests ---- */

static void answers_with_flags_and_question(void **state)
{
    struct fixture *f = *state;
    uint8_t q[512], resp[65536];
    struct reply r;
    size_t qlen = make_query(q, 0x1234, "A.Example.TEST", DNS_T_A, 1, 0);
    ssize_t n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    assert_true(n > 0);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.id, 0x1234);
    assert_int_equal(r.flags & (QR | AA | TC | RD | RA), QR | AA | RD | RA);
    assert_int_equal(RCODE(r), 0);
    assert_int_equal(r.qd, 1);
    assert_int_equal(r.an, 1);
    assert_int_equal(r.ar, 0);
    /* the question comes back exactly as sent, case included */
    assert_memory_equal(resp + 12, q + 12, qlen - 12);
    assert_int_equal(r.rrs[0].type, DNS_T_A);
    assert_memory_equal(r.rrs[0].rdata, "\xc0\x00\x02\x01", 4);

    /* RD=0 is echoed as 0 */
    qlen = make_query(q, 7, "a.example.test", DNS_T_SPF, 0, 0);
    n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.flags & RD, 0);
    assert_int_equal(r.an, 1);
    assert_int_equal(r.rrs[0].type, DNS_T_SPF);
    assert_true(testdns_queries(f->srv) >= 2);
}

static void negative_answers_carry_soa(void **state)
{
    struct fixture *f = *state;
    uint8_t q[512], resp[4096];
    struct reply r;
    size_t qlen = make_query(q, 1, "nope.example.test", DNS_T_A, 1, 1232);
    ssize_t n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(RCODE(r), 3);
    assert_int_equal(r.flags & AA, AA);
    assert_int_equal(r.an, 0);
    assert_int_equal(r.ns, 1);
    assert_int_equal(r.rrs[0].type, 6);
    assert_int_equal(r.ar, 1); /* our OPT, since the query had one */
    assert_int_equal(r.rrs[1].type, 41);

    qlen = make_query(q, 2, "a.example.test", DNS_T_MX, 1, 0);
    n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(RCODE(r), 0);
    assert_int_equal(r.an, 0);
    assert_int_equal(r.ns, 1);
    assert_int_equal(r.rrs[0].type, 6);
    assert_int_equal(r.ar, 0);
}

static void cname_chain_in_answer(void **state)
{
    struct fixture *f = *state;
    uint8_t q[512], resp[4096];
    struct reply r;
    size_t qlen = make_query(q, 3, "alias.example.test", DNS_T_A, 1, 0);
    ssize_t n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(RCODE(r), 0);
    assert_int_equal(r.an, 2);
    assert_int_equal(r.rrs[0].type, DNS_T_CNAME);
    char target[256];
    assert_int_equal(dns_rdata_ptr(r.rrs[0].rdata, r.rrs[0].rdlen, target, sizeof(target)), 0);
    assert_string_equal(target, "a.example.test");
    assert_int_equal(r.rrs[1].type, DNS_T_A);
    /* a CNAME chain to a name without the type: the CNAME and a SOA */
    qlen = make_query(q, 4, "alias.example.test", DNS_T_TXT, 1, 0);
    n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.an, 1);
    assert_int_equal(r.ns, 1);
    /* a loop: SERVFAIL */
    qlen = make_query(q, 5, "loop.example.test", DNS_T_A, 1, 0);
    n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(RCODE(r), 2);
    assert_int_equal(r.an, 0);
}

static void timeout_names_get_no_reply(void **state)
{
    struct fixture *f = *state;
    uint8_t q[512], resp[4096];
    unsigned long before = testdns_queries(f->srv);
    size_t qlen = make_query(q, 6, "SLOW.example.test", DNS_T_TXT, 1, 0);
    assert_int_equal(udp_ask(f->srv, q, qlen, resp, sizeof(resp), 300), -1);
    assert_int_equal(tcp_ask(f->srv, q, qlen, resp, sizeof(resp), 300), -1);
    assert_int_equal(testdns_queries(f->srv), before + 2); /* counted all the same */
}

static void edns_sizes_and_truncation(void **state)
{
    struct fixture *f = *state;
    uint8_t q[512], resp[65536];
    struct reply r;
    /* no EDNS: 512 octets at most, so TC and no records */
    size_t qlen = make_query(q, 8, "mid.example.test", DNS_T_TXT, 1, 0);
    ssize_t n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    assert_true(n > 0 && n <= 512);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.flags & TC, TC);
    assert_int_equal(r.an, 0);
    assert_memory_equal(resp + 12, q + 12, qlen - 12);
    /* EDNS 1232: still too small */
    qlen = make_query(q, 9, "mid.example.test", DNS_T_TXT, 1, 1232);
    n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    assert_true(n > 0 && n <= 1232);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.flags & TC, TC);
    assert_int_equal(r.ar, 1);
    /* EDNS 4096: the whole answer over UDP */
    qlen = make_query(q, 10, "mid.example.test", DNS_T_TXT, 1, 4096);
    n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    assert_true(n > 1232 && n <= 4096);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.flags & TC, 0);
    assert_int_equal(r.an, 12);
    /* a size below 512 counts as 512 */
    qlen = make_query(q, 11, "a.example.test", DNS_T_A, 1, 100);
    n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.flags & TC, 0);
    assert_int_equal(r.an, 1);
    /* TCP: whole, whatever the advertised size */
    unsigned long tcp_before = testdns_tcp_queries(f->srv);
    qlen = make_query(q, 12, "mid.example.test", DNS_T_TXT, 1, 0);
    n = tcp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.flags & TC, 0);
    assert_int_equal(r.an, 12);
    assert_int_equal(testdns_tcp_queries(f->srv), tcp_before + 1);
}

static void answer_of_64k_over_tcp(void **state)
{
    struct fixture *f = *state;
    uint8_t q[512];
    uint8_t *resp = malloc(65536);
    struct reply r;
    size_t qlen = make_query(q, 13, "big.example.test", DNS_T_TXT, 1, 1232);
    ssize_t n = udp_ask(f->srv, q, qlen, resp, 65536, 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.flags & TC, TC);
    n = tcp_ask(f->srv, q, qlen, resp, 65536, 2000);
    assert_true(n > 64000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.an, 1);
    struct buf txt;
    buf_init(&txt, 65536);
    size_t ns;
    assert_int_equal(dns_rdata_txt(r.rrs[0].rdata, r.rrs[0].rdlen, &txt, &ns), 0);
    assert_int_equal(ns, BIG_TXT_STRINGS);
    assert_int_equal(txt.len, BIG_TXT_STRINGS * 255);
    assert_int_equal(txt.data[txt.len - 1], 'a' + (BIG_TXT_STRINGS - 1) % 26);
    buf_free(&txt);
    free(resp);
}

static void tcp_pipelined_queries(void **state)
{
    struct fixture *f = *state;
    uint8_t q1[512], q2[512], both[1100], resp[4096];
    struct reply r;
    size_t l1 = make_query(q1, 21, "a.example.test", DNS_T_A, 1, 0);
    size_t l2 = make_query(q2, 22, "nope.example.test", DNS_T_A, 1, 0);
    size_t n = 0;
    both[n++] = (uint8_t)(l1 >> 8);
    both[n++] = (uint8_t)l1;
    memcpy(both + n, q1, l1);
    n += l1;
    both[n++] = (uint8_t)(l2 >> 8);
    both[n++] = (uint8_t)l2;
    memcpy(both + n, q2, l2);
    n += l2;
    int fd = connect_to(f->srv, SOCK_STREAM);
    assert_int_equal(send(fd, both, n, 0), (ssize_t)n);
    ssize_t m = tcp_read_msg(fd, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)m, &r);
    assert_int_equal(r.id, 21);
    assert_int_equal(RCODE(r), 0);
    m = tcp_read_msg(fd, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)m, &r);
    assert_int_equal(r.id, 22);
    assert_int_equal(RCODE(r), 3);
    close(fd);
}

static void garbage_is_ignored_or_formerr(void **state)
{
    struct fixture *f = *state;
    uint8_t q[512], resp[4096];
    struct reply r;
    unsigned long before = testdns_queries(f->srv);
    /* too short, and a response: ignored */
    assert_int_equal(udp_ask(f->srv, (const uint8_t *)"\x01\x02\x03", 3, resp, sizeof(resp), 200), -1);
    size_t qlen = make_query(q, 30, "a.example.test", DNS_T_A, 1, 0);
    q[2] |= 0x80;
    assert_int_equal(udp_ask(f->srv, q, qlen, resp, sizeof(resp), 200), -1);
    /* two questions: FORMERR */
    qlen = make_query(q, 31, "a.example.test", DNS_T_A, 1, 0);
    q[5] = 2;
    ssize_t n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(RCODE(r), 1);
    assert_int_equal(r.id, 31);
    /* a compression pointer in the question: FORMERR */
    static const uint8_t ptrq[] = { 0, 32, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1 };
    n = udp_ask(f->srv, ptrq, sizeof(ptrq), resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(RCODE(r), 1);
    /* a truncated question: FORMERR */
    qlen = make_query(q, 33, "a.example.test", DNS_T_A, 1, 0);
    n = udp_ask(f->srv, q, qlen - 3, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(RCODE(r), 1);
    /* opcode STATUS: NOTIMP */
    qlen = make_query(q, 34, "a.example.test", DNS_T_A, 1, 0);
    q[2] |= 2 << 3;
    n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(RCODE(r), 4);
    /* class CH: REFUSED */
    qlen = make_query(q, 35, "a.example.test", DNS_T_A, 1, 0);
    q[qlen - 1] = 3;
    n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(RCODE(r), 5);
    /* an OPT with a truncated rdata is not EDNS, and no harm */
    qlen = make_query(q, 36, "a.example.test", DNS_T_A, 1, 4096);
    q[qlen - 1] = 9;
    n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.an, 1);
    assert_int_equal(r.ar, 0);
    /* TCP garbage: a frame of junk, then a real query on a new connection */
    int fd = connect_to(f->srv, SOCK_STREAM);
    assert_int_equal(send(fd, "\x00\x03\xff\xff\xff", 5, 0), 5);
    close(fd);
    /* still serving */
    qlen = make_query(q, 37, "a.example.test", DNS_T_A, 1, 0);
    n = tcp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.an, 1);
    /* parsed questions are counted (class CH, the OPT case, the last) */
    assert_true(testdns_queries(f->srv) >= before + 3);
}

static void zone_swap_and_edit(void **state)
{
    struct fixture *f = *state;
    uint8_t q[512], resp[4096];
    struct reply r;
    struct dns_zone *fresh = dns_zone_new();
    dns_zone_add(fresh, "new.example.test", "A", "192.0.2.77");
    testdns_set_zone(f->srv, fresh);
    size_t qlen = make_query(q, 40, "new.example.test", DNS_T_A, 1, 0);
    ssize_t n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.an, 1);
    qlen = make_query(q, 41, "a.example.test", DNS_T_A, 1, 0);
    n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(RCODE(r), 3);
    /* edit in place under the lock */
    testdns_lock(f->srv);
    dns_zone_add(fresh, "a.example.test", "A", "192.0.2.5");
    testdns_unlock(f->srv);
    n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    assert_int_equal(r.an, 1);
    /* TTLs follow testdns_set_ttl */
    testdns_set_ttl(f->srv, 3600);
    n = udp_ask(f->srv, q, qlen, resp, sizeof(resp), 2000);
    parse_reply(resp, (size_t)n, &r);
    const uint8_t *ttl = r.rrs[0].rdata - 6;
    assert_int_equal((ttl[0] << 24) | (ttl[1] << 16) | (ttl[2] << 8) | ttl[3], 3600);
    testdns_set_ttl(f->srv, 0);
    testdns_set_zone(f->srv, f->zone);
    dns_zone_free(fresh);
}

static void address(void **state)
{
    struct fixture *f = *state;
    char want[32];
    snprintf(want, sizeof(want), "127.0.0.1:%u", (unsigned)testdns_port(f->srv));
    assert_string_equal(testdns_addr(f->srv), want);
    assert_true(testdns_port(f->srv) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(answers_with_flags_and_question),
        cmocka_unit_test(negative_answers_carry_soa),
        cmocka_unit_test(cname_chain_in_answer),
        cmocka_unit_test(timeout_names_get_no_reply),
        cmocka_unit_test(edns_sizes_and_truncation),
        cmocka_unit_test(answer_of_64k_over_tcp),
        cmocka_unit_test(tcp_pipelined_queries),
        cmocka_unit_test(garbage_is_ignored_or_formerr),
        cmocka_unit_test(zone_swap_and_edit),
        cmocka_unit_test(address),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
