/* The DKIM signer: the only code that touches private keys (ARCHITECTURE.md,
 * like OpenSMTPD's ca.c). Its interface is narrow on purpose, so that it can
 * move into a process of its own: load a key once, then turn the SHA-256
 * digest of the canonicalized header data into the octets of b=.
 *
 * Key files are PEM (PKCS#8 or PKCS#1 RSA, PKCS#8 Ed25519), read once,
 * refused when group- or world-accessible. The signer is thread-safe. */
#ifndef SESAME_AUTH_DKIM_SIGNER_H
#define SESAME_AUTH_DKIM_SIGNER_H
#include <stdbool.h>
#include <stddef.h>

#include "auth/dkim.h"
#include "util/buf.h"

struct dkim_signer;

/* Reads the PEM key at path: a regular file, mode without group/other
 * bits, at most DKIM_MAX_KEY_FILE octets, RSA of DKIM_MIN_RSA_BITS ..
 * DKIM_MAX_RSA_BITS or Ed25519. NULL with a one-line reason in err. */
struct dkim_signer *dkim_signer_load(const char *path, char *err, size_t errlen);
/* The same from PEM in memory (tests, benchmarks). */
struct dkim_signer *dkim_signer_from_pem(const char *pem, size_t len, char *err,
                                         size_t errlen);
void dkim_signer_free(struct dkim_signer *s);

/* rsa-sha256 or ed25519-sha256: the algorithm follows the key. */
enum dkim_algorithm dkim_signer_algorithm(const struct dkim_signer *s);
unsigned dkim_signer_bits(const struct dkim_signer *s);

/* Signs the SHA-256 digest of the canonicalized header data: RSASSA-PKCS1-
 * v1_5 with the SHA-256 DigestInfo (RFC 6376 §3.3.1), or PureEdDSA over the
 * 32-octet digest (RFC 8463 §3). sig has room for DKIM_MAX_SIG_LEN octets.
 * Returns 0, or -1. */
int dkim_signer_sign(struct dkim_signer *s, const unsigned char digest[32],
                     unsigned char *sig, size_t *siglen);

/* The key record to publish, "v=DKIM1; k=rsa; p=..." (public half only). */
int dkim_signer_record(const struct dkim_signer *s, struct buf *out);

/* Generates a key and writes it to path (PEM PKCS#8, mode 0600, created;
 * an existing file is not overwritten). RSA: bits 0 means
 * DKIM_DEFAULT_RSA_BITS; under 2048 needs force and under DKIM_MIN_RSA_BITS
 * is always refused. record receives the key record to publish.
 * DKIM_EINPUT for bad arguments, DKIM_ESYS for I/O or crypto failures. */
enum dkim_status dkim_keygen(enum dkim_algorithm alg, unsigned bits, bool force,
                             const char *path, struct buf *record, char *err, size_t errlen);

#endif
