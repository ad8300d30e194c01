/* The inbound header rewrite: forged Authentication-Results removal (ours
 * only, however folded, commented, cased or quoted), the order and folding
 * of the fields we prepend, the Received value, the listing summary, and
 * the header walker rules.c shares. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/inbound_msg.h"
#include "util/limits.h"

#define ID "mx.example.test"
#define AR "mx.example.test; spf=pass smtp.mailfrom=a@sender.test"
#define RCV "from mail.sender.test ([192.0.2.1]) by mx.example.test with ESMTP id abc; Thu, 1 Jan 1970 00:00:00 +0000"

static char *rewrite(const char *msg, size_t *removed, int *rc)
{
    struct buf out;
    buf_init(&out, MAIL_MAX_MESSAGE_SIZE);
    *rc = inbound_msg_rewrite(msg, strlen(msg), ID, AR, RCV, &out, removed);
    char *s = buf_detach(&out);
    buf_free(&out);
    return s ? s : strdup("");
}

/* The fields we add for AR and RCV: the first is exactly 78 columns (not
 * folded), the second is folded once. */
static const char *top_fields(void)
{
    return "Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=a@sender.test\r\n"
           "Received: from mail.sender.test ([192.0.2.1]) by mx.example.test with ESMTP id\r\n"
           " abc; Thu, 1 Jan 1970 00:00:00 +0000\r\n";
}

