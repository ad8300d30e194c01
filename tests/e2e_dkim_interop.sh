#!/usr/bin/env bash
# End-to-end DKIM interop (issue 3): keys made by `sesame dkim keygen` are
# published in the test DNS server; tests/support/dkim_interop.py then checks that
# what sesame signs verifies in dkimpy and Perl Mail::DKIM over a corpus of
# awkward messages (a 10 MiB body among them), and that what dkimpy and
# Mail::DKIM sign verifies in sesame, and fails once altered.
set -u
source "$(dirname "$0")/support/e2e_lib.sh"
here=$(cd "$(dirname "$0")" && pwd)

work=$E2E_TMP/keys
mkdir -p "$work"
rsa=$("$SESAME_BIN" dkim keygen --algorithm rsa-sha256 --domain example.test --selector rsa \
      --out "$work/rsa.pem" --json) || { echo "keygen rsa failed" >&2; exit 1; }
ed=$("$SESAME_BIN" dkim keygen --algorithm ed25519-sha256 --domain example.test --selector ed \
     --out "$work/ed.pem" --json) || { echo "keygen ed25519 failed" >&2; exit 1; }
/usr/bin/python3 - "$work/zone.json" "$rsa" "$ed" <<'PY'
import json, sys
zone = {}
for rec in map(json.loads, sys.argv[2:]):
    zone[rec["name"]] = [{"type": "TXT", "value": rec["strings"]}]
json.dump(zone, open(sys.argv[1], "w"))
PY
start_testdns "$work/zone.json"

E2E_CHECKS=$((E2E_CHECKS + 1))
/usr/bin/python3 "$here/support/dkim_interop.py" "$SESAME_BIN" "$DNS_ADDR" "$work" \
  || fail "interop checks failed (see above)"
finish
