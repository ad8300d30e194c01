# Helpers for the tests/e2e_*.sh scripts: start the test DNS server, compare
# JSON fields and exit codes, count failures. Sourced, not run.
E2E_FAILS=0
E2E_CHECKS=0
E2E_TMP=$(mktemp -d)
DNS_PID=""

cleanup() {
  [ -n "$DNS_PID" ] && kill "$DNS_PID" 2>/dev/null
  rm -rf "$E2E_TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; E2E_FAILS=$((E2E_FAILS + 1)); }
# expect_eq GOT WANT
expect_eq() {
  E2E_CHECKS=$((E2E_CHECKS + 1))
  [ "$1" = "$2" ] || fail "got '$1', want '$2'"
}

# start_testdns ZONE.json: sets DNS_ADDR to 127.0.0.1:PORT
start_testdns() {
  "$SESAME_TESTDNS" "$1" > "$E2E_TMP/dns.addr" 2> "$E2E_TMP/dns.log" &
  DNS_PID=$!
  for _ in $(seq 1 100); do
    [ -s "$E2E_TMP/dns.addr" ] && break
    sleep 0.05
  done
  DNS_ADDR=$(head -n1 "$E2E_TMP/dns.addr")
  [ -n "$DNS_ADDR" ] || { echo "test DNS server did not start" >&2; cat "$E2E_TMP/dns.log" >&2; exit 1; }
}

# expect_json JSON KEY VALUE: VALUE "null", a number, or a string
expect_json() {
  E2E_CHECKS=$((E2E_CHECKS + 1))
  local got
  got=$(printf '%s' "$1" | /usr/bin/python3 -c '
import json, sys
v = json.load(sys.stdin).get(sys.argv[1], "<missing>")
print("null" if v is None else (json.dumps(v) if isinstance(v, (bool, list, dict)) else v))' "$2") \
    || { fail "not JSON: $1"; return; }
  [ "$got" = "$3" ] || fail "$2: got '$got', want '$3' in $1"
}

expect_contains() {
  E2E_CHECKS=$((E2E_CHECKS + 1))
  case "$1" in *"$2"*) ;; *) fail "output lacks '$2': $1" ;; esac
}

# expect_exit CODE CMD...: also wants exactly one line on stderr for 2
expect_exit() {
  E2E_CHECKS=$((E2E_CHECKS + 1))
  local want=$1; shift
  "$@" > "$E2E_TMP/out" 2> "$E2E_TMP/err"
  local got=$?
  [ "$got" = "$want" ] || { fail "'$*' exited $got, want $want"; return; }
  if [ "$want" = 2 ]; then
    [ "$(wc -l < "$E2E_TMP/err")" = 1 ] || fail "'$*' wrote $(wc -l < "$E2E_TMP/err") lines on stderr, want 1"
  fi
}

finish() {
  echo "$((E2E_CHECKS - E2E_FAILS)) passed, $E2E_FAILS failed"
  [ "$E2E_FAILS" = 0 ]
}
