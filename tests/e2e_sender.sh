#!/usr/bin/env bash
# End-to-end: a single sender address verified by the confirmation link,
# with the real `sesame serve`, the test DNS server and an SMTP sink as the
# address's MX (tests/support/smtp_sink.py on 127.0.0.10). POST
# /v1/senders → the confirmation mail arrives at the sink (from the
# service, with who asked and the link) → GET the link (no API key) →
# verified; the account can then send from that address through POST
# /v1/messages and the message arrives; a second click is 404; another
# account gets 409; `sesame sender show --json` says verified. Expiry:
# expires_at moved into the past in DATA_DIR/sesame.db → the link answers
# 410 and the address shows expired; a resend within the minute is 429,
# after it a new link verifies and the old one is 404. `sesame sender add`
# in its own process queues a mail that the running service delivers.
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
for _ in $(seq 1 100); do grep -q ready "$d/sink.out" 2>/dev/null && break; sleep 0.05; done

ZONE=$d/zone.json
cat > "$ZONE" <<'JSON'
{"people.test": [{"type": "MX", "value": [10, "mx.people.test"]}],
 "mx.people.test": [{"type": "A", "value": "127.0.0.10"}],
 "ok.test": [{"type": "MX", "value": [10, "mx.people.test"]}]}
JSON
start_testdns "$ZONE"
write_config "$d/sesame.conf" "[delivery]
smtp_port = $SINK_PORT
first_retry = 1
max_retry_interval = 2
lease = 5"
start_serve
make_account shop --production
make_account other --production
DB=$d/var/sesame.db

# wait_mail RCPT N: the path of the Nth message to RCPT at the sink (40 s);
# fails the test at once when it does not come (use as: f=$(wait_mail ..) || exit 1)
wait_mail() {
  local f=""
  for _ in $(seq 1 400); do
    f=$($PY - "$d/sink" "$1" "$2" <<'PY'
import glob, os, sys
out, rcpt, n = sys.argv[1], "<" + sys.argv[2] + ">", int(sys.argv[3])
hits = []
for p in glob.glob(os.path.join(out, "*.eml")):
    env = open(p, "rb").readline().decode(errors="replace")
    if rcpt in env.replace(",", " ").split():
        hits.append((int(os.path.basename(p)[:-4]), p))
hits.sort()
print(hits[n - 1][1] if len(hits) >= n else "")
PY
)
    [ -n "$f" ] && break
    sleep 0.1
  done
  E2E_CHECKS=$((E2E_CHECKS + 1))
  if [ -z "$f" ]; then
    fail "no message $2 to $1 at the sink"
    tail -20 "$d/serve.log" >&2
    finish >&2
    exit 1
  fi
  printf '%s' "$f"
}

# link_of FILE: the confirmation link in a mail, after checking the mail
link_of() {
  $PY - "$1" "$HTTP_PORT" <<'PY'
import email, re, sys
raw = open(sys.argv[1], "rb").read().split(b"\r\n", 1)[1]
m = email.message_from_bytes(raw)
assert m["From"] == "sesame <no-reply@mx.sesame.test>", m["From"]
assert m["Subject"].startswith("Confirm "), m["Subject"]
assert m["Auto-Submitted"] == "auto-generated"
assert m["Message-ID"] and m["Date"]
text = m.get_payload(decode=True).decode()
assert 'The account "shop"' in text, text
assert "expires in 24 hours" in text and "safely ignore" in text, text
links = re.findall(r"http://\S+", text)
assert len(links) == 1, links
want = "http://127.0.0.1:%s/v1/confirm?token=" % sys.argv[2]
assert links[0].startswith(want) and re.fullmatch(r"[0-9a-f]{64}", links[0][len(want):]), links
print(links[0][len("http://127.0.0.1:%s" % sys.argv[2]):])
PY
}

# --- before: not an identity of shop
r=$(api POST /v1/messages "$API_KEY_shop" '{"from":"Ann@people.test","to":["bob@ok.test"],"subject":"x","text":"x"}')
expect_contains "$r" "identity_not_verified"

