/* Feedback classification on real-world-shaped samples (tests/data/feedback/):
 * Postfix, Exim, Gmail-style DSNs, a delayed DSN, several recipients with
 * quoted-printable, the RFC 5965 Appendix B ARF report and a base64 one,
 * auto-replies (RFC 3834 and Exchange-style), plain messages, plain-text
 * bounces (Exim, qmail) and malformed reports. Every sample is read with its
 * LF line ends and again with CRLF. Generated inputs: giant headers, deep
 * nesting, many parts, many recipients, NULs, bad base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail/dsn.h"
#include "util/buf.h"

static char *load(const char *name, size_t *len)
{
    const char *dir = getenv("SESAME_TEST_DATA");
    if (!dir)
        fail_msg("SESAME_TEST_DATA is not set");
    char path[512];
    snprintf(path, sizeof path, "%s/feedback/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    s[n] = '\0';
    *len = (size_t)n;
    return s;
}

static char *to_crlf(const char *s, size_t n, size_t *outlen)
{
    char *o = malloc(2 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            o[k++] = '\r';
        o[k++] = s[i];
    }
    o[k] = '\0';
    *outlen = k;
    return o;
}

/* Parses the sample with LF and with CRLF line ends: both must agree. */
static int parse_sample(const char *name, const char *mail_from, struct feedback *fb, char *err)
{
    size_t len, clen;
    char *msg = load(name, &len);
    char *crlf = to_crlf(msg, len, &clen);
    struct feedback *fb2 = malloc(sizeof *fb2);
    char err2[256];
    int rc = feedback_parse_envelope(msg, len, mail_from, fb, err, 256);
    int rc2 = feedback_parse_envelope(crlf, clen, mail_from, fb2, err2, sizeof err2);
    if (rc != rc2)
        fail_msg("%s: LF gives %d (%s), CRLF gives %d (%s)", name, rc, err, rc2, err2);
    if (memcmp(fb, fb2, sizeof *fb) != 0)
        fail_msg("%s: LF and CRLF parse differently", name);
    if (!mail_from) { /* feedback_parse is the same as an unknown envelope */
        assert_int_equal(feedback_parse(msg, len, fb2, err2, sizeof err2), rc);
        assert_memory_equal(fb, fb2, sizeof *fb);
    }
    free(fb2);
    free(crlf);
    free(msg);
    return rc;
}

static struct feedback *expect(const char *name, enum feedback_kind kind)
{
    struct feedback *fb = malloc(sizeof *fb);
    char err[256] = "";
    if (parse_sample(name, NULL, fb, err) != 0)
        fail_msg("%s refused: %s", name, err);
    if (fb->kind != kind)
        fail_msg("%s: kind %d, want %d", name, fb->kind, kind);
    return fb;
}

static void expect_malformed(const char *name, const char *why)
{
    struct feedback fb;
    char err[256] = "";
    if (parse_sample(name, NULL, &fb, err) != -1)
        fail_msg("%s accepted as kind %d", name, fb.kind);
    if (!strstr(err, why))
        fail_msg("%s: error '%s' does not say '%s'", name, err, why);
    assert_int_equal(fb.kind, FEEDBACK_NONE);
}

static void rcpt_is(const struct dsn_recipient *r, const char *final, const char *action,
                    const char *status)
{
    assert_string_equal(r->final_recipient, final);
    assert_string_equal(r->action, action);
    assert_string_equal(r->status, status);
}

static void postfix(void **state)
{
    struct feedback *fb = expect("postfix_dsn.eml", FEEDBACK_DSN);
    assert_false(fb->heuristic);
    assert_string_equal(fb->reporting_mta, "mx.remote.test");
    assert_int_equal(fb->nrcpts, 1);
    rcpt_is(&fb->rcpts[0], "nosuchuser@remote.test", "failed", "5.1.1");
    assert_string_equal(fb->rcpts[0].original_recipient, "nosuchuser@remote.test");
    assert_string_equal(fb->rcpts[0].remote_mta, "mailstore.remote.test");
    assert_string_equal(fb->rcpts[0].diagnostic,
                        "smtp; 550 5.1.1 <nosuchuser@remote.test>: Recipient address rejected: "
                        "User unknown in virtual mailbox table");
    assert_string_equal(fb->original_message_id,
                        "<9f3c1e0d2b4a4e7f8c6d5b4a3f2e1d0c@mail.example.com>");
    free(fb);
}

