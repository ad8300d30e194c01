#!/usr/bin/env bash
# End-to-end: `sesame account create|show` (SPEC.md §1.5) on a real store in
# a temporary data_dir named by a config file: the JSON shape and secret
# formats, the text form and its warning, sandbox and production quotas, a
# taken name (exit 2), bad names and usage (exit 2, one line on stderr), a
# store that cannot open (exit 1), the database created 0600 in a 0700
# directory, and the secrets nowhere in the data_dir in clear.
set -u
source "$(dirname "$0")/support/e2e_lib.sh"

CONF="$E2E_TMP/sesame.conf"
DATA="$E2E_TMP/var"
printf '[server]\ndata_dir = %s\n' "$DATA" > "$CONF"
account() { "$SESAME_BIN" account "$@" --config "$CONF"; }

# field JSON KEY: prints one value
field() {
  printf '%s' "$1" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# ---- create, JSON ----
expect_exit 0 account create acme --json
OUT=$(cat "$E2E_TMP/out")
expect_json "$OUT" account acme
expect_json "$OUT" sandbox true
expect_json "$OUT" max_24h 200
expect_json "$OUT" max_rate 1
KEYS=$(printf '%s' "$OUT" | /usr/bin/python3 -c 'import json,sys; print(",".join(sorted(json.load(sys.stdin))))')
expect_contains "$KEYS" "account,api_key,max_24h,max_rate,sandbox,smtp_password,smtp_username"
API_KEY=$(field "$OUT" api_key)
SMTP_USER=$(field "$OUT" smtp_username)
SMTP_PASS=$(field "$OUT" smtp_password)
E2E_CHECKS=$((E2E_CHECKS + 4))
[[ "$API_KEY" =~ ^sk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$ ]] || fail "api_key shape: $API_KEY"
[[ "$SMTP_USER" =~ ^smtp_[0-9a-f]{16}$ ]] || fail "smtp_username shape: $SMTP_USER"
[[ "$SMTP_PASS" =~ ^[A-Za-z0-9_-]{32,}$ ]] || fail "smtp_password shape: $SMTP_PASS"
[ "$(wc -l < "$E2E_TMP/out")" = 1 ] || fail "JSON output is not one line"

# ---- the files: a 0700 directory, a 0600 database ----
E2E_CHECKS=$((E2E_CHECKS + 2))
[ "$(stat -c %a "$DATA")" = 700 ] || fail "data_dir mode $(stat -c %a "$DATA"), want 700"
[ "$(stat -c %a "$DATA/sesame.db")" = 600 ] || fail "sesame.db mode $(stat -c %a "$DATA/sesame.db"), want 600"

# ---- production, quotas, text mode ----
expect_exit 0 account create Big.Corp_2 --production --json
OUT=$(cat "$E2E_TMP/out")
expect_json "$OUT" account Big.Corp_2
expect_json "$OUT" sandbox false
expect_json "$OUT" max_24h 50000
expect_json "$OUT" max_rate 14
expect_exit 0 account create tuned --max-24h 10 --max-rate 3 --json
expect_json "$(cat "$E2E_TMP/out")" max_24h 10
expect_json "$(cat "$E2E_TMP/out")" max_rate 3
expect_exit 0 account create texty
TEXT=$(cat "$E2E_TMP/out")
expect_contains "$TEXT" "Account texty created"
expect_contains "$TEXT" "sandbox"
expect_contains "$TEXT" "API key        sk_"
expect_contains "$TEXT" "SMTP username  smtp_"
expect_contains "$TEXT" "SMTP password  "
expect_contains "$TEXT" "shown only this once"
TEXT_KEY=$(sed -n 's/^  API key        //p' "$E2E_TMP/out")

# ---- show: quotas, no secrets ----
expect_exit 0 account show acme --json
OUT=$(cat "$E2E_TMP/out")
expect_json "$OUT" account acme
expect_json "$OUT" sandbox true
expect_json "$OUT" max_24h 200
expect_json "$OUT" max_rate 1
expect_json "$OUT" sent_24h 0
expect_json "$OUT" domains "[]"
expect_json "$OUT" api_key "<missing>"
expect_json "$OUT" smtp_password "<missing>"
expect_exit 0 account show big.corp_2
TEXT=$(cat "$E2E_TMP/out")
expect_contains "$TEXT" "Account Big.Corp_2"
expect_contains "$TEXT" "50000 messages per 24 h"
E2E_CHECKS=$((E2E_CHECKS + 1))
case "$TEXT" in *sk_*|*smtp_*) fail "show prints credentials: $TEXT" ;; esac

