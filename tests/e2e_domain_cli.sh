#!/usr/bin/env bash
# End-to-end: `sesame domain add|show|verify|rotate|delete` (SPEC.md §1.5, identities)
# on a real store in a temporary data_dir and the real resolver against the
# test DNS server (tests/data/zone_identities.json, copied and rewritten as
# the account publishes its record, then reloaded with SIGHUP): add gives a
# pending domain and the TXT record to publish; verify fails before it is
# published and succeeds after; DKIM keys turn active once published; a
# rotation waits for its keys; a second account cannot verify the same
# domain; a wrong token is explained; delete; the JSON shape; the exit codes (0 when
# it ran, failed verification included; 2 for bad usage, a bad domain, an
# unknown account; 1 when DNS does not answer).
set -u
source "$(dirname "$0")/support/e2e_lib.sh"

ZONE="$E2E_TMP/zone.json"
cp "$SESAME_TEST_DATA/zone_identities.json" "$ZONE"
start_testdns "$ZONE"

CONF="$E2E_TMP/sesame.conf"
cat > "$CONF" <<EOF
[server]
data_dir = $E2E_TMP/var
[dns]
servers = $DNS_ADDR
EOF
# No DNS from the environment: verify must use the configuration's server.
unset SESAME_DNS

domain() { "$SESAME_BIN" domain "$@" --config "$CONF"; }

# publish NAME VALUE: adds a TXT record to the zone file and reloads the server.
publish() {
  /usr/bin/python3 - "$ZONE" "$1" "$2" <<'PY'
import json, sys
path, name, value = sys.argv[1:]
zone = json.load(open(path))
zone.setdefault(name, []).append({"type": "TXT", "value": value})
json.dump(zone, open(path, "w"), indent=1)
PY
  local before
  before=$(grep -c reloaded "$E2E_TMP/dns.log")
  kill -HUP "$DNS_PID"
  for _ in $(seq 1 100); do
    [ "$(grep -c reloaded "$E2E_TMP/dns.log")" -gt "$before" ] && return
    sleep 0.05
  done
  echo "test DNS server did not reload" >&2
  exit 1
}

# check_domain JSON DOMAIN STATUS [TOKEN]: the SPEC §3 shape of a domain
# identity, its status, and (when given) the token in its record. Prints
# nothing when all is well. Times are RFC 3339 UTC or null; verified_at is
# set exactly when verified.
check_domain() {
  E2E_CHECKS=$((E2E_CHECKS + 1))
  local out
  out=$(printf '%s' "$1" | /usr/bin/python3 -c '
import json, re, sys
doc = json.load(sys.stdin)
domain, status = sys.argv[1], sys.argv[2]
token = sys.argv[3] if len(sys.argv) > 3 else None
errs = []
keys = set(doc) - {"reason"}
if keys != {"domain", "status", "records", "dkim", "mail_from", "mail_from_domain",
            "verified_at", "checked_at", "next_check_at", "records_missing_since",
            "dmarc_report_address"}:
    errs.append("keys %s" % sorted(doc))
if doc.get("domain") != domain:
    errs.append("domain %r" % doc.get("domain"))
if doc.get("status") != status:
    errs.append("status %r, want %r" % (doc.get("status"), status))
rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
for k in ("verified_at", "checked_at"):
    v = doc.get(k)
    if v is not None and not (isinstance(v, str) and rfc3339.match(v)):
        errs.append("%s %r" % (k, v))
if (doc.get("verified_at") is not None) != (status == "verified"):
    errs.append("verified_at %r with status %s" % (doc.get("verified_at"), status))
recs = doc.get("records")
purposes = [x.get("purpose") for x in recs] if isinstance(recs, list) else []
ndkim = len(doc.get("dkim") or [])
if ndkim < 2 or purposes != ["verification"] + ["dkim"] * ndkim + ["spf", "dmarc", "inbound_mx"]:
    errs.append("records %r" % recs)
else:
    # the signing keys: one RSA and one Ed25519 selector, published as TXT
    dk = [x for x in recs[1:3] if x.get("purpose") == "dkim"]
    kinds = sorted(re.search(r"k=(\w+)", x.get("value", "")).group(1) for x in dk
                   if re.search(r"k=(\w+)", x.get("value", "")))
    if kinds != ["ed25519", "rsa"] or any(
            not x["name"].endswith("._domainkey." + domain) or x["type"] != "TXT" for x in dk):
        errs.append("dkim records %r" % dk)
    for x in recs:
        if set(x) != {"type", "name", "value", "purpose", "status", "required", "reason", "zone"}:
            errs.append("record keys %r" % sorted(x))
    spf = recs[-3]
    if spf["name"] != domain or not spf["value"].startswith("v=spf1 ") or "a:" not in spf["value"]:
        errs.append("spf %r" % spf)
    dmarc = recs[-2]
    if dmarc["name"] != "_dmarc." + domain or \
            "rua=mailto:dmarc-reports@" + domain not in dmarc["value"]:
        errs.append("dmarc %r" % dmarc)
    if recs[-1]["type"] != "MX" or recs[-1]["required"] is not False:
        errs.append("inbound mx %r" % recs[-1])
    r = recs[0]
    if r["type"] != "TXT" \
            or r["name"] != "_sesame." + domain or r["purpose"] != "verification":
        errs.append("record %r" % r)
    m = re.match(r"^sesame-verification=([0-9a-f]{64})$", r.get("value", ""))
    if not m:
        errs.append("value %r" % r.get("value"))
    elif token and m.group(1) != token:
        errs.append("token %s, want %s" % (m.group(1), token))
print("\n".join(errs))' "${@:2}") || { fail "not JSON: $1"; return; }
  [ -z "$out" ] || fail "$out
in: $1"
}

json_reason() {
  printf '%s' "$1" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["reason"])'
}

