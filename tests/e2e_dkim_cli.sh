#!/usr/bin/env bash
# End-to-end: `sesame dkim keygen|sign|verify` (SPEC.md §1.2) against the
# test DNS server: the keygen outputs (PEM mode 0600, TXT split in 255-octet
# strings, JSON), sign's output and options, verify's JSON and text for
# pass, fail, permerror and temperror, --dns vs SESAME_DNS, --now with x=,
# and exit codes 1 and 2 with one line on stderr.
set -u
source "$(dirname "$0")/support/e2e_lib.sh"
d=$E2E_TMP

# keygen
"$SESAME_BIN" dkim keygen --algorithm rsa-sha256 --domain example.test --selector rsa \
  --out "$d/rsa.pem" > "$d/rsa.txt"
E2E_CHECKS=$((E2E_CHECKS + 1))
[ "$(stat -c %a "$d/rsa.pem")" = 600 ] || fail "rsa.pem mode $(stat -c %a "$d/rsa.pem"), want 600"
txt=$(cat "$d/rsa.txt")
expect_contains "$txt" 'rsa._domainkey.example.test. IN TXT "v=DKIM1; k=rsa; p=MIIBIjAN'
E2E_CHECKS=$((E2E_CHECKS + 1))
/usr/bin/python3 - "$txt" <<'PY' || fail "TXT strings are not split at 255 octets: $txt"
import re, sys
parts = re.findall(r'"([^"]*)"', sys.argv[1])
assert len(parts) == 2 and len(parts[0]) == 255 and 0 < len(parts[1]) <= 255, parts
PY
ed=$("$SESAME_BIN" dkim keygen --algorithm ed25519-sha256 --domain example.test --selector ed \
  --out "$d/ed.pem" --json)
expect_json "$ed" name ed._domainkey.example.test
expect_json "$ed" type TXT
expect_contains "$ed" '"value":"v=DKIM1; k=ed25519; p='
rsa1024=$("$SESAME_BIN" dkim keygen --algorithm rsa-sha256 --bits 1024 --force \
  --domain example.test --selector old --out "$d/old.pem" --json)
expect_contains "$rsa1024" '"value":"v=DKIM1; k=rsa; p=MIGfMA0'
expect_exit 2 "$SESAME_BIN" dkim keygen --algorithm rsa-sha256 --bits 1024 --domain example.test \
  --selector x --out "$d/x.pem"
expect_contains "$(cat "$E2E_TMP/err")" "--force"
expect_exit 2 "$SESAME_BIN" dkim keygen --algorithm rsa-sha256 --bits 512 --force \
  --domain example.test --selector x --out "$d/x.pem"
expect_exit 2 "$SESAME_BIN" dkim keygen --algorithm dsa --domain example.test --selector x --out "$d/x.pem"
expect_exit 2 "$SESAME_BIN" dkim keygen --algorithm ed25519-sha256 --domain "bad domain" \
  --selector x --out "$d/x.pem"
expect_exit 1 "$SESAME_BIN" dkim keygen --algorithm ed25519-sha256 --domain example.test \
  --selector ed --out "$d/ed.pem"
expect_contains "$(cat "$E2E_TMP/err")" "not overwriting"

# The zone: the three keys, a revoked one, a timeout.
/usr/bin/python3 - "$d/zone.json" "$(cat "$d/rsa.txt")" "$ed" "$rsa1024" <<'PY'
import json, re, sys
zone = {"rsa._domainkey.example.test": [{"type": "TXT",
        "value": re.findall(r'"([^"]*)"', sys.argv[2])}]}
for rec in map(json.loads, sys.argv[3:]):
    zone[rec["name"]] = [{"type": "TXT", "value": rec["strings"]}]
zone["gone._domainkey.example.test"] = [{"type": "TXT", "value": "v=DKIM1; k=rsa; p="}]
zone["slow._domainkey.example.test"] = [{"type": "TIMEOUT"}]
json.dump(zone, open(sys.argv[1], "w"))
PY
start_testdns "$d/zone.json"

msg=$'From: Alice <alice@example.test>\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello\r\n'
sign() { printf '%s' "$msg" | "$SESAME_BIN" dkim sign --domain example.test "$@"; }
verify() { "$SESAME_BIN" dkim verify --dns "$DNS_ADDR" --json "$@"; }
field() { # JSON INDEX KEY
  printf '%s' "$1" | /usr/bin/python3 -c 'import json,sys; v=json.load(sys.stdin)["signatures"][int(sys.argv[1])][sys.argv[2]]; print(json.dumps(v) if isinstance(v,bool) else v)' "$2" "$3"
}
expect_sig() { # JSON INDEX KEY VALUE
  E2E_CHECKS=$((E2E_CHECKS + 1))
  local got; got=$(field "$1" "$2" "$3" 2>/dev/null)
  [ "$got" = "$4" ] || fail "signature $2 $3: got '$got', want '$4' in $1"
}

sign --selector rsa --key "$d/rsa.pem" > "$d/s1.eml"
expect_contains "$(head -c 200 "$d/s1.eml")" "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.test; s=rsa;"
sign --selector ed --key "$d/ed.pem" --canonicalization simple/simple --identity alice@example.test \
  --expire 3600 --now 1700000000 --headers from:to:subject:subject < /dev/null > "$d/s2.eml"
