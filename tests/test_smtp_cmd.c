/* SMTP command-line parser tables: verbs, RFC 5321 §4.1.2 paths (source
 * routes, dot-strings, quoted strings, address literals, UTF-8 with and
 * without SMTPUTF8, lengths at and over the limits of limits.h) and the
 * ESMTP parameters of MAIL and RCPT, valid and invalid, each error its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_cmd.h"

#define ALL_EXT (SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 | SMTP_EXT_AUTH)

static void verbs(void **state)
{
    static const struct {
        const char *line;
        enum smtp_cmd_err err;
        enum smtp_verb verb;
        const char *arg;
    } t[] = {
        { "EHLO mx.example.test", SMTP_CMD_OK, SMTP_VERB_EHLO, "mx.example.test" },
        { "ehlo   mx.example.test  ", SMTP_CMD_OK, SMTP_VERB_EHLO, "mx.example.test" },
        { "HELO x", SMTP_CMD_OK, SMTP_VERB_HELO, "x" },
        { "MAIL FROM:<a@b.test> SIZE=10", SMTP_CMD_OK, SMTP_VERB_MAIL, "FROM:<a@b.test> SIZE=10" },
        { "rcpt to:<a@b.test>", SMTP_CMD_OK, SMTP_VERB_RCPT, "to:<a@b.test>" },
        { "DATA", SMTP_CMD_OK, SMTP_VERB_DATA, "" },
        { "RSET", SMTP_CMD_OK, SMTP_VERB_RSET, "" },
        { "NOOP hello there", SMTP_CMD_OK, SMTP_VERB_NOOP, "hello there" },
        { "QUIT", SMTP_CMD_OK, SMTP_VERB_QUIT, "" },
        { "VRFY bob", SMTP_CMD_OK, SMTP_VERB_VRFY, "bob" },
        { "EXPN list", SMTP_CMD_OK, SMTP_VERB_EXPN, "list" },
        { "HELP", SMTP_CMD_OK, SMTP_VERB_HELP, "" },
        { "StartTLS", SMTP_CMD_OK, SMTP_VERB_STARTTLS, "" },
        { "AUTH PLAIN AGEAYg==", SMTP_CMD_OK, SMTP_VERB_AUTH, "PLAIN AGEAYg==" },
        { "BDAT 10 LAST", SMTP_CMD_OK, SMTP_VERB_BDAT, "10 LAST" },
        { "ETRN example.test", SMTP_CMD_OK, SMTP_VERB_OBSOLETE, "example.test" },
        { "TURN", SMTP_CMD_OK, SMTP_VERB_OBSOLETE, "" },
        { "GET / HTTP/1.1", SMTP_CMD_OK, SMTP_VERB_NON_SMTP, "/ HTTP/1.1" },
        { "POST /x HTTP/1.0", SMTP_CMD_OK, SMTP_VERB_NON_SMTP, "/x HTTP/1.0" },
        { "CONNECT a:25 HTTP/1.1", SMTP_CMD_OK, SMTP_VERB_NON_SMTP, "a:25 HTTP/1.1" },
        { "USER bob", SMTP_CMD_OK, SMTP_VERB_NON_SMTP, "bob" },
        { "MAILX FROM:<>", SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "FROM:<>" },
        { "XYZZY", SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "" },
        { "GETTY", SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "" },
        { "", SMTP_CMD_ERR_EMPTY, SMTP_VERB_UNKNOWN, "" },
        { "   ", SMTP_CMD_ERR_EMPTY, SMTP_VERB_UNKNOWN, "" },
        { " NOOP", SMTP_CMD_ERR_EMPTY, SMTP_VERB_UNKNOWN, "NOOP" },
        { "NOOP\tx", SMTP_CMD_ERR_CTRL, SMTP_VERB_UNKNOWN, "" },
        { "NOOP\rx", SMTP_CMD_ERR_CTRL, SMTP_VERB_UNKNOWN, "" },
        { "NOOP \x7f", SMTP_CMD_ERR_CTRL, SMTP_VERB_UNKNOWN, "" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        enum smtp_verb v;
        struct sv arg;
        enum smtp_cmd_err e = smtp_cmd_split(t[i].line, strlen(t[i].line), &v, &arg);
        if (e != t[i].err || v != t[i].verb)
            fail_msg("'%s': err %d verb %d, want err %d verb %d", t[i].line, e, v, t[i].err,
                     t[i].verb);
        if (e == SMTP_CMD_OK && (arg.len != strlen(t[i].arg) || memcmp(arg.p, t[i].arg, arg.len)))
            fail_msg("'%s': arg '%.*s', want '%s'", t[i].line, (int)arg.len, arg.p, t[i].arg);
    }
    /* NUL inside the line, with len covering it */
    enum smtp_verb v;
    struct sv arg;
    assert_int_equal(smtp_cmd_split("NOOP\0x", 6, &v, &arg), SMTP_CMD_ERR_NUL);
    /* len is respected: nothing past it is read */
    assert_int_equal(smtp_cmd_split("QUITXYZ", 4, &v, &arg), SMTP_CMD_OK);
    assert_int_equal(v, SMTP_VERB_QUIT);
}

