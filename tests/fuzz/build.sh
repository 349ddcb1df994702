#!/usr/bin/env bash
# Build the libFuzzer harness (clang with compiler-rt: Debian packages clang
# and libclang-rt-dev). Usage: tests/fuzz/build.sh [OUTDIR]  (default
# build-libfuzzer in the source tree). See README.md.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-$src/build-libfuzzer}
mkdir -p "$out"
# shellcheck disable=SC2046
clang -std=c11 -g -O1 -D_GNU_SOURCE -DES_VERSION='"fuzz"' \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$src/src" $(pkg-config --cflags zlib libzstd) \
    "$src/tests/fuzz/fuzz_qcow2.c" "$src"/src/util/*.c "$src"/src/qcow2/*.c \
    $(pkg-config --libs zlib libzstd) -o "$out/fuzz_qcow2"
echo "$out/fuzz_qcow2"
