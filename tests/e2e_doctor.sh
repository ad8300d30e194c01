#!/usr/bin/env bash
# End-to-end: `sesame doctor` (SPEC.md §1.4) through the real resolver
# against the test DNS server holding tests/data/doctor_zone.json: the JSON
# shape, the findings for a correct and a broken domain, the text report,
# --dns vs SESAME_DNS, and the exit codes (0 whatever it finds, 2 for bad
# usage or a bad domain, 1 when DNS answers nothing).
set -u
source "$(dirname "$0")/support/e2e_lib.sh"

start_testdns "$SESAME_TEST_DATA/doctor_zone.json"
doctor() { "$SESAME_BIN" doctor --dns "$DNS_ADDR" "$@"; }

# expect_checks JSON [--all-ok] [--exact] "name|status|text" ...
# Validates the JSON shape of SPEC.md §1.4, then wants one entry per
# "name|status|text" (text is a substring of the message). --all-ok wants
# every entry ok; --exact fails on any problem not listed.
expect_checks() {
  E2E_CHECKS=$((E2E_CHECKS + 1))
  local out
  out=$(printf '%s' "$1" | /usr/bin/python3 -c '
import json, sys
doc = json.load(sys.stdin)
args = sys.argv[1:]
all_ok = "--all-ok" in args
exact = "--exact" in args
wants = [a.split("|", 2) for a in args if not a.startswith("--")]
errs = []
if set(doc) != {"domain", "checks"}:
    errs.append("top-level keys %s" % sorted(doc))
names = ["mx", "spf", "dkim", "dmarc", "mail_from", "mta_sts", "tls_rpt"]
last = 0
for c in doc.get("checks", []):
    if set(c) != {"name", "status", "message", "fix"}:
        errs.append("entry keys %s" % sorted(c))
        continue
    if c["name"] not in names or c["status"] not in ("ok", "warn", "error", "missing"):
        errs.append("bad name/status %s" % c)
    elif names.index(c["name"]) < last:
        errs.append("out of order: %s" % c["name"])
    else:
        last = names.index(c["name"])
    if not isinstance(c["message"], str) or not c["message"]:
        errs.append("empty message %s" % c)
    if c["status"] != "ok" and not (isinstance(c["fix"], str) and c["fix"]):
        errs.append("problem without a fix: %s" % c)
    if c["fix"] is not None and not isinstance(c["fix"], str):
        errs.append("fix neither string nor null: %s" % c)
    if all_ok and c["status"] != "ok":
        errs.append("not ok: %s" % c)
    if exact and c["status"] != "ok" and not any(
            c["name"] == n and c["status"] == s and t in c["message"] for n, s, t in wants):
        errs.append("unexpected: %s" % c)
for n, s, t in wants:
    if not any(c.get("name") == n and c.get("status") == s and t in c.get("message", "")
               for c in doc.get("checks", [])):
        errs.append("no %s %s entry with %r" % (n, s, t))
print("\n".join(errs))' "${@:2}") || { fail "not JSON: $1"; return; }
  [ -z "$out" ] || fail "$out
in: $1"
}

# A correct domain: one ok entry per check, in order.
json=$(doctor good.test --selector s1 --mail-from bounce --json)
expect_json "$json" domain good.test
expect_checks "$json" --all-ok "mx|ok|10 mx.good.test" "spf|ok|1 of 10 DNS lookups" \
  "dkim|ok|selector 's1': RSA key of 2048 bits" "dmarc|ok|policy reject" \
  "mail_from|ok|bounce.good.test" "mta_sts|ok|id=20240101T000000" \
  "tls_rpt|ok|mailto:tls-reports@good.test"
count=$(printf '%s' "$json" |
  /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["checks"]))')
[ "$count" = 7 ] || fail "good.test: $count entries, want 7"
# The domain is normalised; the MAIL FROM may be given in full.
json=$(doctor GOOD.test. --selector s1 --mail-from bounce.good.test --json)
expect_json "$json" domain good.test
expect_checks "$json" --all-ok "mail_from|ok|aligned with relaxed SPF alignment"
# Without --selector the common selector names are tried (s1 is one).
json=$(doctor good.test --json)
expect_checks "$json" --all-ok "dkim|ok|found by trying common selector names"

# A broken domain: every fault found, nothing else.
json=$(doctor broken.test --selector s1 --selector old --mail-from bounce --json)
expect_json "$json" domain broken.test
expect_checks "$json" --exact \
  "mx|error|nohost.broken.test of broken.test has no A or AAAA record" \
  "mx|warn|alias (CNAME) of mx.good.test" \
  "spf|error|has '+all': every host on the internet passes SPF for broken.test" \
  "spf|warn|uses 'ptr'" \
  "spf|error|points to _spf.nowhere.test, which has no SPF record" \
  "dkim|error|RSA key of 512 bits is too short" \
  "dkim|error|revoked (empty p=)" \
  "dmarc|warn|p=none at _dmarc.broken.test: monitoring only" \
  "dmarc|error|rua=mailto:reports@collector.test goes to another domain" \
  "mail_from|error|bounce.broken.test has no MX record" \
  "mail_from|error|bounce.broken.test has no SPF record" \
  "mta_sts|warn|no MTA-STS policy" \
  "tls_rpt|warn|no TLS-RPT record"
