/* The resolver interface the authentication engine asks for DNS answers.
 *
 * A resolver maps (name, type) to a list of raw rdata (wire format, as in the
 * answer section after CNAMEs were followed) or a classified failure. The
 * engine never opens a socket: implementations are libunbound
 * (dns_unbound.c, the real path) and an in-memory zone (dns_zone.c, for unit
 * tests and benchmarks). Typed views of rdata come from dns_rdata.h.
 *
 * Queries are synchronous and implementations are thread-safe, so a worker
 * thread can run a whole SPF/DKIM/DMARC evaluation (docs/dns.md). */
#ifndef SESAME_DNS_DNS_H
#define SESAME_DNS_DNS_H
#include <stddef.h>
#include <stdint.h>

enum dns_type {
    DNS_T_A = 1,
    DNS_T_NS = 2,
    DNS_T_CNAME = 5,
    DNS_T_SOA = 6,
    DNS_T_PTR = 12,
    DNS_T_MX = 15,
    DNS_T_TXT = 16,
    DNS_T_AAAA = 28,
    DNS_T_SPF = 99,
};

enum dns_status {
    DNS_OK = 0,       /* count >= 1 records of the asked type */
    DNS_NXDOMAIN,     /* the name does not exist (RCODE 3) */
    DNS_NODATA,       /* the name exists but has no record of that type */
    DNS_TEMPFAIL,     /* timeout, SERVFAIL, REFUSED, network error */
    DNS_BADNAME,      /* the query name is not a valid DNS name (never sent) */
};

struct dns_rr {
    const uint8_t *data; /* rdata, wire format, exactly len bytes */
    size_t len;
};

/* An answer. Fill by dns_query(); release with dns_answer_release(). */
struct dns_answer {
    enum dns_status status;
    size_t count;             /* records in rrs (0 unless DNS_OK) */
    const struct dns_rr *rrs;
    /* owner's private release hook */
    void (*release)(struct dns_answer *);
    void *priv;
};

struct dns_resolver;
struct dns_resolver_ops {
    /* Never returns without setting out->status. name is presentation form,
     * with or without the trailing dot. */
    void (*query)(struct dns_resolver *r, const char *name, uint16_t type,
                  struct dns_answer *out);
    void (*destroy)(struct dns_resolver *r);
};
struct dns_resolver {
    const struct dns_resolver_ops *ops;
};

void dns_query(struct dns_resolver *r, const char *name, uint16_t type,
               struct dns_answer *out);
void dns_answer_release(struct dns_answer *a);
void dns_resolver_free(struct dns_resolver *r);

const char *dns_status_name(enum dns_status s);
const char *dns_type_name(uint16_t type); /* "TXT", ..., "TYPE123" style not needed: NULL if unknown */
/* The reverse, case-insensitive: "txt" → DNS_T_TXT; -1 if unknown. */
int dns_type_from_name(const char *name);

/* Checks a presentation-form name: labels 1..63 octets, total <= 253
 * (trailing dot ignored). Returns 1 if valid, 0 if not.
 * There is no escape syntax: every octet but '.' is part of a label (SPF
 * macro expansions can produce spaces, '%', ':' ...), only NUL is refused.
 * The root ("" or ".") is not a valid query name. */
int dns_name_is_valid(const char *name, size_t len);

/* The libunbound resolver (dns_unbound.c).
 * server: NULL → the system resolvers (/etc/resolv.conf) with libunbound's
 * cache; "ADDR" or "ADDR:PORT" or "[V6]:PORT" → every query forwarded to that
 * server, special-use zones (.test, .invalid, private reverse zones, ...)
 * included. timeout_ms: per query, 0 → DNS_QUERY_TIMEOUT_MS.
 * On failure returns NULL and writes a reason to err. */
struct dns_resolver *dns_unbound_new(const char *server, unsigned timeout_ms,
                                     char *err, size_t errlen);

/* The server named by --dns or $SESAME_DNS (--dns wins), or NULL. */
const char *dns_server_from_env(const char *flag_value);

#endif
