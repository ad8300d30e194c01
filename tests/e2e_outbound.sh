#!/usr/bin/env bash
# End-to-end: sending. A production account with a verified domain (its
# DKIM keys published in the test DNS server) sends through POST
# /v1/messages and through the submission listener; "remote" MX hosts are
# sinks on 127.0.0.x (tests/support/smtp_sink.py) reached through MX
# records in the test DNS server. Checks: the message arrives DKIM-signed
# (dkimpy verifies RSA and Ed25519 there) with a VERP Return-Path on the
# custom MAIL FROM domain (SPF aligned); a greylisting sink gets it on the
# retry (DeliveryDelay, then Delivery); a rejecting sink gives a Permanent
# Bounce and a suppression, and the next message to that address is
# rejected; null MX bounces at once; a domain without MX is delivered to
# its A record; an unreachable MX is deferred; a DSN and an ARF report
# sent back to the VERP address become Bounce and Complaint events; the
# sandbox and the 24 h quota refuse; a webhook gets signed events after a
# failed first POST.
set -u
source "$(dirname "$0")/support/e2e_lib.sh"
source "$(dirname "$0")/support/serve_lib.sh"
d=$E2E_TMP
SEND="$PY $(dirname "$0")/support/smtp_send.py"

SINK_PORT=$(free_port)
mkdir -p "$d/sink"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=mx.tls.test \
  -days 2 -keyout "$d/sink.key" -out "$d/sink.crt" 2> /dev/null
SINK_CERT=$d/sink.crt SINK_KEY=$d/sink.key \
$PY "$(dirname "$0")/support/smtp_sink.py" "$SINK_PORT" "$d/sink" \
  127.0.0.10=accept 127.0.0.11=tempfail-once 127.0.0.12=reject 127.0.0.14=tls \
  127.0.0.15=tls-broken > "$d/sink.out" 2>&1 &
SINK_PID=$!
trap 'kill $SINK_PID 2>/dev/null; serve_cleanup' EXIT

ZONE=$d/zone.json
$PY - "$ZONE" <<'PY'
import json, sys
zone = {
  "ok.test": [{"type": "MX", "value": [10, "mx.ok.test"]}],
  "mx.ok.test": [{"type": "A", "value": "127.0.0.10"}],
  "grey.test": [{"type": "MX", "value": [10, "mx.grey.test"]}],
  "mx.grey.test": [{"type": "A", "value": "127.0.0.11"}],
  "bad.test": [{"type": "MX", "value": [10, "mx.bad.test"]}],
  "mx.bad.test": [{"type": "A", "value": "127.0.0.12"}],
  "nullmx.test": [{"type": "MX", "value": [0, "."]}],
  "nomx.test": [{"type": "A", "value": "127.0.0.10"}],
  "down.test": [{"type": "MX", "value": [10, "mx.down.test"]}],
  "mx.down.test": [{"type": "A", "value": "127.0.0.13"}],
  "small.test": [{"type": "MX", "value": [10, "mx.ok.test"]}],
  "tls.test": [{"type": "MX", "value": [10, "mx.tls.test"]}],
  "mx.tls.test": [{"type": "A", "value": "127.0.0.14"}],
  "brokentls.test": [{"type": "MX", "value": [10, "mx.brokentls.test"]}],
  "mx.brokentls.test": [{"type": "A", "value": "127.0.0.15"}],
  "sandy.test": [{"type": "MX", "value": [10, "mx.ok.test"]}],
}
json.dump(zone, open(sys.argv[1], "w"))
PY
start_testdns "$ZONE"
write_config "$d/sesame.conf" "[delivery]
smtp_port = $SINK_PORT
first_retry = 1
max_retry_interval = 2
lease = 5
[identities]
spf = ip4:127.0.0.0/8"
start_serve
make_account shop --production
make_account small "--max-24h 2"
make_account sandy
verify_domain shop shop.test
verify_domain small small.test
verify_domain sandy sandy.test

# the DKIM keys are published (verify_domain); now the MAIL FROM domain's MX and SPF
keys=$("$SESAME_BIN" domain show shop.test --account shop --json --config "$CONF")
$PY - "$ZONE" "$keys" <<'PY'
import json, sys
z = json.load(open(sys.argv[1]))
z["bounce.shop.test"] = [{"type": "TXT", "value": "v=spf1 ip4:127.0.0.0/8 -all"},
                         {"type": "MX", "value": [10, "mx.sesame.test"]}]
