#!/usr/bin/env bash
# End-to-end: the SMTP listeners of `sesame serve` driven by swaks (Debian)
# and a raw-socket client: STARTTLS, AUTH on submission (and its failure
# limit), pipelining, the SIZE limit, relay and authentication refusals,
# the identity and sandbox checks of submission, SMTP smuggling variants,
# the idle timeout, the per-IP connection limit, SIGHUP reload, /healthz,
# and the SIGTERM shutdown that says 421 to open sessions.
set -u
source "$(dirname "$0")/support/e2e_lib.sh"
source "$(dirname "$0")/support/serve_lib.sh"
d=$E2E_TMP
SEND="$PY $(dirname "$0")/support/smtp_send.py"
command -v swaks > /dev/null || { echo "swaks is not installed (scripts/install-deps.sh)" >&2; exit 1; }

ZONE=$d/zone.json
echo '{"client.test": [{"type": "TXT", "value": "v=spf1 ip4:127.0.0.0/8 -all"}]}' > "$ZONE"
start_testdns "$ZONE"
write_config "$d/sesame.conf" "[limits]
max_message_size = 100000
idle_timeout = 2
max_connections_per_ip = 6
auth_failures_per_ip = 3
[delivery]
; queued mail waits for a relay nobody runs: this test is about the listeners
relay = 127.0.0.1:$(free_port)"
start_serve
make_account acme
make_account prod --production
verify_domain acme shop.test
verify_domain prod store.test

sw() { swaks --server 127.0.0.1 --helo client.test --timeout 10 "$@" 2>&1; }

# --- EHLO: extensions on each listener
out=$(printf 'EHLO client.test\r\nQUIT\r\n' | $SEND raw "$MX_PORT")
for ext in "250-SIZE 100000" "250-PIPELINING" "250-8BITMIME" "250-SMTPUTF8" "250-ENHANCEDSTATUSCODES" "STARTTLS"; do
  expect_contains "$out" "$ext"
done
case "$out" in *AUTH*) fail "the MX offers AUTH" ;; esac
E2E_CHECKS=$((E2E_CHECKS + 1))
out=$(printf 'EHLO client.test\r\nQUIT\r\n' | $SEND raw "$SUB_PORT")
expect_contains "$out" "AUTH PLAIN LOGIN"

# --- STARTTLS on the MX; the Received field says ESMTPS and the cipher
out=$(sw --port "$MX_PORT" --tls --from a@client.test --to alice@shop.test --header "Subject: over tls")
expect_contains "$out" "TLS started with cipher TLSv1.3"
expect_contains "$out" "<~  250 2.0.0 Ok: queued as"
r=$(api GET "/v1/inbound?limit=1" "$API_KEY_acme")
id=$(json_get "${r#200 }" 'j["messages"][0]["id"]')
raw=$(api GET "/v1/inbound/$id/raw" "$API_KEY_acme")
expect_contains "$raw" "with ESMTPS"
expect_contains "$raw" "TLS"

# --- pipelining
out=$(sw --port "$MX_PORT" --pipeline --from a@client.test --to alice@shop.test,bob@shop.test)
expect_contains "$out" "250 2.0.0 Ok: queued as"

# --- SIZE: declared too large, and actually too large
out=$(printf 'EHLO c\r\nMAIL FROM:<a@client.test> SIZE=999999\r\nQUIT\r\n' | $SEND raw "$MX_PORT")
expect_contains "$out" "552 5.3.4"
head -c 150000 /dev/zero | tr '\0' 'x' | fold -w 70 > "$d/big.txt"
out=$(sw --port "$MX_PORT" --from a@client.test --to alice@shop.test --body "@$d/big.txt")
expect_contains "$out" "552 5.3.4"

# --- relay and authentication refusals
out=$(sw --port "$MX_PORT" --from a@client.test --to someone@elsewhere.test)
expect_contains "$out" "550 5.7.1"
out=$(sw --port "$SUB_PORT" --from news@shop.test --to alice@shop.test)
expect_contains "$out" "530 5.7.0"

# --- submission: AUTH, identities, sandbox
u=$SMTP_USER_acme p=$SMTP_PASS_acme
out=$(sw --port "$SUB_PORT" --auth PLAIN --auth-user "$u" --auth-password "$p" \
      --from news@shop.test --to alice@shop.test --header "From: news@shop.test")
expect_contains "$out" "235 2.7.0"
expect_contains "$out" "250 2.0.0 Ok: queued as"
sleep 1.1   # a sandbox account sends one message per second
out=$(sw --port "$SUB_PORT" --auth LOGIN --auth-user "$u" --auth-password "$p" \
      --from news@shop.test --to alice@shop.test --header "From: news@shop.test")
expect_contains "$out" "250 2.0.0 Ok: queued as"
# the envelope sender must be verified by this account
out=$(sw --port "$SUB_PORT" --auth PLAIN --auth-user "$u" --auth-password "$p" \
      --from ceo@store.test --to alice@shop.test)
