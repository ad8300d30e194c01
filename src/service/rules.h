/* Receiving rules (SPEC §3 /v1/rules): an account's ordered list of
 * conditions → actions, applied by the MX to each message it accepts for
 * that account. A rule is JSON:
 *
 *   {"name": "drop newsletters", "match": "all" | "any",
 *    "conditions": [{"field": F, "op": OP, "value": V, "header": H}],
 *    "actions": [{"type": T, ...}], "stop": true|false}
 *
 *   field: recipient | sender | client_ip | helo | header | spf | dkim | dmarc
 *   op:    equals | not_equals | contains | not_contains | regex | exists |
 *          not_exists | cidr          (exists/not_exists need "header";
 *          cidr is for client_ip; string ops compare case-insensitively,
 *          regex is POSIX extended, case-insensitive)
 *   type:  store | drop | reject {"code": 5xx|4xx, "enhanced": "5.7.1",
 *          "message": "..."} | webhook {"url": "http(s)://...",
 *          "include_raw": bool} | add_header {"header","value"} |
 *          strip_header {"header"}
 *
 * Rules run in order; a rule whose conditions hold contributes its actions;
 * "stop" ends the walk after it. reject and drop are final. No rule or no
 * final action means store. */
#ifndef SESAME_SERVICE_RULES_H
#define SESAME_SERVICE_RULES_H
#include <stdbool.h>
#include <stddef.h>

#include "auth/auth_check.h"
#include "util/buf.h"

#define RULES_MAX_PER_ACCOUNT  200
#define RULES_MAX_JSON         16384   /* one rule */
#define RULES_MAX_CONDITIONS   32
#define RULES_MAX_ACTIONS      16
#define RULES_MAX_WEBHOOKS     8       /* webhooks fired for one message */
#define RULES_MAX_HEADER_EDITS 32

struct rule;                 /* one compiled rule */
struct rule_set;             /* an account's rules, compiled, in order */

/* Parses and checks one rule. On error returns NULL with err saying what
 * and where ("conditions[1].op: unknown op \"like\""). The API uses this to
 * validate before storing; canonical (optional) receives the rule
 * re-serialised (what GET /v1/rules returns). */
struct rule *rule_parse(const char *json, size_t len, char **canonical, char *err, size_t errlen);
void rule_free(struct rule *r);

struct rule_set *rule_set_new(void);
/* Appends a parsed rule; the set owns it. */
int rule_set_add(struct rule_set *set, struct rule *r);
void rule_set_free(struct rule_set *set);

/* What the rules see. head is the header section (as received). */
struct rule_subject {
    const char *mail_from;
    const char *const *rcpts;
    size_t nrcpt;
    const char *client_ip;       /* text form */
    const char *helo;
    const char *head;
    size_t head_len;
    const struct auth_verdict *verdict;
};

enum rule_final { RULE_FINAL_STORE = 0, RULE_FINAL_DROP, RULE_FINAL_REJECT };

struct rule_webhook { char url[1024]; bool include_raw; };
struct rule_header_edit { bool add; char name[128]; char value[1024]; };

struct rule_outcome {
    enum rule_final final;
    int reject_code;             /* RULE_FINAL_REJECT */
    char reject_enhanced[16];
    char reject_text[256];
    struct rule_webhook webhooks[RULES_MAX_WEBHOOKS];
    size_t nwebhooks;
    struct rule_header_edit edits[RULES_MAX_HEADER_EDITS];
    size_t nedits;
    char matched[512];           /* names of the rules that matched, comma-separated */
};

/* Evaluates the set. Never fails: a regex that errors is a non-match. */
void rule_set_evaluate(const struct rule_set *set, const struct rule_subject *subj,
                       struct rule_outcome *out);

/* Applies the outcome's header edits to a message: strip removes every
 * field of that name, add prepends "Name: value". Returns 0, or -1 when out
 * overflowed its cap. */
__attribute__((warn_unused_result))
int rule_apply_header_edits(const struct rule_outcome *o, const char *msg, size_t len,
                            struct buf *out);

#endif
