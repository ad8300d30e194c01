#!/usr/bin/env bash
# End-to-end: the inbound MX of `sesame serve`. Mail from "foreign" domains
# published in the test DNS server (SPF, a dkimpy-signed DKIM key, DMARC)
# arrives from 127.0.0.x addresses for a domain an account verified through
# DNS. Checks: no open relay; the Authentication-Results and Received we
# prepend (and the forged ones we remove); DMARC reject / quarantine and
# the per-account report-only switch; receiving rules (reject, drop, add
# and strip header, webhook); GET /v1/inbound and /raw; another account
# cannot read the messages.
set -u
source "$(dirname "$0")/support/e2e_lib.sh"
source "$(dirname "$0")/support/serve_lib.sh"
d=$E2E_TMP
SEND="$PY $(dirname "$0")/support/smtp_send.py"

"$SESAME_BIN" dkim keygen --algorithm rsa-sha256 --domain foreign.test --selector s1 \
  --out "$d/foreign.pem" --json > "$d/foreign.json"
ZONE=$d/zone.json
$PY - "$d" <<'PY'
import json, sys
d = sys.argv[1]
key = json.load(open(f"{d}/foreign.json"))
zone = {
  "foreign.test": [{"type": "TXT", "value": "v=spf1 ip4:127.0.0.0/8 -all"}],
  "_dmarc.foreign.test": [{"type": "TXT", "value": "v=DMARC1; p=reject"}],
  key["name"]: [{"type": "TXT", "value": key["strings"]}],
  "spoof.test": [{"type": "TXT", "value": "v=spf1 ip4:192.0.2.1 -all"}],
  "_dmarc.spoof.test": [{"type": "TXT", "value": "v=DMARC1; p=reject"}],
  "quar.test": [{"type": "TXT", "value": "v=spf1 ip4:192.0.2.1 -all"}],
  "_dmarc.quar.test": [{"type": "TXT", "value": "v=DMARC1; p=quarantine"}],
  "client.test": [{"type": "TXT", "value": "v=spf1 ip4:127.0.0.5 -all"}],
}
json.dump(zone, open(f"{d}/zone.json", "w"))
PY
start_testdns "$ZONE"
write_config "$d/sesame.conf"
start_serve
make_account acme
make_account other
verify_domain acme shop.test

# a message from foreign.test signed by dkimpy, with a forged
# Authentication-Results claiming our authserv-id and a foreign one
$PY - "$d" <<'PY'
import dkim, sys
d = sys.argv[1]
msg = (b"Authentication-Results: mx.sesame.test; dmarc=pass (forged)\r\n"
       b"Authentication-Results: elsewhere.test; spf=pass\r\n"
       b"From: Orders <orders@foreign.test>\r\nTo: alice@shop.test\r\n"
       b"Subject: Your order 42\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
       b"Message-ID: <42@foreign.test>\r\n\r\nThanks for your order.\r\n")
sig = dkim.sign(msg, b"s1", b"foreign.test", open(f"{d}/foreign.pem", "rb").read(),
                include_headers=[b"From", b"To", b"Subject", b"Date", b"Message-ID"])
open(f"{d}/signed.eml", "wb").write(sig + msg)
open(f"{d}/spoof.eml", "wb").write(b"From: CEO <ceo@spoof.test>\r\nTo: alice@shop.test\r\n"
    b"Subject: wire money\r\n\r\nnow\r\n")
open(f"{d}/quar.eml", "wb").write(b"From: x@quar.test\r\nTo: alice@shop.test\r\n"
    b"Subject: maybe\r\n\r\nhello\r\n")
open(f"{d}/plain.eml", "wb").write(b"From: a@client.test\r\nTo: alice@shop.test\r\n"
    b"Subject: plain\r\nX-Spam: yes\r\nX-Internal: secret\r\n\r\nhello\r\n")
PY

# --- no open relay
out=$($SEND send "$MX_PORT" orders@foreign.test someone@elsewhere.test "$d/signed.eml" --src 127.0.0.5)
expect_contains "$out" "550 5.7.1"
expect_contains "$out" "Relay access denied"
# a domain another account only added (not verified) is not ours either
"$SESAME_BIN" domain add pending.test --account other --config "$CONF" > /dev/null
out=$($SEND send "$MX_PORT" orders@foreign.test bob@pending.test "$d/signed.eml" --src 127.0.0.5)
expect_contains "$out" "550 5.7.1"

