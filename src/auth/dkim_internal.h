/* Internals shared by the dkim_*.c files, the unit tests and the fuzzers:
 * the tag-list parser, base64, canonicalization, key records, signature
 * fields and the header hash. Not an API for the rest of sesame. */
#ifndef SESAME_AUTH_DKIM_INTERNAL_H
#define SESAME_AUTH_DKIM_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth/dkim.h"
#include "mail/mail_header.h"
#include "util/buf.h"
#include "util/strview.h"

#define DKIM_SHA256_LEN 32

/* Header field names equal but for ASCII case (names are printable ASCII,
 * mail_field_name_valid). Inline and locale-free: strncasecmp calls were a
 * visible share of signing. */
static inline bool dkim_name_eq(struct sv a, struct sv b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++) {
        unsigned x = (unsigned char)a.p[i], y = (unsigned char)b.p[i];
        if (x != y && ((x | 0x20) != (y | 0x20) || (x | 0x20) - 'a' >= 26u))
            return false;
    }
    return true;
}

/* ---- Tag-list (RFC 6376 §3.2) ---- */

struct dkim_tag {
    struct sv name;
    struct sv value;   /* leading and trailing FWS removed; may hold inner FWS */
    const char *after_eq; /* just after the '=' (value.p minus the leading FWS) */
};

struct dkim_taglist {
    size_t count;
    struct dkim_tag tags[DKIM_MAX_TAGS];
};

/* Parses buf[0..len): tag-spec *(";" tag-spec) [";"]. Whitespace may be
 * folded (CRLF or LF followed by WSP). Rejects duplicate tags, names that
 * are not ALPHA *(ALPHA / DIGIT / "_"), values with octets outside
 * %x21-3A / %x3C-7E, NULs, and more than DKIM_MAX_TAGS tags. Empty
 * tag-specs (";;") are skipped. Returns 0, or -1 with a reason in err. */
int dkim_taglist_parse(const char *buf, size_t len, struct dkim_taglist *out, char *err,
                       size_t errlen);
/* Inline: with a literal name the length and the comparison fold. */
static inline const struct dkim_tag *dkim_taglist_find(const struct dkim_taglist *tl,
                                                       const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < tl->count; i++)
        if (tl->tags[i].name.len == n && memcmp(tl->tags[i].name.p, name, n) == 0)
            return &tl->tags[i];
    return NULL;
}

/* ---- base64 (RFC 4648, whitespace and folding ignored as in b=, bh=, p=) ---- */

/* Decodes in into out (capacity cap). Returns 0, or -1 with *why set
 * ("invalid character", "bad padding", "too long", ...). */
int dkim_base64_decode(struct sv in, unsigned char *out, size_t cap, size_t *outlen,
                       const char **why);
int dkim_base64_encode(const unsigned char *in, size_t len, struct buf *out);

/* ---- Canonicalization (RFC 6376 §3.4) ---- */

/* Appends the canonical form of one header field (raw octets as in
 * mail_field.raw, name through last line, no final terminator) followed by
 * CRLF. Returns 0 or -1 (cap). */
int dkim_canon_header(enum dkim_canon c, const char *field, size_t len, struct buf *out);

/* Streaming body canonicalizer: any chunking gives the same output (a CRLF
 * split across chunks, trailing empty lines, WSP runs across chunks). The
 * canonical octets go to a SHA-256 context, or to a buffer (tests, fuzz). */
struct dkim_body {
    enum dkim_canon canon;
    EVP_MD_CTX *md;          /* owned; NULL when sink is used */
    struct buf *sink;        /* not owned */
    bool limited;            /* l= */
    uint64_t limit;
    uint64_t hashed;         /* octets given to md/sink (at most limit) */
    uint64_t total;          /* canonical body length, l= ignored */
    uint64_t empty_lines;    /* empty lines held back (dropped at the end) */
    bool any;                /* something was emitted */
    bool line_content;       /* the current line has content */
    bool wsp;                /* relaxed: WSP held back in the current line */
    bool cr;                 /* the last octet was a CR not yet resolved */
    bool failed;
    size_t nstage;
    char stage[8192];
};

/* md: when non-NULL a fresh SHA-256 context is made; otherwise octets go to
 * sink. limit < 0: none. Returns 0 or -1 (OpenSSL failure). */
