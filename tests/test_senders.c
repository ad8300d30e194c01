/* Single sender addresses (service/senders.c and /v1/senders, /v1/confirm)
 * with a real store, group commit and outbound engine, the clock moved by
 * hand: a request writes a pending row holding a hash of the token (not
 * the token) and queues the confirmation mail under the _sesame account,
 * with the link; the link verifies once (then 404); a resend replaces the
 * token; 24 h + 1 s later the link is expired (410, status expired);
 * exclusivity across two accounts (the address, its domain, a race of two
 * pending requests); the minute between mails and 50 mails per 24 h (the
 * durable count of addresses and the resends this process saw); a queue
 * that refuses leaves the row and no wait; the API's shapes and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <sodium.h>
#include <time.h>

#include "api_fixture.h"
#include "service/group_commit.h"
#include "service/outbound.h"
#include "service/senders.h"

static struct group_commit *gc;
static struct outbound *ob;
static int64_t T0;

static int setup(void **state)
{
    if (af_setup(state) != 0)
        return -1;
    snprintf(AF.cfg.hostname, sizeof AF.cfg.hostname, "mx.sesame.example");
    gc = group_commit_new();
    char err[256] = "";
    ob = gc ? outbound_new(&AF.cfg, gc, AF.st, err, sizeof err) : NULL;
    if (!ob) {
        fprintf(stderr, "outbound_new: %s\n", err);
        return -1;
    }
    AF.ctx.outbound = ob;
    sender_limits_reset();
    T0 = (int64_t)time(NULL);
    return 0;
}

static int teardown(void **state)
{
    outbound_free(ob);
    group_commit_free(gc);
    return af_teardown(state);
}

static void verify_domain(int64_t account, const char *name)
{
    struct store_domain d;
    memset(&d, 0, sizeof d);
    d.account_id = account;
    snprintf(d.domain, sizeof d.domain, "%s", name);
    snprintf(d.verify_token, sizeof d.verify_token, "tok-%s", name);
    assert_int_equal(store_domain_insert(AF.st, &d), STORE_OK);
    d.status = STORE_ID_VERIFIED;
    d.verified_at = d.checked_at = T0;
    assert_int_equal(store_domain_update(AF.st, &d), STORE_OK);
}

static int64_t system_account(void)
{
    struct store_account sys;
    assert_int_equal(outbound_system_account(AF.st, &sys), STORE_OK);
    return sys.id;
}

static int rcpt_cb(const struct store_delivery *d, void *arg)
{
    snprintf(arg, SMTP_MAX_PATH_LEN + 1, "%s", d->rcpt);
    return 0;
}

/* The raw confirmation mail queued as message id (the _sesame account's),
 * after checking it is addressed to rcpt only. */
static char *queued_mail(int64_t id, const char *rcpt)
{
    struct store_outbound meta;
    memset(&meta, 0, sizeof meta);
    char got[SMTP_MAX_PATH_LEN + 1] = "";
    assert_int_equal(store_outbound_get(AF.st, system_account(), id, &meta, rcpt_cb, got),
                     STORE_OK);
    assert_int_equal(meta.nrcpt, 1);
    assert_string_equal(got, rcpt);             /* the envelope: the address only */
    /* not the requesting account's message */
    assert_int_equal(store_outbound_get(AF.st, AF.a.id, id, &meta, NULL, NULL), STORE_NOTFOUND);
    char *raw = NULL, from[SMTP_MAX_PATH_LEN + 1];
    size_t len = 0;
    assert_int_equal(store_outbound_get_raw(AF.st, id, &raw, &len, from, sizeof from), STORE_OK);
    assert_string_equal(from, "no-reply@mx.sesame.example");
    char to[SMTP_MAX_PATH_LEN + 16];
    snprintf(to, sizeof to, "\r\nTo: %s\r\n", rcpt);
    assert_non_null(strstr(raw, to));
    return raw;
}