fix=$(printf '%s' "$json" | /usr/bin/python3 -c '
import json, sys
for c in json.load(sys.stdin)["checks"]:
    if "+all" in c["message"]:
        print(c["fix"])')
expect_contains "$fix" 'broken.test. IN TXT "v=spf1 ptr include:_spf.nowhere.test -all"'

json=$(doctor twice.test --json --selector nokey)
expect_checks "$json" --exact "spf|error|publishes 2 SPF records" \
  "dmarc|error|has 2 DMARC records" "dkim|error|no DKIM key at nokey._domainkey.twice.test" \
  "mta_sts|warn|no MTA-STS" "tls_rpt|warn|no TLS-RPT"

json=$(doctor lookups.test --json)
expect_checks "$json" "spf|error|needs 12 DNS lookups" \
  "spf|error|reached via lookups.test -> include:_b.lookups.test" \
  "dkim|missing|none of the common selectors" "dmarc|missing|no DMARC record"

json=$(doctor nullmx.test --json)
expect_checks "$json" --exact "mx|warn|null MX (RFC 7505)" \
  "dkim|missing|none of the common selectors"
expect_checks "$json" "mta_sts|ok|not needed" "tls_rpt|ok|not needed" "spf|ok|v=spf1 -all"

# SESAME_DNS is used when --dns is absent.
json=$(SESAME_DNS="$DNS_ADDR" "$SESAME_BIN" doctor good.test --selector s1 --json)
expect_checks "$json" --all-ok "dkim|ok|RSA key of 2048 bits"

# Text mode: a header with the counts, one line per finding with a mark,
# and the fix under each problem.
text=$(doctor broken.test --selector s1 --mail-from bounce)
expect_contains "$text" "sesame doctor broken.test: 0 ok, 5 warnings, 7 errors, 0 missing"
expect_contains "$text" "[error]   spf       the SPF record of broken.test has '+all'"
expect_contains "$text" "fix: broken.test. IN TXT \"v=spf1 ptr include:_spf.nowhere.test -all\""
expect_contains "$text" "[warn]    tls_rpt   no TLS-RPT record"
expect_contains "$text" \
  "fix: publish _smtp._tls.broken.test. IN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@broken.test\""
text=$(doctor good.test --selector s1)
expect_contains "$text" "sesame doctor good.test: 6 ok, 0 warnings, 0 errors, 0 missing"
expect_contains "$text" "[ok]      dkim      selector 's1': RSA key of 2048 bits"
text=$(doctor lookups.test)
expect_contains "$text" "[missing] dmarc     no DMARC record at _dmarc.lookups.test"

# Exit codes: 0 whatever it finds.
expect_exit 0 "$SESAME_BIN" doctor broken.test --dns "$DNS_ADDR"
expect_exit 0 "$SESAME_BIN" doctor no-such-domain.test --dns "$DNS_ADDR"
expect_exit 0 "$SESAME_BIN" doctor --help
# 2: bad usage or a bad domain, one line on stderr, before any DNS.
expect_exit 2 "$SESAME_BIN" doctor --dns "$DNS_ADDR"
expect_exit 2 "$SESAME_BIN" doctor "not a domain" --dns "$DNS_ADDR"
expect_exit 2 "$SESAME_BIN" doctor 192.0.2.1 --dns "$DNS_ADDR"
expect_exit 2 "$SESAME_BIN" doctor localhost --dns "$DNS_ADDR"
expect_exit 2 "$SESAME_BIN" doctor good.test other.test --dns "$DNS_ADDR"
expect_exit 2 "$SESAME_BIN" doctor good.test --bogus --dns "$DNS_ADDR"
expect_exit 2 "$SESAME_BIN" doctor good.test --selector "bad selector" --dns "$DNS_ADDR"
expect_exit 2 "$SESAME_BIN" doctor good.test --mail-from "a b" --dns "$DNS_ADDR"
expect_exit 2 "$SESAME_BIN" doctor good.test --dns "not a server"
# 1: DNS answers nothing at all (the domain's servers time out).
expect_exit 1 "$SESAME_BIN" doctor slow.test --dns "$DNS_ADDR"
expect_contains "$(cat "$E2E_TMP/err")" "no DNS answer for slow.test"
[ ! -s "$E2E_TMP/out" ] || fail "doctor printed a report although DNS answered nothing"

finish
