#!/usr/bin/env bash
# End-to-end: DMARC aggregate reports, both sides, in one running `sesame
# serve` whose delivery port is its own MX (so the reports it sends come
# back to it). The MX receives, for the account "recv", a mix of mail
# claiming to be from shop.test: passing (SPF aligned from 127.0.0.1) and
# spoofed (from 127.0.0.2: refused by p=reject, and reported all the same);
# and mail from auth.test (rua on shop.test, authorized by
# auth.test._report._dmarc.shop.test) and ext.test (rua elsewhere, not
# authorized: skipped). `sesame dmarc report send --now` generates the
# reports; they travel through the outbound path to dmarc-reports@shop.test,
# the account "shop"'s report address; GET /v1/dmarc/reports then shows who
# sends as shop.test and what fails. The report attached is checked
# against the RFC 7489 XML schema (xmllint), its file name and subject;
# `sesame dmarc report show` reads it; a second run sends nothing again.
set -u
source "$(dirname "$0")/support/e2e_lib.sh"
source "$(dirname "$0")/support/serve_lib.sh"
d=$E2E_TMP
SEND="$PY $(dirname "$0")/support/smtp_send.py"

ZONE=$d/zone.json
cat > "$ZONE" <<'JSON'
{"mx.sesame.test": [{"type": "A", "value": "127.0.0.1"}],
 "shop.test": [{"type": "TXT", "value": "v=spf1 ip4:127.0.0.1 -all"},
               {"type": "MX", "value": [10, "mx.sesame.test"]}],
 "_dmarc.shop.test": [{"type": "TXT", "value": "v=DMARC1; p=reject; rua=mailto:dmarc-reports@shop.test"}],
 "auth.test": [{"type": "TXT", "value": "v=spf1 ip4:127.0.0.1 -all"}],
 "_dmarc.auth.test": [{"type": "TXT", "value": "v=DMARC1; p=none; rua=mailto:dmarc-reports@shop.test"}],
 "auth.test._report._dmarc.shop.test": [{"type": "TXT", "value": "v=DMARC1"}],
 "ext.test": [{"type": "TXT", "value": "v=spf1 ip4:127.0.0.1 -all"}],
 "_dmarc.ext.test": [{"type": "TXT", "value": "v=DMARC1; p=none; rua=mailto:dmarc@collector.test"}],
 "recv.test": [{"type": "MX", "value": [10, "mx.sesame.test"]}]}
JSON
start_testdns "$ZONE"
MX_PORT=$(free_port)
write_config "$d/sesame.conf" "[delivery]
smtp_port = $MX_PORT"
start_serve
make_account shop --production
make_account recv --production
verify_domain shop shop.test
verify_domain recv recv.test

# mail claiming to come from FROM_DOMAIN, sent from SRC to the MX
mx_send() {   # mx_send SRC FROM_DOMAIN SUBJECT → the final reply
  printf 'From: a@%s\r\nTo: b@recv.test\r\nSubject: %s\r\nMessage-ID: <%s@%s>\r\n\r\nhello\r\n' \
    "$2" "$3" "$3" "$2" > "$d/m.eml"
  $SEND send "$MX_PORT" "a@$2" b@recv.test "$d/m.eml" --src "$1" --helo "$2"
}
for i in 1 2 3; do expect_contains "$(mx_send 127.0.0.1 shop.test pass$i)" "250"; done
for i in 1 2; do expect_contains "$(mx_send 127.0.0.2 shop.test spoof$i)" "550 5.7.1"; done
expect_contains "$(mx_send 127.0.0.1 auth.test auth1)" "250"
expect_contains "$(mx_send 127.0.0.1 ext.test ext1)" "250"

# ---- the reports: generated, sent to shop's report address, received ----
expect_exit 0 "$SESAME_BIN" dmarc report send --now --config "$CONF" --json
expect_contains "$(cat "$E2E_TMP/out")" '"reports":3'
# never twice
expect_exit 0 "$SESAME_BIN" dmarc report send --now --config "$CONF" --json
expect_contains "$(cat "$E2E_TMP/out")" '"reports":0'

# ext.test's rua is outside its organizational domain and not authorized: skipped
E2E_CHECKS=$((E2E_CHECKS + 1))
skipped=$($PY - "$d/var/sesame.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("SELECT status || ' ' || detail FROM dmarc_reports_out WHERE policy_domain = 'ext.test'").fetchone())
PY
)
case "$skipped" in *skipped*"not authorized"*) ;; *) fail "ext.test report: $skipped" ;; esac