/* The token of the link in a mail. */
static void link_token(const char *raw, char tok[SENDER_TOKEN_HEX_LEN + 1])
{
    const char *p = strstr(raw, "/v1/confirm?token=");
    assert_non_null(p);
    p += strlen("/v1/confirm?token=");
    for (int i = 0; i < SENDER_TOKEN_HEX_LEN; i++)
        assert_true(isxdigit((unsigned char)p[i]));
    assert_false(isxdigit((unsigned char)p[SENDER_TOKEN_HEX_LEN]));
    memcpy(tok, p, SENDER_TOKEN_HEX_LEN);
    tok[SENDER_TOKEN_HEX_LEN] = '\0';
}

/* Asks for address for account at now; returns the token mailed. */
static void request_ok(const struct store_account *acct, const char *address, int64_t now,
                       char tok[SENDER_TOKEN_HEX_LEN + 1], struct sender_result *r)
{
    char err[512] = "";
    int rc = sender_request(AF.st, ob, &AF.cfg, acct, address, now, r, err, sizeof err);
    if (rc != SENDER_OK)
        fail_msg("sender_request %s: %d %s", address, rc, err);
    assert_true(r->mail_sent);
    assert_int_equal(r->status, STORE_ID_PENDING);
    char *raw = queued_mail(r->message_id, r->address);
    link_token(raw, tok);
    free(raw);
}

static int confirm(const char *tok, int64_t now, struct sender_result *r)
{
    char err[512] = "";
    return sender_confirm(AF.st, tok, now, r, err, sizeof err);
}

static void request_then_confirm(void **state)
{
    (void)state;
    char err[512] = "";
    struct sender_result r;
    int rc = sender_request(AF.st, ob, &AF.cfg, &AF.a, "Ann Example <Ann.Lee@People.EXAMPLE>",
                            T0, &r, err, sizeof err);
    if (rc != SENDER_OK)
        fail_msg("%d %s", rc, err);
    assert_true(r.mail_sent);
    assert_string_equal(r.address, "Ann.Lee@people.example");   /* domain lower case */
    assert_int_equal(r.status, STORE_ID_PENDING);
    assert_int_equal(r.expires_at, T0 + 86400);
    assert_int_equal(r.requested_at, T0);

    /* the mail: from the service, to the address, the link, who asked, 24 h, safe to ignore */
    char *raw = queued_mail(r.message_id, "Ann.Lee@people.example");
    assert_non_null(strstr(raw, "From: sesame <no-reply@mx.sesame.example>\r\n"));
    assert_non_null(strstr(raw, "Subject: Confirm Ann.Lee@people.example for sending"));
    assert_non_null(strstr(raw, "Auto-Submitted: auto-generated\r\n"));
    assert_non_null(strstr(raw, "http://127.0.0.1:8080/v1/confirm?token="));
    assert_non_null(strstr(raw, "The account \"alice\""));
    assert_non_null(strstr(raw, "expires in 24 hours"));
    assert_non_null(strstr(raw, "safely ignore"));
    char tok[SENDER_TOKEN_HEX_LEN + 1];
    link_token(raw, tok);
    free(raw);

    /* the row: pending, a hash of the token, never the token */
    struct store_sender s;
    assert_int_equal(store_sender_get(AF.st, AF.a.id, "Ann.Lee@people.example", &s), STORE_OK);
    assert_int_equal(s.status, STORE_ID_PENDING);
    assert_int_equal(s.expires_at, T0 + 86400);
    assert_int_equal(s.sent_at, T0);
    assert_int_equal(strlen(s.token), 64);
    assert_string_not_equal(s.token, tok);
    unsigned char bin[32], h[32];
    size_t n = 0;
    assert_int_equal(sodium_hex2bin(bin, sizeof bin, tok, strlen(tok), NULL, &n, NULL), 0);
    crypto_generichash(h, sizeof h, bin, sizeof bin, NULL, 0);
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    assert_string_equal(s.token, hex);
    /* the stored value is no link */
    assert_int_equal(confirm(s.token, T0 + 1, &r), SENDER_NOT_FOUND);
    bool may = true;
    assert_int_equal(account_may_send_as(AF.st, AF.a.id, "Ann.Lee@people.example", &may),
                     STORE_OK);
    assert_false(may);

    /* the link: verified for alice, once */
    assert_int_equal(confirm(tok, T0 + 3600, &r), SENDER_OK);
    assert_int_equal(r.status, STORE_ID_VERIFIED);
    assert_string_equal(r.account, "alice");
    assert_string_equal(r.address, "Ann.Lee@people.example");
    assert_int_equal(store_sender_get(AF.st, AF.a.id, "Ann.Lee@people.example", &s), STORE_OK);
    assert_int_equal(s.status, STORE_ID_VERIFIED);
    assert_int_equal(s.verified_at, T0 + 3600);
    assert_string_equal(s.token, "");
    assert_int_equal(account_may_send_as(AF.st, AF.a.id, "Ann.Lee@people.example", &may),
                     STORE_OK);
    assert_true(may);
    assert_int_equal(account_may_send_as(AF.st, AF.b.id, "Ann.Lee@people.example", &may),
                     STORE_OK);
    assert_false(may);
    assert_int_equal(confirm(tok, T0 + 3601, &r), SENDER_NOT_FOUND);

    /* asking again: verified already, nothing sent */
    rc = sender_request(AF.st, ob, &AF.cfg, &AF.a, "Ann.Lee@people.example", T0 + 7200, &r,
                        err, sizeof err);
    assert_int_equal(rc, SENDER_OK);
    assert_false(r.mail_sent);
    assert_int_equal(r.status, STORE_ID_VERIFIED);
    assert_false(r.via_domain);
    assert_int_equal(sender_show(AF.st, &AF.a, "ann.lee@PEOPLE.example", T0, &r), SENDER_NOT_FOUND);
    assert_int_equal(sender_show(AF.st, &AF.a, "Ann.Lee@PEOPLE.example", T0, &r), SENDER_OK);
    assert_int_equal(r.status, STORE_ID_VERIFIED);
}

