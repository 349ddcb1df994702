#!/usr/bin/env bash
# The whole test suite: dependencies, a -Werror build, unit + end-to-end tests
# (qemu-img, qemu-io, qemu-system-x86_64 and virt-xml-validate as oracles),
# then the unit tests again under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh build
(cd build && ctest --output-on-failure -j2)
bash scripts/build.sh build-asan -DES_SANITIZE=ON
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -j2 -L unit)