# publish_keys DOMAIN_JSON: every DKIM record it lists, in 255-octet strings
publish_keys() {
  /usr/bin/python3 - "$ZONE" "$1" <<'PY'
import json, sys
path, doc = sys.argv[1], json.loads(sys.argv[2])
zone = json.load(open(path))
for r in doc["records"]:
    if r["purpose"] == "dkim" and r["status"] != "ok":
        v = r["value"]
        zone.setdefault(r["name"], []).append(
            {"type": "TXT", "value": [v[i:i + 255] for i in range(0, len(v), 255)]})
json.dump(zone, open(path, "w"), indent=1)
PY
  local before
  before=$(grep -c reloaded "$E2E_TMP/dns.log")
  kill -HUP "$DNS_PID"
  for _ in $(seq 1 100); do
    [ "$(grep -c reloaded "$E2E_TMP/dns.log")" -gt "$before" ] && return
    sleep 0.05
  done
  echo "test DNS server did not reload" >&2
  exit 1
}

key_states() {
  printf '%s' "$1" | /usr/bin/python3 -c '
import json, sys
print(",".join(k["status"] for k in json.load(sys.stdin)["dkim"]))'
}

token_of() {
  printf '%s' "$1" | /usr/bin/python3 -c '
import json, sys
print(json.load(sys.stdin)["records"][0]["value"].split("=", 1)[1])'
}

# ---- accounts (the store is created on first use) ----
expect_exit 0 "$SESAME_BIN" account create alice --config "$CONF" --json
expect_exit 0 "$SESAME_BIN" account create bob --config "$CONF" --json

# ---- add: pending, the record to publish; adding again changes nothing ----
expect_exit 0 domain add Shop.Example.TEST. --account alice --json
ADD=$(cat "$E2E_TMP/out")
check_domain "$ADD" shop.example.test pending
expect_json "$ADD" checked_at null
TOKEN=$(token_of "$ADD")
expect_exit 0 domain add shop.example.test --account alice --json
check_domain "$(cat "$E2E_TMP/out")" shop.example.test pending "$TOKEN"

expect_exit 0 domain add shop.example.test --account alice
TEXT=$(cat "$E2E_TMP/out")
expect_contains "$TEXT" "_sesame.shop.example.test. IN TXT \"sesame-verification=$TOKEN\""
expect_contains "$TEXT" "status:   pending"
expect_contains "$TEXT" "sesame domain verify shop.example.test --account alice"

# ---- verify before publishing: it ran (exit 0), failed, says why ----
expect_exit 0 domain verify shop.example.test --account alice --json
OUT=$(cat "$E2E_TMP/out")
check_domain "$OUT" shop.example.test failed "$TOKEN"
expect_contains "$(json_reason "$OUT")" "no TXT record at _sesame.shop.example.test"
expect_exit 0 domain verify shop.example.test --account alice
TEXT=$(cat "$E2E_TMP/out")
expect_contains "$TEXT" "status:   failed"
expect_contains "$TEXT" "reason:   no TXT record at _sesame.shop.example.test"

# ---- publish and verify (DNS from the configuration) ----
publish _sesame.shop.example.test "sesame-verification=$TOKEN"
expect_exit 0 domain verify shop.example.test --account alice --json
OUT=$(cat "$E2E_TMP/out")
check_domain "$OUT" shop.example.test verified "$TOKEN"
expect_contains "$OUT" "holds the token"
expect_exit 0 domain show shop.example.test --account alice
TEXT=$(cat "$E2E_TMP/out")
expect_contains "$TEXT" "status:   verified"
expect_contains "$TEXT" "_sesame.shop.example.test. IN TXT \"sesame-verification=$TOKEN\""
expect_exit 0 domain show shop.example.test --account alice --json
SHOW=$(cat "$E2E_TMP/out")
check_domain "$SHOW" shop.example.test verified "$TOKEN"
# the keys are not published yet: nothing signs with them
expect_eq "$(key_states "$SHOW")" "pending,pending"
expect_contains "$TEXT" "; dkim: missing - no TXT record at s"
expect_contains "$TEXT" "signing switches to this key once it is visible"

