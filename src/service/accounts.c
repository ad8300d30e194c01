/* Accounts and their secrets (accounts.h): creation with an API key and SMTP
 * credentials drawn from libsodium's randombytes, argon2id hashes
 * (crypto_pwhash_str), verification with a cache of already verified
 * secrets, and the "may this account send as that address" question.
 *
 * Formats: API key "sk_" + 16 hex (the lookup id, stored in clear) + "_" +
 * 43 base64url characters (32 random bytes, hashed); SMTP user "smtp_" +
 * 16 hex, password 43 base64url characters (hashed). A wrong, malformed or
 * unknown secret is one answer, STORE_NOTFOUND; an unknown lookup id still
 * costs one argon2id verification (against a dummy hash of the current
 * cost), so timing does not tell valid ids from invalid ones.
 *
 * The cache key is a keyed BLAKE2b (random per-cache key) of kind, lookup,
 * the stored hash and the secret: a wrong secret never hits, and a changed
 * credential (new hash) misses. Secrets never reach the log. */
#include "service/accounts.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define API_KEY_PREFIX  "sk_"
#define SMTP_USER_PREFIX "smtp_"
#define ID_BYTES        8                                  /* lookup ids: 64 random bits */
#define ID_LEN          (2 * ID_BYTES)                     /* in hex */
#define SECRET_BYTES    32
#define SECRET_LEN      43                                 /* base64url, no padding */
#define API_KEY_LEN     (sizeof API_KEY_PREFIX - 1 + ID_LEN + 1 + SECRET_LEN)
#define SMTP_USER_LEN   (sizeof SMTP_USER_PREFIX - 1 + ID_LEN)
#define B64_VARIANT     sodium_base64_VARIANT_URLSAFE_NO_PADDING

_Static_assert(API_KEY_LEN < ACCOUNT_SECRET_MAX, "API key fits account_secrets");
_Static_assert(SMTP_USER_LEN <= STORE_LOOKUP_MAX, "SMTP user name fits the store");
_Static_assert(crypto_pwhash_STRBYTES <= STORE_HASH_MAX + 1, "argon2id string fits the store");
_Static_assert(sodium_base64_ENCODED_LEN(SECRET_BYTES, B64_VARIANT) == SECRET_LEN + 1,
               "secret length");

/* ---- libsodium, hashing cost, the dummy hash ---- */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_rc = -1;

static void sodium_start(void)
{
    sodium_rc = sodium_init() < 0 ? -1 : 0;
    if (sodium_rc != 0)
        log_msg(LOG_ERROR, "accounts", "error=\"libsodium cannot start\"");
}

static int sodium_ready(void)
{
    pthread_once(&sodium_once, sodium_start);
    return sodium_rc;
}

static pthread_mutex_t cost_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long cost_ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
static size_t cost_mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
static char dummy_hash[crypto_pwhash_STRBYTES];
static unsigned long long dummy_ops;
static size_t dummy_mem;

void account_set_hash_cost(unsigned long long ops, size_t mem)
{
    pthread_mutex_lock(&cost_mu);
    cost_ops = ops < crypto_pwhash_OPSLIMIT_MIN ? crypto_pwhash_OPSLIMIT_MIN : ops;
    cost_mem = mem < crypto_pwhash_MEMLIMIT_MIN ? crypto_pwhash_MEMLIMIT_MIN : mem;
    pthread_mutex_unlock(&cost_mu);
}

static void current_cost(unsigned long long *ops, size_t *mem)
{
    pthread_mutex_lock(&cost_mu);
    *ops = cost_ops;
    *mem = cost_mem;
    pthread_mutex_unlock(&cost_mu);
}

static int hash_secret(const char *secret, char out[crypto_pwhash_STRBYTES])
{
    unsigned long long ops;
    size_t mem;
    current_cost(&ops, &mem);
    if (crypto_pwhash_str(out, secret, strlen(secret), ops, mem) != 0) {
        log_msg(LOG_ERROR, "accounts", "error=\"argon2id hashing failed (out of memory?)\"");
        return -1;
    }
    return 0;
}