struct path_case {
    const char *arg;
    enum smtp_cmd_err err;
    const char *addr;   /* expected when err == OK */
};

static void check_mail(const struct path_case *t, size_t n, unsigned ext)
{
    for (size_t i = 0; i < n; i++) {
        struct smtp_path p;
        struct smtp_mail_params mp;
        enum smtp_cmd_err e = smtp_cmd_parse_mail(t[i].arg, strlen(t[i].arg), ext, &p, &mp);
        if (e != t[i].err)
            fail_msg("MAIL '%s': %d (%s), want %d (%s)", t[i].arg, e, smtp_cmd_strerror(e),
                     t[i].err, smtp_cmd_strerror(t[i].err));
        if (e == SMTP_CMD_OK && strcmp(p.addr, t[i].addr) != 0)
            fail_msg("MAIL '%s': addr '%s', want '%s'", t[i].arg, p.addr, t[i].addr);
    }
}

static void check_rcpt(const struct path_case *t, size_t n, unsigned ext, bool smtputf8)
{
    for (size_t i = 0; i < n; i++) {
        struct smtp_path p;
        struct smtp_rcpt_params rp;
        enum smtp_cmd_err e =
            smtp_cmd_parse_rcpt(t[i].arg, strlen(t[i].arg), ext, smtputf8, &p, &rp);
        if (e != t[i].err)
            fail_msg("RCPT '%s': %d (%s), want %d (%s)", t[i].arg, e, smtp_cmd_strerror(e),
                     t[i].err, smtp_cmd_strerror(t[i].err));
        if (e == SMTP_CMD_OK && strcmp(p.addr, t[i].addr) != 0)
            fail_msg("RCPT '%s': addr '%s', want '%s'", t[i].arg, p.addr, t[i].addr);
    }
}

