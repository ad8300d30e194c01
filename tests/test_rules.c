/* Receiving rules: every parse error with its exact message, defaults and
 * canonical form, every op on every field, any/all, order, stop, the
 * finality of reject and drop, webhook caps, regex limits, header edits
 * byte for byte, and a hostile header section evaluated in bounded time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/rules.h"
#include "util/limits.h"

#define KEEP "\"actions\":[{\"type\":\"store\"}]"

static struct rule *parse_ok(const char *json, char **canonical)
{
    char err[256] = "x";
    struct rule *r = rule_parse(json, strlen(json), canonical, err, sizeof err);
    if (!r)
        fail_msg("rejected: %s\n  %s", err, json);
    assert_string_equal(err, "");
    return r;
}

static void expect_error(const char *json, size_t len, const char *want, bool prefix)
{
    char err[256] = "";
    char *canon = (char *)"untouched";
    struct rule *r = rule_parse(json, len, &canon, err, sizeof err);
    if (r) {
        rule_free(r);
        fail_msg("accepted: %s", json);
    }
    assert_null(canon);
    if (prefix ? strncmp(err, want, strlen(want)) != 0 : strcmp(err, want) != 0)
        fail_msg("for %s\n  got  %s\n  want %s%s", json, err, want, prefix ? "..." : "");
}

static void parse_errors(void **state)
{
    static const struct { const char *json, *err; bool prefix; } t[] = {
        { "not json", "rule: invalid JSON at line 1", true },
        { "{\"actions\":[{\"type\":\"store\"}]} x", "rule: invalid JSON at line 1", true },
        { "[]", "rule: must be a JSON object", false },
        { "{" KEEP ",\"x\":1}", "x: unknown key", false },
        { "{\"name\":\"a\",\"name\":\"b\"," KEEP "}", "rule: invalid JSON at line 1", true },
        { "{\"name\":5," KEEP "}", "name: must be a string", false },
        { "{\"name\":\"a\\u0007b\"," KEEP "}", "name: control characters are not allowed", false },
        { "{\"match\":\"some\"," KEEP "}", "match: must be \"all\" or \"any\", not \"some\"", false },
        { "{\"stop\":\"yes\"," KEEP "}", "stop: must be true or false", false },
        { "{\"conditions\":{}," KEEP "}", "conditions: must be an array", false },
        { "{\"conditions\":[1]," KEEP "}", "conditions[0]: must be an object", false },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"equals\",\"value\":\"a\"},"
          "{\"field\":\"sender\",\"op\":\"like\",\"value\":\"x\"}]," KEEP "}",
          "conditions[1].op: unknown op \"like\"", false },
        { "{\"conditions\":[{\"field\":\"subject\",\"op\":\"equals\",\"value\":\"a\"}]," KEEP "}",
          "conditions[0].field: unknown field \"subject\"", false },
        { "{\"conditions\":[{\"op\":\"equals\",\"value\":\"a\"}]," KEEP "}",
          "conditions[0].field: required", false },
        { "{\"conditions\":[{\"field\":\"sender\",\"value\":\"a\"}]," KEEP "}",
          "conditions[0].op: required", false },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"equals\",\"value\":\"a\",\"flags\":1}],"
          KEEP "}", "conditions[0].flags: unknown key", false },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"exists\"}]," KEEP "}",
          "conditions[0].op: \"exists\" needs field \"header\"", false },
        { "{\"conditions\":[{\"field\":\"helo\",\"op\":\"not_exists\"}]," KEEP "}",
          "conditions[0].op: \"not_exists\" needs field \"header\"", false },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"cidr\",\"value\":\"a\"}]," KEEP "}",
          "conditions[0].op: \"cidr\" is for field \"client_ip\"", false },
        { "{\"conditions\":[{\"field\":\"spf\",\"op\":\"contains\",\"value\":\"a\"}]," KEEP "}",
          "conditions[0].op: \"contains\" does not apply to field \"spf\"", false },
        { "{\"conditions\":[{\"field\":\"header\",\"op\":\"exists\"}]," KEEP "}",
          "conditions[0].header: required", false },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"equals\",\"value\":\"a\",\"header\":\"X\"}],"
          KEEP "}", "conditions[0].header: only for field \"header\"", false },
        { "{\"conditions\":[{\"field\":\"header\",\"op\":\"exists\",\"header\":\"X Bad\"}]," KEEP "}",
          "conditions[0].header: not a header field name (printable ASCII but ':')", false },
        { "{\"conditions\":[{\"field\":\"header\",\"op\":\"exists\",\"header\":\"X:\"}]," KEEP "}",
          "conditions[0].header: not a header field name (printable ASCII but ':')", false },
        { "{\"conditions\":[{\"field\":\"header\",\"op\":\"exists\",\"header\":\"X\",\"value\":\"v\"}],"
          KEEP "}", "conditions[0].value: not used with op \"exists\"", false },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"equals\"}]," KEEP "}",
          "conditions[0].value: required", false },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"equals\",\"value\":5}]," KEEP "}",
          "conditions[0].value: must be a string", false },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"\"}]," KEEP "}",
          "conditions[0].value: must not be empty", false },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"equals\",\"value\":\"a\\u0001\"}]," KEEP "}",
          "conditions[0].value: control characters are not allowed", false },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"regex\",\"value\":\"(a\"}]," KEEP "}",
          "conditions[0].value: invalid regex: ", true },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"regex\",\"value\":\"(a)\\\\1\"}]," KEEP "}",
          "conditions[0].value: regex back-references are not supported", false },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"regex\",\"value\":\"(a{100}){100}\"}],"
          KEEP "}", "conditions[0].value: regex too complex", true },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"regex\",\"value\":\"((a{20}){20}){20}\"}],"
          KEEP "}", "conditions[0].value: regex too complex", true },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"regex\",\"value\":\"a{1,32767}\"}],"
          KEEP "}", "conditions[0].value: regex too complex", true },
        /* found by the fuzzer: each stacked + made glibc duplicate the tree (2 GB) */
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"regex\",\"value\":\"(nT+++++)+++\"}],"
          KEEP "}", "conditions[0].value: regex a repetition directly after another", true },
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"regex\",\"value\":\"a*{2}\"}],"
          KEEP "}", "conditions[0].value: regex a repetition directly after another", true },
        /* X+ doubles X: twelve nested + would be 4096 copies */
        { "{\"conditions\":[{\"field\":\"sender\",\"op\":\"regex\",\"value\":\"((((((((((((ab)+c)+d)+e)+f)+g)+h)+i)+j)+k)+l)+m)+\"}],"
          KEEP "}", "conditions[0].value: regex too complex", true },
        { "{\"conditions\":[{\"field\":\"spf\",\"op\":\"equals\",\"value\":\"passs\"}]," KEEP "}",
          "conditions[0].value: \"passs\" is not a spf result (pass, fail, softfail, neutral, "
          "none, temperror, permerror)", false },
        { "{\"conditions\":[{\"field\":\"dkim\",\"op\":\"equals\",\"value\":\"softfail\"}]," KEEP "}",
          "conditions[0].value: \"softfail\" is not a dkim result (pass, fail, neutral, policy, "
          "temperror, permerror, none)", false },
        { "{\"conditions\":[{\"field\":\"dmarc\",\"op\":\"not_equals\",\"value\":\"policy\"}]," KEEP "}",
          "conditions[0].value: \"policy\" is not a dmarc result (pass, fail, none, temperror, "
          "permerror)", false },
        { "{\"conditions\":[{\"field\":\"client_ip\",\"op\":\"cidr\",\"value\":\"192.0.2.1/24\"}],"
          KEEP "}", "conditions[0].value: address has bits set past the /24 prefix", false },
        { "{\"conditions\":[{\"field\":\"client_ip\",\"op\":\"cidr\",\"value\":\"192.0.2.0/33\"}],"
          KEEP "}", "conditions[0].value: prefix length must be 0 to 32", false },
        { "{\"conditions\":[{\"field\":\"client_ip\",\"op\":\"cidr\",\"value\":\"2001:db8::/129\"}],"
          KEEP "}", "conditions[0].value: prefix length must be 0 to 128", false },
        { "{\"conditions\":[{\"field\":\"client_ip\",\"op\":\"cidr\",\"value\":\"192.0.2.0/\"}],"
          KEEP "}", "conditions[0].value: prefix length must be 0 to 32", false },
        { "{\"conditions\":[{\"field\":\"client_ip\",\"op\":\"cidr\",\"value\":\"example.test/8\"}],"
          KEEP "}", "conditions[0].value: not an IP network (like 192.0.2.0/24 or 2001:db8::/32)",
          false },
        { "{\"conditions\":[{\"field\":\"client_ip\",\"op\":\"equals\",\"value\":\"1.2.3\"}]," KEEP "}",
          "conditions[0].value: not an IP address", false },
        { "{\"actions\":[]}", "actions: must hold 1 to 16 actions", false },
        { "{\"name\":\"x\"}", "actions: required (at least one action)", false },
        { "{\"actions\":{}}", "actions: must be an array", false },
        { "{\"actions\":[\"drop\"]}", "actions[0]: must be an object", false },
        { "{\"actions\":[{}]}", "actions[0].type: required", false },
        { "{\"actions\":[{\"type\":\"bounce\"}]}", "actions[0].type: unknown type \"bounce\"", false },
        { "{\"actions\":[{\"type\":\"drop\",\"code\":550}]}",
          "actions[0].code: unknown key for type \"drop\"", false },
        { "{\"actions\":[{\"type\":\"reject\",\"url\":\"http://a\"}]}",
          "actions[0].url: unknown key for type \"reject\"", false },
        { "{\"actions\":[{\"type\":\"reject\",\"code\":250}]}",
          "actions[0].code: must be a 4xx or 5xx reply code (like 550 or 450)", false },
        { "{\"actions\":[{\"type\":\"reject\",\"code\":590}]}",
          "actions[0].code: must be a 4xx or 5xx reply code (like 550 or 450)", false },
        { "{\"actions\":[{\"type\":\"reject\",\"code\":\"550\"}]}",
          "actions[0].code: must be a 4xx or 5xx reply code (like 550 or 450)", false },
        { "{\"actions\":[{\"type\":\"reject\",\"code\":550.0}]}",
          "actions[0].code: must be a 4xx or 5xx reply code (like 550 or 450)", false },
        { "{\"actions\":[{\"type\":\"reject\",\"code\":550,\"enhanced\":\"4.7.1\"}]}",
          "actions[0].enhanced: must be an RFC 3463 code of class 5 (like \"5.7.1\")", false },
        { "{\"actions\":[{\"type\":\"reject\",\"code\":451,\"enhanced\":\"4.07.1\"}]}",
          "actions[0].enhanced: must be an RFC 3463 code of class 4 (like \"4.7.1\")", false },
        { "{\"actions\":[{\"type\":\"reject\",\"enhanced\":\"5.7.1.2\"}]}",
          "actions[0].enhanced: must be an RFC 3463 code of class 5 (like \"5.7.1\")", false },
        { "{\"actions\":[{\"type\":\"reject\",\"message\":\"no\\r\\n250 ok\"}]}",
          "actions[0].message: must be printable ASCII on one line", false },
        { "{\"actions\":[{\"type\":\"reject\",\"message\":\"caf\\u00e9\"}]}",
          "actions[0].message: must be printable ASCII on one line", false },
        { "{\"actions\":[{\"type\":\"reject\",\"message\":\"\"}]}",
          "actions[0].message: must not be empty", false },
        { "{\"actions\":[{\"type\":\"webhook\"}]}", "actions[0].url: required", false },
        { "{\"actions\":[{\"type\":\"webhook\",\"url\":\"ftp://h.test/\"}]}",
          "actions[0].url: must be an http:// or https:// URL with a host", false },
        { "{\"actions\":[{\"type\":\"webhook\",\"url\":\"http://\"}]}",
          "actions[0].url: must be an http:// or https:// URL with a host", false },
        { "{\"actions\":[{\"type\":\"webhook\",\"url\":\"https:///path\"}]}",
          "actions[0].url: must be an http:// or https:// URL with a host", false },
        { "{\"actions\":[{\"type\":\"webhook\",\"url\":\"http://[::1/\"}]}",
          "actions[0].url: must be an http:// or https:// URL with a host", false },
        { "{\"actions\":[{\"type\":\"webhook\",\"url\":\"http://h.test:0/\"}]}",
          "actions[0].url: port must be 1 to 65535", false },
        { "{\"actions\":[{\"type\":\"webhook\",\"url\":\"http://h.test:65536/\"}]}",
          "actions[0].url: port must be 1 to 65535", false },
        { "{\"actions\":[{\"type\":\"webhook\",\"url\":\"http://h.test/a b\"}]}",
          "actions[0].url: must not contain white space, control or non-ASCII characters", false },
        { "{\"actions\":[{\"type\":\"webhook\",\"url\":\"http://h.test/\",\"include_raw\":1}]}",
          "actions[0].include_raw: must be true or false", false },
        { "{\"actions\":[{\"type\":\"add_header\",\"header\":\"X-A\"}]}",
          "actions[0].value: required", false },
        { "{\"actions\":[{\"type\":\"add_header\",\"header\":\"X-A\",\"value\":\"a\\r\\nBcc: x\"}]}",
          "actions[0].value: must be one line without control characters (it is not folded)", false },
        { "{\"actions\":[{\"type\":\"strip_header\"}]}", "actions[0].header: required", false },
        { "{\"actions\":[{\"type\":\"strip_header\",\"header\":\"\"}]}",
          "actions[0].header: not a header field name (printable ASCII but ':')", false },
        { "{\"actions\":[{\"type\":\"drop\"},{\"type\":\"reject\"}]}",
          "actions[1].type: \"reject\" conflicts with \"drop\": a rule holds at most one of store, "
          "drop and reject", false },
        { "{\"actions\":[{\"type\":\"store\"},{\"type\":\"webhook\",\"url\":\"http://h.test\"},"
          "{\"type\":\"drop\"}]}",
          "actions[2].type: \"drop\" conflicts with \"store\": a rule holds at most one of store, "
          "drop and reject", false },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        expect_error(t[i].json, strlen(t[i].json), t[i].err, t[i].prefix);

    /* duplicate keys are named by jansson */
    char err[256];
    const char *dup = "{\"name\":\"a\",\"name\":\"b\"," KEEP "}";
    assert_null(rule_parse(dup, strlen(dup), NULL, err, sizeof err));
    assert_non_null(strstr(err, "duplicate"));

    /* sizes and counts */
    char big[RULES_MAX_JSON + 64];
    snprintf(big, sizeof big, "{\"name\":\"%*s\"," KEEP "}", RULES_MAX_JSON, "x");
    expect_error(big, strlen(big), "rule: larger than 16384 octets", false);
    const char nul[] = "{\"name\":\"a\"," KEEP "}\0";
    expect_error(nul, sizeof nul - 1, "rule: contains a NUL octet", false);

    char json[8192];
    size_t n = (size_t)snprintf(json, sizeof json, "{\"conditions\":[");
    for (int i = 0; i < RULES_MAX_CONDITIONS + 1; i++)
        n += (size_t)snprintf(json + n, sizeof json - n,
                              "%s{\"field\":\"sender\",\"op\":\"equals\",\"value\":\"a\"}",
                              i ? "," : "");
    snprintf(json + n, sizeof json - n, "]," KEEP "}");
    expect_error(json, strlen(json), "conditions: at most 32 conditions", false);
    n = (size_t)snprintf(json, sizeof json, "{\"actions\":[");
    for (int i = 0; i < RULES_MAX_ACTIONS + 1; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s{\"type\":\"strip_header\",\"header\":\"X\"}",
                              i ? "," : "");
    snprintf(json + n, sizeof json - n, "]}");
    expect_error(json, strlen(json), "actions: must hold 1 to 16 actions", false);

    /* value lengths */
    char v[1100];
    memset(v, 'a', sizeof v);
    v[1025] = '\0';
    snprintf(json, sizeof json,
             "{\"conditions\":[{\"field\":\"sender\",\"op\":\"equals\",\"value\":\"%s\"}]," KEEP "}", v);
    expect_error(json, strlen(json), "conditions[0].value: too long (at most 1024 octets)", false);
    v[513] = '\0';
    snprintf(json, sizeof json,
             "{\"conditions\":[{\"field\":\"sender\",\"op\":\"regex\",\"value\":\"%s\"}]," KEEP "}", v);
    expect_error(json, strlen(json), "conditions[0].value: too long (at most 512 octets)", false);
    v[201] = '\0';
    snprintf(json, sizeof json, "{\"actions\":[{\"type\":\"reject\",\"message\":\"%s\"}]}", v);
    expect_error(json, strlen(json), "actions[0].message: too long (at most 200 octets)", false);
    memset(v, 'a', sizeof v);
    v[1024 - 14] = '\0';   /* "http://h.test/" + 1010 = 1024 octets */
    snprintf(json, sizeof json, "{\"actions\":[{\"type\":\"webhook\",\"url\":\"http://h.test/%s\"}]}", v);
    expect_error(json, strlen(json), "actions[0].url: too long (at most 1023 octets)", false);
    v[1023 - 14] = '\0';
    snprintf(json, sizeof json, "{\"actions\":[{\"type\":\"webhook\",\"url\":\"http://h.test/%s\"}]}", v);
    rule_free(parse_ok(json, NULL));
    memset(v, 'a', sizeof v);
    v[994] = '\0';   /* "X-A: " + 994 = 999 octets */
    snprintf(json, sizeof json,
             "{\"actions\":[{\"type\":\"add_header\",\"header\":\"X-A\",\"value\":\"%s\"}]}", v);
    expect_error(json, strlen(json),
                 "actions[0].value: too long: the header line would exceed 998 octets", false);
    v[993] = '\0';
    snprintf(json, sizeof json,
             "{\"actions\":[{\"type\":\"add_header\",\"header\":\"X-A\",\"value\":\"%s\"}]}", v);
    rule_free(parse_ok(json, NULL));

    /* a small error buffer is cut, never overrun; NULL err is fine */
    char tiny[8];
    const char *bad = "{\"x\":1}";
    assert_null(rule_parse(bad, strlen(bad), NULL, tiny, sizeof tiny));
    assert_string_equal(tiny, "x: unkn");
    assert_null(rule_parse(bad, strlen(bad), NULL, NULL, 0));
}