s2=$(head -c 400 "$d/s2.eml")
expect_contains "$s2" "a=ed25519-sha256; c=simple/simple;"
expect_contains "$s2" "t=1700000000; x=1700003600; i=alice@example.test;"
expect_contains "$s2" "h=from:to:subject:subject;"

json=$(verify < "$d/s1.eml")
expect_sig "$json" 0 result pass
expect_sig "$json" 0 domain example.test
expect_sig "$json" 0 selector rsa
expect_sig "$json" 0 algorithm rsa-sha256
expect_sig "$json" 0 reason ""
# x= against --now.
json=$(verify --now 1700003000 < "$d/s2.eml")
expect_sig "$json" 0 result pass
json=$(verify --now 1700003601 < "$d/s2.eml")
expect_sig "$json" 0 result permerror
expect_contains "$(field "$json" 0 reason)" "expired"
# Two signatures, in header order, one altered.
"$SESAME_BIN" dkim sign --domain example.test --selector old --key "$d/old.pem" < "$d/s1.eml" > "$d/s3.eml"
json=$(verify < "$d/s3.eml")
expect_sig "$json" 0 selector old
expect_sig "$json" 0 result pass
expect_sig "$json" 1 selector rsa
expect_sig "$json" 1 result pass
json=$(sed 's/^Hello/Jello/' "$d/s3.eml" | verify)
expect_sig "$json" 0 result fail
expect_sig "$json" 1 reason "body hash did not verify"
# Keys that cannot be used.
for sel in gone nokey slow; do
  sed "s/s=rsa;/s=$sel;/" "$d/s1.eml" > "$d/$sel.eml"
done
json=$(verify < "$d/gone.eml")
expect_sig "$json" 0 result permerror
expect_contains "$(field "$json" 0 reason)" "revoked"
json=$(verify < "$d/nokey.eml")
expect_sig "$json" 0 result permerror
expect_contains "$(field "$json" 0 reason)" "no key record"
json=$(verify < "$d/slow.eml")
expect_sig "$json" 0 result temperror
# Unsigned: an empty list; text mode says so.
json=$(printf '%s' "$msg" | verify)
expect_json "$json" signatures "[]"
text=$(printf '%s' "$msg" | "$SESAME_BIN" dkim verify --dns "$DNS_ADDR")
expect_contains "$text" "no DKIM-Signature"
text=$("$SESAME_BIN" dkim verify --dns "$DNS_ADDR" < "$d/s3.eml")
expect_contains "$text" "DKIM pass for example.test (selector old, rsa-sha256, b="
# SESAME_DNS when --dns is absent.
json=$(SESAME_DNS="$DNS_ADDR" "$SESAME_BIN" dkim verify --json < "$d/s1.eml")
expect_sig "$json" 0 result pass
# LF-only input keeps LF line ends and verifies.
printf 'From: a@example.test\nSubject: lf\n\nbody\n' | \
  "$SESAME_BIN" dkim sign --domain example.test --selector ed --key "$d/ed.pem" > "$d/lf.eml"
E2E_CHECKS=$((E2E_CHECKS + 1))
! grep -q $'\r' "$d/lf.eml" || fail "LF-only message got CR in its signature"
json=$(verify < "$d/lf.eml")
expect_sig "$json" 0 result pass

# Bad usage, bad input: exit 2, one line on stderr.
chmod 644 "$d/ed.pem"
expect_exit 2 "$SESAME_BIN" dkim sign --domain example.test --selector ed --key "$d/ed.pem" < "$d/s1.eml"
expect_contains "$(cat "$E2E_TMP/err")" "accessible by group or others"
chmod 600 "$d/ed.pem"
expect_exit 1 "$SESAME_BIN" dkim sign --domain example.test --selector ed --key "$d/missing.pem" < "$d/s1.eml"
expect_exit 2 sh -c "printf 'To: x@example.net\r\n\r\nno from\r\n' | '$SESAME_BIN' dkim sign --domain example.test --selector ed --key '$d/ed.pem'"
expect_exit 2 "$SESAME_BIN" dkim sign --domain example.test --selector ed --key "$d/ed.pem" --canonicalization fancy
expect_exit 2 "$SESAME_BIN" dkim sign --domain example.test --selector ed --key "$d/ed.pem" --headers to:subject
expect_exit 2 "$SESAME_BIN" dkim sign --domain example.test --selector ed --key "$d/ed.pem" --identity a@other.test
expect_exit 2 "$SESAME_BIN" dkim sign --domain example.test --selector ed --key "$d/ed.pem" --expire -5
expect_exit 2 "$SESAME_BIN" dkim sign --selector ed --key "$d/ed.pem"
expect_exit 2 "$SESAME_BIN" dkim verify --dns "not a server"
expect_exit 2 "$SESAME_BIN" dkim verify --bogus
expect_exit 2 "$SESAME_BIN" dkim verify --key x
expect_exit 2 "$SESAME_BIN" dkim frobnicate
expect_exit 2 "$SESAME_BIN" dkim
expect_exit 0 "$SESAME_BIN" dkim --help
expect_exit 0 "$SESAME_BIN" dkim sign --help

finish