static void mail_paths(void **state)
{
    static const struct path_case t[] = {
        { "FROM:<>", SMTP_CMD_OK, "" },
        { "from:<alice@example.test>", SMTP_CMD_OK, "alice@example.test" },
        { "FROM: <alice@example.test>", SMTP_CMD_OK, "alice@example.test" },
        { "FROM:<a.b+tag@sub.example.test>", SMTP_CMD_OK, "a.b+tag@sub.example.test" },
        { "FROM:<!#$%&'*+-/=?^_`{|}~@x.test>", SMTP_CMD_OK, "!#$%&'*+-/=?^_`{|}~@x.test" },
        { "FROM:<@relay.test:alice@example.test>", SMTP_CMD_OK, "alice@example.test" },
        { "FROM:<@r1.test,@r2.test:alice@example.test>", SMTP_CMD_OK, "alice@example.test" },
        { "FROM:<\"john smith\"@example.test>", SMTP_CMD_OK, "\"john smith\"@example.test" },
        { "FROM:<\"a\\\"b\"@example.test>", SMTP_CMD_OK, "\"a\\\"b\"@example.test" },
        { "FROM:<\"\"@example.test>", SMTP_CMD_OK, "\"\"@example.test" },
        { "FROM:<a@[192.0.2.1]>", SMTP_CMD_OK, "a@[192.0.2.1]" },
        { "FROM:<a@[255.255.255.255]>", SMTP_CMD_OK, "a@[255.255.255.255]" },
        { "FROM:<a@[IPv6:2001:db8::1]>", SMTP_CMD_OK, "a@[IPv6:2001:db8::1]" },
        { "FROM:<a@[ipv6:::ffff:192.0.2.1]>", SMTP_CMD_OK, "a@[ipv6:::ffff:192.0.2.1]" },
        { "FROM:<a@x-y.test>", SMTP_CMD_OK, "a@x-y.test" },
        { "FROM:<a@123.test>", SMTP_CMD_OK, "a@123.test" },
        { "FROM:<a@localhost>", SMTP_CMD_OK, "a@localhost" },
        /* syntax */
        { "FROM:alice@example.test", SMTP_CMD_ERR_PATH_SYNTAX, NULL },
        { "FROM:<alice@example.test", SMTP_CMD_ERR_PATH_SYNTAX, NULL },
        { "FROM:<alice@example.test>x", SMTP_CMD_ERR_PATH_SYNTAX, NULL },
        { "FROM:<alice@example.test> <x>", SMTP_CMD_ERR_PARAM_SYNTAX, NULL },
        { "FROM:", SMTP_CMD_ERR_PATH_SYNTAX, NULL },
        { "FROM <a@b.test>", SMTP_CMD_ERR_KEYWORD, NULL },
        { "TO:<a@b.test>", SMTP_CMD_ERR_KEYWORD, NULL },
        { "", SMTP_CMD_ERR_KEYWORD, NULL },
        { "FROM:<@relay.test alice@example.test>", SMTP_CMD_ERR_ROUTE, NULL },
        { "FROM:<@relay.test,alice@example.test>", SMTP_CMD_ERR_ROUTE, NULL },
        { "FROM:<@:alice@example.test>", SMTP_CMD_ERR_ROUTE, NULL },
        { "FROM:<.alice@example.test>", SMTP_CMD_ERR_LOCAL_SYNTAX, NULL },
        { "FROM:<alice.@example.test>", SMTP_CMD_ERR_LOCAL_SYNTAX, NULL },
        { "FROM:<al..ice@example.test>", SMTP_CMD_ERR_LOCAL_SYNTAX, NULL },
        { "FROM:<al ice@example.test>", SMTP_CMD_ERR_LOCAL_SYNTAX, NULL },
        { "FROM:<al(ice@example.test>", SMTP_CMD_ERR_LOCAL_SYNTAX, NULL },
        { "FROM:<\"unterminated@example.test>", SMTP_CMD_ERR_LOCAL_SYNTAX, NULL },
        { "FROM:<a@b@example.test>", SMTP_CMD_ERR_DOMAIN_SYNTAX, NULL },
        { "FROM:<a@b.test c>", SMTP_CMD_ERR_PATH_SYNTAX, NULL },
        { "FROM:<alice>", SMTP_CMD_ERR_NO_DOMAIN, NULL },
        { "FROM:<alice@>", SMTP_CMD_ERR_NO_DOMAIN, NULL },
        { "FROM:<Postmaster>", SMTP_CMD_ERR_NO_DOMAIN, NULL },
        { "FROM:<a@-x.test>", SMTP_CMD_ERR_DOMAIN_SYNTAX, NULL },
        { "FROM:<a@x-.test>", SMTP_CMD_ERR_DOMAIN_SYNTAX, NULL },
        { "FROM:<a@x..test>", SMTP_CMD_ERR_DOMAIN_SYNTAX, NULL },
        { "FROM:<a@x.test.>", SMTP_CMD_ERR_DOMAIN_SYNTAX, NULL },
        { "FROM:<a@.x.test>", SMTP_CMD_ERR_DOMAIN_SYNTAX, NULL },
        { "FROM:<a@x_y.test>", SMTP_CMD_ERR_DOMAIN_SYNTAX, NULL },
        { "FROM:<a@[192.0.2.256]>", SMTP_CMD_ERR_ADDR_LITERAL, NULL },
        { "FROM:<a@[192.0.2]>", SMTP_CMD_ERR_ADDR_LITERAL, NULL },
        { "FROM:<a@[192.0.2.1.5]>", SMTP_CMD_ERR_ADDR_LITERAL, NULL },
        { "FROM:<a@[0192.0.2.1]>", SMTP_CMD_ERR_ADDR_LITERAL, NULL },
        { "FROM:<a@[IPv6:2001:db8::g]>", SMTP_CMD_ERR_ADDR_LITERAL, NULL },
        { "FROM:<a@[IPv6:1:2:3:4:5:6:7:8:9]>", SMTP_CMD_ERR_ADDR_LITERAL, NULL },
        { "FROM:<a@[2001:db8::1]>", SMTP_CMD_ERR_ADDR_LITERAL, NULL },
        { "FROM:<a@[x-tag:stuff]>", SMTP_CMD_ERR_ADDR_LITERAL, NULL },
        { "FROM:<a@[192.0.2.1>", SMTP_CMD_ERR_ADDR_LITERAL, NULL },
        { "FROM:<a@[]>", SMTP_CMD_ERR_ADDR_LITERAL, NULL },
    };
    check_mail(t, sizeof t / sizeof t[0], ALL_EXT);
}

