#!/usr/bin/env bash
# Fails when src/ uses a call that is unsafe on untrusted input (curl bans
# the same set with a script). Use util/ helpers or bounded variants instead.
set -euo pipefail
cd "$(dirname "$0")/.."
banned='\b(strcpy|stpcpy|sprintf|vsprintf|strcat|strncat|strtok|atoi|atol|atoll|sscanf|gets)[[:space:]]*\('
if hits=$(grep -rnE "$banned" src/ --include='*.c' --include='*.h' | grep -v 'banned-ok'); then
  echo "banned calls in src/ (see scripts/check-banned.sh):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "check-banned: no banned calls in src/"