expect_contains "$out" "550 5.7.1"
expect_contains "$out" "not a verified identity"
# and so must the From header
out=$(sw --port "$SUB_PORT" --auth PLAIN --auth-user "$u" --auth-password "$p" \
      --from news@shop.test --to alice@shop.test --header "From: ceo@store.test")
expect_contains "$out" "550 5.7.1"
# the sandbox sends only to the account's own identities
out=$(sw --port "$SUB_PORT" --auth PLAIN --auth-user "$u" --auth-password "$p" \
      --from news@shop.test --to customer@example.net)
expect_contains "$out" "sandbox"
out=$(sw --port "$SUB_PORT" --auth PLAIN --auth-user "$SMTP_USER_prod" --auth-password "$SMTP_PASS_prod" \
      --from orders@store.test --to customer@example.net --header "From: orders@store.test")
expect_contains "$out" "250 2.0.0 Ok: queued as"
queued=$($PY -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from outbound_messages").fetchone()[0])' "$d/var/sesame.db")
E2E_CHECKS=$((E2E_CHECKS + 1))
[ "$queued" = 3 ] || { echo "$out"; cat "$d/serve.log"; } >&2; [ "$queued" = 3 ] || fail "outbound queue holds $queued messages, want 3"
# wrong passwords, then the limit per client IP (even the right one is refused)
for _ in 1 2 3; do
  out=$(sw --port "$SUB_PORT" --auth PLAIN --auth-user "$u" --auth-password wrong --from news@shop.test --to alice@shop.test --quit-after AUTH)
  expect_contains "$out" "535 5.7.8"
done
out=$(sw --port "$SUB_PORT" --auth PLAIN --auth-user "$u" --auth-password "$p" --from news@shop.test --to alice@shop.test --quit-after AUTH)
expect_contains "$out" "535"
# another client address is not affected (loopback is one /8 on Linux)
out=$(swaks --server 127.0.0.1 --local-interface 127.0.0.7 --port "$SUB_PORT" --auth PLAIN --auth-user "$u" --auth-password "$p" --quit-after AUTH 2>&1)
expect_contains "$out" "235 2.7.0"

# --- SMTP smuggling: no variant ends the data or injects a transaction
for variant in '\n.\n' '\n.\r\n' '\r\n.\n' '\r.\r\n' '\r\n.\r'; do
  script="EHLO c\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@shop.test>\r\nDATA\r\nFrom: a@client.test\r\n\r\nhello${variant}MAIL FROM:<evil@client.test>\r\nRCPT TO:<alice@shop.test>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n"
  out=$(printf '%s' "$script" | $SEND raw "$MX_PORT")
  expect_contains "$out" "550 5.5.2"
  E2E_CHECKS=$((E2E_CHECKS + 1))
  case "$out" in *"Ok: queued"*) fail "smuggling variant $variant: a message was accepted" ;; esac
done

# --- idle timeout (2 s here): 421 4.4.2
out=$($PY - "$MX_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.recv(1000)
time.sleep(3.5)
print(s.recv(1000).decode())
PY
)
expect_contains "$out" "421 4.4.2"

# --- per-IP connection limit (6 here): the 7th is told 421 4.7.0
out=$($PY - "$MX_PORT" <<'PY'
import socket, sys
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), source_address=("127.0.0.8", 0)) for _ in range(7)]
print(socks[-1].recv(1000).decode())
print(socks[0].recv(1000).decode())
PY
)
expect_contains "$out" "421 4.7.0"
expect_contains "$out" "220 mx.sesame.test"

# --- healthz
r=$(api GET /healthz "")
expect_contains "$r" "200 "

# --- SIGHUP reload: the new SIZE is advertised to new sessions
sed -i "s/^max_message_size = 100000/max_message_size = 200000/" "$CONF"
kill -HUP "$SERVE_PID"
for _ in $(seq 1 100); do grep -q "event=reload result=ok" "$d/serve.log" && break; sleep 0.05; done
out=$(printf 'EHLO client.test\r\nQUIT\r\n' | $SEND raw "$MX_PORT")
expect_contains "$out" "250-SIZE 200000"
expect_contains "$(cat "$d/serve.log")" "event=reload result=ok"

# --- SIGTERM: an open session hears 421 4.3.2, the service exits 0
$PY - "$MX_PORT" "$d/term.ready" > "$d/term.out" <<'PY' &
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
s.recv(1000)
s.sendall(b"EHLO c\r\n")
data = b""
while b"250 " not in data:
    data += s.recv(1000)
open(sys.argv[2], "w").close()
print(s.recv(1000).decode())
PY
TERM_PID=$!
for _ in $(seq 1 100); do [ -e "$d/term.ready" ] && break; sleep 0.05; done
stop_serve TERM
wait $TERM_PID
expect_contains "$(cat "$d/term.out")" "421 4.3.2"
E2E_CHECKS=$((E2E_CHECKS + 1))
[ "$SERVE_RC" = 0 ] || fail "sesame serve exited $SERVE_RC after SIGTERM"
finish