static void resend_replaces_token(void **state)
{
    (void)state;
    char old[SENDER_TOKEN_HEX_LEN + 1], tok[SENDER_TOKEN_HEX_LEN + 1], err[512] = "";
    struct sender_result r;
    request_ok(&AF.a, "kim@people.example", T0, old, &r);
    /* within the minute: refused, with when */
    int rc = sender_request(AF.st, ob, &AF.cfg, &AF.a, "kim@people.example", T0 + 30, &r, err,
                            sizeof err);
    assert_int_equal(rc, SENDER_TOO_SOON);
    assert_int_equal(r.retry_at, T0 + 60);
    assert_non_null(strstr(err, "30 seconds"));
    request_ok(&AF.a, "kim@people.example", T0 + 60, tok, &r);
    assert_string_not_equal(old, tok);
    assert_int_equal(r.expires_at, T0 + 60 + 86400);
    assert_int_equal(confirm(old, T0 + 61, &r), SENDER_NOT_FOUND);
    assert_int_equal(confirm(tok, T0 + 62, &r), SENDER_OK);
    assert_int_equal(r.status, STORE_ID_VERIFIED);
}

static void expired_link(void **state)
{
    (void)state;
    char tok[SENDER_TOKEN_HEX_LEN + 1];
    struct sender_result r;
    request_ok(&AF.a, "late@people.example", T0, tok, &r);
    /* shown expired once past, before anything is written */
    assert_int_equal(sender_show(AF.st, &AF.a, "late@people.example", T0 + 86401, &r), SENDER_OK);
    assert_int_equal(r.status, STORE_ID_EXPIRED);
    assert_int_equal(sender_show(AF.st, &AF.a, "late@people.example", T0 + 86400, &r), SENDER_OK);
    assert_int_equal(r.status, STORE_ID_PENDING);

    char err[512] = "";
    assert_int_equal(sender_confirm(AF.st, tok, T0 + 86401, &r, err, sizeof err),
                     SENDER_EXPIRED);
    assert_non_null(strstr(err, "expired"));
    assert_non_null(strstr(err, "POST /v1/senders"));
    assert_non_null(strstr(err, "sesame sender add late@people.example --account alice"));
    assert_int_equal(r.status, STORE_ID_EXPIRED);
    struct store_sender s;
    assert_int_equal(store_sender_get(AF.st, AF.a.id, "late@people.example", &s), STORE_OK);
    assert_int_equal(s.status, STORE_ID_EXPIRED);
    /* the link keeps saying so; it never verifies */
    assert_int_equal(confirm(tok, T0 + 86402, &r), SENDER_EXPIRED);
    bool may = true;
    assert_int_equal(account_may_send_as(AF.st, AF.a.id, "late@people.example", &may), STORE_OK);
    assert_false(may);

    /* a new link works */
    char tok2[SENDER_TOKEN_HEX_LEN + 1];
    request_ok(&AF.a, "late@people.example", T0 + 86500, tok2, &r);
    assert_int_equal(confirm(tok, T0 + 86501, &r), SENDER_NOT_FOUND);
    assert_int_equal(confirm(tok2, T0 + 86501, &r), SENDER_OK);
}