z["_dmarc.shop.test"] = [{"type": "TXT", "value": "v=DMARC1; p=reject"}]
json.dump(z, open(sys.argv[1], "w"))
PY
kill -HUP "$DNS_PID"; sleep 0.2
r=$(api PUT /v1/domains/shop.test/mail-from "$API_KEY_shop" '{"mail_from_domain":"bounce.shop.test"}')
expect_contains "$r" "200 "
# its MX and SPF are published: verified now, the envelope sender switches
r=$(api POST /v1/domains/shop.test/verify "$API_KEY_shop")
expect_contains "$r" "200 "
expect_contains "$(json_get "${r#200 }" 'j["mail_from"]["status"]')" verified

# webhook: the first POST fails (500), the retry succeeds
HOOK_PORT=$(free_port)
$PY - "$HOOK_PORT" "$d/hooks" <<'PY' &
import http.server, json, sys, os
port, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out, exist_ok=True)
n = [0]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        n[0] += 1
        if n[0] == 1:
            self.send_response(500); self.end_headers(); return
        with open(os.path.join(out, f"{n[0]}.json"), "wb") as f:
            f.write(json.dumps({"sig": self.headers.get("X-Sesame-Signature"),
                                "ts": self.headers.get("X-Sesame-Timestamp"),
                                "body": body.decode()}).encode())
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
HOOK_PID=$!
trap 'kill $SINK_PID $HOOK_PID 2>/dev/null; serve_cleanup' EXIT
r=$(api POST /v1/webhooks "$API_KEY_shop" "{\"url\":\"http://127.0.0.1:$HOOK_PORT/h\",\"events\":[\"Delivery\",\"Bounce\"]}")
expect_contains "$r" "201 "
HOOK_SECRET=$(json_get "${r#201 }" 'j["secret"]')

