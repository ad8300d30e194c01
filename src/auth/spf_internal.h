/* Internals shared by the SPF record parser (spf_record.c), the macro
 * expander (spf_macro.c) and the evaluator (spf_eval.c). Not for use
 * outside auth/spf_*.c, except by tests and fuzz targets. */
#ifndef SESAME_AUTH_SPF_INTERNAL_H
#define SESAME_AUTH_SPF_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>

#include "auth/spf.h"
#include "util/buf.h"
#include "util/strview.h"

enum spf_mech {
    SPF_M_ALL,
    SPF_M_INCLUDE,
    SPF_M_A,
    SPF_M_MX,
    SPF_M_PTR,
    SPF_M_IP4,
    SPF_M_IP6,
    SPF_M_EXISTS,
};

/* One directive: [qualifier] mechanism. */
struct spf_term {
    enum spf_mech mech;
    enum spf_result qualifier;  /* PASS, FAIL, SOFTFAIL or NEUTRAL */
    struct sv domain_spec;      /* macro-string; len 0 when absent */
    uint8_t cidr4, cidr6;       /* a, mx, ip4, ip6: prefix lengths */
    uint8_t addr[16];           /* ip4 (4 bytes) and ip6 */
    struct sv text;             /* the mechanism as written, no qualifier */
};

/* A parsed record. Views point into the text given to spf_record_parse,
 * which must outlive the record. */
#define SPF_INLINE_TERMS 16
struct spf_record {
    struct spf_term *terms;   /* inline_terms, or the heap past 16 terms */
    size_t nterms;
    struct spf_term inline_terms[SPF_INLINE_TERMS];
    struct sv redirect;   /* domain-spec of redirect=, len 0 if none */
    struct sv exp;        /* domain-spec of exp=, len 0 if none */
    bool has_redirect, has_exp, has_all;
};

/* 1 when txt (len bytes) is an SPF version 1 record: "v=spf1" followed by
 * a space or the end (RFC 7208 §4.5). */
bool spf_record_is_spf1(const char *txt, size_t len);

/* Parses a whole record (it must be an SPF record). Returns 0, or -1 on any
 * syntax error (RFC 7208 §4.6: permerror before evaluation) with the reason
 * in err. On success free with spf_record_free. */
__attribute__((warn_unused_result))
int spf_record_parse(const char *txt, size_t len, struct spf_record *out,
                     char *err, size_t errlen);
void spf_record_free(struct spf_record *r);

/* Macro expansion context (RFC 7208 §7.3). */
struct spf_macro_ctx {
    struct sv sender;        /* %{s}: local@domain */
    struct sv local;         /* %{l} */
    struct sv sender_domain; /* %{o} */
    struct sv domain;        /* %{d}: the current <domain> */
    const struct spf_ip *ip; /* %{i} %{c} %{v} */
    struct sv helo;          /* %{h} */
    struct sv receiver;      /* %{r}, exp only */
    time_t now;              /* %{t}, exp only */
    /* %{p}: the validated name of the client IP, looked up on demand.
     * Writes it to out (buf reset first); NULL callback → "unknown". */
    int (*ptr_name)(void *arg, struct sv domain, struct buf *out);
    void *ptr_arg;
};

/* Checks macro-string syntax (RFC 7208 §7.1). exp_text allows the
 * explanation-only letters c, r, t. Returns 0 or -1 with a reason. */
int spf_macro_check(struct sv s, bool exp_text, char *err, size_t errlen);

/* Checks domain-spec syntax: a macro-string ending in domain-end (§7.1).
 * Returns 0 or -1 with a reason. */
int spf_domain_spec_check(struct sv s, char *err, size_t errlen);

/* Expands s into out (reset first). Domain names (exp_text false) are
 * truncated from the left to 253 characters (§4.8). Returns 0, or -1 on a
 * syntax error or when the result would exceed SPF_MAX_EXPANSION_LEN. */
__attribute__((warn_unused_result))
int spf_macro_expand(struct sv s, bool exp_text, const struct spf_macro_ctx *ctx,
                     struct buf *out);

/* The reverse-lookup name of ip: "4.3.2.1.in-addr.arpa" or the 32 nibbles
 * of ip6.arpa, into out (at least 74 bytes). */
void spf_ip_reverse_name(const struct spf_ip *ip, char *out, size_t outlen);

#endif
