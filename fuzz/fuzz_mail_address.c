/* libFuzzer target: the RFC 5322 address-list parser (From fields), and
 * the From-domain rule of DMARC on a header section made of the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_check.h"
#include "mail/mail_address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mail_address_list l;
    char err[128];
    if (mail_address_list_parse((const char *)data, size, &l, err, sizeof err) == 0)
        for (size_t i = 0; i < l.count && i < MAIL_MAX_MAILBOXES; i++)
            if (strlen(l.box[i].domain) >= sizeof l.box[i].domain)
                __builtin_trap();
    /* the same bytes as the value of a From field */
    char *head = malloc(size + 16);
    if (!head)
        return 0;
    memcpy(head, "From:", 5);
    memcpy(head + 5, data, size);
    memcpy(head + 5 + size, "\r\n", 2);
    char domain[256], problem[200];
    if (auth_from_domain(head, size + 7, domain, sizeof domain, problem, sizeof problem) == 0 &&
        !domain[0])
        __builtin_trap();
    free(head);
    return 0;
}