static void defaults_and_canonical(void **state)
{
    static const struct { const char *in, *canon; } t[] = {
        { "{\"actions\":[{\"type\":\"reject\"}]}",
          "{\"actions\":[{\"code\":550,\"enhanced\":\"5.7.1\",\"message\":\"Message rejected by "
          "recipient's rules\",\"type\":\"reject\"}],\"conditions\":[],\"match\":\"all\","
          "\"name\":\"\",\"stop\":false}" },
        { "{\"actions\":[{\"type\":\"reject\",\"code\":451}]}",
          "{\"actions\":[{\"code\":451,\"enhanced\":\"4.7.1\",\"message\":\"Message rejected by "
          "recipient's rules\",\"type\":\"reject\"}],\"conditions\":[],\"match\":\"all\","
          "\"name\":\"\",\"stop\":false}" },
        { "{ \"stop\" : true, \"name\": \"hooks\", \"match\": \"any\",\n"
          "  \"conditions\": [ {\"value\": \"PASS\", \"op\": \"not_equals\", \"field\": \"spf\"},\n"
          "    {\"header\": \"List-Id\", \"field\": \"header\", \"op\": \"exists\"} ],\n"
          "  \"actions\": [ {\"url\": \"https://hooks.example.test:8443/in?x=1\", \"type\": \"webhook\"},\n"
          "    {\"type\": \"add_header\", \"header\": \"X-Rule\", \"value\": \"hooks \\u00e9\"} ] }",
          "{\"actions\":[{\"include_raw\":false,\"type\":\"webhook\",\"url\":\"https://hooks.example."
          "test:8443/in?x=1\"},{\"header\":\"X-Rule\",\"type\":\"add_header\",\"value\":\"hooks "
          "\xc3\xa9\"}],\"conditions\":[{\"field\":\"spf\",\"op\":\"not_equals\",\"value\":\"pass\"},"
          "{\"field\":\"header\",\"header\":\"List-Id\",\"op\":\"exists\"}],\"match\":\"any\","
          "\"name\":\"hooks\",\"stop\":true}" },
        { "{\"conditions\":[{\"field\":\"client_ip\",\"op\":\"cidr\",\"value\":\"2001:db8::/32\"},"
          "{\"field\":\"client_ip\",\"op\":\"cidr\",\"value\":\"::ffff:192.0.2.0/120\"},"
          "{\"field\":\"client_ip\",\"op\":\"cidr\",\"value\":\"198.51.100.7\"}],"
          "\"actions\":[{\"type\":\"webhook\",\"url\":\"http://[::1]:8080/x\",\"include_raw\":true},"
          "{\"type\":\"webhook\",\"url\":\"HTTP://user@h.test\"}]}",
          "{\"actions\":[{\"include_raw\":true,\"type\":\"webhook\",\"url\":\"http://[::1]:8080/x\"},"
          "{\"include_raw\":false,\"type\":\"webhook\",\"url\":\"HTTP://user@h.test\"}],"
          "\"conditions\":[{\"field\":\"client_ip\",\"op\":\"cidr\",\"value\":\"2001:db8::/32\"},"
          "{\"field\":\"client_ip\",\"op\":\"cidr\",\"value\":\"::ffff:192.0.2.0/120\"},"
          "{\"field\":\"client_ip\",\"op\":\"cidr\",\"value\":\"198.51.100.7\"}],\"match\":\"all\","
          "\"name\":\"\",\"stop\":false}" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *canon = NULL;
        struct rule *r = parse_ok(t[i].in, &canon);
        assert_non_null(canon);
        assert_string_equal(canon, t[i].canon);
        /* the canonical form parses to itself */
        char *again = NULL;
        struct rule *r2 = parse_ok(canon, &again);
        assert_string_equal(again, canon);
        rule_free(r);
        rule_free(r2);
        free(canon);
        free(again);
    }

    /* the reject defaults reach the outcome */
    struct rule_set *set = rule_set_new();
    assert_int_equal(rule_set_add(set, parse_ok("{\"actions\":[{\"type\":\"reject\"}]}", NULL)), 0);
    struct rule_subject subj = { .mail_from = "" };
    struct rule_outcome o;
    rule_set_evaluate(set, &subj, &o);
    assert_int_equal(o.final, RULE_FINAL_REJECT);
    assert_int_equal(o.reject_code, 550);
    assert_string_equal(o.reject_enhanced, "5.7.1");
    assert_string_equal(o.reject_text, "Message rejected by recipient's rules");
    assert_string_equal(o.matched, "#1");
    rule_set_free(set);

    /* an empty set, or none matching, stores */
    set = rule_set_new();
    rule_set_evaluate(set, &subj, &o);
    assert_int_equal(o.final, RULE_FINAL_STORE);
    assert_string_equal(o.matched, "");
    assert_int_equal(o.nwebhooks + o.nedits, 0);
    rule_set_free(set);
}

/* ---- evaluation ---- */

static struct dkim_signature_result sigs[2];
static struct auth_verdict verdict;
static const char *const rcpts[] = { "bob@example.test", "carol@other.test" };
static const char head[] = "From: Alice <alice@sender.test>\r\n"
                           "Subject: Weekly\r\n Newsletter  \r\n"
                           "X-Spam: yes\r\n"
                           "x-spam: no\r\n"
                           "List-Unsubscribe: <mailto:u@sender.test>\r\n"
                           "\r\n"
                           "X-Body: not a header\r\n";

static struct rule_subject subject(void)
{
    memset(&verdict, 0, sizeof verdict);
    verdict.spf.result = SPF_SOFTFAIL;
    sigs[0].result = DKIM_FAIL;
    sigs[1].result = DKIM_PASS;
    verdict.dkim.count = 2;
    verdict.dkim.sigs = sigs;
    verdict.dmarc.result = DMARC_FAIL;
    return (struct rule_subject){ .mail_from = "Alice@Sender.Test", .rcpts = rcpts, .nrcpt = 2,
                                  .client_ip = "192.0.2.77", .helo = "mail.sender.test",
                                  .head = head, .head_len = sizeof head - 1,
                                  .verdict = &verdict };
}

static bool holds(const char *cond, const struct rule_subject *s)
{
    char json[1024];
    snprintf(json, sizeof json, "{\"conditions\":[%s],\"actions\":[{\"type\":\"drop\"}]}", cond);
    struct rule_set *set = rule_set_new();
    assert_int_equal(rule_set_add(set, parse_ok(json, NULL)), 0);
    struct rule_outcome o;
    rule_set_evaluate(set, s, &o);
    rule_set_free(set);
    return o.final == RULE_FINAL_DROP;
}

#define C(f, op, v) "{\"field\":\"" f "\",\"op\":\"" op "\",\"value\":\"" v "\"}"
#define H(h, op, v) "{\"field\":\"header\",\"header\":\"" h "\",\"op\":\"" op "\",\"value\":\"" v "\"}"
#define HX(h, op) "{\"field\":\"header\",\"header\":\"" h "\",\"op\":\"" op "\"}"

static void every_op_every_field(void **state)
{
    static const struct { const char *cond; bool want; } t[] = {
        { C("recipient", "equals", "BOB@example.test"), true },
        { C("recipient", "equals", "dave@example.test"), false },
        { C("recipient", "not_equals", "dave@example.test"), true },
        { C("recipient", "not_equals", "bob@example.test"), false },
        { C("recipient", "contains", "@OTHER"), true },
        { C("recipient", "contains", "@third"), false },
        { C("recipient", "not_contains", "@third"), true },
        { C("recipient", "not_contains", "@example"), false },
        { C("recipient", "regex", "^carol@"), true },
        { C("recipient", "regex", "^dave"), false },
        { C("sender", "equals", "alice@sender.test"), true },
        { C("sender", "equals", ""), false },
        { C("sender", "not_equals", "alice@sender.test"), false },
        { C("sender", "not_equals", "eve@sender.test"), true },
        { C("sender", "contains", "SENDER"), true },
        { C("sender", "contains", "x"), false },
        { C("sender", "not_contains", "x"), true },
        { C("sender", "not_contains", "alice"), false },
        { C("sender", "regex", "@sender\\\\.test$"), true },
        { C("sender", "regex", "^bob"), false },
        { C("helo", "equals", "MAIL.sender.test"), true },
        { C("helo", "not_equals", "mail.sender.test"), false },
        { C("helo", "contains", "sender"), true },
        { C("helo", "not_contains", "sender"), false },
        { C("helo", "regex", "^mail\\\\."), true },
        { C("helo", "regex", "^mx\\\\."), false },
        { C("client_ip", "equals", "192.0.2.77"), true },
        { C("client_ip", "equals", "::ffff:192.0.2.77"), true },
        { C("client_ip", "equals", "192.0.2.78"), false },
        { C("client_ip", "not_equals", "192.0.2.78"), true },
        { C("client_ip", "not_equals", "192.0.2.77"), false },
        { C("client_ip", "cidr", "192.0.2.0/24"), true },
        { C("client_ip", "cidr", "192.0.2.64/26"), true },
        { C("client_ip", "cidr", "192.0.2.128/25"), false },
        { C("client_ip", "cidr", "192.0.3.0/24"), false },
        { C("client_ip", "cidr", "0.0.0.0/0"), true },
        { C("client_ip", "cidr", "192.0.2.77"), true },
        { C("client_ip", "cidr", "2001:db8::/32"), false },
        { C("client_ip", "cidr", "::ffff:192.0.2.0/120"), true },
        { C("client_ip", "contains", "0.2."), true },
        { C("client_ip", "not_contains", "0.2."), false },
        { C("client_ip", "regex", "^192\\\\.0\\\\.2\\\\."), true },
        { HX("X-Spam", "exists"), true },
        { HX("x-SPAM", "exists"), true },
        { HX("X-Absent", "exists"), false },
        { HX("X-Body", "exists"), false },
        { HX("X-Absent", "not_exists"), true },
        { HX("X-Spam", "not_exists"), false },
        { H("Subject", "equals", "weekly newsletter"), true },
        { H("Subject", "equals", "weekly"), false },
        { H("X-Spam", "equals", "no"), true },
        { H("X-Spam", "not_equals", "no"), false },
        { H("X-Spam", "not_equals", "maybe"), true },
        { H("X-Absent", "not_equals", "x"), true },
        { H("X-Absent", "equals", ""), false },
        { H("List-Unsubscribe", "contains", "MAILTO:"), true },
        { H("Subject", "contains", "sale"), false },
        { H("Subject", "not_contains", "sale"), true },
        { H("Subject", "not_contains", "news"), false },
        { H("Subject", "regex", "^weekly newsletter$"), true },
        { H("From", "regex", "<[^>]+@sender\\\\.test>"), true },
        { H("X-Absent", "regex", "."), false },
        { C("spf", "equals", "softfail"), true },
        { C("spf", "equals", "SoftFail"), true },
        { C("spf", "equals", "fail"), false },
        { C("spf", "not_equals", "pass"), true },
        { C("spf", "not_equals", "softfail"), false },
        { C("spf", "regex", "^(soft)?fail$"), true },
        { C("dkim", "equals", "pass"), true },
        { C("dkim", "equals", "fail"), false },
        { C("dkim", "not_equals", "pass"), false },
        { C("dkim", "regex", "^p"), true },
        { C("dmarc", "equals", "fail"), true },
        { C("dmarc", "not_equals", "fail"), false },
        { C("dmarc", "not_equals", "pass"), true },
        { C("dmarc", "regex", "none"), false },
    };
    struct rule_subject s = subject();
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (holds(t[i].cond, &s) != t[i].want)
            fail_msg("%s should be %s", t[i].cond, t[i].want ? "true" : "false");

    /* no verdict: every method is "none"; DKIM without a pass is the first result */
    s.verdict = NULL;
    assert_true(holds(C("spf", "equals", "none"), &s));
    assert_true(holds(C("dkim", "equals", "none"), &s));
    assert_true(holds(C("dmarc", "equals", "none"), &s));
    s = subject();
    sigs[0].result = DKIM_TEMPERROR;
    sigs[1].result = DKIM_FAIL;
    assert_true(holds(C("dkim", "equals", "temperror"), &s));
    verdict.dkim.count = 0;
    assert_true(holds(C("dkim", "equals", "none"), &s));

    /* null sender, no recipients, no header, an IPv6 client */
    struct rule_subject e = { .mail_from = "", .client_ip = "2001:db8::25", .helo = "" };
    assert_true(holds(C("sender", "equals", ""), &e));
    assert_false(holds(C("recipient", "contains", "@"), &e));
    assert_true(holds(C("recipient", "not_contains", "@"), &e));
    assert_false(holds(HX("From", "exists"), &e));
    assert_true(holds(HX("From", "not_exists"), &e));
    assert_true(holds(C("client_ip", "cidr", "2001:db8::/32"), &e));
    assert_false(holds(C("client_ip", "cidr", "2001:db9::/32"), &e));
    assert_false(holds(C("client_ip", "cidr", "0.0.0.0/0"), &e));
    assert_true(holds(C("client_ip", "equals", "2001:DB8:0::25"), &e));
}

static struct rule_set *set_of(const char *const *rules, size_t n)
{
    struct rule_set *set = rule_set_new();
    assert_non_null(set);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rule_set_add(set, parse_ok(rules[i], NULL)), 0);
    return set;
}