static void rcpt_paths(void **state)
{
    static const struct path_case t[] = {
        { "TO:<bob@example.test>", SMTP_CMD_OK, "bob@example.test" },
        { "to: <bob@example.test>", SMTP_CMD_OK, "bob@example.test" },
        { "TO:<Postmaster>", SMTP_CMD_OK, "Postmaster" },
        { "TO:<postmaster>", SMTP_CMD_OK, "postmaster" },
        { "TO:<postmaster@example.test>", SMTP_CMD_OK, "postmaster@example.test" },
        { "TO:<@hop.test:bob@example.test>", SMTP_CMD_OK, "bob@example.test" },
        { "TO:<>", SMTP_CMD_ERR_NULL_RCPT, NULL },
        { "TO:<bob>", SMTP_CMD_ERR_NO_DOMAIN, NULL },
        { "TO:<\"Postmaster\">", SMTP_CMD_ERR_NO_DOMAIN, NULL },
        { "FROM:<bob@example.test>", SMTP_CMD_ERR_KEYWORD, NULL },
        { "TO:bob@example.test", SMTP_CMD_ERR_PATH_SYNTAX, NULL },
        { "TO:<bob@example.test> NOTIFY=NEVER", SMTP_CMD_ERR_PARAM_UNADVERTISED, NULL },
        { "TO:<bob@example.test> ORCPT=rfc822;bob@example.test", SMTP_CMD_ERR_PARAM_UNADVERTISED,
          NULL },
        { "TO:<bob@example.test> SIZE=10", SMTP_CMD_ERR_PARAM_UNKNOWN, NULL },
        { "TO:<bob@example.test> X-FOO=1", SMTP_CMD_ERR_PARAM_UNKNOWN, NULL },
    };
    check_rcpt(t, sizeof t / sizeof t[0], ALL_EXT, false);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void lengths(void **state)
{
    char line[1024];
    struct smtp_path p;
    struct smtp_mail_params mp;
    /* local part: 64 ok, 65 too long */
    char *l64 = repeat('a', SMTP_MAX_LOCALPART_LEN);
    char *l65 = repeat('a', SMTP_MAX_LOCALPART_LEN + 1);
    snprintf(line, sizeof line, "FROM:<%s@x.test>", l64);
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), 0, &p, &mp), SMTP_CMD_OK);
    assert_int_equal(p.local_len, SMTP_MAX_LOCALPART_LEN);
    snprintf(line, sizeof line, "FROM:<%s@x.test>", l65);
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), 0, &p, &mp),
                     SMTP_CMD_ERR_LOCAL_TOO_LONG);
    /* a quoted local part counts its quotes: 62 + 2 ok, 63 + 2 not */
    char *q62 = repeat('q', SMTP_MAX_LOCALPART_LEN - 2);
    snprintf(line, sizeof line, "FROM:<\"%s\"@x.test>", q62);
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), 0, &p, &mp), SMTP_CMD_OK);
    snprintf(line, sizeof line, "FROM:<\"%sq\"@x.test>", q62);
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), 0, &p, &mp),
                     SMTP_CMD_ERR_LOCAL_TOO_LONG);
    /* label: 63 ok, 64 too long */
    char *lab63 = repeat('d', DNS_MAX_LABEL_LEN);
    snprintf(line, sizeof line, "FROM:<a@%s.test>", lab63);
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), 0, &p, &mp), SMTP_CMD_OK);
    snprintf(line, sizeof line, "FROM:<a@%sd.test>", lab63);
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), 0, &p, &mp),
                     SMTP_CMD_ERR_DOMAIN_TOO_LONG);
    /* domain: 4 labels of 63 + 3 dots = 255 octets is a domain, but no
     * path can hold it (<a@...> is 259 > 256); 258 octets is too long */
    char dom255[300];
    snprintf(dom255, sizeof dom255, "%s.%s.%s.%s", lab63, lab63, lab63, lab63);
    assert_int_equal(strlen(dom255), SMTP_MAX_DOMAIN_LEN);
    snprintf(line, sizeof line, "FROM:<a@%s>", dom255);
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), 0, &p, &mp),
                     SMTP_CMD_ERR_PATH_TOO_LONG);
    snprintf(line, sizeof line, "FROM:<a@%s.ab>", dom255);
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), 0, &p, &mp),
                     SMTP_CMD_ERR_DOMAIN_TOO_LONG);
    struct smtp_rcpt_params rp;
    snprintf(line, sizeof line, "TO:<@%s.ab:b@x.test>", dom255);
    assert_int_equal(smtp_cmd_parse_rcpt(line, strlen(line), 0, false, &p, &rp),
                     SMTP_CMD_ERR_ROUTE);
    /* a route counts in the path length */
    snprintf(line, sizeof line, "TO:<@%s:b@x.test>", lab63);
    assert_int_equal(smtp_cmd_parse_rcpt(line, strlen(line), 0, false, &p, &rp), SMTP_CMD_OK);
    assert_string_equal(p.addr, "b@x.test");
    snprintf(line, sizeof line, "TO:<@%s,@%s,@%s,@%s:b@x.test>", lab63, lab63, lab63, lab63);
    assert_int_equal(smtp_cmd_parse_rcpt(line, strlen(line), 0, false, &p, &rp),
                     SMTP_CMD_ERR_PATH_TOO_LONG);
    /* path: <64@...> with a domain making the path exactly 256, then 257 */
    char dom[300];
    size_t dlen = SMTP_MAX_PATH_LEN - 2 - SMTP_MAX_LOCALPART_LEN - 1; /* 189 */
    snprintf(dom, sizeof dom, "%s.%s.%s", lab63, lab63, lab63);       /* 191 */
    dom[dlen] = '\0';                                                 /* "...dd" */
    snprintf(line, sizeof line, "FROM:<%s@%s>", l64, dom);
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), 0, &p, &mp), SMTP_CMD_OK);
    assert_int_equal(strlen(p.addr), SMTP_MAX_PATH_LEN - 2);
    snprintf(dom, sizeof dom, "%s.%s.%s", lab63, lab63, lab63);
    dom[dlen + 1] = '\0';
    snprintf(line, sizeof line, "FROM:<%s@%s>", l64, dom);
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), 0, &p, &mp),
                     SMTP_CMD_ERR_PATH_TOO_LONG);
    free(l64);
    free(l65);
    free(q62);
    free(lab63);
}