# wait until both reports reached shop's account (delivery → our own MX → parsed)
SUMMARY=""
for _ in $(seq 1 300); do
  r=$(api GET /v1/dmarc/reports "$API_KEY_shop")
  n=$(json_get "${r#200 }" 'len(j["reports"])' 2>/dev/null || echo 0)
  [ "$n" = 2 ] && { SUMMARY=${r#200 }; break; }
  sleep 0.1
done
[ -n "$SUMMARY" ] || { fail "reports not received: $r"; tail -20 "$d/serve.log" >&2; finish; }
shop_sum='[s for s in j["summary"] if s["domain"]=="shop.test"][0]'
expect_eq "$(json_get "$SUMMARY" "$shop_sum[\"messages\"]")" 5
expect_eq "$(json_get "$SUMMARY" "$shop_sum[\"passed\"]")" 3
expect_eq "$(json_get "$SUMMARY" "$shop_sum[\"failed\"]")" 2
expect_eq "$(json_get "$SUMMARY" "\",\".join($shop_sum[\"failing_sources\"])")" 127.0.0.2
expect_contains "$(json_get "$SUMMARY" "$shop_sum[\"advice\"]")" "2 of 5 messages"
auth_sum='[s for s in j["summary"] if s["domain"]=="auth.test"][0]'
expect_eq "$(json_get "$SUMMARY" "$auth_sum[\"passed\"]")" 1
# the recv account got none: reports are the domain owner's
r=$(api GET /v1/dmarc/reports "$API_KEY_recv")
expect_eq "$(json_get "${r#200 }" 'len(j["reports"])')" 0
# one report whole
id=$(json_get "$SUMMARY" '[x["id"] for x in j["reports"] if x["domain"]=="shop.test"][0]')
r=$(api GET "/v1/dmarc/reports/$id" "$API_KEY_shop")
expect_contains "$r" "200 "
expect_eq "$(json_get "${r#200 }" 'j["org_name"]')" mx.sesame.test
expect_eq "$(json_get "${r#200 }" 'j["policy"]["p"]')" reject
expect_eq "$(json_get "${r#200 }" 'sorted((x["source_ip"], x["count"], x["disposition"]) for x in j["records"])')" \
  "[[\"127.0.0.1\", 3, \"none\"], [\"127.0.0.2\", 2, \"reject\"]]"
expect_contains "$(api GET "/v1/dmarc/reports/$id" "$API_KEY_recv")" "404 "

# ---- the mail itself: subject, file name, schema ----
r=$(api GET "/v1/inbound?limit=50" "$API_KEY_shop")
mid=$(json_get "${r#200 }" '[m["id"] for m in j["messages"] if m["subject"].startswith("Report Domain: shop.test ")][0]')
raw=$(api GET "/v1/inbound/$mid/raw" "$API_KEY_shop")
printf '%s' "${raw#200 }" > "$d/report.eml"
E2E_CHECKS=$((E2E_CHECKS + 1))
out=$($PY - "$d/report.eml" "$d" <<'PY'
import email, email.policy, gzip, re, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
errs = []
if not re.match(r"^Report Domain: shop\.test Submitter: mx\.sesame\.test Report-ID: ", m["Subject"] or ""):
    errs.append("subject %r" % m["Subject"])
att = [p for p in m.walk() if p.get_content_type() == "application/gzip"]
if len(att) != 1:
    errs.append("attachments %r" % [p.get_content_type() for p in m.walk()])
else:
    name = att[0].get_filename() or ""
    if not re.match(r"^mx\.sesame\.test!shop\.test!\d+!\d+\.xml\.gz$", name):
        errs.append("file name %r" % name)
    open(sys.argv[2] + "/report.xml.gz", "wb").write(att[0].get_payload(decode=True))
    open(sys.argv[2] + "/report.xml", "wb").write(gzip.decompress(att[0].get_payload(decode=True)))
print("\n".join(errs))
PY
)
[ -z "$out" ] || fail "$out"
$PY "$(dirname "$0")/support/rua_schema.py" "$SESAME_TEST_DATA/dmarc/rua.xsd" > "$d/rua.xsd" \
  || fail "cannot repair the schema"
if xmllint --noout --schema "$d/rua.xsd" "$d/report.xml" 2> "$d/xmllint.err"; then
  E2E_CHECKS=$((E2E_CHECKS + 1))
else
  fail "the report is not valid against the RFC 7489 schema: $(cat "$d/xmllint.err")"
fi

# ---- sesame dmarc report show reads it ----
expect_exit 0 "$SESAME_BIN" dmarc report show "$d/report.xml.gz"
expect_contains "$(cat "$E2E_TMP/out")" "127.0.0.2"

finish