static void any_all_order_stop(void **state)
{
    struct rule_subject s = subject();
    struct rule_outcome o;
    const char *all[] = { "{\"name\":\"all\",\"conditions\":[" C("spf", "equals", "softfail") ","
                          C("sender", "contains", "nobody") "],\"actions\":[{\"type\":\"drop\"}]}" };
    struct rule_set *set = set_of(all, 1);
    rule_set_evaluate(set, &s, &o);
    assert_int_equal(o.final, RULE_FINAL_STORE);
    rule_set_free(set);
    const char *any[] = { "{\"name\":\"any\",\"match\":\"any\",\"conditions\":["
                          C("spf", "equals", "pass") "," C("sender", "contains", "alice")
                          "],\"actions\":[{\"type\":\"drop\"}]}" };
    set = set_of(any, 1);
    rule_set_evaluate(set, &s, &o);
    assert_int_equal(o.final, RULE_FINAL_DROP);
    assert_string_equal(o.matched, "any");
    rule_set_free(set);
    const char *none_any[] = { "{\"match\":\"any\",\"conditions\":[" C("spf", "equals", "pass")
                               "],\"actions\":[{\"type\":\"drop\"}]}" };
    set = set_of(none_any, 1);
    rule_set_evaluate(set, &s, &o);
    assert_int_equal(o.final, RULE_FINAL_STORE);
    rule_set_free(set);

    /* order: edits and webhooks collected rule by rule; stop ends the walk */
    const char *ordered[] = {
        "{\"name\":\"one\",\"actions\":[{\"type\":\"add_header\",\"header\":\"X-One\",\"value\":\"1\"}]}",
        "{\"name\":\"skipped\",\"conditions\":[" C("sender", "equals", "x") "],"
        "\"actions\":[{\"type\":\"add_header\",\"header\":\"X-No\",\"value\":\"no\"}]}",
        "{\"name\":\"two\",\"stop\":true,\"actions\":[{\"type\":\"webhook\",\"url\":\"http://h.test/2\"},"
        "{\"type\":\"strip_header\",\"header\":\"X-Spam\"}]}",
        "{\"name\":\"after stop\",\"actions\":[{\"type\":\"drop\"}]}",
    };
    set = set_of(ordered, 4);
    rule_set_evaluate(set, &s, &o);
    assert_int_equal(o.final, RULE_FINAL_STORE);
    assert_string_equal(o.matched, "one,two");
    assert_int_equal(o.nedits, 2);
    assert_true(o.edits[0].add);
    assert_string_equal(o.edits[0].name, "X-One");
    assert_string_equal(o.edits[0].value, "1");
    assert_false(o.edits[1].add);
    assert_string_equal(o.edits[1].name, "X-Spam");
    assert_int_equal(o.nwebhooks, 1);
    assert_string_equal(o.webhooks[0].url, "http://h.test/2");
    assert_false(o.webhooks[0].include_raw);
    rule_set_free(set);
}

