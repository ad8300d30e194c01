#!/usr/bin/env bash
# Installs the Debian packages sesame needs to build, test and benchmark.
# Idempotent: does nothing when everything is present. Uses sudo when not root.
set -euo pipefail

# Build and runtime libraries (see docs/dependencies.md for why each one).
BUILD_PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
  libssl-dev openssl libunbound-dev libevent-dev libsqlite3-dev libpq-dev
  libpsl-dev publicsuffix libjansson-dev libinih-dev libsodium-dev
  zlib1g-dev libexpat1-dev)
# Tests: cmocka, the RFC 7208 suite (python3-spf ships it), interop peers.
TEST_PKGS=(libcmocka-dev python3 python3-yaml python3-spf python3-dkim
  python3-dnspython swaks libmail-dkim-perl libnet-dns-perl)
# Benchmarks: peers measured in the same run.
BENCH_PKGS=(libspf2-dev libopendkim-dev)

want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${BENCH_PKGS[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
