#!/usr/bin/env bash
# End-to-end: `sesame dmarc report show FILE [--json]` (SPEC.md §1.5) on the
# received-report samples of tests/data/dmarc/ — Google-style XML and its
# report mail (zip attachment), Microsoft-style gzip, Yahoo-style zip, the
# DMARCbis namespace, standard input — in text and JSON; then hostile and
# wrong input: a gzip bomb, an entity bomb, a file that is not a report, a
# mail without a report (exit 2 with one line saying why), a missing file
# (exit 1) and bad usage (exit 2).
set -u
source "$(dirname "$0")/support/e2e_lib.sh"

D=$SESAME_TEST_DATA/dmarc
show() { "$SESAME_BIN" dmarc report show "$@"; }

# expect_report JSON_OUTPUT PYTHON_ASSERTIONS: the assertions run with
# `doc` bound to the parsed output; each failing one is reported.
expect_report() {
  E2E_CHECKS=$((E2E_CHECKS + 1))
  local out
  out=$(printf '%s' "$1" | /usr/bin/python3 -c '
import json, sys
doc = json.load(sys.stdin)
errs = []
assert set(doc) == {"reports", "summary"}, sorted(doc)
for r in doc["reports"]:
    want = {"org_name", "email", "report_id", "begin", "end", "policy", "records",
            "skipped_records", "skipped_reason"}
    if set(r) != want:
        errs.append("report keys %s" % sorted(r))
    for rec in r["records"]:
        if set(rec) != {"source_ip", "count", "disposition", "dkim", "spf", "reason",
                        "header_from", "envelope_from", "envelope_to", "auth_results"}:
            errs.append("record keys %s" % sorted(rec))
s = doc["summary"]
for line in sys.argv[1].strip().splitlines():
    try:
        ok = eval(line.strip(), {"doc": doc, "r": doc["reports"], "s": s})
    except Exception as e:
        ok = False
        line += " (%r)" % e
    if not ok:
        errs.append("not true: " + line.strip())
print("\n".join(errs))' "$2") || { fail "not JSON: $1"; return; }
  [ -z "$out" ] || fail "$out
in: $1"
}

# --- the samples, text ---------------------------------------------------
out=$(show "$D/google.xml"); rc=$?
expect_eq "$rc" 0
expect_contains "$out" "DMARC aggregate report from google.com <noreply-dmarc-support@google.com>"
expect_contains "$out" "report id:  8265837591039476310"
expect_contains "$out" "period:     2024-05-01 00:00:00 UTC to 2024-05-01 23:59:59 UTC"
expect_contains "$out" "policy:     example.com: p=none sp=none pct=100 adkim=r aspf=r"
expect_contains "$out" "170 in 5 records from 4 source IPs: 163 passed DMARC (96%), 7 failed"
expect_contains "$out" "example.com, news.example.com"
expect_contains "$out" "2001:db8::25"
expect_contains "$out" "failing sources (unauthorized sending attempts"
expect_contains "$out" "203.0.113.9: 7 of 7 messages failed (none 7), header From example.com"

out=$(show "$D/microsoft.xml.gz"); rc=$?
expect_eq "$rc" 0
expect_contains "$out" "from Enterprise Outlook <dmarcreport@microsoft.com>"
expect_contains "$out" "p=quarantine sp=quarantine pct=100 adkim=r aspf=r fo=1"
expect_contains "$out" "48 in 3 records from 3 source IPs: 42 passed DMARC (88%), 6 failed"
expect_contains "$out" "203.0.113.9: 4 of 4 messages failed (quarantine 4)"
expect_contains "$out" "203.0.113.200: 2 of 2 messages failed (none 2), header From example.com; the receiver says: forwarded"

out=$(show "$D/yahoo.zip"); rc=$?
expect_eq "$rc" 0
expect_contains "$out" "from Yahoo <dmarchelp@yahooinc.com>"
expect_contains "$out" "policy:     example.com: p=reject pct=100"
expect_contains "$out" "203.0.113.50: 1 of 1 message failed (reject 1)"

out=$(show "$D/dmarcbis.xml"); rc=$?
expect_eq "$rc" 0
expect_contains "$out" "11 in 1 record from 1 source IP: 11 passed DMARC (100%), 0 failed"
expect_contains "$out" "no failing source: every message in this report passed DMARC."

out=$(show "$D/google.eml"); rc=$?
expect_eq "$rc" 0
expect_contains "$out" "DMARC aggregate report from google.com"
expect_contains "$out" "170 in 5 records"

out=$(show - < "$D/microsoft.xml.gz"); rc=$?
expect_eq "$rc" 0
expect_contains "$out" "from Enterprise Outlook"

# --- the samples, JSON ---------------------------------------------------
out=$(show "$D/google.xml" --json); rc=$?
expect_eq "$rc" 0
expect_report "$out" '
len(r) == 1
r[0]["org_name"] == "google.com"
r[0]["report_id"] == "8265837591039476310"
r[0]["begin"] == "2024-05-01T00:00:00Z" and r[0]["end"] == "2024-05-01T23:59:59Z"
r[0]["policy"] == {"domain": "example.com", "adkim": "r", "aspf": "r", "p": "none", "sp": "none", "pct": 100, "fo": None}
[x["source_ip"] for x in r[0]["records"]] == ["198.51.100.25", "192.0.2.77", "203.0.113.9", "2001:db8::25", "198.51.100.25"]
r[0]["records"][1]["auth_results"]["dkim"][1] == {"domain": "mail.esp.example", "selector": "k1", "result": "pass"}
r[0]["records"][0]["envelope_from"] is None
s["domain"] == "example.com" and s["reports"] == 1
(s["messages"], s["passed"], s["failed"]) == (170, 163, 7)
[x["source_ip"] for x in s["sources"]] == ["198.51.100.25", "192.0.2.77", "203.0.113.9", "2001:db8::25"]
s["sources"][0]["messages"] == 125 and s["sources"][0]["header_from"] == ["example.com", "news.example.com"]
s["sources"][1]["dkim_passed"] == 35 and s["sources"][1]["spf_passed"] == 0
s["failing_sources"] == ["203.0.113.9"]'

out=$(show --json "$D/microsoft.xml.gz"); rc=$?
expect_eq "$rc" 0
expect_report "$out" '
r[0]["policy"]["fo"] == "1"
r[0]["records"][1]["reason"] == {"type": "forwarded", "comment": "arc=pass as.1.forwarder.example=pass"}
r[0]["records"][2]["envelope_from"] == "example.com"
r[0]["records"][0]["auth_results"]["spf"][0]["scope"] == "mfrom"
(s["messages"], s["passed"], s["failed"]) == (48, 42, 6)
s["failing_sources"] == ["203.0.113.9", "203.0.113.200"]
s["sources"][1]["dispositions"] == {"quarantine": 4}'

out=$(show "$D/yahoo.zip" --json); rc=$?
expect_eq "$rc" 0
expect_report "$out" '
r[0]["org_name"] == "Yahoo" and r[0]["policy"]["sp"] is None
(s["messages"], s["failed"]) == (10, 1)
s["failing_sources"] == ["203.0.113.50"]'

out=$(show "$D/google.eml" --json); rc=$?
expect_eq "$rc" 0
expect_report "$out" '
len(r) == 1 and r[0]["org_name"] == "google.com"
s["messages"] == 170'

# --- not reports ---------------------------------------------------------
# 100 MiB of zeros in ~100 KiB of gzip: refused at the 32 MiB cap
/usr/bin/python3 - "$E2E_TMP/bomb.xml.gz" <<'EOF'
import sys, zlib
c = zlib.compressobj(9, zlib.DEFLATED, 31)
zero = bytes(1 << 20)
with open(sys.argv[1], "wb") as f:
    for _ in range(100):
        f.write(c.compress(zero))
    f.write(c.flush())
EOF
expect_exit 2 show "$E2E_TMP/bomb.xml.gz"
expect_contains "$(cat "$E2E_TMP/err")" "decompressed size exceeds 32 MiB"
expect_exit 2 show "$E2E_TMP/bomb.xml.gz" --json
expect_eq "$(cat "$E2E_TMP/out")" ""

cat > "$E2E_TMP/lol.xml" <<'EOF'
<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<feedback><report_metadata><org_name>&lol3;</org_name></report_metadata></feedback>
EOF
expect_exit 2 show "$E2E_TMP/lol.xml"
expect_contains "$(cat "$E2E_TMP/err")" "a DOCTYPE is not allowed in a DMARC report"

printf '<html><body>hello</body></html>\n' > "$E2E_TMP/page.html"
expect_exit 2 show "$E2E_TMP/page.html"
expect_contains "$(cat "$E2E_TMP/err")" "the root element is <html>, not <feedback>"

head -c 400 "$D/yahoo.zip" > "$E2E_TMP/cut.zip"
expect_exit 2 show "$E2E_TMP/cut.zip"
expect_contains "$(cat "$E2E_TMP/err")" "zip archive is truncated"

printf 'From: a@example.com\nSubject: hello\n\nno report here\n' > "$E2E_TMP/plain.eml"
expect_exit 2 show "$E2E_TMP/plain.eml"
expect_contains "$(cat "$E2E_TMP/err")" "no DMARC report is attached"

: > "$E2E_TMP/empty"
expect_exit 2 show "$E2E_TMP/empty"

# --- runtime failures and usage ------------------------------------------
expect_exit 1 show "$E2E_TMP/does-not-exist.xml"
expect_contains "$(cat "$E2E_TMP/err")" "cannot read"
expect_exit 1 show "$E2E_TMP"
expect_exit 2 show
expect_exit 2 show "$D/google.xml" "$D/yahoo.zip"
expect_exit 2 show --bogus "$D/google.xml"
expect_exit 2 "$SESAME_BIN" dmarc
expect_exit 2 "$SESAME_BIN" dmarc report
expect_exit 2 "$SESAME_BIN" dmarc report frobnicate
expect_exit 0 show --help
expect_contains "$(cat "$E2E_TMP/out")" "usage: sesame dmarc report show FILE [--json]"
expect_exit 0 "$SESAME_BIN" dmarc --help

finish