static void final_actions(void **state)
{
    struct rule_subject s = subject();
    struct rule_outcome o;
    /* drop is final: the later reject never runs; the dropping rule's
     * other actions (listed after it too) are still collected */
    const char *drop_first[] = {
        "{\"name\":\"d\",\"actions\":[{\"type\":\"drop\"},{\"type\":\"webhook\",\"url\":\"http://h.test/d\"}]}",
        "{\"name\":\"r\",\"actions\":[{\"type\":\"reject\",\"code\":554}]}",
    };
    struct rule_set *set = set_of(drop_first, 2);
    rule_set_evaluate(set, &s, &o);
    assert_int_equal(o.final, RULE_FINAL_DROP);
    assert_int_equal(o.reject_code, 0);
    assert_string_equal(o.matched, "d");
    assert_int_equal(o.nwebhooks, 1);
    rule_set_free(set);

    const char *reject_first[] = {
        "{\"name\":\"store\",\"actions\":[{\"type\":\"store\"}]}",
        "{\"name\":\"r\",\"conditions\":[" C("dmarc", "equals", "fail") "],\"actions\":[{\"type\":"
        "\"reject\",\"code\":451,\"enhanced\":\"4.7.26\",\"message\":\"Try later, friend\"}]}",
        "{\"name\":\"d\",\"actions\":[{\"type\":\"drop\"}]}",
    };
    set = set_of(reject_first, 3);
    rule_set_evaluate(set, &s, &o);
    assert_int_equal(o.final, RULE_FINAL_REJECT);
    assert_int_equal(o.reject_code, 451);
    assert_string_equal(o.reject_enhanced, "4.7.26");
    assert_string_equal(o.reject_text, "Try later, friend");
    assert_string_equal(o.matched, "store,r");
    rule_set_free(set);
}

