/* Failed-authentication limiter (see ratelimit.h): a fixed table of
 * AUTHFAIL_TABLE_SIZE entries, found through a keyed hash (SipHash with a
 * random per-limiter key, so nobody can aim many addresses at one chain),
 * each holding a ring of the times of its last max_failures failures, and
 * kept in least-recently-used order for eviction. One mutex guards it all:
 * every operation is a few hundred instructions.
 *
 * It does not know what a failure is or what to answer a blocked client:
 * SMTP AUTH and the API decide that. */
#include "service/ratelimit.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS   (AUTHFAIL_TABLE_SIZE * 2)
#define KEY_MAX    64          /* an IP's text form, or "PREFIX::/64" */
#define EVICT_SCAN 8           /* LRU entries looked at for a non-blocked victim */
#define NIL        (-1)

struct slot {
    char key[KEY_MAX];
    uint64_t hash;
    int32_t next;              /* hash chain */
    int32_t prev_lru, next_lru;/* towards the most / least recently used */
    uint32_t head, count;      /* ring: index of the oldest failure, failures held */
    bool used;
};

struct authfail_limiter {
    pthread_mutex_t mu;
    unsigned max, window;
    unsigned nused;
    int32_t mru, lru;          /* ends of the LRU list */
    int32_t free_head;         /* unused slots, chained through next */
    unsigned char hkey[crypto_shorthash_KEYBYTES];
    int32_t buckets[NBUCKETS];
    struct slot slots[AUTHFAIL_TABLE_SIZE];
    time_t *ring;              /* AUTHFAIL_TABLE_SIZE * max */
};

struct authfail_limiter *authfail_new(unsigned max_failures, unsigned window_s)
{
    if (sodium_init() < 0)
        return NULL;
    struct authfail_limiter *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->max = max_failures > AUTHFAIL_MAX_TRACKED ? AUTHFAIL_MAX_TRACKED : max_failures;
    l->window = window_s ? window_s : 1;
    if (l->max) {
        l->ring = calloc((size_t)AUTHFAIL_TABLE_SIZE * l->max, sizeof *l->ring);
        if (!l->ring) {
            free(l);
            return NULL;
        }
    }
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l->ring);
        free(l);
        return NULL;
    }
    randombytes_buf(l->hkey, sizeof l->hkey);
    for (size_t i = 0; i < NBUCKETS; i++)
        l->buckets[i] = NIL;
    for (int32_t i = 0; i < AUTHFAIL_TABLE_SIZE; i++)
        l->slots[i].next = i + 1 < AUTHFAIL_TABLE_SIZE ? i + 1 : NIL;
    l->free_head = 0;
    l->mru = l->lru = NIL;
    return l;
}

void authfail_free(struct authfail_limiter *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l->ring);
    free(l);
}

/* The table key of an address: IPv6 reduced to its /64, IPv4-mapped IPv6
 * to the IPv4 address; anything else (not an address) as given, truncated. */
static void make_key(const char *ip, char key[KEY_MAX])
{
    unsigned char a6[16];
    if (ip && strchr(ip, ':') && inet_pton(AF_INET6, ip, a6) == 1) {
        static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (memcmp(a6, mapped, sizeof mapped) == 0) {
            if (inet_ntop(AF_INET, a6 + 12, key, KEY_MAX))
                return;
        } else {
            memset(a6 + 8, 0, 8);
            char txt[INET6_ADDRSTRLEN];
            if (inet_ntop(AF_INET6, a6, txt, sizeof txt)) {
                size_t n = strlen(txt);
                if (n + 4 < KEY_MAX) {
                    memcpy(key, txt, n);
                    memcpy(key + n, "/64", 4);
                    return;
                }
            }
        }
    }
    size_t n = ip ? strnlen(ip, KEY_MAX - 1) : 0;
    if (n)
        memcpy(key, ip, n);
    key[n] = '\0';
}

static uint64_t key_hash(const struct authfail_limiter *l, const char *key)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)key, strlen(key), l->hkey);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

static int32_t find(const struct authfail_limiter *l, const char *key, uint64_t h)
{
    for (int32_t i = l->buckets[h % NBUCKETS]; i != NIL; i = l->slots[i].next)
        if (l->slots[i].hash == h && strcmp(l->slots[i].key, key) == 0)
            return i;
    return NIL;
}

static void lru_unlink(struct authfail_limiter *l, int32_t i)
{
    struct slot *s = &l->slots[i];
    if (s->prev_lru != NIL)
        l->slots[s->prev_lru].next_lru = s->next_lru;
    else
        l->mru = s->next_lru;
    if (s->next_lru != NIL)
        l->slots[s->next_lru].prev_lru = s->prev_lru;
    else
        l->lru = s->prev_lru;
    s->prev_lru = s->next_lru = NIL;
}

static void lru_push_front(struct authfail_limiter *l, int32_t i)
{
    struct slot *s = &l->slots[i];
    s->prev_lru = NIL;
    s->next_lru = l->mru;
    if (l->mru != NIL)
        l->slots[l->mru].prev_lru = i;
    l->mru = i;
    if (l->lru == NIL)
        l->lru = i;
}

