# Helpers for end-to-end tests of `sesame serve` (sourced after e2e_lib.sh):
# free ports, a config file in the test's temp dir, starting and stopping
# the service, an account with a verified domain through the real CLI and
# the real resolver path (the test DNS server), and HTTP calls.
SERVE_PID=""
PY=/usr/bin/python3

serve_cleanup() {
  [ -n "$SERVE_PID" ] && kill -9 "$SERVE_PID" 2>/dev/null
  cleanup
}
trap serve_cleanup EXIT

# free_port: prints a TCP port nobody listens on now
free_port() {
  $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# write_config FILE [EXTRA_INI_LINES]: ports in MX_PORT SUB_PORT HTTP_PORT
write_config() {
  MX_PORT=${MX_PORT:-$(free_port)}
  SUB_PORT=${SUB_PORT:-$(free_port)}
  HTTP_PORT=${HTTP_PORT:-$(free_port)}
  cat > "$1" <<INI
[server]
hostname = mx.sesame.test
data_dir = $E2E_TMP/var
workers = 4
[listen]
mx = 127.0.0.1:$MX_PORT
submission = 127.0.0.1:$SUB_PORT
http = 127.0.0.1:$HTTP_PORT
[dns]
servers = $DNS_ADDR
timeout_ms = 2000
${2:-}
INI
  CONF=$1
}

# start_serve: runs sesame serve --config $CONF, waits until it listens
start_serve() {
  "$SESAME_BIN" serve --config "$CONF" >> "$E2E_TMP/serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 1 200); do
    if $PY - "$MX_PORT" "$SUB_PORT" "$HTTP_PORT" <<'PY' 2>/dev/null
import socket, sys
for p in sys.argv[1:]:
    socket.create_connection(("127.0.0.1", int(p)), timeout=0.2).close()
PY
    then return 0; fi
    kill -0 "$SERVE_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "sesame serve did not start:" >&2
  cat "$E2E_TMP/serve.log" >&2
  exit 1
}

# stop_serve [SIGNAL]: default TERM, waits for the exit; sets SERVE_RC
stop_serve() {
  kill "-${1:-TERM}" "$SERVE_PID" 2>/dev/null
  wait "$SERVE_PID" 2>/dev/null
  SERVE_RC=$?
  SERVE_PID=""
}

# json_get JSON EXPR: a Python expression on j, e.g. 'j["records"][0]["value"]'
json_get() {
  printf '%s' "$1" | $PY -c 'import json,sys; j=json.load(sys.stdin); v=eval(sys.argv[1]); print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$2"
}

# make_account NAME: sets API_KEY_<NAME>, SMTP_USER_<NAME>, SMTP_PASS_<NAME>
make_account() {
  local out
  out=$("$SESAME_BIN" account create "$1" --json --config "$CONF" ${2:-}) \
    || { echo "account create $1 failed" >&2; exit 1; }
  eval "API_KEY_$1=$(json_get "$out" 'j["api_key"]')"
  eval "SMTP_USER_$1=$(json_get "$out" 'j["smtp_username"]')"
  eval "SMTP_PASS_$1=$(json_get "$out" 'j["smtp_password"]')"
}

# zone_add NAME TYPE VALUE...: appends records to $ZONE (a JSON file) and
# reloads the test DNS server (SIGHUP)
zone_add() {
  $PY - "$ZONE" "$@" <<'PY'
import json, sys
path, name, typ, *values = sys.argv[1:]
z = json.load(open(path))
for v in values:
    if typ == "TXT" and len(v) > 255:   # a long TXT value: 255-octet strings
        v = [v[i:i + 255] for i in range(0, len(v), 255)]
    z.setdefault(name, []).append({"type": typ, "value": v})
json.dump(z, open(path, "w"))
PY
  kill -HUP "$DNS_PID"
  sleep 0.2
}

# verify_domain ACCOUNT DOMAIN: add it, publish its verification TXT and
# its DKIM keys, verify it (the keys become active: it can send)
verify_domain() {
  local out token rec
  out=$("$SESAME_BIN" domain add "$2" --account "$1" --json --config "$CONF") \
    || { echo "domain add $2 failed" >&2; exit 1; }
  token=$(json_get "$out" '[r["value"] for r in j["records"] if r["purpose"]=="verification"][0]')
  zone_add "_sesame.$2" TXT "$token"
  publish_dkim "$out"
  out=$("$SESAME_BIN" domain verify "$2" --account "$1" --json --config "$CONF")
  [ "$(json_get "$out" 'j["status"]')" = verified ] \
    || { echo "domain verify $2 failed: $out" >&2; exit 1; }
  [ "$(json_get "$out" '",".join(k["status"] for k in j["dkim"])')" = active,active ] \
    || { echo "domain verify $2: keys not active: $out" >&2; exit 1; }
}

# publish_dkim DOMAIN_JSON: publishes the pending DKIM records it lists
publish_dkim() {
  local name value
  while IFS=$'\t' read -r name value; do
    [ -n "$name" ] && zone_add "$name" TXT "$value"
  done < <(json_get "$1" '"\n".join(r["name"] + "\t" + r["value"] for r in j["records"] if r["purpose"]=="dkim" and r["status"] in ("unchecked","missing"))')
}

# api METHOD PATH KEY [BODY]: prints "STATUS BODY"
api() {
  $PY - "$HTTP_PORT" "$@" <<'PY'
import http.client, sys
port, method, path, key = sys.argv[1:5]
body = sys.argv[5] if len(sys.argv) > 5 else None
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
h = {"Authorization": "Bearer " + key} if key else {}
if body is not None:
    h["Content-Type"] = "application/json"
c.request(method, path, body=body, headers=h)
r = c.getresponse()
print(r.status, r.read().decode(errors="replace"))
PY
}