send_api() {   # send_api TO [SUBJECT] → prints the message id (or the error)
  local r
  r=$(api POST /v1/messages "$API_KEY_shop" "{\"from\":\"Shop <orders@shop.test>\",\"to\":[\"$1\"],\"subject\":\"${2:-Your order}\",\"text\":\"Thanks for your order.\\nSee you soon.\",\"html\":\"<p>Thanks for your order.</p>\"}")
  case "$r" in "202 "*) json_get "${r#202 }" 'j["id"]' ;; *) echo "ERR $r" ;; esac
}
# wait_status ID ADDRESS STATUS: until that recipient reaches STATUS (40 s)
wait_status() {
  local got=""
  for _ in $(seq 1 400); do
    got=$(api GET "/v1/messages/$1" "$API_KEY_shop" | $PY -c '
import sys, json
t = sys.stdin.read(); j = json.loads(t[4:]) if t[:3] == "200" else {}
print(next((r["status"] for r in j.get("recipients", []) if r["address"] == sys.argv[1]), "?"))' "$2")
    [ "$got" = "$3" ] && break
    sleep 0.1
  done
  E2E_CHECKS=$((E2E_CHECKS + 1))
  if [ "$got" != "$3" ]; then
    fail "message $1 to $2: status $got, want $3"
    api GET "/v1/messages/$1" "$API_KEY_shop" >&2
    tail -20 "$d/serve.log" >&2
  fi
}
events_of() {   # events_of ID → the event types, space-separated
  api GET "/v1/messages/$1" "$API_KEY_shop" | $PY -c '
import sys, json
t = sys.stdin.read(); j = json.loads(t[4:])
print(" ".join(e["eventType"] for e in j.get("events", [])))'
}

# --- delivered, signed, aligned
id=$(send_api alice@ok.test "Order 1")
wait_status "$id" alice@ok.test delivered
expect_contains "$(events_of "$id")" "Send"
expect_contains "$(events_of "$id")" "Delivery"
msg=$(grep -l "alice@ok.test" "$d"/sink/*.eml | head -1)
E2E_CHECKS=$((E2E_CHECKS + 1))
[ -n "$msg" ] || fail "the sink did not receive the message"
$PY - "$msg" "$ZONE" <<'PY' > "$d/verify.out" 2>&1 || fail "sink-side checks: $(cat "$d/verify.out")"
import dkim, email, json, re, sys
raw = open(sys.argv[1], "rb").read()
env, msg = raw.split(b"\r\n", 1)
zone = json.load(open(sys.argv[2]))
def dnsfunc(name, timeout=5):
    recs = zone.get(name.decode().rstrip("."), [])
    txt = [r["value"] for r in recs if r["type"] == "TXT"]
    v = txt[0] if txt else ""
    return ("".join(v) if isinstance(v, list) else v).encode()
sigs = [h for h in email.message_from_bytes(msg).get_all("DKIM-Signature")]
assert len(sigs) == 2, f"{len(sigs)} DKIM signatures"
algs = sorted(re.search(r"a=([\w-]+)", s).group(1) for s in sigs)
assert algs == ["ed25519-sha256", "rsa-sha256"], algs
d = dkim.DKIM(msg)
for i in range(2):
    assert d.verify(idx=i, dnsfunc=dnsfunc), f"signature {i} does not verify"
mail_from = env.decode().split()[1]
assert re.match(r"<bounce\+[0-9a-f]+-[0-9a-f]{16}@bounce\.shop\.test>$", mail_from), mail_from
m = email.message_from_bytes(msg)
assert m.get_content_type() == "multipart/alternative", m.get_content_type()
assert m["Subject"] == "Order 1" and m["Message-ID"] and m["Date"]
PY
grep -o 'bounce+[^@ >]*@bounce.shop.test' "$msg" | head -1 > "$d/verp"
VERP=$(cat "$d/verp")

# --- STARTTLS when offered; a broken TLS handshake falls back to clear text
id=$(send_api tina@tls.test "over TLS")
wait_status "$id" tina@tls.test delivered
E2E_CHECKS=$((E2E_CHECKS + 1))
grep -l "<tina@tls.test> 127.0.0.14 tls" "$d"/sink/*.eml > /dev/null || fail "the message to tls.test did not arrive over TLS"
id=$(send_api bert@brokentls.test "TLS broken")
wait_status "$id" bert@brokentls.test delivered

# --- greylisted once: DeliveryDelay, then Delivery
id=$(send_api bob@grey.test)
wait_status "$id" bob@grey.test delivered
expect_contains "$(events_of "$id")" "DeliveryDelay"
# --- 5xx: Permanent bounce, suppressed; the next one is rejected
id=$(send_api nobody@bad.test)
wait_status "$id" nobody@bad.test bounced
expect_contains "$(events_of "$id")" "Bounce"
r=$(api GET /v1/suppressions "$API_KEY_shop")
expect_contains "$r" "nobody@bad.test"
r=$(api POST /v1/messages "$API_KEY_shop" '{"from":"orders@shop.test","to":["nobody@bad.test"],"subject":"again","text":"x"}')
expect_contains "$r" "all_recipients_suppressed"
# --- null MX: bounced without a connection; no MX: the A record
id=$(send_api x@nullmx.test)
wait_status "$id" x@nullmx.test bounced
id=$(send_api y@nomx.test)
wait_status "$id" y@nomx.test delivered
# --- unreachable: deferred, retried
id=$(send_api z@down.test)
wait_status "$id" z@down.test deferred

# --- feedback to the VERP address: a DSN, then an ARF report
dsn_for() {   # dsn_for RCPT VERP
  printf 'From: MAILER-DAEMON@ok.test\r\nTo: %s\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.ok.test\r\n\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.2.1\r\nDiagnostic-Code: smtp; 550 5.2.1 mailbox disabled\r\n\r\n--b1--\r\n' "$2" "$1"
}
id=$(send_api carol@ok.test "Order 2")
wait_status "$id" carol@ok.test delivered
msg=$(grep -l "carol@ok.test" "$d"/sink/*.eml | head -1)
VERP=$(grep -o 'bounce+[^@ >]*@bounce.shop.test' "$msg" | head -1)
dsn_for carol@ok.test "$VERP" > "$d/dsn.eml"
out=$($SEND send "$MX_PORT" "" "$VERP" "$d/dsn.eml" --src 127.0.0.10)
expect_contains "$out" "250 2.0.0"
for _ in $(seq 1 150); do
  case "$(events_of "$id")" in *Bounce*) break ;; esac; sleep 0.1
done
expect_contains "$(events_of "$id")" "Bounce"
r=$(api GET /v1/suppressions "$API_KEY_shop")
expect_contains "$r" "carol@ok.test"
# a forged token is refused like any unknown address
out=$($SEND send "$MX_PORT" "" "bounce+1-0000000000000000@bounce.shop.test" "$d/dsn.eml" --src 127.0.0.10)
expect_contains "$out" "550 5.7.1"

id=$(send_api dave@ok.test "Order 3")
wait_status "$id" dave@ok.test delivered
msg=$(grep -l "dave@ok.test" "$d"/sink/*.eml | head -1)
VERP=$(grep -o 'bounce+[^@ >]*@bounce.shop.test' "$msg" | head -1)
printf 'From: fbl@ok.test\r\nTo: %s\r\nSubject: FW: Order 3\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary="b2"\r\n\r\n--b2\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n--b2\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: okfbl/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: dave@ok.test\r\n\r\n--b2\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: orders@shop.test\r\nTo: dave@ok.test\r\nSubject: Order 3\r\n\r\n--b2--\r\n' "$VERP" > "$d/arf.eml"
out=$($SEND send "$MX_PORT" "" "$VERP" "$d/arf.eml" --src 127.0.0.10)
expect_contains "$out" "250 2.0.0"
for _ in $(seq 1 150); do
  case "$(events_of "$id")" in *Complaint*) break ;; esac; sleep 0.1
done
expect_contains "$(events_of "$id")" "Complaint"

# --- submission goes the same way (signed, queued, delivered)
out=$(swaks --server 127.0.0.1 --port "$SUB_PORT" --auth PLAIN --auth-user "$SMTP_USER_shop" \
      --auth-password "$SMTP_PASS_shop" --from orders@shop.test --to erin@ok.test \
      --header "From: orders@shop.test" --header "Subject: via submission" 2>&1)
expect_contains "$out" "250 2.0.0 Ok: queued as"
for _ in $(seq 1 300); do grep -lq "erin@ok.test" "$d"/sink/*.eml 2>/dev/null && break; sleep 0.1; done
E2E_CHECKS=$((E2E_CHECKS + 1))
grep -l "erin@ok.test" "$d"/sink/*.eml 2>/dev/null | xargs -r grep -q "DKIM-Signature" \
  || fail "the submitted message was not delivered signed"

# --- sandbox and quota
r=$(api POST /v1/messages "$API_KEY_sandy" '{"from":"a@sandy.test","to":["x@ok.test"],"subject":"s","text":"x"}')
expect_contains "$r" "sandbox_recipient"
r=$(api POST /v1/messages "$API_KEY_sandy" '{"from":"a@sandy.test","to":["b@sandy.test"],"subject":"s","text":"x"}')
expect_contains "$r" "202 "
for i in 1 2; do
  r=$(api POST /v1/messages "$API_KEY_small" '{"from":"a@small.test","to":["b@small.test"],"subject":"q","text":"x"}')
  expect_contains "$r" "202 "
  sleep 1.1    # the sandbox rate: 1 message per second
done
r=$(api POST /v1/messages "$API_KEY_small" '{"from":"a@small.test","to":["b@small.test"],"subject":"q","text":"x"}')
expect_contains "$r" "429 "
expect_contains "$r" "quota_exceeded"
# --- identities: another domain's From is refused
r=$(api POST /v1/messages "$API_KEY_shop" '{"from":"ceo@small.test","to":["x@ok.test"],"subject":"s","text":"x"}')
expect_contains "$r" "identity_not_verified"

# --- the webhook: signed events after a failed first attempt
for _ in $(seq 1 300); do [ "$(ls "$d/hooks" 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.1; done
E2E_CHECKS=$((E2E_CHECKS + 1))
$PY - "$d/hooks" "$HOOK_SECRET" <<'PY' || { fail "webhook deliveries: $(ls "$d/hooks")"; tail -20 "$d/serve.log" >&2; }
import hashlib, hmac, json, os, sys
d, secret = sys.argv[1], sys.argv[2]
files = sorted(os.listdir(d))
assert files, "no webhook delivery"
types = set()
for f in files:
    h = json.load(open(os.path.join(d, f)))
    want = "sha256=" + hmac.new(secret.encode(), (h["ts"] + "." + h["body"]).encode(), hashlib.sha256).hexdigest()
    assert h["sig"] == want, (h["sig"], want)
    ev = json.loads(h["body"])
    types.add(ev["eventType"])
    assert ev["mail"]["messageId"] and ev["mail"]["source"]
assert types <= {"Delivery", "Bounce"}, types
assert "Delivery" in types, types
PY

stop_serve TERM
E2E_CHECKS=$((E2E_CHECKS + 1))
[ "$SERVE_RC" = 0 ] || fail "sesame serve exited $SERVE_RC after SIGTERM"
finish