static void slot_remove(struct authfail_limiter *l, int32_t i)
{
    struct slot *s = &l->slots[i];
    int32_t *pp = &l->buckets[s->hash % NBUCKETS];
    while (*pp != i)
        pp = &l->slots[*pp].next;
    *pp = s->next;
    lru_unlink(l, i);
    s->used = false;
    s->next = l->free_head;
    l->free_head = i;
    l->nused--;
}

static time_t *ring_of(struct authfail_limiter *l, int32_t i)
{
    return l->ring + (size_t)i * l->max;
}

/* Drops the failures that left the window. */
static void expire(struct authfail_limiter *l, int32_t i, time_t now)
{
    struct slot *s = &l->slots[i];
    time_t *ring = ring_of(l, i);
    while (s->count > 0 && ring[s->head] <= now - (time_t)l->window) {
        s->head = (s->head + 1) % l->max;
        s->count--;
    }
}

/* The slot to reuse when the table is full: among the EVICT_SCAN least
 * recently used, the first that is not blocked (so a flood of one-off
 * addresses does not flush the ones being refused), else the oldest. */
static int32_t victim(struct authfail_limiter *l, time_t now)
{
    int32_t i = l->lru;
    for (int n = 0; i != NIL && n < EVICT_SCAN; n++, i = l->slots[i].prev_lru) {
        expire(l, i, now);
        if (l->slots[i].count < l->max)
            return i;
    }
    return l->lru;
}

/* The entry of key, created when absent and create is set (under mu). */
static int32_t lookup(struct authfail_limiter *l, const char *key, bool create, time_t now)
{
    uint64_t h = key_hash(l, key);
    int32_t i = find(l, key, h);
    if (i != NIL || !create)
        return i;
    if (l->free_head == NIL)
        slot_remove(l, victim(l, now));
    i = l->free_head;
    struct slot *s = &l->slots[i];
    l->free_head = s->next;
    memset(s, 0, sizeof *s);
    memcpy(s->key, key, strlen(key) + 1);
    s->hash = h;
    s->used = true;
    s->next = l->buckets[h % NBUCKETS];
    l->buckets[h % NBUCKETS] = i;
    s->prev_lru = s->next_lru = NIL;
    lru_push_front(l, i);
    l->nused++;
    return i;
}

/* Seconds until the entry of key stops being blocked, 0 if it is not (under mu). */
static unsigned blocked_for(struct authfail_limiter *l, const char *key, time_t now)
{
    int32_t i = lookup(l, key, false, now);
    if (i == NIL)
        return 0;
    expire(l, i, now);
    struct slot *s = &l->slots[i];
    if (s->count == 0) {
        slot_remove(l, i);
        return 0;
    }
    if (s->count < l->max)
        return 0;
    time_t oldest = ring_of(l, i)[s->head];
    time_t left = oldest + (time_t)l->window - now;
    if (left < 1)
        left = 1;
    if (left > (time_t)l->window)   /* the clock went back */
        left = (time_t)l->window;
    return (unsigned)left;
}

unsigned authfail_retry_after(struct authfail_limiter *l, const char *ip, time_t now)
{
    if (!l || l->max == 0)
        return 0;
    char key[KEY_MAX];
    make_key(ip, key);
    pthread_mutex_lock(&l->mu);
    unsigned r = blocked_for(l, key, now);
    pthread_mutex_unlock(&l->mu);
    return r;
}

bool authfail_blocked(struct authfail_limiter *l, const char *ip, time_t now)
{
    return authfail_retry_after(l, ip, now) > 0;
}

void authfail_record(struct authfail_limiter *l, const char *ip, time_t now)
{
    if (!l || l->max == 0)
        return;
    char key[KEY_MAX];
    make_key(ip, key);
    pthread_mutex_lock(&l->mu);
    int32_t i = lookup(l, key, true, now);
    struct slot *s = &l->slots[i];
    expire(l, i, now);
    time_t *ring = ring_of(l, i);
    if (s->count < l->max) {
        ring[(s->head + s->count) % l->max] = now;
        s->count++;
    } else {
        ring[s->head] = now;
        s->head = (s->head + 1) % l->max;
    }
    lru_unlink(l, i);
    lru_push_front(l, i);
    pthread_mutex_unlock(&l->mu);
}

void authfail_clear(struct authfail_limiter *l, const char *ip)
{
    if (!l || l->max == 0)
        return;
    char key[KEY_MAX];
    make_key(ip, key);
    pthread_mutex_lock(&l->mu);
    int32_t i = lookup(l, key, false, 0);
    if (i != NIL)
        slot_remove(l, i);
    pthread_mutex_unlock(&l->mu);
}

unsigned authfail_tracked(struct authfail_limiter *l)
{
    if (!l)
        return 0;
    pthread_mutex_lock(&l->mu);
    unsigned n = l->nused;
    pthread_mutex_unlock(&l->mu);
    return n;
}