static void forged_removed(void **state)
{
    const char *msg =
        "Authentication-Results: mx.example.test; spf=pass\r\n"
        "X-First: 1\r\n"
        "Authentication-Results: (our name) MX.Example.TEST;\r\n"
        "\tdkim=pass header.d=bank.test\r\n"
        "authentication-results:\r\n"
        "  mx.example.test 1; dmarc=pass\r\n"
        "Authentication-Results: \"mx.example.test\"; none\r\n"
        "Authentication-Results: other.test; spf=fail\r\n"
        "Authentication-Results: mx.example.test.evil.test; spf=pass\r\n"
        "Authentication-Results: mx.example.testing; spf=pass\r\n"
        "Authentication-Results : mx.example.test; spf=pass\r\n"
        "Subject: hello\r\n"
        "\r\n"
        "Authentication-Results: mx.example.test; spf=pass\r\n"
        "body\r\n";
    size_t removed = 99;
    int rc;
    char *out = rewrite(msg, &removed, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(removed, 5);
    char want[4096];
    snprintf(want, sizeof want, "%s%s", top_fields(),
             "X-First: 1\r\n"
             "Authentication-Results: other.test; spf=fail\r\n"
             "Authentication-Results: mx.example.test.evil.test; spf=pass\r\n"
             "Authentication-Results: mx.example.testing; spf=pass\r\n"
             "Subject: hello\r\n"
             "\r\n"
             "Authentication-Results: mx.example.test; spf=pass\r\n"
             "body\r\n");
    assert_string_equal(out, want);
    free(out);
}

static void foreign_kept_and_order(void **state)
{
    const char *msg = "Received: from a by b; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
                      "Authentication-Results: relay.other.test; dkim=pass\r\n"
                      "From: a@sender.test\r\n\r\nhi\r\n";
    size_t removed = 99;
    int rc;
    char *out = rewrite(msg, &removed, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(removed, 0);
    char want[2048];
    snprintf(want, sizeof want, "%s%s", top_fields(), msg);
    assert_string_equal(out, want);
    /* ours on top, our Received right below it, then what arrived */
    assert_true(strncmp(out, "Authentication-Results: mx.example.test;", 40) == 0);
    const char *rcv = strstr(out, "\r\nReceived: from mail.sender.test");
    const char *theirs = strstr(out, "Received: from a by b");
    assert_non_null(rcv);
    assert_non_null(theirs);
    assert_true(rcv < theirs);
    free(out);
}

static void folding(void **state)
{
    const char *value =
        "mx.example.test; spf=pass (ip4:192.0.2.0/24) smtp.mailfrom=someone@long-sender-domain.test;"
        " dkim=pass header.d=long-sender-domain.test header.s=selector2024 header.a=rsa-sha256"
        " header.b=AbCdEfGh; dmarc=pass (p=reject dis=none) header.from=long-sender-domain.test"
        " policy.dmarc=reject";
    struct buf out;
    buf_init(&out, 65536);
    size_t removed;
    assert_int_equal(inbound_msg_rewrite("Subject: x\r\n\r\n", 14, ID, value, RCV, &out,
                                         &removed), 0);
    const char *s = buf_cstr(&out);
    const char *want_ar =
        "Authentication-Results: mx.example.test;\r\n"
        " spf=pass (ip4:192.0.2.0/24) smtp.mailfrom=someone@long-sender-domain.test;\r\n"
        " dkim=pass header.d=long-sender-domain.test header.s=selector2024\r\n"
        " header.a=rsa-sha256 header.b=AbCdEfGh;\r\n"
        " dmarc=pass (p=reject dis=none) header.from=long-sender-domain.test\r\n"
        " policy.dmarc=reject\r\n";
    assert_true(strncmp(s, want_ar, strlen(want_ar)) == 0);
    /* every line within 78 columns; unfolding gives the value back */
    const char *line = s;
    size_t head_end = (size_t)(strstr(s, "\r\n\r\n") - s);
    while (line < s + head_end) {
        const char *e = strstr(line, "\r\n");
        assert_true(e - line <= 78);
        line = e + 2;
    }
    char unfolded[1024];
    struct sv v = sv_make(s + strlen("Authentication-Results:"),
                          (size_t)(strstr(s, "\r\nReceived:") - s) - strlen("Authentication-Results:"));
    inbound_unfold(v, unfolded, sizeof unfolded);
    assert_string_equal(unfolded, value);

    /* a word longer than a line stays whole on its own line */
    char longword[200];
    memset(longword, 'x', 120);
    longword[120] = '\0';
    char val[300];
    snprintf(val, sizeof val, "mx.example.test; dkim=fail header.b=%s; spf=none", longword);
    assert_int_equal(inbound_msg_rewrite("A: b\r\n\r\n", 8, ID, val, RCV, &out, &removed), 0);
    char want[600];
    snprintf(want, sizeof want,
             "Authentication-Results: mx.example.test;\r\n"
             " dkim=fail\r\n"
             " header.b=%s;\r\n"
             " spf=none\r\n", longword);
    assert_true(strncmp(buf_cstr(&out), want, strlen(want)) == 0);

    /* an already folded value is refolded; the name may be repeated */
    assert_int_equal(inbound_msg_rewrite("A: b\r\n\r\n", 8, ID,
                                         "Authentication-Results: mx.example.test;\r\n\tspf=pass",
                                         RCV, &out, &removed), 0);
    assert_true(strncmp(buf_cstr(&out), "Authentication-Results: mx.example.test;\tspf=pass\r\n"
                        "Received: ", 61) == 0);
    buf_free(&out);
}

static void refused_values(void **state)
{
    struct buf out;
    buf_init(&out, 65536);
    size_t removed;
    /* a line break that would start a new field */
    assert_int_equal(inbound_msg_rewrite("A: b\r\n\r\n", 8, ID, "x; none\r\nBcc: evil@x.test", RCV,
                                         &out, &removed), -1);
    assert_int_equal(inbound_msg_rewrite("A: b\r\n\r\n", 8, ID, "x; none", "from a\nBcc: b", &out,
                                         &removed), -1);
    assert_int_equal(inbound_msg_rewrite("A: b\r\n\r\n", 8, ID, "x; none\r", RCV, &out, &removed),
                     -1);
    assert_int_equal(inbound_msg_rewrite("A: b\r\n\r\n", 8, ID, "x;\rnone", RCV, &out, &removed),
                     -1);
    /* the cap */
    struct buf small;
    buf_init(&small, 64);
    assert_int_equal(inbound_msg_rewrite("A: b\r\n\r\n", 8, ID, AR, RCV, &small, &removed), -1);
    buf_free(&small);
    buf_free(&out);
}

static void lf_only(void **state)
{
    const char *msg = "Authentication-Results: mx.example.test;\n spf=pass\n"
                      "Subject: lf\n\nbody\n";
    size_t removed;
    int rc;
    char *out = rewrite(msg, &removed, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(removed, 1);
    assert_null(strchr(out, '\r'));
    assert_string_equal(out, "Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=a@sender.test\n"
                             "Received: from mail.sender.test ([192.0.2.1]) by mx.example.test with ESMTP id\n"
                             " abc; Thu, 1 Jan 1970 00:00:00 +0000\n"
                             "Subject: lf\n\nbody\n");
    free(out);

    /* no header/body separator at all, and an empty message */
    out = rewrite("Subject: only", &removed, &rc);
    assert_int_equal(rc, 0);
    assert_true(strstr(out, "+0000\r\nSubject: only") != NULL);
    free(out);
    /* continuation lines above every field would continue our Received */
    out = rewrite(" orphan\r\n\tlines\r\nSubject: s\r\n\r\n", &removed, &rc);
    assert_int_equal(rc, 0);
    char want[512];
    snprintf(want, sizeof want, "%sSubject: s\r\n\r\n", top_fields());
    assert_string_equal(out, want);
    free(out);
    out = rewrite("", &removed, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, top_fields());
    free(out);
}

static void many_forged(void **state)
{
    /* 200,000 forged fields past anything a field array would hold */
    const char *one = "Authentication-Results: mx.example.test; spf=pass\r\n";
    size_t n = 200000, ol = strlen(one);
    char *msg = malloc(n * ol + 32);
    for (size_t i = 0; i < n; i++)
        memcpy(msg + i * ol, one, ol);
    memcpy(msg + n * ol, "Subject: s\r\n\r\nb\r\n", 18);
    struct buf out;
    buf_init(&out, MAIL_MAX_MESSAGE_SIZE);
    size_t removed = 0;
    clock_t t0 = clock();
    assert_int_equal(inbound_msg_rewrite(msg, strlen(msg), ID, AR, RCV, &out, &removed), 0);
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);
    assert_int_equal(removed, n);
    char want[512];
    snprintf(want, sizeof want, "%sSubject: s\r\n\r\nb\r\n", top_fields());
    assert_string_equal(buf_cstr(&out), want);
    buf_free(&out);
    free(msg);
}

static void received_formats(void **state)
{
    char out[512];
    time_t when = 1700000000;   /* Tue, 14 Nov 2023 22:13:20 +0000 */
    assert_int_equal(inbound_msg_received(out, sizeof out, "mail.sender.test", "192.0.2.1",
                                          "out1.sender.test", "mx.example.test", "ESMTPS",
                                          "TLSv1.3 TLS_AES_256_GCM_SHA384", "q1w2e3",
                                          "bob@example.test", when), 0);
    assert_string_equal(out, "from mail.sender.test (out1.sender.test [192.0.2.1]) by "
                             "mx.example.test with ESMTPS (TLSv1.3 TLS_AES_256_GCM_SHA384) "
                             "id q1w2e3 for <bob@example.test>; Tue, 14 Nov 2023 22:13:20 +0000");

    assert_int_equal(inbound_msg_received(out, sizeof out, "[192.0.2.1]", "2001:db8::1", NULL,
                                          "mx.example.test", "ESMTP", NULL, "id-2", NULL, 0), 0);
    assert_string_equal(out, "from [192.0.2.1] ([IPv6:2001:db8::1]) by mx.example.test with "
                             "ESMTP id id-2; Thu, 1 Jan 1970 00:00:00 +0000");

    /* a HELO that is no domain is not repeated; bad rdns and rcpt are left out;
     * the TLS comment is escaped */
    assert_int_equal(inbound_msg_received(out, sizeof out, "evil (x) \r\nBcc: y", "192.0.2.9",
                                          "bad name!", "mx.example.test", "UTF8SMTPSA",
                                          "a(b)c\\", "ID9", "x>\r\ny@z", when), 0);
    assert_string_equal(out, "from [192.0.2.9] ([192.0.2.9]) by mx.example.test with UTF8SMTPSA "
                             "(a\\(b\\)c\\\\) id ID9; Tue, 14 Nov 2023 22:13:20 +0000");
    assert_int_equal(inbound_msg_received(out, sizeof out, "", "192.0.2.9", NULL,
                                          "mx.example.test", "ESMTPA", NULL, "i", NULL, when), 0);
    assert_true(strncmp(out, "from [192.0.2.9] ([192.0.2.9]) by", 33) == 0);

    /* unusable arguments */
    assert_int_equal(inbound_msg_received(out, sizeof out, "h.test", "not-an-ip", NULL,
                                          "mx.example.test", "ESMTP", NULL, "i", NULL, when), -1);
    assert_string_equal(out, "");
    assert_int_equal(inbound_msg_received(out, sizeof out, "h.test", "192.0.2.1", NULL,
                                          "mx example", "ESMTP", NULL, "i", NULL, when), -1);
    assert_int_equal(inbound_msg_received(out, sizeof out, "h.test", "192.0.2.1", NULL,
                                          "mx.example.test", "ESMTP;x", NULL, "i", NULL, when), -1);
    assert_int_equal(inbound_msg_received(out, sizeof out, "h.test", "192.0.2.1", NULL,
                                          "mx.example.test", "ESMTP", NULL, "a b", NULL, when), -1);
    assert_int_equal(inbound_msg_received(out, 40, "h.test", "192.0.2.1", NULL, "mx.example.test",
                                          "ESMTP", NULL, "i", NULL, when), -1);
    assert_string_equal(out, "");
}

static void summary(void **state)
{
    char mid[64], subj[32], from[64];
    const char *msg = "From: Alice\r\n <alice@sender.test>\r\n"
                      "Subject:   Hello\r\n\tfolded   world  \r\n"
                      "Subject: second\r\n"
                      "Message-ID: <1@sender.test>\r\n"
                      "\r\nSubject: in body\r\n";
    assert_int_equal(inbound_msg_summary(msg, strlen(msg), mid, sizeof mid, subj, sizeof subj,
                                         from, sizeof from), 0);
    assert_string_equal(mid, "<1@sender.test>");
    assert_string_equal(subj, "Hello folded   world");
    assert_string_equal(from, "Alice <alice@sender.test>");

    /* missing fields; the body is not the header */
    msg = "X: y\n\nSubject: body\n";
    assert_int_equal(inbound_msg_summary(msg, strlen(msg), mid, sizeof mid, subj, sizeof subj,
                                         from, sizeof from), 0);
    assert_string_equal(mid, "");
    assert_string_equal(subj, "");
    assert_string_equal(from, "");

    /* oversized: cut on a character boundary ("é" is 2 octets, "€" 3) */
    msg = "Subject: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9zzz\r\n"   /* 29 a + é */
          "From: \xe2\x82\xac\xe2\x82\xac\r\n\r\n";
    char s31[32], f5[5];
    assert_int_equal(inbound_msg_summary(msg, strlen(msg), mid, sizeof mid, s31, sizeof s31, f5,
                                         sizeof f5), 0);
    assert_int_equal(strlen(s31), 31);   /* 29 + 2 octets of é fit in 31 */
    assert_string_equal(s31 + 29, "\xc3\xa9");
    char s30[30];
    assert_int_equal(inbound_msg_summary(msg, strlen(msg), mid, sizeof mid, s30, sizeof s30, f5,
                                         sizeof f5), 0);
    assert_int_equal(strlen(s30), 29);   /* é does not fit: not cut in half */
    assert_string_equal(f5, "\xe2\x82\xac");

    /* invalid UTF-8 and control characters are not passed on */
    msg = "Subject: a\xff" "b\x01" "c\xc3(d\xed\xa0\x80" "e\r\n\r\n";
    assert_int_equal(inbound_msg_summary(msg, strlen(msg), mid, sizeof mid, subj, sizeof subj,
                                         from, sizeof from), 0);
    assert_string_equal(subj, "a?b c?(d???e");
    /* a NUL inside a value */
    const char nul[] = "Subject: a\0b\r\n\r\n";
    assert_int_equal(inbound_msg_summary(nul, sizeof nul - 1, mid, sizeof mid, subj, sizeof subj,
                                         from, sizeof from), 0);
    assert_string_equal(subj, "a b");
    assert_int_equal(inbound_msg_summary(msg, strlen(msg), mid, 0, subj, sizeof subj, from,
                                         sizeof from), -1);
}

static void walker(void **state)
{
    const char *head = " orphan continuation\r\n"
                       "Good: one\r\n"
                       "\ttwo\r\n"
                       "no colon here\r\n"
                       " continued junk\r\n"
                       "Bad Name: x\r\n"
                       "Spaced  \t: v\n"
                       "Last:tail";
    struct inbound_hdr_walk w;
    struct inbound_hdr_entity e;
    inbound_hdr_walk_init(&w, head, strlen(head));
    const char *names[] = { "", "Good", "", "", "Spaced", "Last" };
    const char *values[] = { "", " one\r\n\ttwo", "", "", " v", "tail" };
    size_t n = 0, pos = 0;
    while (inbound_hdr_next(&w, &e)) {
        assert_true(n < 6);
        assert_int_equal(e.start, pos);
        pos = e.end;
        assert_int_equal(e.name.len, strlen(names[n]));
        assert_memory_equal(e.name.p ? e.name.p : "", names[n], e.name.len);
        if (e.name.len) {
            assert_int_equal(e.value.len, strlen(values[n]));
            assert_memory_equal(e.value.p, values[n], e.value.len);
        }
        n++;
    }
    assert_int_equal(n, 6);
    assert_int_equal(pos, strlen(head));

    char out[64];
    assert_int_equal(inbound_unfold(SV_LIT(" \t a\r\n b\n\tc  \r\n "), out, sizeof out), 5);
    assert_string_equal(out, "a b\tc");
    assert_int_equal(inbound_unfold(SV_LIT("abcdef"), out, 4), 3);
    assert_string_equal(out, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forged_removed),   cmocka_unit_test(foreign_kept_and_order),
        cmocka_unit_test(folding),          cmocka_unit_test(refused_values),
        cmocka_unit_test(lf_only),          cmocka_unit_test(many_forged),
        cmocka_unit_test(received_formats), cmocka_unit_test(summary),
        cmocka_unit_test(walker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