static void exim(void **state)
{
    struct feedback *fb = expect("exim_dsn.eml", FEEDBACK_DSN);
    assert_string_equal(fb->reporting_mta, "mx1.exim.test");
    assert_int_equal(fb->nrcpts, 1);
    /* the Status field is what counts, even when the diagnostic says more */
    rcpt_is(&fb->rcpts[0], "gone@exim.test", "failed", "5.0.0");
    assert_string_equal(fb->rcpts[0].remote_mta, "mx.exim.test");
    assert_non_null(strstr(fb->rcpts[0].diagnostic, "550 5.1.1 <gone@exim.test>"));
    /* a folded Message-ID in the returned message */
    assert_string_equal(fb->original_message_id, "<order-123.456@example.com>");
    free(fb);
}

static void gmail(void **state)
{
    struct feedback *fb = expect("gmail_dsn.eml", FEEDBACK_DSN);
    assert_string_equal(fb->reporting_mta, "googlemail.com");
    assert_int_equal(fb->nrcpts, 1);
    rcpt_is(&fb->rcpts[0], "doesnotexist@gmail.test", "failed", "5.1.1");
    assert_true(strncmp(fb->rcpts[0].remote_mta, "gmail-smtp-in.l.google.test.", 28) == 0);
    assert_true(strncmp(fb->rcpts[0].diagnostic, "smtp; 550-5.1.1 The email account", 33) == 0);
    assert_non_null(strstr(fb->rcpts[0].diagnostic, "does not exist. Please"));
    assert_string_equal(fb->original_message_id, "<CAgmail-orig-1@mail.example.com>");
    free(fb);
}

static void delayed(void **state)
{
    struct feedback *fb = expect("delayed_dsn.eml", FEEDBACK_DSN);
    assert_int_equal(fb->nrcpts, 1);
    rcpt_is(&fb->rcpts[0], "later@slow.test", "delayed", "4.4.1");
    assert_string_equal(fb->rcpts[0].diagnostic,
                        "X-Postfix; connect to mx.slow.test[192.0.2.44]:25: Connection timed out");
    assert_string_equal(fb->rcpts[0].remote_mta, "");
    assert_string_equal(fb->original_message_id, "<slow-1@mail.example.com>");
    free(fb);
}

static void multiple_recipients(void **state)
{
    struct feedback *fb = expect("multi_rcpt_dsn.eml", FEEDBACK_DSN);
    assert_string_equal(fb->reporting_mta, "relay.multi.test");
    assert_int_equal(fb->nrcpts, 3);
    rcpt_is(&fb->rcpts[0], "first.one@multi.test", "failed", "5.2.2");
    assert_string_equal(fb->rcpts[0].original_recipient, "First.One@multi.test");
    /* quoted-printable undone: UTF-8 em dash */
    assert_string_equal(fb->rcpts[0].diagnostic,
                        "smtp; 552 5.2.2 Mailbox full \xe2\x80\x94 quota exceeded");
    assert_string_equal(fb->rcpts[0].remote_mta, "store1.multi.test");
    /* "RFC822; <addr>", "Action: Failed" */
    rcpt_is(&fb->rcpts[1], "second@multi.test", "failed", "5.7.1");
    assert_non_null(strstr(fb->rcpts[1].diagnostic, "a very long diagnostic line that was"));
    rcpt_is(&fb->rcpts[2], "third@multi.test", "delivered", "2.0.0");
    assert_string_equal(fb->original_message_id, "<multi-9@mail.example.com>");
    free(fb);
}

