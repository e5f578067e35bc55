#!/usr/bin/env bash
# Installs every Debian package rill's build and tests need. Idempotent and non-interactive:
# when everything is present it installs nothing and touches no package list.
# Usage: scripts/setup.sh [EXTRA_PACKAGE...]   (extra packages, e.g. python3-torch for
# bench/versus_pytorch.sh, are installed the same way)
set -euo pipefail

PACKAGES=(
  cmake g++ ninja-build ccache pkg-config
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libopenblas-openmp-dev libdnnl-dev libc6-dev
  nlohmann-json3-dev libfmt-dev libcli11-dev
  clang libclang-rt-14-dev clang-format
  libcpp-httplib-dev pybind11-dev python3-dev python3-numpy python3-pytest
  chromium-headless-shell
  libopenmpi-dev openmpi-bin
)
PACKAGES+=("$@")

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