# ---- DKIM: the keys become active once visible ----
publish_keys "$SHOW"
expect_exit 0 domain verify shop.example.test --account alice --json
OUT=$(cat "$E2E_TMP/out")
expect_eq "$(key_states "$OUT")" "active,active"

# ---- rotation: new keys pending, old ones signing until the new are seen ----
expect_exit 0 domain rotate shop.example.test --account alice --json
ROT=$(cat "$E2E_TMP/out")
expect_eq "$(key_states "$ROT")" "active,active,pending,pending"
expect_exit 2 domain rotate shop.example.test --account alice
expect_contains "$(cat "$E2E_TMP/err")" "already waiting"
expect_exit 0 domain verify shop.example.test --account alice --json
expect_eq "$(key_states "$(cat "$E2E_TMP/out")")" "active,active,pending,pending"
publish_keys "$ROT"
expect_exit 0 domain verify shop.example.test --account alice --json
expect_eq "$(key_states "$(cat "$E2E_TMP/out")")" "grace,grace,active,active"

# ---- a second account cannot take it, even with its own token published ----
expect_exit 0 domain add shop.example.test --account bob --json
BOB=$(cat "$E2E_TMP/out")
check_domain "$BOB" shop.example.test pending
BOB_TOKEN=$(token_of "$BOB")
[ "$BOB_TOKEN" != "$TOKEN" ] || fail "bob got alice's token"
publish _sesame.shop.example.test "sesame-verification=$BOB_TOKEN"
expect_exit 0 domain verify shop.example.test --account bob --json --dns "$DNS_ADDR"
OUT=$(cat "$E2E_TMP/out")
check_domain "$OUT" shop.example.test pending "$BOB_TOKEN"
expect_json "$OUT" reason "shop.example.test is verified by another account"
expect_exit 0 domain show shop.example.test --account alice --json
check_domain "$(cat "$E2E_TMP/out")" shop.example.test verified "$TOKEN"

# ---- a wrong token is explained ----
expect_exit 0 domain add wrong.example.test --account alice --json
WTOKEN=$(token_of "$(cat "$E2E_TMP/out")")
expect_exit 0 domain verify wrong.example.test --account alice --json
OUT=$(cat "$E2E_TMP/out")
check_domain "$OUT" wrong.example.test failed
expect_contains "$OUT" "TXT found but the token differs"
[ -n "$WTOKEN" ] || fail "no token"
expect_contains "$OUT" "sesame-verification=0000000000"

# ---- exit codes ----
expect_exit 2 domain add other.example.test --account nobody
expect_contains "$(cat "$E2E_TMP/err")" "no account named 'nobody'"
expect_exit 2 domain add bad_name.example.test --account alice
expect_exit 2 domain add localhost --account alice
expect_exit 2 domain add "b$(printf '\xc3\xbc')cher.example" --account alice
expect_exit 2 domain add shop.example.test
expect_exit 2 domain add --account alice
expect_exit 2 domain add a.example.test b.example.test --account alice
expect_exit 2 domain rotate never.example.test --account alice
expect_exit 2 domain show never.example.test --account alice
expect_exit 2 domain verify never.example.test --account alice
expect_exit 2 domain verify shop.example.test --account alice --dns not-an-address
expect_exit 2 domain add shop.example.test --account alice --bogus
expect_exit 2 "$SESAME_BIN" domain
expect_exit 0 "$SESAME_BIN" domain --help
expect_contains "$(cat "$E2E_TMP/out")" "add|show|verify|rotate|delete"

# DNS gives no answer: runtime failure, status unchanged
expect_exit 0 domain add slow.example.test --account alice
expect_exit 1 domain verify slow.example.test --account alice
expect_contains "$(cat "$E2E_TMP/err")" "no answer from DNS"
expect_exit 0 domain show slow.example.test --account alice --json
check_domain "$(cat "$E2E_TMP/out")" slow.example.test pending
expect_json "$(cat "$E2E_TMP/out")" checked_at null

# ---- delete: the identity and its key files ----
KEYDIR=$(ls -d "$E2E_TMP"/var/dkim/*/wrong.example.test)
[ -n "$(ls "$KEYDIR")" ] || fail "no key files in $KEYDIR"
expect_exit 0 domain delete wrong.example.test --account alice
[ -e "$KEYDIR" ] && fail "$KEYDIR still there after delete"
expect_exit 2 domain show wrong.example.test --account alice

finish