static void webhooks_cap(void **state)
{
    struct rule_subject s = subject();
    struct rule_outcome o;
    const char *rules[12];
    char bufs[12][160];
    for (int i = 0; i < 12; i++) {
        /* rules 0 and 1 name the same URL: fired once, raw if any asks */
        snprintf(bufs[i], sizeof bufs[i],
                 "{\"name\":\"w%d\",\"actions\":[{\"type\":\"webhook\",\"url\":\"http://h.test/%d\","
                 "\"include_raw\":%s}]}", i, i < 2 ? 0 : i, i == 1 ? "true" : "false");
        rules[i] = bufs[i];
    }
    struct rule_set *set = set_of(rules, 12);
    rule_set_evaluate(set, &s, &o);
    assert_int_equal(o.nwebhooks, RULES_MAX_WEBHOOKS);
    assert_string_equal(o.webhooks[0].url, "http://h.test/0");
    assert_true(o.webhooks[0].include_raw);
    assert_string_equal(o.webhooks[1].url, "http://h.test/2");
    assert_string_equal(o.webhooks[7].url, "http://h.test/8");
    assert_int_equal(o.final, RULE_FINAL_STORE);
    assert_string_equal(o.matched, "w0,w1,w2,w3,w4,w5,w6,w7,w8,w9,w10,w11");
    rule_set_free(set);

    /* header edits are capped as well, and the matched list is cut cleanly */
    set = rule_set_new();
    char json[512];
    for (int i = 0; i < RULES_MAX_PER_ACCOUNT; i++) {
        snprintf(json, sizeof json,
                 "{\"name\":\"a-rather-long-rule-name-%03d\",\"actions\":[{\"type\":\"add_header\","
                 "\"header\":\"X-%d\",\"value\":\"v\"}]}", i, i);
        assert_int_equal(rule_set_add(set, parse_ok(json, NULL)), 0);
    }
    struct rule *extra = parse_ok(json, NULL);
    assert_int_equal(rule_set_add(set, extra), -1);   /* the set is full; the caller keeps it */
    rule_free(extra);
    rule_set_evaluate(set, &s, &o);
    assert_int_equal(o.nedits, RULES_MAX_HEADER_EDITS);
    assert_string_equal(o.edits[31].name, "X-31");
    size_t ml = strlen(o.matched);
    assert_true(ml < sizeof o.matched);
    assert_string_equal(o.matched + ml - 4, ",...");
    rule_set_free(set);
}