static void exclusive(void **state)
{
    (void)state;
    char tok[SENDER_TOKEN_HEX_LEN + 1], tokb[SENDER_TOKEN_HEX_LEN + 1], err[512] = "";
    struct sender_result r;
    /* verified by alice: bob is refused, and sends nothing */
    request_ok(&AF.a, "shared@people.example", T0, tok, &r);
    assert_int_equal(confirm(tok, T0 + 1, &r), SENDER_OK);
    int rc = sender_request(AF.st, ob, &AF.cfg, &AF.b, "shared@people.example", T0 + 2, &r, err,
                            sizeof err);
    assert_int_equal(rc, SENDER_TAKEN);
    assert_false(r.mail_sent);
    assert_non_null(strstr(err, "another account"));
    assert_int_equal(sender_show(AF.st, &AF.b, "shared@people.example", T0, &r), SENDER_NOT_FOUND);

    /* both pending: the first confirmation wins */
    request_ok(&AF.a, "race@people.example", T0, tok, &r);
    request_ok(&AF.b, "race@people.example", T0, tokb, &r);
    assert_int_equal(confirm(tokb, T0 + 5, &r), SENDER_OK);
    assert_string_equal(r.account, "bob");
    assert_int_equal(sender_confirm(AF.st, tok, T0 + 6, &r, err, sizeof err), SENDER_TAKEN);
    assert_string_equal(r.account, "alice");
    bool may = true;
    assert_int_equal(account_may_send_as(AF.st, AF.a.id, "race@people.example", &may), STORE_OK);
    assert_false(may);
    assert_int_equal(account_may_send_as(AF.st, AF.b.id, "race@people.example", &may), STORE_OK);
    assert_true(may);
    /* once bob removes it, alice's link works */
    assert_int_equal(sender_remove(AF.st, &AF.b, "race@people.example"), SENDER_OK);
    assert_int_equal(confirm(tok, T0 + 7, &r), SENDER_OK);
    assert_string_equal(r.account, "alice");
}

