/* An in-memory DNS zone: records keyed by (name, type), plus names that
 * "never answer" (to produce timeouts). It backs the in-memory resolver
 * (unit tests, benchmarks, `--dns-zone` offline use) and the test DNS server
 * (tests/support/testdns.c), so both serve exactly the same data.
 *
 * JSON form (the tests' zone files, and the RFC 7208 suite after
 * scripts/spf-suite-to-json.py):
 *   { "example.com": [
 *       {"type": "TXT",   "value": ["v=spf1 ", "-all"]},  (or one string)
 *       {"type": "SPF",   "value": "v=spf1 -all"},        (type 99)
 *       {"type": "A",     "value": "192.0.2.1"},
 *       {"type": "AAAA",  "value": "2001:db8::1"},
 *       {"type": "MX",    "value": [10, "mx.example.com"]},
 *       {"type": "PTR",   "value": "host.example.com"},
 *       {"type": "CNAME", "value": "other.example.com"},
 *       {"type": "TIMEOUT"} ],           any type without records never answers
 *                                        (where TIMEOUT appears does not matter)
 *     "slow.example.com": [{"type": "TIMEOUT"}] }   every query times out
 * A name listed with an empty array exists with no records (NODATA).
 * Names are case-insensitive; a trailing dot is ignored.
 *
 * Threads: lookups neither allocate nor lock, so any number of threads may
 * query a zone that nobody changes. Adding records needs exclusive access
 * (it may move the records earlier lookups returned); a zone served by the
 * test DNS server is changed under testdns_lock() or replaced whole with
 * testdns_set_zone(). */
#ifndef SESAME_DNS_ZONE_H
#define SESAME_DNS_ZONE_H
#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

struct dns_zone;

struct dns_zone *dns_zone_new(void);
void dns_zone_free(struct dns_zone *z);

/* Adds one record given as wire rdata. Returns 0 or -1 (bad name, no memory). */
int dns_zone_add_rdata(struct dns_zone *z, const char *name, uint16_t type,
                       const uint8_t *rdata, size_t len);
/* Adds one record in presentation form as in the JSON above ("TXT" takes a
 * single string, split into 255-byte strings when longer; use the JSON
 * loader for a chosen split). MX is "10 mx.example.com" ("0 ." is a null
 * MX); "TIMEOUT" (value ignored) is dns_zone_add_timeout(). */
int dns_zone_add(struct dns_zone *z, const char *name, const char *type,
                 const char *value);
/* Marks name so that queries for types it has no records of time out. */
int dns_zone_add_timeout(struct dns_zone *z, const char *name);
/* Makes name exist with no records (NODATA rather than NXDOMAIN). */
int dns_zone_add_empty(struct dns_zone *z, const char *name);

/* Loads the JSON form (replacing nothing: records are added). On error
 * returns -1 and writes a reason naming the offending name to err (records
 * of names before it stay added). A TXT/SPF value [] is one empty string. */
int dns_zone_load_json(struct dns_zone *z, const char *json, size_t len,
                       char *err, size_t errlen);
/* The same from an already parsed jansson object (the RFC 7208 suite holds
 * one zone per scenario). */
struct json_t;
int dns_zone_load_object(struct dns_zone *z, const struct json_t *obj,
                         char *err, size_t errlen);
int dns_zone_load_file(struct dns_zone *z, const char *path, char *err,
                       size_t errlen);

/* What the zone says about (name, type), CNAMEs NOT followed:
 * DNS_OK with the records, DNS_NXDOMAIN, DNS_NODATA, or DNS_TEMPFAIL for a
 * timeout. The rrs point into the zone and stay valid until it is freed or
 * changed. A CNAME at name is reported by *cname (NULL otherwise). */
enum dns_status dns_zone_lookup(const struct dns_zone *z, const char *name,
                                uint16_t type, const struct dns_rr **rrs,
                                size_t *count, const char **cname);

/* dns_zone_lookup() with CNAME chains followed (up to DNS_MAX_CNAME_CHAIN
 * CNAMEs; a longer chain or a loop is DNS_TEMPFAIL, like a resolver's
 * SERVFAIL). A name with a CNAME answers every other type through it, its
 * TIMEOUT flag notwithstanding. The status is the one of the last name. */
enum dns_status dns_zone_resolve(const struct dns_zone *z, const char *name,
                                 uint16_t type, const struct dns_rr **rrs,
                                 size_t *count);

/* A resolver answering from the zone (dns_zone_resolve; release is a
 * no-op, the rrs point into the zone). The zone must outlive the resolver
 * and must not change while it is queried. Queries from several threads
 * are fine. It counts queries for tests. */
struct dns_resolver *dns_zone_resolver_new(const struct dns_zone *z);
unsigned long dns_zone_resolver_queries(const struct dns_resolver *r);

#endif
