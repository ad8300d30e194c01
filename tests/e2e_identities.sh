#!/usr/bin/env bash
# End-to-end: a domain identity's life through the HTTP API of a running
# `sesame serve`, DNS from the test DNS server (records published by
# editing its zone during the test), mail to a sink on 127.0.0.10:
#   add → every record to publish; the background checker (no verify
#   call) verifies the domain and activates the DKIM keys once published;
#   a message is signed with the published selector and leaves with the
#   service's bounce domain; a custom MAIL FROM domain set to "reject"
#   refuses mail until its MX and SPF are seen, then the envelope sender
#   is on it (seen at the sink); a rotation keeps signing with the old
#   selector until the new keys are published, then switches; another
#   account cannot verify the domain (409); DELETE removes it.
set -u
source "$(dirname "$0")/support/e2e_lib.sh"
source "$(dirname "$0")/support/serve_lib.sh"
d=$E2E_TMP

SINK_PORT=$(free_port)
mkdir -p "$d/sink"
$PY "$(dirname "$0")/support/smtp_sink.py" "$SINK_PORT" "$d/sink" 127.0.0.10=accept \
  > "$d/sink.out" 2>&1 &
SINK_PID=$!
trap 'kill $SINK_PID 2>/dev/null; serve_cleanup' EXIT

ZONE=$d/zone.json
cat > "$ZONE" <<'JSON'
{"ok.test": [{"type": "MX", "value": [10, "mx.ok.test"]}],
 "mx.ok.test": [{"type": "A", "value": "127.0.0.10"}]}
JSON
start_testdns "$ZONE"
write_config "$d/sesame.conf" "[delivery]
smtp_port = $SINK_PORT
[identities]
check_interval = 1
spf = ip4:127.0.0.0/8"
start_serve
make_account shop --production
make_account bob --production

# zone_set NAME TYPE VALUE...: replaces NAME's records of TYPE
zone_set() {
  $PY - "$ZONE" "$@" <<'PY'
import json, sys
path, name, typ, *values = sys.argv[1:]
z = json.load(open(path))
z[name] = [r for r in z.get(name, []) if r["type"] != typ]
for v in values:
    z[name].append({"type": typ, "value": json.loads(v) if typ == "MX" else v})
if not z[name]:
    del z[name]
json.dump(z, open(path, "w"))
PY
  kill -HUP "$DNS_PID"
  sleep 0.2
}