static void utf8(void **state)
{
    /* pelé@exämple.test */
    static const char *addr = "pel\xc3\xa9@ex\xc3\xa4mple.test";
    char line[256];
    struct smtp_path p;
    struct smtp_mail_params mp;
    struct smtp_rcpt_params rp;
    snprintf(line, sizeof line, "FROM:<%s> SMTPUTF8", addr);
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), ALL_EXT, &p, &mp), SMTP_CMD_OK);
    assert_true(p.utf8);
    assert_true(mp.smtputf8);
    assert_string_equal(p.addr, addr);
    snprintf(line, sizeof line, "FROM:<%s>", addr);
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), ALL_EXT, &p, &mp),
                     SMTP_CMD_ERR_UTF8_NOT_ALLOWED);
    /* SMTPUTF8 not advertised (HELO session) */
    snprintf(line, sizeof line, "FROM:<%s> SMTPUTF8", addr);
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), 0, &p, &mp),
                     SMTP_CMD_ERR_PARAM_UNADVERTISED);
    /* quoted UTF-8 */
    snprintf(line, sizeof line, "FROM:<\"j\xc3\xb6rg s\"@x.test> SMTPUTF8");
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), ALL_EXT, &p, &mp), SMTP_CMD_OK);
    /* ASCII path with SMTPUTF8 is fine */
    snprintf(line, sizeof line, "FROM:<a@x.test> SMTPUTF8");
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), ALL_EXT, &p, &mp), SMTP_CMD_OK);
    assert_false(p.utf8);
    /* RCPT follows the transaction's SMTPUTF8 */
    snprintf(line, sizeof line, "TO:<%s>", addr);
    assert_int_equal(smtp_cmd_parse_rcpt(line, strlen(line), 0, true, &p, &rp), SMTP_CMD_OK);
    assert_int_equal(smtp_cmd_parse_rcpt(line, strlen(line), 0, false, &p, &rp),
                     SMTP_CMD_ERR_UTF8_NOT_ALLOWED);
    /* malformed UTF-8: lone continuation, overlong, surrogate, truncated, > U+10FFFF */
    static const char *bad[] = {
        "FROM:<a\x80@x.test> SMTPUTF8", "FROM:<a\xc0\xaf@x.test> SMTPUTF8",
        "FROM:<a\xed\xa0\x80@x.test> SMTPUTF8", "FROM:<a\xe2\x82@x.test> SMTPUTF8",
        "FROM:<a\xf4\x90\x80\x80@x.test> SMTPUTF8", "FROM:<a@x\xff.test> SMTPUTF8",
        "FROM:<\"a\xc3\"@x.test> SMTPUTF8",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (smtp_cmd_parse_mail(bad[i], strlen(bad[i]), ALL_EXT, &p, &mp) !=
            SMTP_CMD_ERR_UTF8_INVALID)
            fail_msg("'%s' not refused as invalid UTF-8", bad[i]);
    assert_true(smtp_utf8_valid("\xf0\x9f\x98\x80 ok", 7));
    assert_false(smtp_utf8_valid("\xf0\x9f\x98", 3));
    /* an address literal is ASCII only */
    snprintf(line, sizeof line, "FROM:<a@[192.0.2.\xc3\xa9]> SMTPUTF8");
    assert_int_equal(smtp_cmd_parse_mail(line, strlen(line), ALL_EXT, &p, &mp),
                     SMTP_CMD_ERR_ADDR_LITERAL);
}

