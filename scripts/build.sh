#!/usr/bin/env bash
# Configure and build into $1 (default build/) with warnings as errors; extra
# arguments go to cmake (e.g. -DES_SANITIZE=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}; shift || true
cmake -S . -B "$dir" -DES_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