static void arf(void **state)
{
    struct feedback *fb = expect("arf_abuse.eml", FEEDBACK_ARF);
    assert_string_equal(fb->feedback_type, "abuse");
    assert_string_equal(fb->user_agent, "SomeGenerator/1.0");
    assert_string_equal(fb->arf_original_rcpt, "user@example.com");
    assert_string_equal(fb->arf_original_mail_from, "somespammer@example.net");
    assert_string_equal(fb->original_message_id, "8787KJKJ3K4J3K4J3K4J3.mail@example.net");
    assert_int_equal(fb->nrcpts, 0);
    free(fb);

    fb = expect("arf_headers_only.eml", FEEDBACK_ARF); /* base64 report, headers only */
    assert_string_equal(fb->feedback_type, "abuse");
    assert_string_equal(fb->user_agent, "ISP-FBL/2.1");
    assert_string_equal(fb->arf_original_rcpt, "complainer@isp.test");
    assert_string_equal(fb->arf_original_mail_from, "");
    assert_string_equal(fb->original_message_id, "<deal-2025-11@mail.example.com>");
    free(fb);
}

static void autoreplies(void **state)
{
    /* RFC 3834 (with a status-looking line in the text, and Return-Path <>) */
    free(expect("autoreply.eml", FEEDBACK_AUTOREPLY));
    /* Exchange: auto-generated + X-Auto-Response-Suppress + the subject */
    free(expect("autoreply_exchange.eml", FEEDBACK_AUTOREPLY));
    free(expect("autoreply_xheader.eml", FEEDBACK_AUTOREPLY));
    /* a vacation-looking subject alone is not enough */
    free(expect("vacation_subject_only.eml", FEEDBACK_NONE));
    free(expect("plain.eml", FEEDBACK_NONE));
    /* another kind of report is no bounce and no error */
    free(expect("mdn.eml", FEEDBACK_NONE));
}

static void text_bounces(void **state)
{
    struct feedback *fb = expect("exim_text.eml", FEEDBACK_DSN);
    assert_true(fb->heuristic);
    assert_int_equal(fb->nrcpts, 1);
    rcpt_is(&fb->rcpts[0], "ghost@old-exim.test", "failed", "5.1.1");
    assert_string_equal(fb->rcpts[0].diagnostic,
                        "550 5.1.1 <ghost@old-exim.test>: Recipient address rejected: User unknown");
    assert_string_equal(fb->original_message_id, "<old-exim-orig@mail.example.com>");
    free(fb);

    /* qmail: a basic code, the address some lines above */
    fb = expect("qmail_text.eml", FEEDBACK_DSN);
    assert_true(fb->heuristic);
    rcpt_is(&fb->rcpts[0], "nobody@qmail.test", "failed", "5.0.0");
    assert_string_equal(fb->rcpts[0].diagnostic,
                        "Remote host said: 550 sorry, no mailbox here by that name");
    free(fb);

    /* From MAILER-DAEMON but a real Return-Path: not a bounce */
    free(expect("text_bounce_not_null.eml", FEEDBACK_NONE));
    /* the envelope, when known, decides over the header */
    struct feedback f;
    char err[256];
    assert_int_equal(parse_sample("text_bounce_not_null.eml", "", &f, err), 0);
    assert_int_equal(f.kind, FEEDBACK_DSN);
    rcpt_is(&f.rcpts[0], "x@remote.test", "failed", "5.1.1");
    assert_int_equal(parse_sample("exim_text.eml", "someone@remote.test", &f, err), 0);
    assert_int_equal(f.kind, FEEDBACK_AUTOREPLY); /* it says Auto-Submitted: auto-replied */
    assert_int_equal(parse_sample("qmail_text.eml", "someone@remote.test", &f, err), 0);
    assert_int_equal(f.kind, FEEDBACK_NONE);
}

static void malformed(void **state)
{
    expect_malformed("malformed_missing_status.eml", "message/delivery-status");
    expect_malformed("malformed_no_delimiter.eml", "without parts");
    expect_malformed("malformed_no_recipient.eml", "recipient");
    expect_malformed("arf_no_type.eml", "Feedback-Type");
    /* a boundary that never closes: what came is read */
    struct feedback *fb = expect("malformed_unclosed.eml", FEEDBACK_DSN);
    assert_int_equal(fb->nrcpts, 1);
    rcpt_is(&fb->rcpts[0], "cut@trunc.test", "failed", "5.1.1");
    assert_string_equal(fb->original_message_id, "<truncated-1@mail.example.com>");
    free(fb);
}

