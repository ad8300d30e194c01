/* A DNS server for tests: serves a struct dns_zone on 127.0.0.1 (UDP and
 * TCP, one ephemeral port) from a background thread, so the real resolver
 * path (libunbound) can be tested without the internet.
 *
 * What it answers (all authoritative, RD echoed, RA set):
 * - records of the asked type, the CNAME chain leading to them included
 *   (DNS_MAX_CNAME_CHAIN at most; a longer chain or loop is SERVFAIL);
 * - NXDOMAIN / NODATA with a synthetic SOA in the authority section;
 * - nothing at all for a name with the TIMEOUT flag and no record of the
 *   type (so the client times out);
 * - EDNS0: the client's advertised UDP size is honoured (512 without OPT);
 *   an answer that does not fit has TC set and is served whole over TCP.
 * Records carry a TTL of 0 by default, so a caching client asks again each
 * time and zone changes are seen at once; testdns_set_ttl() changes that.
 *
 * Threads: the server thread reads the zone under the server's mutex. To
 * change the served zone, either replace it with testdns_set_zone() (then
 * free the old one), or hold testdns_lock() while adding to it. */
#ifndef SESAME_TESTS_TESTDNS_H
#define SESAME_TESTS_TESTDNS_H
#include <stdint.h>

#include "dns/dns_zone.h"

struct testdns;

/* Starts serving zone (not owned; it must outlive the server or be
 * replaced) on 127.0.0.1, an ephemeral port. NULL on failure. */
struct testdns *testdns_start(struct dns_zone *zone);
/* The same on a chosen port (0: ephemeral). */
struct testdns *testdns_start_on(struct dns_zone *zone, unsigned short port);
unsigned short testdns_port(const struct testdns *t);
const char *testdns_addr(const struct testdns *t); /* "127.0.0.1:PORT" */
/* Swaps the served zone atomically; the caller frees the old one after. */
void testdns_set_zone(struct testdns *t, struct dns_zone *zone);
/* TTL of answers and SOA minimum (negative caching), default 0. */
void testdns_set_ttl(struct testdns *t, uint32_t ttl);
/* Exclusive access to the served zone, to change it in place. */
void testdns_lock(struct testdns *t);
void testdns_unlock(struct testdns *t);
/* Queries received (UDP and TCP, answered or not). */
unsigned long testdns_queries(const struct testdns *t);
/* Of those, the ones received over TCP. */
unsigned long testdns_tcp_queries(const struct testdns *t);
/* Stops the server thread and frees the server (not the zone). */
void testdns_stop(struct testdns *t);

#endif
