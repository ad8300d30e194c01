#!/usr/bin/env bash
# End-to-end: `sesame check` (SPEC.md §1.3) through the real resolver
# against the test DNS server: aligned mail passes; the classic "SPF passes
# for the provider but not aligned" case fails with the custom MAIL FROM
# advice; spoofing, quarantine, p=none, no record, subdomain policy, a
# tampered body, a dkimpy-signed message, bad From fields; the JSON shape,
# the Authentication-Results string and the exit codes.
set -u
source "$(dirname "$0")/support/e2e_lib.sh"
d=$E2E_TMP

"$SESAME_BIN" dkim keygen --algorithm rsa-sha256 --domain example.test --selector s1 \
  --out "$d/ex.pem" --json > "$d/ex.json"
"$SESAME_BIN" dkim keygen --algorithm ed25519-sha256 --domain provider.test --selector p1 \
  --out "$d/prov.pem" --json > "$d/prov.json"
/usr/bin/python3 - "$d" <<'PY'
import json, sys
d = sys.argv[1]
zone = {
  "example.test": [{"type": "TXT", "value": "v=spf1 ip4:192.0.2.0/24 -all"}],
  "_dmarc.example.test": [{"type": "TXT", "value": "v=DMARC1; p=reject; rua=mailto:d@example.test"}],
  "bounce.example.test": [{"type": "TXT", "value": "v=spf1 ip4:198.51.100.0/24 -all"}],
  "provider.test": [{"type": "TXT", "value": "v=spf1 ip4:198.51.100.0/24 -all"}],
  "quar.test": [{"type": "TXT", "value": "v=spf1 -all"}],
  "_dmarc.quar.test": [{"type": "TXT", "value": "v=DMARC1; p=quarantine"}],
  "mon.test": [{"type": "TXT", "value": "v=spf1 ip4:192.0.2.0/24 -all"}],
  "_dmarc.mon.test": [{"type": "TXT", "value": "v=DMARC1; p=none"}],
  "nodmarc.test": [{"type": "TXT", "value": "v=spf1 ip4:192.0.2.0/24 -all"}],
  "_dmarc.strict.test": [{"type": "TXT", "value": "v=DMARC1; p=reject; aspf=s"}],
  "bounce.strict.test": [{"type": "TXT", "value": "v=spf1 ip4:192.0.2.0/24 -all"}],
}
for f in ("ex", "prov"):
    rec = json.load(open(f"{d}/{f}.json"))
    zone[rec["name"]] = [{"type": "TXT", "value": rec["strings"]}]
json.dump(zone, open(f"{d}/zone.json", "w"))
PY
start_testdns "$d/zone.json"