static void regex_limits(void **state)
{
    /* a regex sees at most 64 KiB of a value; failures never match */
    size_t n = 70000;
    char *h = malloc(n + 64);
    memcpy(h, "X-Long: ", 8);
    memset(h + 8, 'a', n);
    memcpy(h + 8 + n, "z\r\n\r\n", 6);
    struct rule_subject s = { .mail_from = "", .head = h, .head_len = strlen(h) };
    assert_true(holds(H("X-Long", "regex", "^a+"), &s));
    assert_false(holds(H("X-Long", "regex", "z$"), &s));
    assert_true(holds(H("X-Long", "contains", "az"), &s));   /* contains sees all */
    free(h);

    /* allowed: bounded repetition within the limit, classes, anchors */
    struct rule *r = parse_ok("{\"conditions\":[" C("sender", "regex", "^[[:alnum:]._-]{1,64}@(a|b){2,3}\\\\.test$")
                              "]," KEEP "}", NULL);
    rule_free(r);
    r = parse_ok("{\"conditions\":[" C("sender", "regex", "[]a]{20}x{0,}y{3,}") "]," KEEP "}", NULL);
    rule_free(r);
}

static void header_edits(void **state)
{
    const char *msg = "Received: from x\r\n"
                      "X-Spam: yes\r\n"
                      "\t  folded continuation\r\n"
                      "   and more\r\n"
                      "Subject: hi\r\n"
                      "x-spam : second\r\n"
                      "X-Spammy: kept\r\n"
                      "X-Gone: original\r\n"
                      "\r\n"
                      "X-Spam: in body\r\n";
    struct rule_outcome o;
    memset(&o, 0, sizeof o);
    const struct rule_header_edit edits[] = {
        { false, "X-Spam", "" },        /* strips both, folded lines included */
        { true, "X-Tag", "a" },
        { true, "X-Spam", "rewritten" },/* added after the strip: stays */
        { true, "X-Gone", "added" },
        { false, "x-gone", "" },         /* strips the original and the one added before */
    };
    memcpy(o.edits, edits, sizeof edits);
    o.nedits = 5;
    struct buf out;
    buf_init(&out, 65536);
    assert_int_equal(rule_apply_header_edits(&o, msg, strlen(msg), &out), 0);
    assert_string_equal(buf_cstr(&out), "X-Spam: rewritten\r\n"
                                         "X-Tag: a\r\n"
                                         "Received: from x\r\n"
                                         "Subject: hi\r\n"
                                         "X-Spammy: kept\r\n"
                                         "\r\n"
                                         "X-Spam: in body\r\n");

    /* LF-only messages get LF lines; no edits copies the message as is */
    const char *lf = "X-Spam: 1\n second\nA: b\n\nbody";
    assert_int_equal(rule_apply_header_edits(&o, lf, strlen(lf), &out), 0);
    assert_string_equal(buf_cstr(&out), "X-Spam: rewritten\nX-Tag: a\nA: b\n\nbody");
    struct rule_outcome none;
    memset(&none, 0, sizeof none);
    assert_int_equal(rule_apply_header_edits(&none, msg, strlen(msg), &out), 0);
    assert_string_equal(buf_cstr(&out), msg);

    /* an edit that would inject a field is never written */
    struct rule_outcome evil;
    memset(&evil, 0, sizeof evil);
    evil.nedits = 2;
    evil.edits[0] = (struct rule_header_edit){ true, "X-A", "v\r\nBcc: x@evil.test" };
    evil.edits[1] = (struct rule_header_edit){ true, "Bad Name", "v" };
    assert_int_equal(rule_apply_header_edits(&evil, "A: b\r\n\r\n", 8, &out), 0);
    assert_string_equal(buf_cstr(&out), "A: b\r\n\r\n");

    /* continuation lines above every field would continue the added one */
    const char *orphan = " orphan\r\nA: b\r\n\r\n";
    assert_int_equal(rule_apply_header_edits(&o, orphan, strlen(orphan), &out), 0);
    assert_string_equal(buf_cstr(&out), "X-Spam: rewritten\r\nX-Tag: a\r\nA: b\r\n\r\n");
    memset(&none, 0, sizeof none);
    none.nedits = 1;
    none.edits[0] = (struct rule_header_edit){ false, "A", "" };
    assert_int_equal(rule_apply_header_edits(&none, orphan, strlen(orphan), &out), 0);
    assert_string_equal(buf_cstr(&out), " orphan\r\n\r\n");

    /* the cap */
    struct buf small;
    buf_init(&small, 16);
    assert_int_equal(rule_apply_header_edits(&o, msg, strlen(msg), &small), -1);
    buf_free(&small);
    buf_free(&out);

    /* end to end: rules produce the edits */
    const char *rules[] = {
        "{\"actions\":[{\"type\":\"strip_header\",\"header\":\"Received\"},"
        "{\"type\":\"add_header\",\"header\":\"X-Filtered\",\"value\":\"yes\"}]}",
    };
    struct rule_set *set = set_of(rules, 1);
    struct rule_subject s = { .mail_from = "", .head = msg, .head_len = strlen(msg) };
    rule_set_evaluate(set, &s, &o);
    buf_init(&out, 65536);
    assert_int_equal(rule_apply_header_edits(&o, msg, strlen(msg), &out), 0);
    assert_true(strncmp(buf_cstr(&out), "X-Filtered: yes\r\nX-Spam: yes\r\n", 30) == 0);
    assert_null(strstr(buf_cstr(&out), "Received"));
    buf_free(&out);
    rule_set_free(set);
}