int dkim_body_init(struct dkim_body *b, enum dkim_canon c, int64_t limit, struct buf *sink);
int dkim_body_update(struct dkim_body *b, const char *p, size_t len);
/* Ends the body; digest receives the SHA-256 when hashing. 0 or -1. */
int dkim_body_final(struct dkim_body *b, unsigned char digest[DKIM_SHA256_LEN]);
void dkim_body_free(struct dkim_body *b);

/* The header hash (RFC 6376 §3.7): for every name in names, the last
 * instance not yet used, bottom up (none left: nothing, the "null string"),
 * then sig_field (the DKIM-Signature field with its b= value emptied),
 * canonicalized without its final CRLF. With scratch NULL the canonical
 * octets stream into the hash through a stack stage (what signing and
 * verifying do); otherwise scratch receives them all (tests look). */
int dkim_header_digest(enum dkim_canon hc, const struct mail_field *fields, size_t nfields,
                       const struct sv *names, size_t nnames, const char *sig_field,
                       size_t sig_len, struct buf *scratch,
                       unsigned char digest[DKIM_SHA256_LEN]);

/* ---- Key records (RFC 6376 §3.6.1, RFC 8463 §4) ---- */

enum dkim_key_type { DKIM_KEY_RSA = 0, DKIM_KEY_ED25519 };

struct dkim_key {
    enum dkim_key_type type;
    bool testing;     /* t=y */
    bool strict;      /* t=s: i= must be exactly d= */
    bool sha256_ok;   /* h= absent or lists sha256 */
    bool sha1_ok;     /* h= absent or lists sha1 */
    unsigned bits;    /* RSA modulus size */
    EVP_PKEY *pkey;   /* owned */
    EVP_PKEY_CTX *vctx;  /* RSA: verify_init, PKCS#1 v1.5, SHA-256 done (owned) */
    EVP_MD_CTX *edctx;   /* Ed25519: DigestVerifyInit done (owned) */
};

/* Parses a key record (TXT strings joined). Returns 0, or -1 with the reason
 * (every -1 is a permerror: bad syntax, v= not DKIM1, unknown k=, s= not
 * email, empty p= = revoked, undecodable key, RSA shorter than
 * DKIM_MIN_RSA_BITS). */
int dkim_key_parse(const char *rec, size_t len, struct dkim_key *out, char *err, size_t errlen);
void dkim_key_clear(struct dkim_key *k);
/* dst = a copy of src with its own verification context (setting one up
 * costs as much as a quarter of an RSA-2048 verification; a copy does not). */
int dkim_key_dup(const struct dkim_key *src, struct dkim_key *dst);

/* ---- Signature fields (RFC 6376 §3.5) ---- */

struct dkim_sig {
    enum dkim_algorithm alg;
    enum dkim_canon hc, bc;
    char domain[DNS_MAX_NAME_LEN + 1];
    char selector[DNS_MAX_NAME_LEN + 1];
    char identity[DNS_MAX_NAME_LEN + 66];  /* i=, or "@" d= */
    char algorithm[32];
    size_t nnames;
    struct sv names[DKIM_MAX_SIGNED_HEADERS];
    unsigned char bh[DKIM_SHA256_LEN];
    unsigned char b[DKIM_MAX_SIG_LEN];
    size_t blen;
    bool has_l, has_t, has_x;
    uint64_t l, t, x;
    size_t b_off, b_len;   /* the b= value inside the field (to empty it) */
    char b_prefix[DKIM_B_PREFIX_LEN + 1];
};

/* Parses a DKIM-Signature field (raw: "DKIM-Signature: v=1; ..."). What is
 * readable (d=, s=, a=, b= prefix) is filled in even on failure, so that
 * results name the signature. Returns 0, or -1 with the reason. */
int dkim_sig_parse(const char *field, size_t len, struct dkim_sig *out, char *err,
                   size_t errlen);

/* Is name a syntactically valid domain for d= / the domain of i= (labels of
 * letters, digits, '-' and '_'; A-labels welcome)? */
bool dkim_domain_valid(struct sv d);

/* Writes a reason (vsnprintf into err when errlen > 0); returns -1. */
__attribute__((format(printf, 3, 4)))
int dkim_err(char *err, size_t errlen, const char *fmt, ...);

#endif