static void domain_holder(void **state)
{
    (void)state;
    char tok[SENDER_TOKEN_HEX_LEN + 1], err[512] = "";
    struct sender_result r;
    verify_domain(AF.b.id, "bobcorp.example");
    /* bob's domain: alice cannot have its addresses */
    int rc = sender_request(AF.st, ob, &AF.cfg, &AF.a, "ceo@bobcorp.example", T0, &r, err,
                            sizeof err);
    assert_int_equal(rc, SENDER_TAKEN);
    assert_non_null(strstr(err, "bobcorp.example"));
    /* bob has them already: nothing to send */
    rc = sender_request(AF.st, ob, &AF.cfg, &AF.b, "ceo@BobCorp.example", T0, &r, err,
                        sizeof err);
    assert_int_equal(rc, SENDER_OK);
    assert_false(r.mail_sent);
    assert_int_equal(r.status, STORE_ID_VERIFIED);
    assert_true(r.via_domain);
    assert_int_equal(sender_show(AF.st, &AF.b, "ceo@bobcorp.example", T0, &r), SENDER_OK);
    assert_true(r.via_domain);
    json_t *j = sender_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "via")), "domain");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "verified");
    json_decref(j);

    /* alice verified an address, bob then its domain: each has it already */
    request_ok(&AF.a, "desk@both.example", T0, tok, &r);
    assert_int_equal(confirm(tok, T0 + 1, &r), SENDER_OK);
    verify_domain(AF.b.id, "both.example");
    rc = sender_request(AF.st, ob, &AF.cfg, &AF.a, "desk@both.example", T0 + 100, &r, err,
                        sizeof err);
    assert_int_equal(rc, SENDER_OK);
    assert_false(r.mail_sent);
    assert_false(r.via_domain);
    rc = sender_request(AF.st, ob, &AF.cfg, &AF.b, "desk@both.example", T0 + 100, &r, err,
                        sizeof err);
    assert_int_equal(rc, SENDER_OK);
    assert_true(r.via_domain);
    /* ... but a new address there is bob's alone */
    rc = sender_request(AF.st, ob, &AF.cfg, &AF.a, "other@both.example", T0 + 100, &r, err,
                        sizeof err);
    assert_int_equal(rc, SENDER_TAKEN);

    /* alice's pending link, then bob verifies the domain: the link is refused */
    request_ok(&AF.a, "news@later.example", T0, tok, &r);
    verify_domain(AF.b.id, "later.example");
    assert_int_equal(confirm(tok, T0 + 10, &r), SENDER_TAKEN);
    bool may = true;
    assert_int_equal(account_may_send_as(AF.st, AF.a.id, "news@later.example", &may), STORE_OK);
    assert_false(may);
}

static void throttles(void **state)
{
    (void)state;
    char tok[SENDER_TOKEN_HEX_LEN + 1], err[512] = "";
    struct sender_result r;
    /* 50 addresses in a day, then refused until the first is 24 h old */
    for (int i = 0; i < SENDER_MAX_MAILS_24H; i++) {
        char a[64];
        snprintf(a, sizeof a, "user%d@many.example", i);
        request_ok(&AF.a, a, T0 + i, tok, &r);
    }
    int rc = sender_request(AF.st, ob, &AF.cfg, &AF.a, "one-more@many.example", T0 + 100, &r,
                            err, sizeof err);
    assert_int_equal(rc, SENDER_QUOTA);
    assert_int_equal(r.retry_at, T0 + 86400);
    assert_non_null(strstr(err, "50"));
    /* the durable count alone says the same (a restarted process) */
    sender_limits_reset();
    rc = sender_request(AF.st, ob, &AF.cfg, &AF.a, "one-more@many.example", T0 + 100, &r, err,
                        sizeof err);
    assert_int_equal(rc, SENDER_QUOTA);
    /* bob is not alice */
    request_ok(&AF.b, "one-more@many.example", T0 + 100, tok, &r);
    /* a day after the first: room for one */
    request_ok(&AF.a, "one-more@many.example", T0 + 86400, tok, &r);
    rc = sender_request(AF.st, ob, &AF.cfg, &AF.a, "two-more@many.example", T0 + 86400, &r, err,
                        sizeof err);
    assert_int_equal(rc, SENDER_QUOTA);
}

static void resends_count(void **state)
{
    (void)state;
    char tok[SENDER_TOKEN_HEX_LEN + 1], err[512] = "";
    struct sender_result r;
    /* one victim, a mail a minute: the 51st is refused */
    for (int i = 0; i < SENDER_MAX_MAILS_24H; i++)
        request_ok(&AF.b, "victim@people.example", T0 + 60 * i, tok, &r);
    int rc = sender_request(AF.st, ob, &AF.cfg, &AF.b, "victim@people.example",
                            T0 + 60 * SENDER_MAX_MAILS_24H, &r, err, sizeof err);
    assert_int_equal(rc, SENDER_QUOTA);
    assert_int_equal(r.retry_at, T0 + 86400);
    /* the last link still works */
    assert_int_equal(confirm(tok, T0 + 60 * SENDER_MAX_MAILS_24H, &r), SENDER_OK);
}

