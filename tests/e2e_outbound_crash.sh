#!/usr/bin/env bash
# Crash test for sending: clients POST a burst of messages; the server is
# killed with SIGKILL in the middle of sending; after a restart every
# message that was answered 202 reaches the sink (at least once: a message
# the sink took just before the kill may come twice, none may be missing).
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
echo '{"ok.test": [{"type": "MX", "value": [10, "mx.ok.test"]}], "mx.ok.test": [{"type": "A", "value": "127.0.0.10"}]}' > "$ZONE"
start_testdns "$ZONE"
write_config "$d/sesame.conf" "[delivery]
smtp_port = $SINK_PORT
first_retry = 1
max_retry_interval = 1
lease = 2"
start_serve
make_account shop "--production --max-rate 10000 --max-24h 1000000"
verify_domain shop shop.test

$PY - "$HTTP_PORT" "$API_KEY_shop" "$d/acked" <<'PY' &
import http.client, json, sys, threading
port, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lock = threading.Lock()
f = open(out, "a")
def client(t):
    n = 0
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            n += 1
            subj = f"burst-{t}-{n}"
            body = json.dumps({"from": "orders@shop.test", "to": [f"u{t}@ok.test"],
                               "subject": subj, "text": "x" * 2000})
            c.request("POST", "/v1/messages", body=body,
                      headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
            r = c.getresponse(); r.read()
            if r.status == 202:
                with lock:
                    f.write(subj + "\n"); f.flush()
    except Exception:
        pass
threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
for th in threads: th.start()
for th in threads: th.join()
PY
LOAD_PID=$!
for _ in $(seq 1 200); do
  [ -f "$d/acked" ] && [ "$(wc -l < "$d/acked")" -ge 100 ] && break
  sleep 0.05
done
stop_serve KILL
wait $LOAD_PID
acked=$(wc -l < "$d/acked")
E2E_CHECKS=$((E2E_CHECKS + 1))
[ "$acked" -ge 30 ] || fail "only $acked messages were accepted before the kill"

start_serve
missing=""
for _ in $(seq 1 300); do
  missing=$($PY - "$d/acked" "$d/sink" <<'PY'
import os, re, sys
want = {l.strip() for l in open(sys.argv[1]) if l.strip()}
got = set()
for f in os.listdir(sys.argv[2]):
    if f.endswith(".eml"):
        m = re.search(rb"^Subject: (burst-\d+-\d+)\r?$", open(os.path.join(sys.argv[2], f), "rb").read(), re.M)
        if m:
            got.add(m.group(1).decode())
print(len(want - got))
PY
)
  [ "$missing" = 0 ] && break
  sleep 0.1
done
E2E_CHECKS=$((E2E_CHECKS + 1))
[ "$missing" = 0 ] || fail "$missing of $acked accepted messages never reached the sink after the crash"
echo "accepted before SIGKILL: $acked, delivered after restart: all but $missing"
stop_serve TERM
finish