# --- the request: 202, and the mail at the sink
r=$(api POST /v1/senders "$API_KEY_shop" '{"address":"Ann Lee <Ann@People.test>"}')
expect_contains "$r" "202 "
expect_json "${r#202 }" address "Ann@people.test"
expect_json "${r#202 }" status pending
r=$(api GET /v1/senders/Ann@people.test "$API_KEY_shop")
expect_json "${r#200 }" status pending
mail=$(wait_mail Ann@people.test 1) || exit 1
LINK=$(link_of "$mail")
E2E_CHECKS=$((E2E_CHECKS + 1))
[ -n "$LINK" ] || fail "no link in the confirmation mail $(cat "$mail")"
# the store has a hash of the token, not the token
E2E_CHECKS=$((E2E_CHECKS + 1))
stored=$($PY -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1], timeout=10).execute("select token from senders where address=?", ("Ann@people.test",)).fetchone()[0])' "$DB")
case "$LINK" in *"$stored"*) fail "the store holds the link's token" ;; esac
[ ${#stored} = 64 ] || fail "stored token hash: '$stored'"
# ... nor does the log
E2E_CHECKS=$((E2E_CHECKS + 1))
grep -q "${LINK##*=}" "$d/serve.log" && fail "the token is in the service's log"

# --- the click: verified (no API key)
r=$(api GET "$LINK" "")
expect_contains "$r" "200 "
expect_json "${r#200 }" status verified
expect_json "${r#200 }" address "Ann@people.test"
expect_contains "$r" "may now send email as this address"
r=$(api GET /v1/senders/Ann@people.test "$API_KEY_shop")
expect_json "${r#200 }" status verified
expect_json "${r#200 }" via address
# a second click: used
r=$(api GET "$LINK" "")
expect_contains "$r" "404 "
expect_contains "$r" "unknown or already used link"

# --- shop sends from it; the message arrives
r=$(api POST /v1/messages "$API_KEY_shop" '{"from":"Ann Lee <Ann@people.test>","to":["bob@ok.test"],"subject":"from Ann","text":"Hello Bob."}')
expect_contains "$r" "202 "
mail=$(wait_mail bob@ok.test 1) || exit 1
expect_contains "$(cat "$mail" 2>/dev/null)" "Subject: from Ann"
expect_contains "$(cat "$mail" 2>/dev/null)" "From: Ann Lee <Ann@people.test>"

# --- the CLI sees it; another account cannot have it
out=$("$SESAME_BIN" sender show Ann@people.test --account shop --json --config "$CONF")
expect_json "$out" status verified
expect_json "$out" address "Ann@people.test"
out=$("$SESAME_BIN" sender show Ann@people.test --account shop --config "$CONF")
expect_contains "$out" "status:    verified"
r=$(api POST /v1/senders "$API_KEY_other" '{"address":"Ann@people.test"}')
expect_contains "$r" "409 "
expect_contains "$r" "identity_taken"
expect_exit 2 "$SESAME_BIN" sender add Ann@people.test --account other --config "$CONF"
expect_exit 2 "$SESAME_BIN" sender show nobody@people.test --account shop --config "$CONF"
expect_exit 2 "$SESAME_BIN" sender show Ann@people.test --account nobody --config "$CONF"

# --- expiry: the link past its end is 410, the address shows expired
r=$(api POST /v1/senders "$API_KEY_shop" '{"address":"late@people.test"}')
expect_contains "$r" "202 "
mail=$(wait_mail late@people.test 1) || exit 1
OLD=$(link_of "$mail")
$PY -c 'import sqlite3,sys,time
c = sqlite3.connect(sys.argv[1], timeout=10)
c.execute("update senders set expires_at=? where address=?", (int(time.time()) - 5, "late@people.test"))
c.commit()' "$DB"
r=$(api GET /v1/senders/late@people.test "$API_KEY_shop")
expect_json "${r#200 }" status expired
r=$(api GET "$OLD" "")
expect_contains "$r" "410 "
expect_contains "$r" "link_expired"
expect_contains "$r" "POST /v1/senders"
r=$(api GET "$OLD" "")
expect_contains "$r" "410 "
out=$("$SESAME_BIN" sender show late@people.test --account shop --config "$CONF")
expect_contains "$out" "status:    expired"
expect_contains "$out" "sesame sender add late@people.test --account shop"
# a resend: not within the minute ...
r=$(api POST /v1/senders "$API_KEY_shop" '{"address":"late@people.test"}')
expect_contains "$r" "429 "
expect_contains "$r" "rate_limited"
# ... but after it: a new link that works, the old one is gone
$PY -c 'import sqlite3,sys,time
c = sqlite3.connect(sys.argv[1], timeout=10)
c.execute("update senders set sent_at=sent_at-120 where address=?", ("late@people.test",))
c.commit()' "$DB"
r=$(api POST /v1/senders "$API_KEY_shop" '{"address":"late@people.test"}')
expect_contains "$r" "202 "
mail=$(wait_mail late@people.test 2) || exit 1
NEW=$(link_of "$mail")
E2E_CHECKS=$((E2E_CHECKS + 1))
[ "$NEW" != "$OLD" ] || fail "the resend has the same link"
r=$(api GET "$OLD" "")
expect_contains "$r" "404 "
r=$(api GET "$NEW" "")
expect_contains "$r" "200 "
r=$(api GET /v1/senders/late@people.test "$API_KEY_shop")
expect_json "${r#200 }" status verified

# --- the CLI in its own process: queued there, delivered by the service
out=$("$SESAME_BIN" sender add carol@people.test --account shop --config "$CONF")
E2E_CHECKS=$((E2E_CHECKS + 1))
[ $? = 0 ] || fail "sender add exited non-zero: $out"
expect_contains "$out" "sent a confirmation mail to carol@people.test for account shop"
expect_contains "$out" "status:    pending"
out=$("$SESAME_BIN" sender show carol@people.test --account shop --json --config "$CONF")
expect_json "$out" status pending
expect_exit 1 "$SESAME_BIN" sender add carol@people.test --account shop --config "$CONF"
expect_contains "$(cat "$E2E_TMP/err")" "ask again in"
mail=$(wait_mail carol@people.test 1) || exit 1
CAROL=$(link_of "$mail")
r=$(api GET "$CAROL" "")
expect_contains "$r" "200 "
out=$("$SESAME_BIN" sender add carol@people.test --account shop --json --config "$CONF")
expect_json "$out" status verified
r=$(api GET /v1/senders "$API_KEY_shop")
expect_contains "$r" '"address":"carol@people.test"'
expect_contains "$r" '"address":"late@people.test"'

# --- DELETE: no longer an identity
r=$(api DELETE /v1/senders/carol@people.test "$API_KEY_shop")
expect_contains "$r" "204 "
r=$(api GET /v1/senders/carol@people.test "$API_KEY_shop")
expect_contains "$r" "404 "
r=$(api POST /v1/messages "$API_KEY_shop" '{"from":"carol@people.test","to":["bob@ok.test"],"subject":"x","text":"x"}')
expect_contains "$r" "identity_not_verified"

stop_serve
finish
