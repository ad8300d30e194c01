#!/usr/bin/env bash
# End-to-end: the reputation guard (docs/reputation.md). Three production
# accounts with verified domains send through `sesame serve` to sinks on
# 127.0.0.x (tests/support/smtp_sink.py) reached through MX records in the
# test DNS server. "spray" delivers 20 messages, then sends to a sink that
# answers 550 5.1.1 until its bounce rate puts it in warning, then paused:
# each transition is checked in GET /v1/account and as a signed
# ReputationStatus webhook event; a paused account is refused by the API
# (403 account_paused) and by SMTP submission (550 5.7.1), with why and how
# to resume, while "good" keeps sending; `sesame account show` shows it and
# `sesame account resume` lets it send again with a fresh window. "noisy"
# delivers 20 messages and gets ARF complaints fed back to its VERP
# addresses through the MX: warning, then paused. /metrics exports the
# rates. Does not test the volume-jump rule (it needs past days).
set -u
source "$(dirname "$0")/support/e2e_lib.sh"
source "$(dirname "$0")/support/serve_lib.sh"
d=$E2E_TMP
SEND="$PY $(dirname "$0")/support/smtp_send.py"

SINK_PORT=$(free_port)
mkdir -p "$d/sink"
$PY "$(dirname "$0")/support/smtp_sink.py" "$SINK_PORT" "$d/sink" \
  127.0.0.10=accept 127.0.0.12=reject > "$d/sink.out" 2>&1 &
SINK_PID=$!
trap 'kill $SINK_PID 2>/dev/null; serve_cleanup' EXIT

ZONE=$d/zone.json
$PY - "$ZONE" <<'PY'
import json, sys
zone = {
  "ok.test": [{"type": "MX", "value": [10, "mx.ok.test"]}],
  "mx.ok.test": [{"type": "A", "value": "127.0.0.10"}],
  "bad.test": [{"type": "MX", "value": [10, "mx.bad.test"]}],
  "mx.bad.test": [{"type": "A", "value": "127.0.0.12"}],
}
json.dump(zone, open(sys.argv[1], "w"))
PY
start_testdns "$ZONE"
# Thresholds are global, so they are chosen for both scenarios with 20
# deliveries (min_sends = 20, everything is counted today):
#   bounces:    1/21 = 4.8 % healthy, 2/22 = 9.1 % ≥ 5 % warning,
#               3/23 = 13 % ≥ 10 % paused;
#   complaints: 1/20 = 5 % ≥ 3 % warning, 2/20 = 10 % ≥ 8 % paused.
# The unknown-recipient burst is set out of reach (3 NoEmail bounces here)
# so that the bounce rate alone drives the transitions.
write_config "$d/sesame.conf" "[delivery]
smtp_port = $SINK_PORT
first_retry = 1
max_retry_interval = 2
lease = 5
[identities]
spf = ip4:127.0.0.0/8
[reputation]
min_sends = 20
bounce_warning = 5%
bounce_pause = 10%
complaint_warning = 3%
complaint_pause = 8%
unknown_recipient_burst = 1000"
start_serve
make_account spray "--production --max-rate 1000"
make_account good "--production --max-rate 1000"
make_account noisy "--production --max-rate 1000"
verify_domain spray spray.test
verify_domain good good.test
verify_domain noisy noisy.test

# --- a webhook for spray's ReputationStatus events
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
        with open(os.path.join(out, "%03d.json" % n[0]), "wb") as f:
            f.write(json.dumps({"sig": self.headers.get("X-Sesame-Signature"),
                                "ts": self.headers.get("X-Sesame-Timestamp"),
                                "body": body.decode()}).encode())
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
HOOK_PID=$!
trap 'kill $SINK_PID $HOOK_PID 2>/dev/null; serve_cleanup' EXIT
r=$(api POST /v1/webhooks "$API_KEY_spray" "{\"url\":\"http://127.0.0.1:$HOOK_PORT/h\",\"events\":[\"ReputationStatus\"]}")
expect_contains "$r" "201 "
HOOK_SECRET=$(json_get "${r#201 }" 'j["secret"]')

