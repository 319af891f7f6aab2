#!/usr/bin/env bash
# Installs every Debian package Tandem needs to build, test and run its demo.
# Idempotent: installs only what is missing, runs `apt-get update` only when a package is missing
# (and at most once), and says what it installs. Needs root (or sudo) only when something is missing.
set -euo pipefail

PKGS=(
  build-essential pkg-config clang llvm libclang-rt-14-dev
  libjansson-dev libyaml-dev libwebsockets-dev libssl-dev libsqlite3-dev libcurl4-openssl-dev
  check libsubunit-dev
  libfann-dev libopenblas-dev libarchive-dev
  iproute2 stress-ng sqlite3 openssl curl
  python3-kubernetes python3-yaml python3-numpy python3-sklearn python3-websockets
  cppcheck clang-format
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run this script as root (or install sudo) to install them" >&2
    exit 1
  fi
fi

echo "install-deps: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/tandem-apt.log 2>&1; then
  echo "install-deps: apt-get install failed; running apt-get update once and retrying"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
echo "install-deps: done"
