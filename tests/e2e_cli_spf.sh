#!/usr/bin/env bash
# End-to-end: `sesame spf` (SPEC.md §1.1) against the test DNS server on
# 127.0.0.1, through the real resolver path: every result, the JSON shape,
# the text explanation, --dns vs SESAME_DNS, and exit code 2 on bad input.
set -u
source "$(dirname "$0")/support/e2e_lib.sh"

start_testdns "$SESAME_TEST_DATA/spf_cli_zone.json"
spf() { "$SESAME_BIN" spf --dns "$DNS_ADDR" "$@"; }

json=$(spf --ip 192.0.2.10 --sender alice@example.test --helo mail.example.test --json)
expect_json "$json" result pass
expect_json "$json" domain example.test
expect_json "$json" mechanism "ip4:192.0.2.0/24"
expect_json "$json" explanation null
expect_json "$json" dns_lookups 0

json=$(spf --ip 2001:db8::25 --sender alice@example.test --json)
expect_json "$json" result pass
expect_json "$json" mechanism "ip6:2001:db8::/32"

json=$(spf --ip 198.51.100.7 --sender alice@example.test --json)
expect_json "$json" result pass
expect_json "$json" mechanism "include:_spf.partner.test"
expect_json "$json" dns_lookups 2

json=$(spf --ip 203.0.113.5 --sender alice@example.test --json)
expect_json "$json" result fail
expect_json "$json" mechanism "all"

json=$(spf --ip 203.0.113.5 --sender bob@soft.test --json)
expect_json "$json" result softfail

json=$(spf --ip 203.0.113.5 --sender bob@explained.test --json)
expect_json "$json" result fail
expect_json "$json" explanation "203.0.113.5 is not allowed to send as explained.test (see https://explained.test/spf)"

json=$(spf --ip 203.0.113.5 --sender bob@twice.test --json)
expect_json "$json" result permerror
expect_json "$json" mechanism null

json=$(spf --ip 203.0.113.5 --sender bob@broken.test --json)
expect_json "$json" result permerror

json=$(spf --ip 203.0.113.5 --sender bob@nospf.test --json)
expect_json "$json" result none

json=$(spf --ip 203.0.113.5 --sender bob@no-such-domain.test --json)
expect_json "$json" result none

json=$(spf --ip 203.0.113.5 --sender bob@slow.test --json)
expect_json "$json" result temperror

# Null reverse-path: postmaster@HELO is checked.
json=$(spf --ip 192.0.2.99 --sender "" --helo mail.example.test --json)
expect_json "$json" result pass
expect_json "$json" domain mail.example.test
# The HELO identity.
json=$(spf --ip 192.0.2.98 --sender x@example.test --helo mail.example.test --scope helo --json)
expect_json "$json" result fail
# IPv4-mapped IPv6 is IPv4.
json=$(spf --ip ::ffff:192.0.2.10 --sender alice@example.test --json)
expect_json "$json" result pass

# SESAME_DNS is used when --dns is absent.
json=$(SESAME_DNS="$DNS_ADDR" "$SESAME_BIN" spf --ip 192.0.2.10 --sender a@example.test --json)
expect_json "$json" result pass

# Text mode says what was checked and why.
text=$(spf --ip 203.0.113.5 --sender bob@twice.test)
expect_contains "$text" "SPF permerror for twice.test"
expect_contains "$text" "publishes 2 SPF records"
text=$(spf --ip 198.51.100.7 --sender alice@example.test)
expect_contains "$text" "SPF pass for example.test"
expect_contains "$text" "matched: include:_spf.partner.test"

# Bad usage and bad input: exit 2 with one line on stderr.
expect_exit 2 "$SESAME_BIN" spf --ip 300.1.1.1 --sender a@example.test --dns "$DNS_ADDR"
expect_exit 2 "$SESAME_BIN" spf --sender a@example.test --dns "$DNS_ADDR"
expect_exit 2 "$SESAME_BIN" spf --ip 192.0.2.1 --dns "$DNS_ADDR"
expect_exit 2 "$SESAME_BIN" spf --ip 192.0.2.1 --sender a@b.test --bogus
expect_exit 2 "$SESAME_BIN" spf --ip 192.0.2.1 --sender a@b.test --dns "not a server"
expect_exit 2 "$SESAME_BIN" nosuchcommand
expect_exit 0 "$SESAME_BIN" spf --help

finish
