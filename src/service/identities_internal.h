/* What identities.c (adding, keys, JSON) and identity_check.c (the DNS
 * checks, the background checker) share. Not for use elsewhere. */
#ifndef SESAME_SERVICE_IDENTITIES_INTERNAL_H
#define SESAME_SERVICE_IDENTITIES_INTERNAL_H
#include <jansson.h>
#include <stdbool.h>

#include "service/identities.h"
#include "service/identity_records.h"

/* A domain's keys as record inputs: the rows (recently retired ones
 * included), their JSON for "dkim", and idrec_key views into the rows. */
struct key_json {
    json_t *arr;
    struct store_dkim_key *rows;     /* IDENTITY_MAX_KEYS, malloc'd */
    struct idrec_key keys[IDENTITY_MAX_KEYS];
    size_t n;
    int64_t now;
    bool failed;
};
int identity_load_keys(struct store *st, const struct store_domain *d, int64_t now,
                       struct key_json *kj);
void identity_keys_free(struct key_json *kj);
/* The record-set input of d (report receives the rua mailbox). */
void identity_records_input(const struct identity_env *env, const struct store_domain *d,
                            const struct idrec_key *keys, size_t nkeys, char *report,
                            size_t reportlen, struct idrec_input *in);

#endif