/* One verification against a hash of the current cost that nothing matches. */
static void dummy_verify(const char *secret, size_t len)
{
    char h[crypto_pwhash_STRBYTES];
    pthread_mutex_lock(&cost_mu);
    if (!dummy_hash[0] || dummy_ops != cost_ops || dummy_mem != cost_mem) {
        unsigned char pw[SECRET_BYTES];
        randombytes_buf(pw, sizeof pw);
        if (crypto_pwhash_str(dummy_hash, (const char *)pw, sizeof pw, cost_ops, cost_mem) == 0) {
            dummy_ops = cost_ops;
            dummy_mem = cost_mem;
        } else {
            dummy_hash[0] = '\0';
        }
        sodium_memzero(pw, sizeof pw);
    }
    memcpy(h, dummy_hash, sizeof h);
    pthread_mutex_unlock(&cost_mu);
    if (h[0] && crypto_pwhash_str_verify(h, secret, len) == 0)
        log_msg(LOG_ERROR, "accounts", "error=\"a secret matched the dummy hash\"");
}

/* ---- names and secrets ---- */

bool account_name_valid(const char *name)
{
    if (!name)
        return false;
    size_t n = strnlen(name, STORE_NAME_MAX + 1);
    if (n == 0 || n > STORE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static void random_id(char out[ID_LEN + 1])
{
    unsigned char b[ID_BYTES];
    randombytes_buf(b, sizeof b);
    sodium_bin2hex(out, ID_LEN + 1, b, sizeof b);
}

/* Secrets never start with '-' or '_': a leading '-' reads as an option
 * to command-line tools (swaks, curl -u, shells' getopt), so it is drawn
 * again (a loss of under 0.1 bit of 256). */
static void random_secret(char out[SECRET_LEN + 1])
{
    unsigned char b[SECRET_BYTES];
    do {
        randombytes_buf(b, sizeof b);
        sodium_bin2base64(out, SECRET_LEN + 1, b, sizeof b, B64_VARIANT);
    } while (out[0] == '-' || out[0] == '_');
    sodium_memzero(b, sizeof b);
}

static bool is_hex_id(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool is_b64url(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* ---- creation ---- */

struct new_creds {
    char api_id[ID_LEN + 1], api_secret[SECRET_LEN + 1];
    char smtp_user[SMTP_USER_LEN + 1], smtp_password[SECRET_LEN + 1];
    char api_hash[crypto_pwhash_STRBYTES], smtp_hash[crypto_pwhash_STRBYTES];
};

static int insert_all(struct store *st, struct store_account *a, const struct new_creds *c)
{
    int rc = store_account_insert(st, a);
    if (rc == STORE_OK)
        rc = store_credential_insert(st, a->id, STORE_CRED_API_KEY, c->api_id, c->api_hash);
    if (rc == STORE_OK)
        rc = store_credential_insert(st, a->id, STORE_CRED_SMTP, c->smtp_user, c->smtp_hash);
    return rc;
}

int account_create(struct store *st, const char *name, bool production,
                   uint32_t max_24h, uint32_t max_rate,
                   struct store_account *out, struct account_secrets *secrets,
                   char *err, size_t errlen)
{
    if (sodium_ready() != 0) {
        snprintf(err, errlen, "libsodium cannot start");
        return STORE_ERROR;
    }
    if (!account_name_valid(name)) {
        snprintf(err, errlen, "an account name is 1 to %d of A-Z a-z 0-9 . _ -", STORE_NAME_MAX);
        return STORE_ERROR;
    }
    if (name[0] == '_') {
        snprintf(err, errlen, "account names starting with '_' are reserved for the service");
        return STORE_ERROR;
    }
    struct store_account a = {
        .sandbox = !production,
        .max_24h = max_24h ? max_24h
                           : (production ? ACCOUNT_PRODUCTION_MAX_24H : ACCOUNT_SANDBOX_MAX_24H),
        .max_rate = max_rate ? max_rate
                             : (production ? ACCOUNT_PRODUCTION_MAX_RATE : ACCOUNT_SANDBOX_MAX_RATE),
    };
    snprintf(a.name, sizeof a.name, "%s", name);
    /* a taken name is found before two argon2id runs, and again at insert */
    struct store_account existing;
    int rc = store_account_get_by_name(st, name, &existing);
    if (rc == STORE_OK) {
        snprintf(err, errlen, "an account named '%s' already exists", existing.name);
        return STORE_EXISTS;
    }
    if (rc != STORE_NOTFOUND) {
        snprintf(err, errlen, "the store failed");
        return STORE_ERROR;
    }

    struct new_creds *c = sodium_malloc(sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    random_id(c->api_id);
    random_secret(c->api_secret);
    char sid[ID_LEN + 1];
    random_id(sid);
    snprintf(c->smtp_user, sizeof c->smtp_user, SMTP_USER_PREFIX "%s", sid);
    random_secret(c->smtp_password);
    if (hash_secret(c->api_secret, c->api_hash) != 0 ||
        hash_secret(c->smtp_password, c->smtp_hash) != 0) {
        snprintf(err, errlen, "cannot hash the secrets (out of memory?)");
        sodium_free(c);
        return STORE_ERROR;
    }

    if (store_begin(st) != STORE_OK) {
        snprintf(err, errlen, "the store failed");
        sodium_free(c);
        return STORE_ERROR;
    }
    rc = insert_all(st, &a, c);
    if (rc == STORE_OK && store_commit(st) != STORE_OK)
        rc = STORE_ERROR;
    else if (rc != STORE_OK)
        store_rollback(st);
    if (rc == STORE_EXISTS) {
        snprintf(err, errlen, "an account named '%s' already exists", name);
    } else if (rc != STORE_OK) {
        snprintf(err, errlen, "the store failed");
        rc = STORE_ERROR;
    } else {
        if (out)
            *out = a;
        if (secrets) {
            snprintf(secrets->api_key, sizeof secrets->api_key, API_KEY_PREFIX "%s_%s",
                     c->api_id, c->api_secret);
            snprintf(secrets->smtp_username, sizeof secrets->smtp_username, "%s", c->smtp_user);
            snprintf(secrets->smtp_password, sizeof secrets->smtp_password, "%s",
                     c->smtp_password);
        }
        log_msg(LOG_INFO, "accounts", "event=account_created account=%s id=%lld sandbox=%s",
                a.name, (long long)a.id, a.sandbox ? "yes" : "no");
    }
    sodium_free(c);     /* zeroes it */
    return rc;
}

/* ---- the cache of verified secrets ---- */

#define CACHE_WAYS 4
#define CACHE_SETS (ACCOUNT_CRED_CACHE_ENTRIES / CACHE_WAYS)
_Static_assert((CACHE_SETS & (CACHE_SETS - 1)) == 0, "sets are a power of two");

struct cred_entry {
    unsigned char digest[crypto_generichash_BYTES];
    int64_t account_id;
    uint64_t seq;               /* insertion order; 0 = empty */
};

struct cred_cache {
    pthread_mutex_t mu;
    unsigned char key[crypto_generichash_KEYBYTES];
    uint64_t seq;
    struct cred_entry e[CACHE_SETS][CACHE_WAYS];
};

struct cred_cache *cred_cache_new(void)
{
    if (sodium_ready() != 0)
        return NULL;
    struct cred_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    crypto_generichash_keygen(c->key);
    return c;
}

void cred_cache_free(struct cred_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    sodium_memzero(c, sizeof *c);
    free(c);
}

static void cache_digest(const struct cred_cache *c, enum store_cred_kind kind,
                         const char *lookup, const char *hash, const char *secret, size_t len,
                         unsigned char out[crypto_generichash_BYTES])
{
    crypto_generichash_state s;
    unsigned char k = (unsigned char)kind;
    crypto_generichash_init(&s, c->key, sizeof c->key, crypto_generichash_BYTES);
    crypto_generichash_update(&s, &k, 1);
    /* NUL-terminated fields: the encoding is unambiguous */
    crypto_generichash_update(&s, (const unsigned char *)lookup, strlen(lookup) + 1);
    crypto_generichash_update(&s, (const unsigned char *)hash, strlen(hash) + 1);
    crypto_generichash_update(&s, (const unsigned char *)secret, len);
    crypto_generichash_final(&s, out, crypto_generichash_BYTES);
    sodium_memzero(&s, sizeof s);
}

static struct cred_entry *cache_set(struct cred_cache *c, const unsigned char *digest)
{
    uint32_t h = (uint32_t)digest[0] | (uint32_t)digest[1] << 8 | (uint32_t)digest[2] << 16 |
                 (uint32_t)digest[3] << 24;
    return c->e[h & (CACHE_SETS - 1)];
}

static bool cache_hit(struct cred_cache *c, const unsigned char *digest, int64_t account_id)
{
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    struct cred_entry *set = cache_set(c, digest);
    for (int i = 0; i < CACHE_WAYS; i++)
        if (set[i].seq && sodium_memcmp(set[i].digest, digest, crypto_generichash_BYTES) == 0 &&
            set[i].account_id == account_id)
            hit = true;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

static void cache_put(struct cred_cache *c, const unsigned char *digest, int64_t account_id)
{
    pthread_mutex_lock(&c->mu);
    struct cred_entry *set = cache_set(c, digest), *victim = &set[0];
    for (int i = 0; i < CACHE_WAYS; i++) {
        if (!set[i].seq) {
            victim = &set[i];
            break;
        }
        if (set[i].seq < victim->seq)
            victim = &set[i];
    }
    memcpy(victim->digest, digest, crypto_generichash_BYTES);
    victim->account_id = account_id;
    victim->seq = ++c->seq;
    pthread_mutex_unlock(&c->mu);
}

/* ---- verification ---- */

static int verify_secret(struct store *st, struct cred_cache *cache, enum store_cred_kind kind,
                         const char *lookup, const char *secret, size_t len,
                         struct store_account *out)
{
    if (sodium_ready() != 0)
        return STORE_ERROR;
    char hash[STORE_HASH_MAX + 1];
    int64_t account_id = 0;
    int rc = store_credential_get(st, kind, lookup, &account_id, hash, sizeof hash);
    if (rc == STORE_NOTFOUND) {
        dummy_verify(secret, len);
        return STORE_NOTFOUND;
    }
    if (rc != STORE_OK)
        return STORE_ERROR;
    unsigned char digest[crypto_generichash_BYTES];
    bool hit = false;
    if (cache) {
        cache_digest(cache, kind, lookup, hash, secret, len, digest);
        hit = cache_hit(cache, digest, account_id);
    }
    if (!hit) {
        errno = 0;
        if (crypto_pwhash_str_verify(hash, secret, len) != 0) {
            if (errno == EINVAL)    /* libsodium's word for "does not match" */
                return STORE_NOTFOUND;
            log_msg(LOG_ERROR, "accounts", "event=verify_failed kind=%d error=\"%s\"", (int)kind,
                    errno == ENOMEM ? "out of memory" : "unreadable stored hash");
            return STORE_ERROR;
        }
        if (cache)
            cache_put(cache, digest, account_id);
    }
    struct store_account a;
    rc = store_account_get(st, account_id, &a);
    if (rc == STORE_OK && out)
        *out = a;
    return rc;
}

int account_verify_api_key(struct store *st, struct cred_cache *cache,
                           const char *api_key, struct store_account *out)
{
    const size_t plen = sizeof API_KEY_PREFIX - 1;
    if (!api_key || strnlen(api_key, API_KEY_LEN + 1) != API_KEY_LEN ||
        memcmp(api_key, API_KEY_PREFIX, plen) != 0 || api_key[plen + ID_LEN] != '_' ||
        !is_hex_id(api_key + plen, ID_LEN) ||
        !is_b64url(api_key + plen + ID_LEN + 1, SECRET_LEN))
        return STORE_NOTFOUND;
    char id[ID_LEN + 1];
    memcpy(id, api_key + plen, ID_LEN);
    id[ID_LEN] = '\0';
    return verify_secret(st, cache, STORE_CRED_API_KEY, id, api_key + plen + ID_LEN + 1,
                         SECRET_LEN, out);
}

int account_verify_smtp(struct store *st, struct cred_cache *cache,
                        const char *username, const char *password,
                        struct store_account *out)
{
    const size_t plen = sizeof SMTP_USER_PREFIX - 1;
    if (!username || !password || strnlen(username, SMTP_USER_LEN + 1) != SMTP_USER_LEN ||
        memcmp(username, SMTP_USER_PREFIX, plen) != 0 || !is_hex_id(username + plen, ID_LEN))
        return STORE_NOTFOUND;
    size_t len = strnlen(password, ACCOUNT_SECRET_MAX);
    if (len == 0 || len >= ACCOUNT_SECRET_MAX)
        return STORE_NOTFOUND;
    return verify_secret(st, cache, STORE_CRED_SMTP, username, password, len, out);
}

/* ---- sending identities ---- */

int account_may_send_as(struct store *st, int64_t account_id, const char *address, bool *ok)
{
    *ok = false;
    if (!address)
        return STORE_OK;
    size_t n = strnlen(address, SMTP_MAX_PATH_LEN + 1);
    if (n == 0 || n > SMTP_MAX_PATH_LEN)
        return STORE_OK;
    const char *at = memrchr(address, '@', n);
    if (!at || at == address || at + 1 == address + n)
        return STORE_OK;
    /* the store compares domains lower case */
    struct store_domain d;
    int rc = store_domain_get(st, account_id, at + 1, &d);
    if (rc == STORE_ERROR)
        return STORE_ERROR;
    if (rc == STORE_OK && d.status == STORE_ID_VERIFIED) {
        *ok = true;
        return STORE_OK;
    }
    struct store_sender s;
    rc = store_sender_get(st, account_id, address, &s);
    if (rc == STORE_ERROR)
        return STORE_ERROR;
    *ok = rc == STORE_OK && s.status == STORE_ID_VERIFIED;
    return STORE_OK;
}