static void mail_params(void **state)
{
    static const struct path_case t[] = {
        { "FROM:<a@x.test> SIZE=1000", SMTP_CMD_OK, "a@x.test" },
        { "FROM:<a@x.test> size=0", SMTP_CMD_OK, "a@x.test" },
        { "FROM:<a@x.test> BODY=8BITMIME", SMTP_CMD_OK, "a@x.test" },
        { "FROM:<a@x.test> BODY=7bit", SMTP_CMD_OK, "a@x.test" },
        { "FROM:<a@x.test>  SIZE=5   BODY=8BITMIME  SMTPUTF8 ", SMTP_CMD_OK, "a@x.test" },
        { "FROM:<a@x.test> AUTH=<>", SMTP_CMD_OK, "a@x.test" },
        { "FROM:<a@x.test> AUTH=a+2Bb@x.test", SMTP_CMD_OK, "a@x.test" },
        { "FROM:<> SIZE=99999999999999999999", SMTP_CMD_OK, "" },
        { "FROM:<a@x.test> SIZE=", SMTP_CMD_ERR_PARAM_SYNTAX, NULL },
        { "FROM:<a@x.test> SIZE", SMTP_CMD_ERR_SIZE_VALUE, NULL },
        { "FROM:<a@x.test> SIZE=12a", SMTP_CMD_ERR_SIZE_VALUE, NULL },
        { "FROM:<a@x.test> SIZE=-1", SMTP_CMD_ERR_SIZE_VALUE, NULL },
        { "FROM:<a@x.test> SIZE=123456789012345678901", SMTP_CMD_ERR_SIZE_VALUE, NULL },
        { "FROM:<a@x.test> SIZE=1 SIZE=2", SMTP_CMD_ERR_PARAM_DUPLICATE, NULL },
        { "FROM:<a@x.test> BODY=BINARYMIME", SMTP_CMD_ERR_BODY_VALUE, NULL },
        { "FROM:<a@x.test> BODY", SMTP_CMD_ERR_BODY_VALUE, NULL },
        { "FROM:<a@x.test> SMTPUTF8=yes", SMTP_CMD_ERR_SMTPUTF8_VALUE, NULL },
        { "FROM:<a@x.test> AUTH=a+2b@x.test", SMTP_CMD_ERR_AUTH_VALUE, NULL },
        { "FROM:<a@x.test> AUTH=a+2", SMTP_CMD_ERR_AUTH_VALUE, NULL },
        { "FROM:<a@x.test> AUTH", SMTP_CMD_ERR_AUTH_VALUE, NULL },
        { "FROM:<a@x.test> RET=FULL", SMTP_CMD_ERR_PARAM_UNADVERTISED, NULL },
        { "FROM:<a@x.test> ENVID=abc", SMTP_CMD_ERR_PARAM_UNADVERTISED, NULL },
        { "FROM:<a@x.test> NOTIFY=NEVER", SMTP_CMD_ERR_PARAM_UNKNOWN, NULL },
        { "FROM:<a@x.test> XFORWARD=1", SMTP_CMD_ERR_PARAM_UNKNOWN, NULL },
        { "FROM:<a@x.test> -X=1", SMTP_CMD_ERR_PARAM_SYNTAX, NULL },
        { "FROM:<a@x.test> X_Y=1", SMTP_CMD_ERR_PARAM_SYNTAX, NULL },
        { "FROM:<a@x.test> =1", SMTP_CMD_ERR_PARAM_SYNTAX, NULL },
        { "FROM:<a@x.test> SIZE=1=2", SMTP_CMD_ERR_PARAM_SYNTAX, NULL },
    };
    check_mail(t, sizeof t / sizeof t[0], ALL_EXT);

    /* values land in the result */
    struct smtp_path p;
    struct smtp_mail_params mp;
    const char *l = "FROM:<a@x.test> SIZE=12345 BODY=8BITMIME SMTPUTF8 AUTH=<>";
    assert_int_equal(smtp_cmd_parse_mail(l, strlen(l), ALL_EXT, &p, &mp), SMTP_CMD_OK);
    assert_true(mp.has_size);
    assert_int_equal(mp.size, 12345);
    assert_int_equal(mp.body, SMTP_BODY_8BITMIME);
    assert_true(mp.smtputf8);
    assert_true(mp.has_auth);
    l = "FROM:<> SIZE=99999999999999999999";
    assert_int_equal(smtp_cmd_parse_mail(l, strlen(l), ALL_EXT, &p, &mp), SMTP_CMD_OK);
    assert_true(p.null_path);
    assert_true(mp.size == UINT64_MAX);

    /* nothing advertised (HELO): every parameter refused */
    static const struct path_case none[] = {
        { "FROM:<a@x.test> SIZE=1", SMTP_CMD_ERR_PARAM_UNADVERTISED, NULL },
        { "FROM:<a@x.test> BODY=8BITMIME", SMTP_CMD_ERR_PARAM_UNADVERTISED, NULL },
        { "FROM:<a@x.test> AUTH=<>", SMTP_CMD_ERR_PARAM_UNADVERTISED, NULL },
        { "FROM:<a@x.test>", SMTP_CMD_OK, "a@x.test" },
    };
    check_mail(none, sizeof none / sizeof none[0], 0);

    /* DSN parameters, when DSN is offered */
    unsigned dsn = ALL_EXT | SMTP_EXT_DSN;
    static const struct path_case d[] = {
        { "FROM:<a@x.test> RET=HDRS ENVID=QQ314159", SMTP_CMD_OK, "a@x.test" },
        { "FROM:<a@x.test> RET=ALL", SMTP_CMD_ERR_RET_VALUE, NULL },
        { "FROM:<a@x.test> ENVID=a+zz", SMTP_CMD_ERR_ENVID_VALUE, NULL },
    };
    check_mail(d, sizeof d / sizeof d[0], dsn);
    static const struct path_case dr[] = {
        { "TO:<b@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40x.test", SMTP_CMD_OK, "b@x.test" },
        { "TO:<b@x.test> NOTIFY=NEVER", SMTP_CMD_OK, "b@x.test" },
        { "TO:<b@x.test> NOTIFY=NEVER,DELAY", SMTP_CMD_ERR_NOTIFY_VALUE, NULL },
        { "TO:<b@x.test> NOTIFY=SUCCESS,SUCCESS", SMTP_CMD_ERR_NOTIFY_VALUE, NULL },
        { "TO:<b@x.test> NOTIFY=SUCCESS,", SMTP_CMD_ERR_NOTIFY_VALUE, NULL },
        { "TO:<b@x.test> NOTIFY=SOMETIMES", SMTP_CMD_ERR_NOTIFY_VALUE, NULL },
        { "TO:<b@x.test> ORCPT=b@x.test", SMTP_CMD_ERR_ORCPT_VALUE, NULL },
        { "TO:<b@x.test> ORCPT=rfc822;", SMTP_CMD_ERR_ORCPT_VALUE, NULL },
        { "TO:<b@x.test> ORCPT=;b@x.test", SMTP_CMD_ERR_ORCPT_VALUE, NULL },
    };
    check_rcpt(dr, sizeof dr / sizeof dr[0], dsn, false);
}