static void queue_refusal_keeps_row(void **state)
{
    (void)state;
    char tok[SENDER_TOKEN_HEX_LEN + 1], err[512] = "";
    struct sender_result r;
    /* the address bounced before: on the service's own suppression list */
    struct store_suppression sup = { .account_id = system_account(), .created_at = T0 };
    snprintf(sup.address, sizeof sup.address, "gone@people.example");
    snprintf(sup.reason, sizeof sup.reason, "bounce");
    assert_int_equal(store_suppression_put(AF.st, &sup), STORE_OK);
    int rc = sender_request(AF.st, ob, &AF.cfg, &AF.a, "gone@people.example", T0, &r, err,
                            sizeof err);
    assert_int_equal(rc, SENDER_SUPPRESSED);
    assert_non_null(strstr(err, "suppression"));
    struct store_sender s;
    assert_int_equal(store_sender_get(AF.st, AF.a.id, "gone@people.example", &s), STORE_OK);
    assert_int_equal(s.status, STORE_ID_PENDING);
    assert_int_equal(s.sent_at, 0);
    /* suppression lifted: asking again at once works */
    assert_int_equal(store_suppression_delete(AF.st, sup.account_id, sup.address), STORE_OK);
    request_ok(&AF.a, "gone@people.example", T0 + 1, tok, &r);
    assert_int_equal(confirm(tok, T0 + 2, &r), SENDER_OK);

    /* no engine: nothing written */
    rc = sender_request(AF.st, NULL, &AF.cfg, &AF.a, "none@people.example", T0, &r, err,
                        sizeof err);
    assert_int_equal(rc, SENDER_UNAVAILABLE);
    assert_int_equal(store_sender_get(AF.st, AF.a.id, "none@people.example", &s),
                     STORE_NOTFOUND);
}

static void bad_input(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "nobody", "a@b@c.example", "\"quoted local\"@people.example", "x@[192.0.2.1]",
        "caf\xc3\xa9@people.example", "x@localhost", "x@exa_mple.com", "a@b.example, c@d.example",
        ".dot@people.example", "x@192.0.2.1",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@people.example",
    };
    struct sender_result r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[512] = "";
        int rc = sender_request(AF.st, ob, &AF.cfg, &AF.a, bad[i], T0, &r, err, sizeof err);
        if (rc != SENDER_BAD_INPUT)
            fail_msg("'%s' was not refused (%d)", bad[i], rc);
        assert_true(strlen(err) > 0);
    }
    struct store_account sys;
    assert_int_equal(outbound_system_account(AF.st, &sys), STORE_OK);
    char err[512] = "";
    assert_int_equal(sender_request(AF.st, ob, &AF.cfg, &sys, "x@people.example", T0, &r, err,
                                    sizeof err), SENDER_BAD_INPUT);
    const char *tokens[] = {
        "", "abc", "zz00000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000000000000000000000000000000000000",
    };
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++)
        assert_int_equal(confirm(tokens[i], T0, &r), SENDER_BAD_INPUT);
    assert_int_equal(confirm("0000000000000000000000000000000000000000000000000000000000000000",
                             T0, &r), SENDER_NOT_FOUND);
}

static void public_url(void **state)
{
    (void)state;
    snprintf(AF.cfg.public_url, sizeof AF.cfg.public_url, "https://mail.example.com/sesame/");
    char err[512] = "";
    struct sender_result r;
    assert_int_equal(sender_request(AF.st, ob, &AF.cfg, &AF.a, "u@people.example", T0, &r, err,
                                     sizeof err), SENDER_OK);
    char *raw = queued_mail(r.message_id, "u@people.example");
    assert_non_null(strstr(raw, "\r\nhttps://mail.example.com/sesame/v1/confirm?token="));
    free(raw);
    /* a configured lifetime is what the mail says */
    AF.cfg.public_url[0] = '\0';
    AF.cfg.identities_confirm_ttl = 5400;
    assert_int_equal(sender_request(AF.st, ob, &AF.cfg, &AF.a, "v@people.example", T0, &r, err,
                                     sizeof err), SENDER_OK);
    assert_int_equal(r.expires_at, T0 + 5400);
    raw = queued_mail(r.message_id, "v@people.example");
    assert_non_null(strstr(raw, "expires in 90 minutes"));
    free(raw);
}

