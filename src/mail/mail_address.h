/* RFC 5322 §3.4 address lists, as found in From: display names, comments
 * (nested), quoted strings, groups, angle-addr and the obsolete forms that
 * real mail still carries. Only what authentication needs comes out: each
 * mailbox's local-part and domain. This module does no I/O. */
#ifndef SESAME_MAIL_MAIL_ADDRESS_H
#define SESAME_MAIL_MAIL_ADDRESS_H
#include <stddef.h>

#include "util/limits.h"

struct mail_mailbox {
    char local[SMTP_MAX_LOCALPART_LEN * 4 + 1]; /* as written, quotes removed */
    char domain[SMTP_MAX_DOMAIN_LEN + 1];       /* lower-cased, no trailing dot */
};

#define MAIL_MAX_MAILBOXES 16

struct mail_address_list {
    size_t count;      /* mailboxes found (may exceed MAIL_MAX_MAILBOXES) */
    struct mail_mailbox box[MAIL_MAX_MAILBOXES];
};

/* Parses the value of an address header (after the colon; folding CRLFs
 * allowed). Returns 0, or -1 with a reason in err when the value is not an
 * address list (then out->count is what was read before the error). */
int mail_address_list_parse(const char *value, size_t len, struct mail_address_list *out,
                            char *err, size_t errlen);

#endif