# --- authenticated mail is stored with our Authentication-Results
out=$($SEND send "$MX_PORT" orders@foreign.test alice@shop.test "$d/signed.eml" --src 127.0.0.5 --helo client.test)
expect_contains "$out" "250 2.0.0"
r=$(api GET /v1/inbound "$API_KEY_acme")
expect_contains "$r" "200 "
list=${r#200 }
expect_json "$(json_get "$list" 'j["messages"][0]')" spf pass
expect_json "$(json_get "$list" 'j["messages"][0]')" dkim pass
expect_json "$(json_get "$list" 'j["messages"][0]')" dmarc pass
expect_json "$(json_get "$list" 'j["messages"][0]')" subject "Your order 42"
expect_json "$(json_get "$list" 'j["messages"][0]')" client_ip 127.0.0.5
id=$(json_get "$list" 'j["messages"][0]["id"]')
raw=$(api GET "/v1/inbound/$id/raw" "$API_KEY_acme")
expect_contains "$raw" "Received: from client.test"
first_two=$(printf '%s' "${raw#200 }" | $PY -c '
import sys
lines = sys.stdin.read().split("\r\n")
fields = [l.split(":")[0] for l in lines if l and not l[0] in " \t"]
print(" ".join(fields[:3]))')
expect_contains "$first_two" "Authentication-Results Received"
expect_contains "$raw" "Authentication-Results: mx.sesame.test;"
expect_contains "$raw" "spf=pass"
expect_contains "$raw" "smtp.helo=client.test"
expect_contains "$raw" "header.d=foreign.test"
expect_contains "$raw" "dmarc=pass"
expect_contains "$raw" "Authentication-Results: elsewhere.test; spf=pass"
case "$raw" in *"(forged)"*) fail "the forged Authentication-Results was kept" ;; esac
E2E_CHECKS=$((E2E_CHECKS + 1))
# the stored message still verifies with dkimpy (we only prepended fields)
$PY - "$HTTP_PORT" "$API_KEY_acme" "$id" "$d/stored.eml" <<'PY'
import http.client, sys
port, key, mid, out = sys.argv[1:]
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
c.request("GET", f"/v1/inbound/{mid}/raw", headers={"Authorization": "Bearer " + key})
open(out, "wb").write(c.getresponse().read())
PY
E2E_CHECKS=$((E2E_CHECKS + 1))
$PY - "$d/stored.eml" "$d/zone.json" <<'PY' || fail "the stored message no longer verifies with dkimpy"
import dkim, json, sys
msg = open(sys.argv[1], "rb").read()
zone = json.load(open(sys.argv[2]))
def dnsfunc(name, timeout=5):
    name = name.decode().rstrip(".")
    recs = zone.get(name, [])
    v = recs[0]["value"] if recs else None
    return ("".join(v) if isinstance(v, list) else v or "").encode()
sys.exit(0 if dkim.verify(msg, dnsfunc=dnsfunc) else 1)
PY

# another account sees none of it
r=$(api GET "/v1/inbound/$id/raw" "$API_KEY_other")
expect_contains "$r" "404 "
r=$(api GET /v1/inbound "$API_KEY_other")
expect_json "${r#200 }" messages "[]"

# --- DMARC p=reject: refused at the end of DATA, naming the policy domain
out=$($SEND send "$MX_PORT" ceo@spoof.test alice@shop.test "$d/spoof.eml" --src 127.0.0.9)
expect_contains "$out" "550 5.7.1"
expect_contains "$out" "spoof.test"
# --- DMARC p=quarantine: stored, flagged
out=$($SEND send "$MX_PORT" x@quar.test alice@shop.test "$d/quar.eml" --src 127.0.0.9)
expect_contains "$out" "250 2.0.0"
r=$(api GET "/v1/inbound?limit=1" "$API_KEY_acme")
expect_json "$(json_get "${r#200 }" 'j["messages"][0]')" quarantine true
expect_json "$(json_get "${r#200 }" 'j["messages"][0]')" dmarc fail
# --- report only: the account keeps what DMARC would reject
r=$(api PATCH /v1/account "$API_KEY_acme" '{"dmarc_report_only": true}')
expect_contains "$r" "200 "
out=$($SEND send "$MX_PORT" ceo@spoof.test alice@shop.test "$d/spoof.eml" --src 127.0.0.9)
expect_contains "$out" "250 2.0.0"
api PATCH /v1/account "$API_KEY_acme" '{"dmarc_report_only": false}' > /dev/null

# --- receiving rules
WEBHOOK_PORT=$(free_port)
$PY - "$WEBHOOK_PORT" "$d/hook.json" <<'PY' &
import http.server, sys
port, out = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        open(out, "wb").write(body)
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).handle_request()
PY
HOOK_PID=$!
r=$(api POST /v1/rules "$API_KEY_acme" '{"name":"spam out","conditions":[{"field":"header","header":"X-Spam","op":"equals","value":"yes"},{"field":"client_ip","op":"cidr","value":"127.0.0.66/32"}],"match":"all","actions":[{"type":"reject","code":550,"enhanced":"5.7.1","message":"Spam is not welcome here"}],"stop":true}')
expect_contains "$r" "201 "
r=$(api POST /v1/rules "$API_KEY_acme" '{"name":"drop newsletters","conditions":[{"field":"sender","op":"contains","value":"newsletter"}],"actions":[{"type":"drop"}],"stop":true}')
expect_contains "$r" "201 "
r=$(api POST /v1/rules "$API_KEY_acme" "{\"name\":\"tag and tell\",\"conditions\":[{\"field\":\"header\",\"header\":\"X-Spam\",\"op\":\"exists\"}],\"actions\":[{\"type\":\"add_header\",\"header\":\"X-Tagged\",\"value\":\"by-rule\"},{\"type\":\"strip_header\",\"header\":\"X-Internal\"},{\"type\":\"webhook\",\"url\":\"http://127.0.0.1:$WEBHOOK_PORT/hook\"}]}")
expect_contains "$r" "201 "
r=$(api POST /v1/rules "$API_KEY_acme" '{"conditions":[{"field":"header","op":"like","value":"x"}],"actions":[{"type":"drop"}]}')
expect_contains "$r" "400 "
# reject (from the address the rule names)
out=$($SEND send "$MX_PORT" a@client.test alice@shop.test "$d/plain.eml" --src 127.0.0.66)
expect_contains "$out" "550 5.7.1 Spam is not welcome here"
# drop: the client hears 250, nothing is stored
before=$(api GET /v1/inbound "$API_KEY_acme" | $PY -c 'import sys,json; print(len(json.loads(sys.stdin.read()[4:])["messages"]))')
out=$($SEND send "$MX_PORT" newsletter@client.test alice@shop.test "$d/quar.eml" --src 127.0.0.5)
expect_contains "$out" "250 2.0.0"
after=$(api GET /v1/inbound "$API_KEY_acme" | $PY -c 'import sys,json; print(len(json.loads(sys.stdin.read()[4:])["messages"]))')
E2E_CHECKS=$((E2E_CHECKS + 1))
[ "$before" = "$after" ] || fail "a dropped message was stored ($before → $after)"
# add/strip header and the webhook
out=$($SEND send "$MX_PORT" a@client.test alice@shop.test "$d/plain.eml" --src 127.0.0.5)
expect_contains "$out" "250 2.0.0"
r=$(api GET "/v1/inbound?limit=1" "$API_KEY_acme")
id=$(json_get "${r#200 }" 'j["messages"][0]["id"]')
raw=$(api GET "/v1/inbound/$id/raw" "$API_KEY_acme")
expect_contains "$raw" "X-Tagged: by-rule"
case "$raw" in *X-Internal*) fail "strip_header left X-Internal" ;; esac
E2E_CHECKS=$((E2E_CHECKS + 1))
for _ in $(seq 1 300); do [ -s "$d/hook.json" ] && break; sleep 0.05; done
hook=$(cat "$d/hook.json" 2>/dev/null || echo '{}')
expect_json "$hook" eventType Received
expect_json "$hook" id "$id"
expect_json "$hook" spf pass
wait "$HOOK_PID" 2>/dev/null
# rules are per account: other cannot delete acme's
rid=$(api GET /v1/rules "$API_KEY_acme" | $PY -c 'import sys,json; print(json.loads(sys.stdin.read()[4:])["rules"][0]["id"])')
r=$(api DELETE "/v1/rules/$rid" "$API_KEY_other")
expect_contains "$r" "404 "
r=$(api DELETE "/v1/rules/$rid" "$API_KEY_acme")
expect_contains "$r" "204"

# --- metrics count what happened
m=$(api GET /metrics "")
expect_contains "$m" 'sesame_messages_rejected_total{reason="relay"}'
expect_contains "$m" 'sesame_messages_rejected_total{reason="dmarc"} 1'
expect_contains "$m" 'sesame_auth_dkim_total{result="pass"}'

stop_serve TERM
E2E_CHECKS=$((E2E_CHECKS + 1))
[ "$SERVE_RC" = 0 ] || fail "sesame serve exited $SERVE_RC after SIGTERM"
finish
