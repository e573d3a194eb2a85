#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs the Debian packages mailroom needs, only those missing.
#   scripts/deps.sh           what building and running need
#   scripts/deps.sh --test    plus what the test suites need
#   scripts/deps.sh --bench   plus what the benchmarks need
# Idempotent: checks with dpkg -s first and runs apt-get only when something
# is missing (apt-get update once). Not root: prints the command to run.
set -euo pipefail

build_pkgs=(cmake make gcc pkg-config libssl-dev libuchardet-dev libsqlite3-dev
            libyaml-dev libmicrohttpd-dev libsodium-dev libjansson-dev libgumbo-dev
            libmagic-dev libpcre2-dev)
# clamav-daemon: tests/e2e/test_antivirus.py runs its own clamd with a
# signature file it writes (no freshclam, no download).
test_pkgs=(libcmocka-dev libgmime-3.0-dev clang libclang-rt-14-dev python3
           python3-pytest swaks curl openssl chromium nodejs npm clamav-daemon)
bench_pkgs=(nodejs npm strace)

want=("${build_pkgs[@]}")
for arg in "$@"; do
  case "$arg" in
    --test) want+=("${test_pkgs[@]}") ;;
    --bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
    *) echo "usage: scripts/deps.sh [--test] [--bench]" >&2; exit 64 ;;
  esac
done

# A tool installed outside Debian's packages (a newer Node.js with its own
# npm, say) counts as present: installing Debian's over it can conflict.
provided_by_command() {
  case "$1" in
    nodejs) command -v node >/dev/null 2>&1 ;;
    npm) command -v npm >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || provided_by_command "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "mailroom needs these Debian packages: ${missing[*]}" >&2
  echo "run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
