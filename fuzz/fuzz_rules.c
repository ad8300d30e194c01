/* libFuzzer target: receiving rules. Input starting with '{' is a rule:
 * when it parses, its canonical form must parse to the same canonical form,
 * and the rule is evaluated against a fixed message and its header edits
 * applied (no added line may be anything but one valid field). Any other
 * input is a header section evaluated by a fixed rule set using every
 * field and op, regexes included. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail_header.h"
#include "service/inbound_msg.h"
#include "service/rules.h"

static const char msg[] = "Received: from a by b; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
                          "From: Alice <alice@sender.test>\r\n"
                          "Subject: Weekly\r\n Newsletter\r\n"
                          "X-Spam: yes\r\n"
                          "List-Id: <list.sender.test>\r\n"
                          "\r\n"
                          "body\r\n";
static const char *const rcpts[] = { "bob@example.test", "carol@other.test" };

static const char *const fixed_rules[] = {
    "{\"name\":\"a\",\"match\":\"any\",\"conditions\":["
    "{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"regex\",\"value\":\"^(re|fwd):.*(a|b)+c$\"},"
    "{\"field\":\"header\",\"header\":\"From\",\"op\":\"contains\",\"value\":\"@evil\"},"
    "{\"field\":\"header\",\"header\":\"X-Spam\",\"op\":\"equals\",\"value\":\"yes\"},"
    "{\"field\":\"header\",\"header\":\"X-Spam\",\"op\":\"not_contains\",\"value\":\"no\"},"
    "{\"field\":\"header\",\"header\":\"List-Id\",\"op\":\"exists\"}],"
    "\"actions\":[{\"type\":\"add_header\",\"header\":\"X-A\",\"value\":\"1\"},"
    "{\"type\":\"strip_header\",\"header\":\"Subject\"}]}",
    "{\"name\":\"b\",\"conditions\":["
    "{\"field\":\"header\",\"header\":\"Received\",\"op\":\"regex\",\"value\":\"from [a-z.]+ \\\\(\"},"
    "{\"field\":\"header\",\"header\":\"X-Absent\",\"op\":\"not_exists\"},"
    "{\"field\":\"recipient\",\"op\":\"not_equals\",\"value\":\"x@y\"}],"
    "\"actions\":[{\"type\":\"webhook\",\"url\":\"http://h.test/\"},"
    "{\"type\":\"strip_header\",\"header\":\"Received\"}]}",
    "{\"name\":\"c\",\"match\":\"any\",\"conditions\":["
    "{\"field\":\"client_ip\",\"op\":\"cidr\",\"value\":\"192.0.2.0/24\"},"
    "{\"field\":\"spf\",\"op\":\"equals\",\"value\":\"pass\"},"
    "{\"field\":\"header\",\"header\":\"Subject\",\"op\":\"regex\",\"value\":\"[[:digit:]]{3,9}\"}],"
    "\"actions\":[{\"type\":\"reject\"}]}",
};

/* After the edits, no field of a stripped name is left unless an add of
 * that name came after the strip; the adds are one line each. */
static void check_edits(const struct rule_outcome *o, const char *m, size_t len)
{
    struct buf out;
    buf_init(&out, len + 65536);
    if (rule_apply_header_edits(o, m, len, &out) == 0) {
        size_t head_len, body_off;
        mail_split_message(buf_cstr(&out), out.len, &head_len, &body_off);
        struct inbound_hdr_walk w;
        struct inbound_hdr_entity e;
        inbound_hdr_walk_init(&w, buf_cstr(&out), head_len);
        while (inbound_hdr_next(&w, &e)) {
            if (!e.name.len)
                continue;
            for (size_t k = 0; k < o->nedits; k++) {
                if (o->edits[k].add || !sv_eq_ci_cstr(e.name, o->edits[k].name))
                    continue;
                bool readded = false;
                for (size_t j = k + 1; j < o->nedits; j++)
                    readded |= o->edits[j].add && sv_eq_ci_cstr(e.name, o->edits[j].name);
                if (!readded || memchr(e.value.p, '\n', e.value.len))
                    __builtin_trap();
            }
        }
    }
    buf_free(&out);
}

static struct rule_set *fixed;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dkim_signature_result sig = { .result = DKIM_FAIL };
    struct auth_verdict v;
    memset(&v, 0, sizeof v);
    v.spf.result = SPF_PASS;
    v.dkim.count = 1;
    v.dkim.sigs = &sig;
    v.dmarc.result = DMARC_FAIL;
    struct rule_subject s = { .mail_from = "alice@sender.test", .rcpts = rcpts, .nrcpt = 2,
                              .client_ip = "192.0.2.1", .helo = "mail.sender.test",
                              .head = msg, .head_len = sizeof msg - 1, .verdict = &v };
    struct rule_outcome o;

    if (size > 0 && data[0] == '{') {
        char err[256], *canon = NULL;
        struct rule *r = rule_parse((const char *)data, size, &canon, err, sizeof err);
        if (!r) {
            if (!err[0] || canon)
                __builtin_trap();
            return 0;
        }
        char *again = NULL;
        struct rule *r2 = rule_parse(canon, strlen(canon), &again, err, sizeof err);
        if (!r2 || strcmp(canon, again) != 0)
            __builtin_trap();
        struct rule_set *set = rule_set_new();
        if (rule_set_add(set, r) != 0)
            __builtin_trap();
        if (rule_set_add(set, r2) != 0)
            __builtin_trap();
        rule_set_evaluate(set, &s, &o);
        check_edits(&o, msg, sizeof msg - 1);
        rule_set_free(set);
        free(canon);
        free(again);
        return 0;
    }

    if (!fixed) {
        fixed = rule_set_new();
        for (size_t i = 0; i < sizeof fixed_rules / sizeof fixed_rules[0]; i++) {
            struct rule *r = rule_parse(fixed_rules[i], strlen(fixed_rules[i]), NULL, NULL, 0);
            if (!r || rule_set_add(fixed, r) != 0)
                __builtin_trap();
        }
    }
    s.head = (const char *)data;
    s.head_len = size;
    rule_set_evaluate(fixed, &s, &o);
    check_edits(&o, (const char *)data, size);
    return 0;
}