/* ---- generated inputs ------------------------------------------------- */

static const char dsn_tail[] =
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n"
    "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
    "Reporting-MTA: dns; gen.test\r\n\r\n"
    "Final-Recipient: rfc822; r@gen.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    "\r\n--B--\r\n";

static void giant_headers(void **state)
{
    /* 200,000 header fields, then a DSN */
    size_t n = 200000, cap = n * 16 + sizeof dsn_tail;
    char *msg = malloc(cap);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(msg + len, "X-Junk: aaaaa\r\n", 15);
        len += 15;
    }
    memcpy(msg + len, dsn_tail, sizeof dsn_tail - 1);
    len += sizeof dsn_tail - 1;
    struct feedback fb;
    char err[256];
    clock_t t0 = clock();
    assert_int_equal(feedback_parse(msg, len, &fb, err, sizeof err), 0);
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 10.0);
    assert_int_equal(fb.kind, FEEDBACK_DSN);
    rcpt_is(&fb.rcpts[0], "r@gen.test", "failed", "5.1.1");
    free(msg);

    /* one enormous folded field and an enormous Diagnostic-Code: cut, terminated */
    size_t big = 2 * 1024 * 1024;
    msg = malloc(big + 4096);
    len = (size_t)snprintf(msg, 200, "Subject: x");
    while (len < big) {
        static const char fold[] = "\r\n aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        memcpy(msg + len, fold, sizeof fold - 1);
        len += sizeof fold - 1;
    }
    len += (size_t)snprintf(msg + len, 4096,
                            "\r\nMIME-Version: 1.0\r\n"
                            "Content-Type: multipart/report; report-type=delivery-status; "
                            "boundary=B\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
                            "Final-Recipient: rfc822; r@gen.test\r\nAction: failed\r\n"
                            "Diagnostic-Code: smtp; 550 5.7.1");
    for (int i = 0; i < 50; i++) {
        static const char more[] = "\r\n xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
        memcpy(msg + len, more, sizeof more - 1);
        len += sizeof more - 1;
    }
    memcpy(msg + len, "\r\n--B--\r\n", 9);
    len += 9;
    assert_int_equal(feedback_parse(msg, len, &fb, err, sizeof err), 0);
    assert_int_equal(fb.kind, FEEDBACK_DSN);
    assert_int_equal(strlen(fb.rcpts[0].diagnostic), sizeof fb.rcpts[0].diagnostic - 1);
    assert_true(strncmp(fb.rcpts[0].diagnostic, "smtp; 550 5.7.1 xxx", 19) == 0);
    /* no Status field: taken from the diagnostic */
    assert_string_equal(fb.rcpts[0].status, "5.7.1");
    free(msg);
}

