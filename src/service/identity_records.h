/* The DNS record set of a domain identity: every record an account
 * publishes for a sending domain (verification, DKIM keys, SPF, DMARC, the
 * custom MAIL FROM MX and SPF, the inbound MX), each optionally checked
 * against what DNS publishes now, with the reason for its state in words
 * for a person. When the domain already publishes SPF or DMARC, the value
 * given is the merged record to publish in its place, never a second one.
 * docs/identity_records.md lists the checks, the reasons and the merge rules.
 *
 * It does not touch the store or decide a domain's status: identities.c
 * does, from these states. */
#ifndef SESAME_SERVICE_IDENTITY_RECORDS_H
#define SESAME_SERVICE_IDENTITY_RECORDS_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"
#include "util/limits.h"

#define IDREC_VALUE_MAX 4096      /* a record's value (merged SPF can be long) */
#define IDREC_REASON_MAX 600

enum idrec_purpose { IDREC_VERIFICATION, IDREC_DKIM, IDREC_SPF, IDREC_DMARC,
                     IDREC_MAIL_FROM_MX, IDREC_MAIL_FROM_SPF, IDREC_INBOUND_MX };
enum idrec_state { IDREC_UNCHECKED, IDREC_OK, IDREC_MISSING, IDREC_WRONG, IDREC_TEMPFAIL,
                   IDREC_REMOVE };

struct idrec_key {             /* one DKIM key of the domain */
    const char *selector;
    const char *record;        /* the TXT value to publish: "v=DKIM1; k=rsa; p=..." */
    int status;                /* enum store_key_status (store/store.h): ACTIVE, PENDING, GRACE, RETIRED */
    int64_t retired_at;        /* GRACE: published until then; RETIRED: since */
};

struct idrec_input {
    const char *domain;            /* normalised: lower case, no trailing dot */
    const char *token;             /* verification token */
    const char *mail_from_domain;  /* custom MAIL FROM subdomain; NULL or "" = none */
    const char *mx_host;           /* this service's inbound host (MX target) */
    const char *spf_terms;         /* mechanisms authorising this service, e.g. "a:mx.example.com" or "ip4:192.0.2.1 ip6:2001:db8::1" */
    const char *report_address;    /* DMARC rua mailbox, e.g. "dmarc-reports@bounce.example.com" */
    const struct idrec_key *keys;
    size_t nkeys;
};

struct idrec {
    enum idrec_purpose purpose;
    char type[8];                      /* "TXT" | "MX" */
    char name[DNS_MAX_NAME_LEN + 1];   /* no trailing dot */
    char value[IDREC_VALUE_MAX];       /* TXT: the whole text (unsplit); MX: "10 host" */
    char selector[64];                 /* DKIM only */
    enum idrec_state state;
    bool required;                     /* verification, dkim (active, pending), mail_from_*: needed;
                                        * spf, dmarc, inbound_mx, pending/grace/retired keys: advised */
    char reason[IDREC_REASON_MAX];     /* why the state is what it is / advice, for a person; "" when nothing to say */
};
struct idrec_list { struct idrec *v; size_t n; };

/* The records to publish. With dns (non-NULL) each is checked against what
 * is published now (state + reason), and SPF/DMARC values become the merged
 * records when the domain already publishes one. dns NULL: states UNCHECKED,
 * fresh values. Returns 0, -1 on out of memory.
 * (Details: RETIRED keys are listed with state REMOVE, not required; with
 * dns, a retired key no longer published is left out. Every text taken from
 * DNS into a value or reason is printable ASCII, reasons truncate it.) */
__attribute__((warn_unused_result))
int identity_records_build(const struct idrec_input *in, struct dns_resolver *dns,
                           struct idrec_list *out);
void identity_records_free(struct idrec_list *l);

/* [{"type","name","value","purpose","status","required","reason","zone"}] — zone: the
 * zone-file line, e.g. `s1._domainkey.example.com. 3600 IN TXT "v=DKIM1; ..." "...rest"` (TXT split
 * in 255-octet quoted strings, quotes and backslashes escaped) or `example.com. 3600 IN MX 10 mx.host.`
 * NULL when memory ran out. */
json_t *identity_records_json(const struct idrec_list *l);

/* Copies the last-seen states from an earlier identity_records_json() array (as stored):
 * for each record with the same purpose, type and name, copies status and reason, and for
 * spf/dmarc/mail_from_spf also the (merged) value. Unknown/malformed entries are ignored.
 * (A record in state REMOVE — a retired key — keeps it: that state comes from the key.) */
void identity_records_overlay(struct idrec_list *l, const json_t *last);

const char *identity_record_purpose_name(enum idrec_purpose p); /* "verification","dkim","spf","dmarc","mail_from_mx","mail_from_spf","inbound_mx" */
const char *identity_record_state_name(enum idrec_state s);     /* "unchecked","ok","missing","wrong","tempfail","remove" */

#endif