# ---- taken, bad and unknown names; bad usage: exit 2 with one line ----
expect_exit 2 account create acme --json
expect_contains "$(cat "$E2E_TMP/err")" "already exists"
expect_exit 2 account create ACME
expect_exit 2 account create "no spaces"
expect_contains "$(cat "$E2E_TMP/err")" "invalid account name"
expect_exit 2 account create "$(printf 'x%.0s' $(seq 1 65))"
expect_exit 2 account create "caf$(printf '\303\251')"
expect_exit 2 account create "$(printf 'two\nlines')"
expect_exit 2 account create "a/b"
expect_exit 2 account create ""
expect_exit 2 account create
expect_exit 2 account create a b
expect_exit 2 account create ok --max-24h 0
expect_exit 2 account create ok --max-rate lots
expect_exit 2 account create ok --max-24h 99999999999
expect_exit 2 account create ok --max-rate
expect_exit 2 account create ok --bogus
expect_exit 2 account show acme --production
expect_exit 2 account show nobody
expect_contains "$(cat "$E2E_TMP/err")" "no account named 'nobody'"
expect_exit 2 "$SESAME_BIN" account
expect_exit 2 "$SESAME_BIN" account delete acme --config "$CONF"
expect_exit 0 "$SESAME_BIN" account --help
expect_contains "$(cat "$E2E_TMP/out")" "usage: sesame account create NAME"
# none of the refused ones was created
expect_exit 2 account show ok
expect_exit 2 account show a

# ---- configuration and store failures ----
expect_exit 2 "$SESAME_BIN" account create x --config "$E2E_TMP/missing.conf"
printf '[server]\nno_such_key = 1\n' > "$E2E_TMP/bad.conf"
expect_exit 2 "$SESAME_BIN" account create x --config "$E2E_TMP/bad.conf"
expect_contains "$(cat "$E2E_TMP/err")" "bad.conf:2"
touch "$E2E_TMP/plainfile"
printf '[server]\ndata_dir = %s/plainfile/var\n' "$E2E_TMP" > "$E2E_TMP/nodir.conf"
expect_exit 1 "$SESAME_BIN" account create x --config "$E2E_TMP/nodir.conf"
expect_contains "$(cat "$E2E_TMP/err")" "cannot open the store"
printf '[server]\ndata_dir = %s/pg\nstore = postgresql://u:pw@127.0.0.1/sesame\n' "$E2E_TMP" \
  > "$E2E_TMP/pg.conf"
expect_exit 1 "$SESAME_BIN" account create x --config "$E2E_TMP/pg.conf"
expect_contains "$(cat "$E2E_TMP/err")" "PostgreSQL store is not built yet"

# ---- the secrets are nowhere in the data_dir in clear (only their hashes) ----
for s in "$API_KEY" "${API_KEY:20}" "$SMTP_PASS" "${TEXT_KEY:20}"; do
  E2E_CHECKS=$((E2E_CHECKS + 1))
  [ ${#s} -ge 32 ] || { fail "secret to look for is too short: '$s'"; continue; }
  if grep -rqaF -- "$s" "$DATA"; then fail "a secret is stored in clear: $s"; fi
done
# while the public parts and the hashes are there (the grep can find things)
E2E_CHECKS=$((E2E_CHECKS + 3))
grep -qaF -- "${API_KEY:3:16}" "$DATA/sesame.db" || fail "the API key id is not in the database"
grep -qaF -- "$SMTP_USER" "$DATA/sesame.db" || fail "the SMTP user name is not in the database"
grep -qaF -- '$argon2id$' "$DATA/sesame.db" || fail "no argon2id hash in the database"

finish
