#!/usr/bin/env bash
# Installs the Debian packages sesame needs to build, test and benchmark.
# Idempotent: does nothing when everything is present. Uses sudo when not root.
#
#   scripts/install-deps.sh [--bench]
#
# --bench also installs the MTA peers of bench/bench_mta.sh (Postfix, OpenDKIM,
# OpenDMARC). They are daemons: they are installed with services forbidden to
# start (policy-rc.d) and Postfix left unconfigured; the benchmark runs
# private instances of them and nothing else uses them. `make test` never
# passes --bench.
set -euo pipefail

with_bench=0
case "${1:-}" in
  "") ;;
  --bench) with_bench=1 ;;
  *) echo "usage: $0 [--bench]" >&2; exit 2 ;;
esac

# Build and runtime libraries (see docs/dependencies.md for why each one).
BUILD_PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
  libssl-dev openssl libunbound-dev libevent-dev libsqlite3-dev libpq-dev
  libpsl-dev publicsuffix libjansson-dev libinih-dev libsodium-dev
  zlib1g-dev libexpat1-dev)
# Tests: cmocka, the RFC 7208 suite (python3-spf ships it), interop peers.
TEST_PKGS=(libcmocka-dev python3 python3-yaml python3-spf python3-dkim
  python3-dnspython swaks libmail-dkim-perl libnet-dns-perl
  libxml2-utils)   # xmllint: DMARC reports checked against the RFC 7489 schema
# Benchmarks: peers measured in the same run.
BENCH_PKGS=(libspf2-dev libopendkim-dev)
# The MTA peer of bench/bench_mta.sh (--bench only).
MTA_PEER_PKGS=(postfix opendkim opendkim-tools opendmarc)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${BENCH_PKGS[@]}")
missing=()
for p in "${want[@]}"; do
  installed "$p" || missing+=("$p")
done
daemons=()
if [ $with_bench -eq 1 ]; then
  for p in "${MTA_PEER_PKGS[@]}"; do
    installed "$p" || daemons+=("$p")
  done
fi
[ ${#missing[@]} -eq 0 ] && [ ${#daemons[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ${#daemons[@]} -gt 0 ]; then
  echo "install-deps: installing the benchmark's MTA peers ${daemons[*]} (not started)" >&2
  # No service may start during the install (exit 101 = action forbidden);
  # a policy-rc.d that was already there is left as it was.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
  fi
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get install -y -qq --no-install-recommends "${daemons[@]}" >/dev/null
fi