key_of() { eval "printf '%s' \"\$API_KEY_$1\""; }
# send ACCOUNT TO → "202 ID" or the error response
send() {
  local r
  r=$(api POST /v1/messages "$(key_of "$1")" "{\"from\":\"news@$1.test\",\"to\":[\"$2\"],\"subject\":\"News for $2\",\"text\":\"Hello.\"}")
  case "$r" in "202 "*) echo "202 $(json_get "${r#202 }" 'j["id"]')" ;; *) echo "$r" ;; esac
}
rep() {   # rep ACCOUNT EXPR: a Python expression on j, GET /v1/account's "reputation"
  local r
  r=$(api GET /v1/account "$(key_of "$1")")
  case "$r" in
    "200 "*) json_get "${r#200 }" "(lambda j: $2)(j[\"reputation\"])" ;;
    *) echo "ERR $r" ;;
  esac
}
# wait_rep ACCOUNT EXPR WANT: until rep ACCOUNT EXPR prints WANT (30 s)
wait_rep() {
  local got=""
  for _ in $(seq 1 300); do
    got=$(rep "$1" "$2")
    [ "$got" = "$3" ] && break
    sleep 0.1
  done
  E2E_CHECKS=$((E2E_CHECKS + 1))
  if [ "$got" != "$3" ]; then
    fail "$1: $2 is '$got', want '$3'"
    api GET /v1/account "$(key_of "$1")" >&2
    tail -20 "$d/serve.log" >&2
  fi
}
# wait_status ACCOUNT ID ADDRESS STATUS: until that recipient reaches STATUS (30 s)
wait_status() {
  local got=""
  for _ in $(seq 1 300); do
    got=$(api GET "/v1/messages/$2" "$(key_of "$1")" | $PY -c '
import sys, json
t = sys.stdin.read(); j = json.loads(t[4:]) if t[:3] == "200" else {}
print(next((r["status"] for r in j.get("recipients", []) if r["address"] == sys.argv[1]), "?"))' "$3")
    [ "$got" = "$4" ] && break
    sleep 0.1
  done
  E2E_CHECKS=$((E2E_CHECKS + 1))
  [ "$got" = "$4" ] || { fail "message $2 to $3: status $got, want $4"; tail -20 "$d/serve.log" >&2; }
}
# hook_events: the ReputationStatus events received so far, one "status<previous" a line;
# checks every signature on the way
hook_events() {
  $PY - "$d/hooks" "$HOOK_SECRET" <<'PY'
import hashlib, hmac, json, os, sys
d, secret = sys.argv[1], sys.argv[2]
for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
    h = json.load(open(os.path.join(d, f)))
    want = "sha256=" + hmac.new(secret.encode(), (h["ts"] + "." + h["body"]).encode(), hashlib.sha256).hexdigest()
    assert h["sig"] and h["sig"] == want, ("bad signature", f, h["sig"], want)
    ev = json.loads(h["body"])
    assert ev["eventType"] == "ReputationStatus", ev
    r = ev["reputation"]
    for k in ("status", "previousStatus", "reason", "bounceRate", "complaintRate", "sends", "timestamp"):
        assert k in r, (k, r)
    print("%s<%s %.4f %d %s" % (r["status"], r["previousStatus"], r["bounceRate"], r["sends"], r["reason"]))
PY
}
wait_hooks() {   # wait_hooks N: until N events arrived (15 s)
  for _ in $(seq 1 150); do
    [ "$(ls "$d/hooks" 2>/dev/null | wc -l)" -ge "$1" ] && break
    sleep 0.1
  done
}

# --- good delivers a few
for i in 1 2 3; do
  r=$(send good "g$i@ok.test"); expect_contains "$r" "202 "
done
wait_rep good 'j["window"]["delivered"]' 3
expect_eq "$(rep good 'j["status"]')" healthy

# --- spray delivers 20: judged now, healthy
for i in $(seq -w 1 20); do
  r=$(send spray "s$i@ok.test"); expect_contains "$r" "202 "
done
wait_rep spray 'j["window"]["delivered"]' 20
expect_eq "$(rep spray '[j["status"], j["judged"], j["window"]["sends"], j["bounce_rate"]]')" \
  '["healthy", true, 20, 0.0]'
expect_eq "$(rep spray '[j["thresholds"]["bounce_warning"], j["thresholds"]["min_sends"]]')" '[0.05, 20]'

# --- spray sends to addresses that do not exist, one by one
bounce_one() {   # bounce_one N: sends to xN@bad.test and waits for the Bounce
  local r
  r=$(send spray "x$1@bad.test"); expect_contains "$r" "202 "
  wait_status spray "${r#202 }" "x$1@bad.test" bounced
  wait_rep spray 'j["window"]["bounces"]' "$1"
}
bounce_one 1     # 1/21
expect_eq "$(rep spray '[j["status"], j["window"]["unknown_recipients"]]')" '["healthy", 1]'
E2E_CHECKS=$((E2E_CHECKS + 1))
[ "$(ls "$d/hooks" 2>/dev/null | wc -l)" = 0 ] || fail "a ReputationStatus event while healthy: $(hook_events)"
bounce_one 2     # 2/22: warning
expect_eq "$(rep spray 'j["status"]')" warning
expect_contains "$(rep spray 'j["reason"]')" "bounce rate 9.09%"
wait_hooks 1
ev=$(hook_events)
expect_contains "$ev" "warning<healthy 0.0909 22 bounce rate 9.09%"
r=$(send spray "s21@ok.test"); expect_contains "$r" "202 "   # warned, not refused
wait_status spray "${r#202 }" s21@ok.test delivered
bounce_one 3     # 3/24: paused
expect_eq "$(rep spray 'j["status"]')" paused
expect_contains "$(rep spray 'j["reason"]')" "bounce rate 12.50%"
wait_hooks 2
ev=$(hook_events)
expect_contains "$ev" "paused<warning 0.1250 24 bounce rate 12.50%"
expect_eq "$(printf '%s\n' "$ev" | wc -l)" 2

# --- paused: refused by the API and by SMTP submission, with why and how to resume
r=$(send spray "s22@ok.test")
expect_contains "$r" "403 "
expect_eq "$(json_get "${r#403 }" 'j["error"]["code"]')" account_paused
msg=$(json_get "${r#403 }" 'j["error"]["message"]')
expect_contains "$msg" "sending is paused for account spray: bounce rate 12.50%"
expect_contains "$msg" "sesame account resume spray"
# (smtp_send.py, not swaks: swaks takes a password that starts with "-" for an option)
submit() {   # submit ACCOUNT TO: one message through submission, AUTH as ACCOUNT
  local user pass
  eval "user=\$SMTP_USER_$1; pass=\$SMTP_PASS_$1"
  printf 'From: news@%s.test\r\nTo: %s\r\nSubject: via submission\r\n\r\nHello.\r\n' "$1" "$2" > "$d/sub.eml"
  $SEND send "$SUB_PORT" "news@$1.test" "$2" "$d/sub.eml" --auth "$user" "$pass" 2>&1
}
out=$(submit spray s23@ok.test)
expect_contains "$out" "550 5.7.1 sending is paused for account spray: bounce rate 12.50%"
expect_contains "$out" "sesame account resume spray"
E2E_CHECKS=$((E2E_CHECKS + 1))
! grep -lq "s2[23]@ok.test" "$d"/sink/*.eml || fail "a paused account's message was delivered"

# --- the others keep sending
r=$(send good "g4@ok.test"); expect_contains "$r" "202 "
wait_status good "${r#202 }" g4@ok.test delivered
out=$(submit good g5@ok.test)
expect_contains "$out" "250 2.0.0 Ok: queued as"
wait_rep good 'j["window"]["delivered"]' 5
expect_eq "$(rep good 'j["status"]')" healthy

# --- metrics
m=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics")
expect_contains "$m" 'sesame_account_bounce_rate_ppm{account="spray"} 125000'
expect_contains "$m" 'sesame_account_reputation_status{account="spray"} 2'
expect_contains "$m" 'sesame_account_bounce_rate_ppm{account="good"} 0'
expect_contains "$m" 'sesame_account_reputation_status{account="good"} 0'

# --- the operator: show, resume
out=$("$SESAME_BIN" account show spray --json --config "$CONF")
expect_eq "$(json_get "$out" '[j["reputation"]["status"], j["reputation"]["bounce_rate"], j["reputation"]["complaint_rate"], j["reputation"]["window"]["bounces"]]')" \
  '["paused", 0.125, 0.0, 3]'
out=$("$SESAME_BIN" account show spray --config "$CONF")
expect_contains "$out" "reputation paused: bounce rate 12.50%"
expect_exit 0 "$SESAME_BIN" account resume spray --config "$CONF"
expect_contains "$(cat "$d/out")" "resumed (was paused)"
out=$("$SESAME_BIN" account show spray --json --config "$CONF")
expect_eq "$(json_get "$out" '[j["reputation"]["status"], j["reputation"]["judged"], j["reputation"]["window"]["sends"]]')" \
  '["healthy", false, 0]'
wait_hooks 3
expect_contains "$(hook_events | tail -1)" "healthy<paused"
r=$(send spray "s24@ok.test"); expect_contains "$r" "202 "
wait_status spray "${r#202 }" s24@ok.test delivered
expect_eq "$(rep spray '[j["status"], j["window"]["sends"], j["window"]["delivered"]]')" '["healthy", 1, 1]'
expect_exit 2 "$SESAME_BIN" account resume nosuchaccount --config "$CONF"

# --- complaints: noisy delivers 20, then ARF reports come back to its VERP addresses
for i in $(seq -w 1 20); do
  r=$(send noisy "n$i@ok.test"); expect_contains "$r" "202 "
done
wait_rep noisy 'j["window"]["delivered"]' 20
expect_eq "$(rep noisy 'j["status"]')" healthy
complain() {   # complain ADDRESS: an ARF abuse report for that message, through the MX
  local msg verp out
  msg=$(grep -l "<$1>" "$d"/sink/*.eml | head -1)
  verp=$(grep -o 'bounce+[^@ >]*@[^ >]*' "$msg" | head -1)
  printf 'From: fbl@ok.test\r\nTo: %s\r\nSubject: FW: News\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary="b2"\r\n\r\n--b2\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n--b2\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: okfbl/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: %s\r\n\r\n--b2\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: news@noisy.test\r\nTo: %s\r\nSubject: News\r\n\r\n--b2--\r\n' "$verp" "$1" "$1" > "$d/arf.eml"
  out=$($SEND send "$MX_PORT" "" "$verp" "$d/arf.eml" --src 127.0.0.10)
  expect_contains "$out" "250 2.0.0"
}
complain n01@ok.test    # 1/20 = 5 %
wait_rep noisy 'j["window"]["complaints"]' 1
expect_eq "$(rep noisy 'j["status"]')" warning
expect_contains "$(rep noisy 'j["reason"]')" "complaint rate 5.000%"
complain n02@ok.test    # 2/20 = 10 %
wait_rep noisy 'j["window"]["complaints"]' 2
expect_eq "$(rep noisy '[j["status"], j["complaint_rate"], j["bounce_rate"]]')" '["paused", 0.1, 0.0]'
r=$(send noisy "n21@ok.test")
expect_contains "$r" "403 "
expect_contains "$r" "complaint rate 10.000%"
expect_contains "$r" "sesame account resume noisy"
# the others still send
r=$(send spray "s25@ok.test"); expect_contains "$r" "202 "
r=$(send good "g6@ok.test"); expect_contains "$r" "202 "
m=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics")
expect_contains "$m" 'sesame_account_complaint_rate_ppm{account="noisy"} 100000'
# spray's webhook saw nothing of noisy
expect_eq "$(hook_events | wc -l)" 3

stop_serve TERM
E2E_CHECKS=$((E2E_CHECKS + 1))
[ "$SERVE_RC" = 0 ] || fail "sesame serve exited $SERVE_RC after SIGTERM"
finish
