/* DKIM signing and verification (RFC 6376, RFC 8301, RFC 8463).
 *
 * The engine does no I/O of its own: public keys come from the dns_resolver
 * it is given (TXT selector._domainkey.domain), the time from a dkim_clock,
 * and private keys stay behind the dkim_signer interface (dkim_signer.h).
 * Messages are fed in chunks of any size; the body hash is computed as the
 * octets flow, so the body is never held in one buffer. Line ends may be
 * CRLF or bare LF (a bare LF is read as CRLF).
 *
 * Algorithms: rsa-sha256 and ed25519-sha256 sign and verify; rsa-sha1 is
 * recognised but never passes (RFC 8301). Results follow RFC 8601 §2.7.1;
 * docs/dkim.md says which failure maps to which result. */
#ifndef SESAME_AUTH_DKIM_H
#define SESAME_AUTH_DKIM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dns/dns.h"
#include "util/buf.h"
#include "util/limits.h"

struct dkim_signer;  /* dkim_signer.h */

enum dkim_result {
    DKIM_PASS = 0,
    DKIM_FAIL,        /* the signature or the body hash does not verify */
    DKIM_NEUTRAL,     /* signed, but not evaluated (more than DKIM_MAX_SIGNATURES) */
    DKIM_POLICY,      /* verifiable, but not acceptable: rsa-sha1 (RFC 8301) */
    DKIM_TEMPERROR,   /* the key could not be fetched now (DNS failure) */
    DKIM_PERMERROR,   /* broken signature or key record, no key, revoked, expired ... */
};

enum dkim_algorithm {
    DKIM_ALG_RSA_SHA256 = 0,
    DKIM_ALG_ED25519_SHA256,
    DKIM_ALG_RSA_SHA1,        /* recognised when verifying; never signed, never a pass */
};

/* Zero is relaxed, the sensible default for signing; a signature without
 * c= is simple/simple (RFC 6376 §3.5), which the parser handles. */
enum dkim_canon {
    DKIM_CANON_RELAXED = 0,
    DKIM_CANON_SIMPLE,
};

/* The time, passed in so that tests can set it. */
struct dkim_clock {
    time_t now;
};

const char *dkim_result_name(enum dkim_result r);      /* "pass", ... */
const char *dkim_algorithm_name(enum dkim_algorithm a); /* "rsa-sha256", ... */
const char *dkim_canon_name(enum dkim_canon c);         /* "relaxed", "simple" */
/* "relaxed/simple" or "relaxed" (body simple) → 0, or -1 when invalid. */
int dkim_canon_parse(const char *text, enum dkim_canon *header, enum dkim_canon *body);

/* ---- Signing ---- */

struct dkim_sign_options {
    const char *domain;            /* d= (required) */
    const char *selector;          /* s= (required) */
    enum dkim_canon header_canon;  /* c= (zero: relaxed/relaxed) */
    enum dkim_canon body_canon;
    /* h= exactly as given ("from:to:subject", must name From), or NULL for
     * the default: the RFC 6376 §5.4.1 recommended fields that are present,
     * with From, Subject, Date, To, Cc, Reply-To, Message-ID and the MIME
     * fields listed once more than present (over-signed), so that a copy
     * added in transit breaks the signature. */
    const char *headers;
    const char *identity;          /* i= ("user@sub.d" or "@d"), NULL: none */
    time_t now;                    /* t= (always emitted) */
    unsigned long expire;          /* x= now + expire when > 0 */
    bool body_length;              /* emit l= (never by default: RFC 6376 §8.2) */
};

enum dkim_status {
    DKIM_OK = 0,
    DKIM_EINPUT,     /* bad options or a message that cannot be signed (no From) */
    DKIM_ESYS,       /* out of memory, crypto failure */
};

/* Streaming signer: begin, write the message in chunks, finish. finish
 * appends to out the DKIM-Signature field to put on top of the message:
 * folded with CRLF, ending with CRLF. err receives a one-line reason. */
struct dkim_sign_ctx;
struct dkim_sign_ctx *dkim_sign_begin(struct dkim_signer *signer,
                                      const struct dkim_sign_options *opt,
                                      enum dkim_status *status, char *err, size_t errlen);
enum dkim_status dkim_sign_write(struct dkim_sign_ctx *ctx, const char *p, size_t len);
enum dkim_status dkim_sign_finish(struct dkim_sign_ctx *ctx, struct buf *out, char *err,
                                  size_t errlen);
void dkim_sign_free(struct dkim_sign_ctx *ctx);

/* The same for a message in one buffer. */
enum dkim_status dkim_sign_message(struct dkim_signer *signer,
                                   const struct dkim_sign_options *opt,
                                   const char *msg, size_t len, struct buf *out,
                                   char *err, size_t errlen);

/* ---- Verification ---- */

struct dkim_signature_result {
    enum dkim_result result;
    char domain[DNS_MAX_NAME_LEN + 1];    /* d= ("" when unreadable) */
    char selector[DNS_MAX_NAME_LEN + 1];  /* s= */
    char algorithm[32];                   /* a= as written ("" when absent) */
    char identity[DNS_MAX_NAME_LEN + 66]; /* i= or "@d" */
    char b_prefix[DKIM_B_PREFIX_LEN + 1]; /* start of b= for header.b (RFC 6008) */
    char reason[256];                     /* why, in words ("" on pass) */
    bool testing;                         /* the key says t=y */
};

/* One entry per DKIM-Signature field, top to bottom. */
struct dkim_results {
    size_t count;
    struct dkim_signature_result *sigs;
};
void dkim_results_free(struct dkim_results *r);

/* A cache of parsed public keys keyed by the exact key record, shared by
 * verifications (and threads): it saves the DER decoding of the same key
 * for every message. It never changes what a record means, so it needs no
 * expiry of its own; DNS TTLs stay the resolver's business. */
struct dkim_keycache;
struct dkim_keycache *dkim_keycache_new(size_t max_entries);
void dkim_keycache_free(struct dkim_keycache *c);

/* Streaming verifier. Either write the whole message in chunks, or give
 * header fields one by one (dkim_verify_header, each a whole field, with
 * or without its final CRLF), then dkim_verify_eoh, then body chunks with
 * dkim_verify_body. Keys are looked up at the end of the header section.
 * Functions return 0, or -1 when memory ran out; a message that cannot be
 * verified is a result, not an error. */
struct dkim_verify_ctx;
struct dkim_verify_ctx *dkim_verify_begin(struct dns_resolver *dns,
                                          const struct dkim_clock *clock);
void dkim_verify_set_keycache(struct dkim_verify_ctx *ctx, struct dkim_keycache *cache);
int dkim_verify_write(struct dkim_verify_ctx *ctx, const char *p, size_t len);
int dkim_verify_header(struct dkim_verify_ctx *ctx, const char *field, size_t len);
int dkim_verify_eoh(struct dkim_verify_ctx *ctx);
int dkim_verify_body(struct dkim_verify_ctx *ctx, const char *p, size_t len);
/* Fills out (count 0 when unsigned); free it with dkim_results_free. */
int dkim_verify_finish(struct dkim_verify_ctx *ctx, struct dkim_results *out);
void dkim_verify_free(struct dkim_verify_ctx *ctx);

/* The same for a message in one buffer. */
int dkim_verify_message(struct dns_resolver *dns, const struct dkim_clock *clock,
                        const char *msg, size_t len, struct dkim_results *out);

#endif