static void helo(void **state)
{
    char out[SMTP_MAX_DOMAIN_LEN + 1];
    assert_int_equal(smtp_cmd_parse_helo("mx.example.test", 15, out, sizeof out), SMTP_CMD_OK);
    assert_string_equal(out, "mx.example.test");
    assert_int_equal(smtp_cmd_parse_helo("[192.0.2.1]", 11, out, sizeof out), SMTP_CMD_OK);
    assert_string_equal(out, "[192.0.2.1]");
    assert_int_equal(smtp_cmd_parse_helo("my_pc extra words", 17, out, sizeof out), SMTP_CMD_OK);
    assert_string_equal(out, "my_pc");
    assert_int_equal(smtp_cmd_parse_helo("", 0, out, sizeof out), SMTP_CMD_ERR_HELO_SYNTAX);
    assert_int_equal(smtp_cmd_parse_helo("h\xc3\xa9", 3, out, sizeof out),
                     SMTP_CMD_ERR_HELO_SYNTAX);
    assert_int_equal(smtp_cmd_parse_helo("a\tb", 3, out, sizeof out), SMTP_CMD_ERR_CTRL);
    char *n255 = repeat('h', SMTP_MAX_DOMAIN_LEN);
    assert_int_equal(smtp_cmd_parse_helo(n255, strlen(n255), out, sizeof out), SMTP_CMD_OK);
    char *n256 = repeat('h', SMTP_MAX_DOMAIN_LEN + 1);
    assert_int_equal(smtp_cmd_parse_helo(n256, strlen(n256), out, sizeof out),
                     SMTP_CMD_ERR_HELO_SYNTAX);
    free(n255);
    free(n256);
}