/* ---- through the HTTP API ---- */

static void api_flow(void **state)
{
    (void)state;
    af_call("POST", "/v1/senders", AUTH_A, "{\"address\": \"Zoe <zoe@people.example>\"}");
    af_expect_status(202);
    assert_string_equal(af_str(AF.json, "address"), "zoe@people.example");
    assert_string_equal(af_str(AF.json, "status"), "pending");
    af_str(AF.json, "expires_at");
    af_str(AF.json, "requested_at");
    assert_true(json_is_null(json_object_get(AF.json, "verified_at")));
    assert_non_null(strstr(af_str(AF.json, "message"), "zoe@people.example"));

    af_call("GET", "/v1/senders/zoe@people.example", AUTH_A, NULL);
    af_expect_status(200);
    assert_string_equal(af_str(AF.json, "status"), "pending");
    af_call("GET", "/v1/senders/zoe@people.example", AUTH_B, NULL);   /* not bob's */
    af_expect_error(404, "not_found");
    af_call("POST", "/v1/senders", AUTH_A, "{\"address\": \"zoe@people.example\"}");
    af_expect_error(429, "rate_limited");
    assert_true(AF.retry_after >= 59 && AF.retry_after <= 60);
    af_str(json_object_get(AF.json, "error"), "retry_at");

    /* a resend a minute later (its token read from the mail queued) */
    char tok[SENDER_TOKEN_HEX_LEN + 1];
    struct sender_result r;
    request_ok(&AF.a, "zoe@people.example", (int64_t)time(NULL) + 61, tok, &r);

    char q[128];
    af_callx("GET", "/v1/confirm", "", NULL, NULL, 0);
    af_expect_error(400, "invalid_token");
    af_callx("GET", "/v1/confirm", "token=nope", NULL, NULL, 0);
    af_expect_error(400, "invalid_token");
    snprintf(q, sizeof q, "token=%s", tok);
    af_callx("GET", "/v1/confirm", q, NULL, NULL, 0);     /* no API key needed */
    af_expect_status(200);
    assert_string_equal(af_str(AF.json, "address"), "zoe@people.example");
    assert_string_equal(af_str(AF.json, "status"), "verified");
    assert_non_null(strstr(af_str(AF.json, "message"), "alice"));
    af_callx("GET", "/v1/confirm", q, NULL, NULL, 0);
    af_expect_error(404, "not_found");
    assert_non_null(strstr(AF.body, "unknown or already used link"));

    af_call("GET", "/v1/senders/zoe%40people.example", AUTH_A, NULL);
    af_expect_status(200);
    assert_string_equal(af_str(AF.json, "status"), "verified");
    assert_string_equal(af_str(AF.json, "via"), "address");
    af_str(AF.json, "verified_at");
    af_call("POST", "/v1/senders", AUTH_A, "{\"address\": \"zoe@people.example\"}");
    af_expect_status(200);
    assert_string_equal(af_str(AF.json, "status"), "verified");

    /* the sandboxed alice may now send from it */
    af_call("POST", "/v1/messages", AUTH_A, "{\"from\": \"zoe@people.example\", \"to\": "
            "[\"zoe@people.example\"], \"subject\": \"hi\", \"text\": \"x\"}");
    af_expect_status(202);

    af_call("GET", "/v1/senders", AUTH_A, NULL);
    af_expect_status(200);
    assert_int_equal(json_array_size(json_object_get(AF.json, "senders")), 1);
    af_call("GET", "/v1/senders", AUTH_B, NULL);
    af_expect_status(200);
    assert_int_equal(json_array_size(json_object_get(AF.json, "senders")), 0);

    af_call("DELETE", "/v1/senders/zoe@people.example", AUTH_B, NULL);
    af_expect_error(404, "not_found");
    af_call("DELETE", "/v1/senders/zoe@people.example", AUTH_A, NULL);
    af_expect_status(204);
    af_call("DELETE", "/v1/senders/zoe@people.example", AUTH_A, NULL);
    af_expect_error(404, "not_found");
    af_call("GET", "/v1/senders/zoe@people.example", AUTH_A, NULL);
    af_expect_error(404, "not_found");
    af_call("GET", "/v1/senders", AUTH_A, NULL);
    assert_int_equal(json_array_size(json_object_get(AF.json, "senders")), 0);
    af_call("POST", "/v1/messages", AUTH_A, "{\"from\": \"zoe@people.example\", \"to\": "
            "[\"zoe@people.example\"], \"subject\": \"hi\", \"text\": \"x\"}");
    af_expect_error(400, "identity_not_verified");
}

