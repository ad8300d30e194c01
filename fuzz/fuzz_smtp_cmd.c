/* libFuzzer target: the SMTP command-line parser (verb split, MAIL/RCPT
 * paths and parameters, EHLO argument). The first input byte picks the
 * advertised extensions and SMTPUTF8; the rest is one command line. Checks
 * that accepted paths are bounded, valid UTF-8 where allowed, and parse
 * back to themselves. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_cmd.h"

static void check_path(const struct smtp_path *p, bool smtputf8_ok)
{
    size_t n = strnlen(p->addr, sizeof p->addr);
    if (n >= sizeof p->addr || n > SMTP_MAX_PATH_LEN - 2)
        __builtin_trap();
    if (p->null_path != (n == 0))
        __builtin_trap();
    if (p->local_len > SMTP_MAX_LOCALPART_LEN || p->local_len > n)
        __builtin_trap();
    if (!smtp_utf8_valid(p->addr, n))
        __builtin_trap();
    if (p->utf8 && !smtputf8_ok)
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p->addr[i] < 0x20 || p->addr[i] == 0x7f)
            __builtin_trap();
    if (n == 0)
        return;
    /* the mailbox, put back in brackets, is accepted again unchanged */
    char line[SMTP_MAX_PATH_LEN + 32];
    int l = snprintf(line, sizeof line, "TO:<%s> ", p->addr);
    if (l < 0 || (size_t)l >= sizeof line)
        __builtin_trap();
    struct smtp_path again;
    struct smtp_rcpt_params rp;
    if (smtp_cmd_parse_rcpt(line, (size_t)l - 1, 0, true, &again, &rp) != SMTP_CMD_OK)
        __builtin_trap();
    if (strcmp(again.addr, p->addr) != 0 || again.local_len != p->local_len)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ext = data[0] & 0x1f;
    bool smtputf8 = data[0] & 0x20;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;

    enum smtp_verb verb;
    struct sv arg;
    if (smtp_cmd_split(buf, len, &verb, &arg) == SMTP_CMD_OK) {
        if (arg.len > len || (arg.len && (arg.p < buf || arg.p + arg.len > buf + len)))
            __builtin_trap();
        if (arg.len && (arg.p[0] == ' ' || arg.p[arg.len - 1] == ' '))
            __builtin_trap();
    }

    struct smtp_path p;
    struct smtp_mail_params mp;
    enum smtp_cmd_err e = smtp_cmd_parse_mail(buf, len, ext, &p, &mp);
    if (e == SMTP_CMD_OK) {
        check_path(&p, mp.smtputf8);
        if ((mp.has_size && !(ext & SMTP_EXT_SIZE)) || (mp.smtputf8 && !(ext & SMTP_EXT_SMTPUTF8)))
            __builtin_trap();
    }
    if ((unsigned)e >= SMTP_CMD_ERR__COUNT || !smtp_cmd_strerror(e)[0])
        __builtin_trap();

    struct smtp_rcpt_params rp;
    e = smtp_cmd_parse_rcpt(buf, len, ext, smtputf8, &p, &rp);
    if (e == SMTP_CMD_OK) {
        if (p.null_path)
            __builtin_trap();
        check_path(&p, smtputf8);
    }

    char helo[SMTP_MAX_DOMAIN_LEN + 1];
    if (smtp_cmd_parse_helo(buf, len, helo, sizeof helo) == SMTP_CMD_OK) {
        size_t n = strnlen(helo, sizeof helo);
        if (n == 0 || n > SMTP_MAX_DOMAIN_LEN)
            __builtin_trap();
    }
    return 0;
}