static void hostile_header(void **state)
{
    /* 10,000 fields of the name the rules look at, then one that only the
     * walk past MAIL_MAX_HEADERS fields would find */
    size_t n = 10000;
    struct buf h;
    buf_init(&h, MAIL_MAX_HEADER_SECTION);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(buf_printf(&h, "Subject: aaaaaaaaaaaaaaaaaaaa%zu\r\n\tbbbbbbbbbbbbbbbbbbbb\r\n", i),
                         0);
    assert_int_equal(buf_append_str(&h, "X-Late: yes\r\n\r\n"), 0);

    struct rule_set *set = rule_set_new();
    char json[8192];
    for (int r = 0; r < 10; r++) {
        size_t k = (size_t)snprintf(json, sizeof json, "{\"match\":\"any\",\"conditions\":[");
        for (int c = 0; c < RULES_MAX_CONDITIONS; c++)
            k += (size_t)snprintf(json + k, sizeof json - k, "%s%s", c ? "," : "",
                                  c % 3 == 0 ? H("Subject", "regex", "(a|aa)*c$")
                                  : c % 3 == 1 ? H("Subject", "contains", "zzzz")
                                               : H("Subject", "equals", "nothing"));
        snprintf(json + k, sizeof json - k, "],\"actions\":[{\"type\":\"drop\"}]}");
        assert_int_equal(rule_set_add(set, parse_ok(json, NULL)), 0);
    }
    struct rule_subject s = { .mail_from = "", .head = h.data, .head_len = h.len };
    struct rule_outcome o;
    clock_t t0 = clock();
    rule_set_evaluate(set, &s, &o);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_int_equal(o.final, RULE_FINAL_STORE);
    assert_true(secs < 10.0);
    rule_set_free(set);

    /* only the first MAIL_MAX_HEADERS fields are looked at */
    assert_false(holds(HX("X-Late", "exists"), &s));
    assert_true(holds(H("Subject", "regex", "a0[[:space:]]b+$"), &s));
    assert_true(holds(H("Subject", "contains", "aaaa999\\tb"), &s));
    assert_false(holds(H("Subject", "contains", "aaaa1000\\tb"), &s));
    buf_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_errors),         cmocka_unit_test(defaults_and_canonical),
        cmocka_unit_test(every_op_every_field), cmocka_unit_test(any_all_order_stop),
        cmocka_unit_test(final_actions),        cmocka_unit_test(webhooks_cap),
        cmocka_unit_test(regex_limits),         cmocka_unit_test(header_edits),
        cmocka_unit_test(hostile_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
