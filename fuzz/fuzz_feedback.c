/* libFuzzer target: feedback classification (DSN, ARF, text bounces,
 * auto-replies) and the MIME reader under it. Never a crash; on success
 * every string is terminated inside its field and holds no control octet;
 * a refusal leaves kind FEEDBACK_NONE; the envelope variants agree on
 * reports (only plain-text bounces depend on the envelope). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dsn.h"

#define FIELD_OK(f) check_str((f), sizeof(f))

static void check_str(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    if (n == size)
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            __builtin_trap();
}

static void check(const struct feedback *fb, int rc)
{
    if (rc != 0 && (fb->kind != FEEDBACK_NONE || fb->nrcpts))
        __builtin_trap();
    if (fb->kind > FEEDBACK_AUTOREPLY || fb->nrcpts > DSN_MAX_RECIPIENTS)
        __builtin_trap();
    if (fb->kind != FEEDBACK_DSN && fb->nrcpts)
        __builtin_trap();
    FIELD_OK(fb->reporting_mta);
    FIELD_OK(fb->feedback_type);
    FIELD_OK(fb->user_agent);
    FIELD_OK(fb->arf_original_rcpt);
    FIELD_OK(fb->arf_original_mail_from);
    FIELD_OK(fb->original_message_id);
    for (size_t i = 0; i < fb->nrcpts; i++) {
        const struct dsn_recipient *r = &fb->rcpts[i];
        FIELD_OK(r->final_recipient);
        FIELD_OK(r->original_recipient);
        FIELD_OK(r->action);
        FIELD_OK(r->status);
        FIELD_OK(r->diagnostic);
        FIELD_OK(r->remote_mta);
        if (!r->action[0])
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct feedback *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return 0;
    }
    char err[256];
    int ra = feedback_parse((const char *)data, size, a, err, sizeof err);
    check(a, ra);
    int rb = feedback_parse_envelope((const char *)data, size, "", b, err, sizeof err);
    check(b, rb);
    if (ra != rb || ((a->kind == FEEDBACK_ARF || (a->kind == FEEDBACK_DSN && !a->heuristic)) &&
                     memcmp(a, b, sizeof *a) != 0))
        __builtin_trap();
    free(a);
    free(b);
    return 0;
}