domain_json() { api GET /v1/domains/shop.test "$API_KEY_shop"; }
# wait_domain PYEXPR WANT: until the expression over GET /v1/domains/shop.test is WANT (30 s)
wait_domain() {
  local got=""
  for _ in $(seq 1 300); do
    got=$(json_get "$(domain_json | cut -d' ' -f2-)" "$1")
    [ "$got" = "$2" ] && break
    sleep 0.1
  done
  E2E_CHECKS=$((E2E_CHECKS + 1))
  [ "$got" = "$2" ] || { fail "$1: $got, want $2"; domain_json >&2; tail -5 "$d/serve.log" >&2; }
}
send() {   # send SUBJECT → "202 ..." or the error
  api POST /v1/messages "$API_KEY_shop" "{\"from\":\"orders@shop.test\",\"to\":[\"c@ok.test\"],\"subject\":\"$1\",\"text\":\"hello\"}"
}
# wait_sink SUBJECT: prints the sink file holding that subject (30 s)
wait_sink() {
  for _ in $(seq 1 300); do
    f=$(grep -l "^Subject: $1" "$d"/sink/*.eml 2>/dev/null | head -1)
    [ -n "$f" ] && { echo "$f"; return; }
    sleep 0.1
  done
  fail "no message '$1' at the sink"; tail -20 "$d/serve.log" >&2
}
selector_of() { grep -o 'DKIM-Signature:.*\|^[[:space:]].*' "$1" | tr -d '\r\n\t ' | grep -o 's=[^;]*' | cut -c3- | sort | tr '\n' ' '; }

# ---- add: every record to publish ----
r=$(api POST /v1/domains "$API_KEY_shop" '{"domain":"Shop.Test"}')
expect_contains "$r" "201 "
ADD=${r#201 }
expect_eq_json() { E2E_CHECKS=$((E2E_CHECKS + 1)); local g; g=$(json_get "$1" "$2"); [ "$g" = "$3" ] || fail "$2: $g, want $3"; }
expect_eq_json "$ADD" '",".join(x["purpose"] for x in j["records"])' \
  "verification,dkim,dkim,spf,dmarc,inbound_mx"
expect_eq_json "$ADD" '[x["value"] for x in j["records"] if x["purpose"]=="spf"][0]' \
  "v=spf1 ip4:127.0.0.0/8 ~all"
expect_eq_json "$ADD" '[x["value"] for x in j["records"] if x["purpose"]=="inbound_mx"][0]' \
  "10 mx.sesame.test"
expect_eq_json "$ADD" 'j["status"]' pending
KEYDIR=$(ls -d "$d"/var/dkim/*/shop.test)
[ -n "$(ls "$KEYDIR")" ] || fail "no key files in $KEYDIR"

# nothing published yet: a domain that is not verified cannot send
expect_contains "$(send early)" "400 "

# ---- publish the token and the keys: the background checker verifies ----
zone_set _sesame.shop.test TXT "$(json_get "$ADD" '[x["value"] for x in j["records"] if x["purpose"]=="verification"][0]')"
publish_dkim "$ADD"
wait_domain 'j["status"]' verified
wait_domain '",".join(k["status"] for k in j["dkim"])' active,active
OLD_SELECTORS=$(json_get "$(domain_json | cut -d' ' -f2-)" '" ".join(sorted(k["selector"] for k in j["dkim"]))')

r=$(send first)
expect_contains "$r" "202 "
f=$(wait_sink first)
expect_eq "$(selector_of "$f")" "$OLD_SELECTORS "
expect_contains "$(head -1 "$f")" "X-Sink-Envelope: <bounce+"
expect_contains "$(head -1 "$f")" "@mx.sesame.test> "   # the service's bounce domain

# ---- custom MAIL FROM domain, refusing mail while not verified ----
r=$(api PUT /v1/domains/shop.test/mail-from "$API_KEY_shop" '{"mail_from_domain":"bounce.shop.test","behavior_on_mx_failure":"reject"}')
expect_contains "$r" "200 "
expect_eq_json "${r#200 }" 'j["mail_from"]["status"]' pending
expect_eq_json "${r#200 }" '",".join(x["purpose"] for x in j["records"] if x["purpose"].startswith("mail_from"))' \
  "mail_from_mx,mail_from_spf"
expect_eq_json "${r#200 }" 'j["dmarc_report_address"]' dmarc-reports@bounce.shop.test
r=$(send refused)
expect_contains "$r" "400 "
expect_contains "$r" "behavior_on_mx_failure reject"
r=$(api PUT /v1/domains/shop.test/mail-from "$API_KEY_shop" '{"mail_from_domain":"bounce.other.test"}')
expect_contains "$r" "400 "
expect_contains "$r" "subdomain of shop.test"

zone_set bounce.shop.test MX '[10, "mx.sesame.test"]'
zone_set bounce.shop.test TXT "v=spf1 ip4:127.0.0.0/8 -all"
wait_domain 'j["mail_from"]["status"]' verified
r=$(send second)
expect_contains "$r" "202 "
f=$(wait_sink second)
expect_contains "$(head -1 "$f")" "X-Sink-Envelope: <bounce+"
expect_contains "$(head -1 "$f")" "@bounce.shop.test> "   # aligned with shop.test

# ---- rotation: the old keys sign until the new ones are visible ----
r=$(api POST /v1/domains/shop.test/dkim/rotate "$API_KEY_shop")
expect_contains "$r" "202 "
ROT=${r#202 }
expect_eq_json "$ROT" '",".join(k["status"] for k in j["dkim"])' active,active,pending,pending
r=$(api POST /v1/domains/shop.test/dkim/rotate "$API_KEY_shop")
expect_contains "$r" "409 "
expect_contains "$r" "rotation_pending"
r=$(send third)
expect_contains "$r" "202 "
f=$(wait_sink third)
expect_eq "$(selector_of "$f")" "$OLD_SELECTORS "
publish_dkim "$ROT"
wait_domain '",".join(k["status"] for k in j["dkim"])' grace,grace,active,active
NEW_SELECTORS=$(json_get "$(domain_json | cut -d' ' -f2-)" '" ".join(sorted(k["selector"] for k in j["dkim"] if k["status"]=="active"))')
r=$(send fourth)
expect_contains "$r" "202 "
f=$(wait_sink fourth)
expect_eq "$(selector_of "$f")" "$NEW_SELECTORS "
# the keys in their grace period are still listed to publish
expect_eq_json "$(domain_json | cut -d' ' -f2-)" 'len([x for x in j["records"] if x["purpose"]=="dkim"])' 4

# ---- exclusivity: another account cannot take it ----
r=$(api POST /v1/domains "$API_KEY_bob" '{"domain":"shop.test"}')
expect_contains "$r" "201 "
# bob even publishes his own token beside the shop's
$PY - "$ZONE" "$(json_get "${r#201 }" '[x["value"] for x in j["records"] if x["purpose"]=="verification"][0]')" <<'PY'
import json, sys
z = json.load(open(sys.argv[1]))
z["_sesame.shop.test"].append({"type": "TXT", "value": sys.argv[2]})
json.dump(z, open(sys.argv[1], "w"))
PY
kill -HUP "$DNS_PID"; sleep 0.2
r=$(api POST /v1/domains/shop.test/verify "$API_KEY_bob")
expect_contains "$r" "409 "
expect_contains "$r" "identity_taken"
r=$(api GET /v1/domains/shop.test "$API_KEY_bob")
expect_eq_json "${r#200 }" 'j["status"]' pending

# ---- delete ----
r=$(api DELETE /v1/domains/shop.test "$API_KEY_shop")
expect_contains "$r" "204"
expect_contains "$(api GET /v1/domains/shop.test "$API_KEY_shop")" "404 "
expect_contains "$(send after-delete)" "400 "
[ -e "$KEYDIR" ] && fail "key files left after delete: $KEYDIR"
# now it is bob's to verify
r=$(api POST /v1/domains/shop.test/verify "$API_KEY_bob")
expect_contains "$r" "200 "
expect_eq_json "${r#200 }" 'j["status"]' verified

finish