body=$'To: bob@example.net\r\nSubject: Your order\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\nThanks for your order.\r\n'
msg_from() { printf 'From: %s\r\n%s' "$1" "$body"; }
sign_ex() { "$SESAME_BIN" dkim sign --domain example.test --selector s1 --key "$d/ex.pem"; }
sign_prov() { "$SESAME_BIN" dkim sign --domain provider.test --selector p1 --key "$d/prov.pem"; }
check() { "$SESAME_BIN" check --dns "$DNS_ADDR" --authserv-id mx.sesame.test "$@"; }
field() { printf '%s' "$1" | /usr/bin/python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print("null" if v is None else (json.dumps(v) if isinstance(v, bool) else v))' "$2"; }
expect_field() {
  E2E_CHECKS=$((E2E_CHECKS + 1))
  local got; got=$(field "$1" "$2") || { fail "no $2 in $1"; return; }
  [ "$got" = "$3" ] || fail "$2: got '$got', want '$3'"
}

# 1. Aligned: own MAIL FROM domain, own DKIM key, listed IP.
msg_from "Shop <orders@example.test>" | sign_ex > "$d/aligned.eml"
j=$(check --ip 192.0.2.10 --helo mail.example.test --sender b@bounce.example.test --json < "$d/aligned.eml")
expect_field "$j" spf.result fail      # bounce.example.test lists 198.51.100.0/24 only
expect_field "$j" dkim.0.result pass
expect_field "$j" dkim.0.domain example.test
expect_field "$j" dmarc.result pass
expect_field "$j" dmarc.from_domain example.test
expect_field "$j" dmarc.policy_domain example.test
expect_field "$j" dmarc.policy reject
expect_field "$j" dmarc.disposition none
expect_field "$j" dmarc.dkim_aligned true
expect_field "$j" dmarc.spf_aligned false
expect_contains "$(field "$j" authentication_results)" "Authentication-Results: mx.sesame.test; spf=fail"
expect_contains "$(field "$j" authentication_results)" "dkim=pass"
expect_contains "$(field "$j" authentication_results)" "header.d=example.test header.s=s1"
expect_contains "$(field "$j" authentication_results)" "dmarc=pass (p=reject dis=none) header.from=example.test"

# SPF aligned through a subdomain MAIL FROM, no DKIM at all.
msg_from "orders@example.test" > "$d/plain.eml"
j=$(check --ip 198.51.100.7 --helo out.example.test --sender b@bounce.example.test --json < "$d/plain.eml")
expect_field "$j" spf.result pass
expect_field "$j" spf.domain bounce.example.test
expect_field "$j" dmarc.result pass
expect_field "$j" dmarc.spf_aligned true
expect_field "$j" dkim "[]"

# 2. The provider case: SPF and DKIM pass, for provider.test, not aligned.
msg_from "orders@example.test" | sign_prov > "$d/provider.eml"
j=$(check --ip 198.51.100.7 --helo out.provider.test --sender bounce@provider.test --json < "$d/provider.eml")
expect_field "$j" spf.result pass
expect_field "$j" dkim.0.result pass
expect_field "$j" dkim.0.algorithm ed25519-sha256
expect_field "$j" dmarc.result fail
expect_field "$j" dmarc.disposition reject
expect_field "$j" dmarc.spf_aligned false
expect_field "$j" dmarc.dkim_aligned false
t=$(check --ip 198.51.100.7 --helo out.provider.test --sender bounce@provider.test < "$d/provider.eml")
expect_contains "$t" "Verdict: DMARC fail for example.test — the message would be REJECTED"
expect_contains "$t" "NOT aligned with the From domain example.test"
expect_contains "$t" "SPF passed for provider.test but is not aligned with example.test: set a custom MAIL FROM domain under example.test"
expect_contains "$t" "sign with d=example.test"
expect_contains "$t" "policy found at _dmarc.example.test: p=reject"

# 3. Spoofed: unlisted IP, unsigned.
j=$(check --ip 203.0.113.66 --helo evil.test --sender ceo@example.test --json < "$d/plain.eml")
expect_field "$j" spf.result fail
expect_field "$j" dmarc.result fail
expect_field "$j" dmarc.disposition reject
t=$(check --ip 203.0.113.66 --helo evil.test --sender ceo@example.test < "$d/plain.eml")
expect_contains "$t" "203.0.113.66 is not allowed by the SPF record of example.test"
expect_contains "$t" "DKIM: none (the message is not signed)"

# 4. Quarantine, p=none, no record, subdomain of a p=reject domain.
msg_from "a@quar.test" > "$d/q.eml"
j=$(check --ip 203.0.113.1 --helo x.test --sender a@quar.test --json < "$d/q.eml")
expect_field "$j" dmarc.disposition quarantine
expect_contains "$(check --ip 203.0.113.1 --helo x.test --sender a@quar.test < "$d/q.eml")" "would go to SPAM/quarantine"
msg_from "a@mon.test" > "$d/m.eml"
j=$(check --ip 192.0.2.1 --helo x.test --sender a@mon.test --json < "$d/m.eml")
expect_field "$j" dmarc.result pass
expect_field "$j" dmarc.policy none
expect_contains "$(check --ip 192.0.2.1 --helo x.test --sender a@mon.test < "$d/m.eml")" "move mon.test to p=quarantine"
msg_from "a@nodmarc.test" > "$d/n.eml"
j=$(check --ip 192.0.2.1 --helo x.test --sender a@nodmarc.test --json < "$d/n.eml")
expect_field "$j" dmarc.result none
expect_field "$j" dmarc.policy null
expect_field "$j" dmarc.policy_domain null
expect_contains "$(check --ip 192.0.2.1 --helo x.test --sender a@nodmarc.test < "$d/n.eml")" "_dmarc.nodmarc.test TXT"
msg_from "a@news.example.test" > "$d/sub.eml"
j=$(check --ip 203.0.113.1 --helo x.test --sender a@news.example.test --json < "$d/sub.eml")
expect_field "$j" dmarc.result fail
expect_field "$j" dmarc.policy_domain example.test
expect_field "$j" dmarc.disposition reject
# strict SPF alignment: a subdomain MAIL FROM does not align
msg_from "a@strict.test" > "$d/s.eml"
j=$(check --ip 192.0.2.1 --helo x.test --sender a@bounce.strict.test --json < "$d/s.eml")
expect_field "$j" spf.result pass
expect_field "$j" dmarc.spf_aligned false
expect_field "$j" dmarc.result fail

# 5. A body changed after signing.
sed 's/Thanks for your order./Thanks for your money./' "$d/aligned.eml" > "$d/tampered.eml"
j=$(check --ip 203.0.113.1 --helo x.test --sender a@example.test --json < "$d/tampered.eml")
expect_field "$j" dkim.0.result fail
expect_field "$j" dmarc.result fail

# 6. Signed by dkimpy with the same key: passes aligned.
msg_from "orders@example.test" > "$d/unsigned.eml"
/usr/bin/python3 - "$d" <<'PY' > "$d/dkimpy.eml"
import sys, dkim
d = sys.argv[1]
msg = open(f"{d}/unsigned.eml", "rb").read()
key = open(f"{d}/ex.pem", "rb").read()
sig = dkim.sign(msg, b"s1", b"example.test", key, include_headers=[b"from", b"to", b"subject"])
sys.stdout.buffer.write(sig + msg)
PY
j=$(check --ip 203.0.113.1 --helo x.test --sender a@other.test --json < "$d/dkimpy.eml")
expect_field "$j" dkim.0.result pass
expect_field "$j" dmarc.result pass

# 7. From fields DMARC cannot use.
printf 'From: a@example.test\r\nFrom: b@example.test\r\n%s' "$body" > "$d/twofrom.eml"
j=$(check --ip 192.0.2.1 --helo x.test --sender a@example.test --json < "$d/twofrom.eml")
expect_field "$j" dmarc.result permerror
expect_contains "$(field "$j" dmarc.reason)" "2 From fields"
printf 'Subject: no from\r\n\r\nx\r\n' > "$d/nofrom.eml"
j=$(check --ip 192.0.2.1 --helo x.test --sender a@example.test --json < "$d/nofrom.eml")
expect_field "$j" dmarc.result permerror
msg_from "a@example.test, b@other.test" > "$d/mixed.eml"
j=$(check --ip 192.0.2.1 --helo x.test --sender a@example.test --json < "$d/mixed.eml")
expect_field "$j" dmarc.result permerror

# 8. Bounces (null sender) use the HELO name for SPF.
j=$(check --ip 192.0.2.1 --helo example.test --sender "" --json < "$d/plain.eml")
expect_field "$j" spf.domain example.test
expect_field "$j" spf.result pass
expect_field "$j" dmarc.spf_aligned true

# Usage errors: exit 2, one line.
expect_exit 2 "$SESAME_BIN" check --ip 192.0.2.1 --helo x.test < "$d/plain.eml"
expect_exit 2 "$SESAME_BIN" check --ip bogus --helo x.test --sender a@b.test < "$d/plain.eml"
expect_exit 2 "$SESAME_BIN" check --ip 192.0.2.1 --helo x.test --sender a@b.test --dns "$DNS_ADDR" < /dev/null
expect_exit 0 "$SESAME_BIN" check --help

finish
