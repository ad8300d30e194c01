#!/usr/bin/env bash
# Crash test: eight clients send a burst of messages to the MX; the server
# is killed with SIGKILL in the middle; after a restart, every message that
# was answered 250 must be in the store (a 250 is only sent once the message
# is durable), read back through the API like a user would.
set -u
source "$(dirname "$0")/support/e2e_lib.sh"
source "$(dirname "$0")/support/serve_lib.sh"
d=$E2E_TMP

ZONE=$d/zone.json
echo '{"client.test": [{"type": "TXT", "value": "v=spf1 ip4:127.0.0.0/8 -all"}]}' > "$ZONE"
start_testdns "$ZONE"
write_config "$d/sesame.conf"
start_serve
make_account acme
verify_domain acme shop.test

# the burst: each client appends the subject of every message answered 250
$PY - "$MX_PORT" "$d/acked" <<'PY' &
import smtplib, sys, threading
port, out = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
f = open(out, "a")
def client(t):
    n = 0
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=10, local_hostname="client.test")
        while True:
            n += 1
            subj = f"crash-{t}-{n}"
            msg = (f"From: a@client.test\r\nTo: alice@shop.test\r\nSubject: {subj}\r\n\r\n"
                   + "x" * 2000 + "\r\n").encode()
            s.sendmail("a@client.test", ["alice@shop.test"], msg)
            with lock:
                f.write(subj + "\n"); f.flush()
    except Exception:
        pass
threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
for th in threads: th.start()
for th in threads: th.join()
PY
LOAD_PID=$!
# kill once a good number of messages were acknowledged
for _ in $(seq 1 200); do
  [ -f "$d/acked" ] && [ "$(wc -l < "$d/acked")" -ge 150 ] && break
  sleep 0.05
done
stop_serve KILL
wait $LOAD_PID
acked=$(wc -l < "$d/acked")
E2E_CHECKS=$((E2E_CHECKS + 1))
[ "$acked" -ge 50 ] || fail "only $acked messages were acknowledged before the kill"

start_serve
missing=$($PY - "$HTTP_PORT" "$API_KEY_acme" "$d/acked" <<'PY'
import http.client, json, sys
port, key, acked = sys.argv[1:]
seen, before = set(), None
while True:
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    q = "/v1/inbound?limit=100" + (f"&before={before}" if before else "")
    c.request("GET", q, headers={"Authorization": "Bearer " + key})
    page = json.loads(c.getresponse().read())
    seen.update(m["subject"] for m in page["messages"])
    before = page.get("next")
    if not before or not page["messages"]:
        break
want = [l.strip() for l in open(acked) if l.strip()]
print(len([s for s in want if s not in seen]))
PY
)
E2E_CHECKS=$((E2E_CHECKS + 1))
[ "$missing" = 0 ] || fail "$missing of $acked acknowledged messages are not in the store after the crash"
echo "acknowledged before SIGKILL: $acked, missing after restart: $missing"
stop_serve TERM
finish