static void nesting_and_counts(void **state)
{
    /* the status part nested 20 multiparts deep: beyond the depth limit,
     * so the report has no status part */
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_printf(&b, "Content-Type: multipart/report; report-type=delivery-status; "
                                    "boundary=b0\r\n\r\n"), 0);
    for (int d = 0; d < 20; d++)
        assert_int_equal(buf_printf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n",
                                    d, d + 1), 0);
    assert_int_equal(buf_printf(&b, "--b20\r\nContent-Type: message/delivery-status\r\n\r\n"
                                    "Final-Recipient: rfc822; deep@gen.test\r\nAction: failed\r\n"
                                    "Status: 5.0.0\r\n"), 0);
    struct feedback fb;
    char err[256];
    assert_int_equal(feedback_parse(b.data, b.len, &fb, err, sizeof err), -1);
    assert_non_null(strstr(err, "message/delivery-status"));

    /* 3 levels deep is fine */
    buf_reset(&b);
    assert_int_equal(buf_printf(&b, "Content-Type: multipart/report; report-type=delivery-status; "
                                    "boundary=b0\r\n\r\n"), 0);
    for (int d = 0; d < 3; d++)
        assert_int_equal(buf_printf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n",
                                    d, d + 1), 0);
    assert_int_equal(buf_printf(&b, "--b3\r\nContent-Type: message/delivery-status\r\n\r\n"
                                    "Final-Recipient: rfc822; deep@gen.test\r\nAction: failed\r\n"
                                    "Status: 5.0.0\r\n"), 0);
    assert_int_equal(feedback_parse(b.data, b.len, &fb, err, sizeof err), 0);
    rcpt_is(&fb.rcpts[0], "deep@gen.test", "failed", "5.0.0");

    /* 40 recipient groups: the first DSN_MAX_RECIPIENTS are kept */
    buf_reset(&b);
    assert_int_equal(buf_printf(&b, "Content-Type: multipart/report; report-type=delivery-status; "
                                    "boundary=B\r\n\r\n--B\r\nContent-Type: message/delivery-status"
                                    "\r\n\r\nReporting-MTA: dns; gen.test\r\n"), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(buf_printf(&b, "\r\nFinal-Recipient: rfc822; r%d@gen.test\r\n"
                                        "Action: failed\r\nStatus: 5.1.1\r\n", i), 0);
    assert_int_equal(buf_printf(&b, "\r\n--B--\r\n"), 0);
    assert_int_equal(feedback_parse(b.data, b.len, &fb, err, sizeof err), 0);
    assert_int_equal(fb.nrcpts, DSN_MAX_RECIPIENTS);
    assert_string_equal(fb.rcpts[DSN_MAX_RECIPIENTS - 1].final_recipient, "r31@gen.test");

    /* 200 empty parts before the status part: past the part limit */
    buf_reset(&b);
    assert_int_equal(buf_printf(&b, "Content-Type: multipart/report; report-type=delivery-status; "
                                    "boundary=B\r\n\r\n"), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(buf_printf(&b, "--B\r\n\r\nfiller\r\n"), 0);
    assert_int_equal(buf_printf(&b, "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
                                    "Final-Recipient: rfc822; late@gen.test\r\nAction: failed\r\n"
                                    "\r\n--B--\r\n"), 0);
    assert_int_equal(feedback_parse(b.data, b.len, &fb, err, sizeof err), -1);
    buf_free(&b);
}

static void hostile_bytes(void **state)
{
    struct feedback fb;
    char err[256];
    const char nul[] = "From: MAILER-DAEMON@x.test\r\n\r\n550 5.1.1 <a\0@x.test>\r\n";
    assert_int_equal(feedback_parse(nul, sizeof nul - 1, &fb, err, sizeof err), -1);
    assert_non_null(strstr(err, "NUL"));
    const char bad64[] =
        "Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n"
        "\r\n!!!! not base64 ####\r\n--B--\r\n";
    assert_int_equal(feedback_parse(bad64, sizeof bad64 - 1, &fb, err, sizeof err), -1);
    /* control octets in values come out as '?', never CR or LF */
    const char ctl[] =
        "Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Final-Recipient: rfc822; a\x01" "b@x.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550\x1b[31m red\r\n\r\n--B--\r\n";
    assert_int_equal(feedback_parse(ctl, sizeof ctl - 1, &fb, err, sizeof err), 0);
    assert_string_equal(fb.rcpts[0].final_recipient, "a?b@x.test");
    assert_string_equal(fb.rcpts[0].diagnostic, "smtp; 550?[31m red");
    /* empty input, headers only */
    assert_int_equal(feedback_parse("", 0, &fb, err, sizeof err), 0);
    assert_int_equal(fb.kind, FEEDBACK_NONE);
    const char head[] = "Content-Type: multipart/report; report-type=delivery-status";
    assert_int_equal(feedback_parse(head, sizeof head - 1, &fb, err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(postfix),
        cmocka_unit_test(exim),
        cmocka_unit_test(gmail),
        cmocka_unit_test(delayed),
        cmocka_unit_test(multiple_recipients),
        cmocka_unit_test(arf),
        cmocka_unit_test(autoreplies),
        cmocka_unit_test(text_bounces),
        cmocka_unit_test(malformed),
        cmocka_unit_test(giant_headers),
        cmocka_unit_test(nesting_and_counts),
        cmocka_unit_test(hostile_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