static void never_past_len(void **state)
{
    /* every prefix of good lines parses without reading past its length
     * (under ASan a read past the malloc'd copy would be caught) */
    static const char *lines[] = {
        "FROM:<@r1.test,@r2.test:\"q\\\"x\"@[IPv6:2001:db8::1]> SIZE=10 BODY=8BITMIME",
        "FROM:<a@[192.0.2.1]> AUTH=a+2Bb",
        "TO:<pel\xc3\xa9@ex\xc3\xa4mple.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;x+2B",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        size_t n = strlen(lines[i]);
        for (size_t k = 0; k <= n; k++) {
            char *copy = malloc(k ? k : 1);
            assert_non_null(copy);
            memcpy(copy, lines[i], k);
            struct smtp_path p;
            struct smtp_mail_params mp;
            struct smtp_rcpt_params rp;
            enum smtp_cmd_err e1 = smtp_cmd_parse_mail(copy, k, ALL_EXT | SMTP_EXT_DSN, &p, &mp);
            enum smtp_cmd_err e2 =
                smtp_cmd_parse_rcpt(copy, k, ALL_EXT | SMTP_EXT_DSN, true, &p, &rp);
            (void)e1;
            (void)e2;
            enum smtp_verb v;
            struct sv arg;
            enum smtp_cmd_err e3 = smtp_cmd_split(copy, k, &v, &arg);
            (void)e3;
            free(copy);
        }
    }
    /* a strerror for every error */
    for (int e = 0; e < SMTP_CMD_ERR__COUNT; e++)
        assert_true(strcmp(smtp_cmd_strerror((enum smtp_cmd_err)e), "error") != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verbs),
        cmocka_unit_test(mail_paths),
        cmocka_unit_test(rcpt_paths),
        cmocka_unit_test(lengths),
        cmocka_unit_test(utf8),
        cmocka_unit_test(mail_params),
        cmocka_unit_test(helo),
        cmocka_unit_test(never_past_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
