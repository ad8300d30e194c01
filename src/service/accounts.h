/* Accounts and their secrets. An account gets an API key and SMTP
 * credentials at creation; they are shown once and kept only as argon2id
 * hashes (libsodium crypto_pwhash_str). Verifying a secret costs one
 * argon2id (tens of ms), so a process keeps a cache of secrets it has
 * already verified, keyed by a keyed BLAKE2b of the secret with a random
 * per-process key; a hit costs microseconds and a wrong secret never hits.
 * The CLI (`sesame account create`) and the HTTP API share these paths. */
#ifndef SESAME_SERVICE_ACCOUNTS_H
#define SESAME_SERVICE_ACCOUNTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define ACCOUNT_SECRET_MAX 128

/* Sandbox defaults (SPEC §1.5) */
#define ACCOUNT_SANDBOX_MAX_24H  200
#define ACCOUNT_SANDBOX_MAX_RATE 1
#define ACCOUNT_PRODUCTION_MAX_24H  50000
#define ACCOUNT_PRODUCTION_MAX_RATE 14

struct account_secrets {
    char api_key[ACCOUNT_SECRET_MAX];        /* "sk_<id>_<secret>" */
    char smtp_username[ACCOUNT_SECRET_MAX];  /* "smtp_<id>" */
    char smtp_password[ACCOUNT_SECRET_MAX];
};

/* true when name is 1..STORE_NAME_MAX of [A-Za-z0-9._-] */
bool account_name_valid(const char *name);

/* Creates the account and its credentials in one transaction. max_24h and
 * max_rate of 0 take the sandbox or production defaults. Returns STORE_OK,
 * STORE_EXISTS (name taken), or STORE_ERROR with err filled. */
int account_create(struct store *st, const char *name, bool production,
                   uint32_t max_24h, uint32_t max_rate,
                   struct store_account *out, struct account_secrets *secrets,
                   char *err, size_t errlen);

/* The argon2id cost of new hashes (crypto_pwhash opslimit, memlimit);
 * defaults to libsodium's INTERACTIVE (2, 64 MiB); values under its MIN
 * are raised to MIN. For tests, which use the MIN values to run fast.
 * Verification uses the cost recorded in each hash. */
void account_set_hash_cost(unsigned long long ops, size_t mem);

/* The process-wide cache of verified secrets (thread-safe), at most
 * ACCOUNT_CRED_CACHE_ENTRIES; the oldest entry of a full set makes room. */
#define ACCOUNT_CRED_CACHE_ENTRIES 4096
struct cred_cache;
struct cred_cache *cred_cache_new(void);
void cred_cache_free(struct cred_cache *c);

/* Each returns STORE_OK with the account filled, STORE_NOTFOUND for a wrong
 * or malformed secret (no detail: the caller says "invalid credentials"),
 * or STORE_ERROR. cache may be NULL. */
int account_verify_api_key(struct store *st, struct cred_cache *cache,
                           const char *api_key, struct store_account *out);
int account_verify_smtp(struct store *st, struct cred_cache *cache,
                        const char *username, const char *password,
                        struct store_account *out);

/* May this account send as address (envelope sender or From)? True when it
 * has verified the address itself or its domain. A verified domain covers
 * every address in it, not its subdomains. */
int account_may_send_as(struct store *st, int64_t account_id, const char *address, bool *ok);

#endif