static void api_expired_and_errors(void **state)
{
    (void)state;
    char tok[SENDER_TOKEN_HEX_LEN + 1], q[128];
    struct sender_result r;
    request_ok(&AF.b, "old@people.example", (int64_t)time(NULL) - 86401, tok, &r);
    af_call("GET", "/v1/senders/old@people.example", AUTH_B, NULL);
    af_expect_status(200);
    assert_string_equal(af_str(AF.json, "status"), "expired");
    snprintf(q, sizeof q, "token=%s", tok);
    af_callx("GET", "/v1/confirm", q, NULL, NULL, 0);
    af_expect_error(410, "link_expired");
    assert_non_null(strstr(AF.body, "POST /v1/senders"));
    af_call("POST", "/v1/senders", AUTH_B, "{\"address\": \"old@people.example\"}");
    af_expect_status(202);

    af_call("POST", "/v1/senders", AUTH_A, "{\"address\": 7}");
    af_expect_error(400, "invalid_request");
    af_call("POST", "/v1/senders", AUTH_A, "{\"address\": \"x@people.example\", \"name\": 1}");
    af_expect_error(400, "invalid_request");
    af_call("POST", "/v1/senders", AUTH_A, "{\"address\": \"not an address\"}");
    af_expect_error(400, "invalid_address");
    af_callx("POST", "/v1/senders", NULL, AUTH_A, "{\"address\": \"a\\u0000b@people.example\"}",
             strlen("{\"address\": \"a\\u0000b@people.example\"}"));
    af_expect_error(400, "invalid_json");     /* the body parser refuses NUL first */
    af_call("POST", "/v1/senders", NULL, "{\"address\": \"x@people.example\"}");
    af_expect_error(401, "unauthorized");
    af_call("GET", "/v1/senders/not-an-address", AUTH_A, NULL);
    af_expect_error(404, "not_found");

    /* taken: 409 */
    verify_domain(AF.b.id, "bobcorp.example");
    af_call("POST", "/v1/senders", AUTH_A, "{\"address\": \"x@bobcorp.example\"}");
    af_expect_error(409, "identity_taken");
    af_call("POST", "/v1/senders", AUTH_B, "{\"address\": \"x@bobcorp.example\"}");
    af_expect_status(200);
    assert_string_equal(af_str(AF.json, "via"), "domain");
    af_call("GET", "/v1/senders/x@bobcorp.example", AUTH_B, NULL);
    af_expect_status(200);
    assert_string_equal(af_str(AF.json, "via"), "domain");

    /* no engine in this process: 503, nothing written */
    AF.ctx.outbound = NULL;
    af_call("POST", "/v1/senders", AUTH_A, "{\"address\": \"y@people.example\"}");
    af_expect_error(503, "unavailable");
    AF.ctx.outbound = ob;
    af_call("GET", "/v1/senders/y@people.example", AUTH_A, NULL);
    af_expect_error(404, "not_found");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(request_then_confirm, setup, teardown),
        cmocka_unit_test_setup_teardown(resend_replaces_token, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_link, setup, teardown),
        cmocka_unit_test_setup_teardown(exclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(domain_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(throttles, setup, teardown),
        cmocka_unit_test_setup_teardown(resends_count, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_refusal_keeps_row, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(public_url, setup, teardown),
        cmocka_unit_test_setup_teardown(api_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(api_expired_and_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
