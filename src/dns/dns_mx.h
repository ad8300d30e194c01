/* Where to deliver mail for a domain (RFC 5321 §5.1): its MX hosts by
 * preference, equal preferences in random order, each with its addresses
 * (A then AAAA by default; dns_mx_route_order chooses); the domain itself
 * as an implicit MX when it has no MX but has an address; a null MX
 * (RFC 7505: one MX "." of preference 0) is a permanent failure.
 * Synchronous, through the resolver interface (delivery calls it from
 * worker threads). See docs/delivery_client.md. */
#ifndef SESAME_DNS_DNS_MX_H
#define SESAME_DNS_DNS_MX_H
#include <stdbool.h>
#include <stddef.h>

#include "dns/dns.h"
#include "util/limits.h"

#define MX_MAX_HOSTS 16
#define MX_MAX_ADDRS 8           /* per host */

struct mx_host {
    char name[DNS_MAX_NAME_LEN + 1];
    unsigned preference;
    size_t naddrs;
    char addrs[MX_MAX_ADDRS][46];   /* text form: "192.0.2.1", "2001:db8::1" */
};

enum mx_status {
    MX_OK = 0,                   /* hosts[] filled (at least one with an address) */
    MX_NULL,                     /* RFC 7505 null MX: the domain takes no mail */
    MX_NXDOMAIN,                 /* the domain does not exist: permanent */
    MX_NO_ADDRESS,               /* no MX and no A/AAAA, or no MX host resolves: permanent */
    MX_TEMPFAIL,                 /* DNS did not answer: try later */
};

struct mx_route {
    enum mx_status status;
    size_t nhosts;
    struct mx_host hosts[MX_MAX_HOSTS];
    bool implicit;               /* no MX: the domain's own address */
    char why[256];               /* in words, for logs and bounce texts */
};

/* random: returns a uniform value in [0, n) (NULL: no shuffling, for tests). */
void dns_mx_route(struct dns_resolver *dns, const char *domain, struct mx_route *out,
                  unsigned (*random)(unsigned n));

/* Added: the order of each host's addresses (dns_mx_route is IPV4_FIRST);
 * the _ONLY orders do not ask for the other family at all (a host without
 * IPv6 connectivity). */
enum mx_addr_order {
    MX_ADDR_IPV4_FIRST = 0,
    MX_ADDR_IPV6_FIRST,
    MX_ADDR_IPV4_ONLY,
    MX_ADDR_IPV6_ONLY,
};
void dns_mx_route_order(struct dns_resolver *dns, const char *domain, struct mx_route *out,
                        unsigned (*random)(unsigned n), enum mx_addr_order order);

#endif
