#!/usr/bin/env bash
# A static, single-file extsnap for rescue media: no dynamic dependencies, no
# NSS look-ups, runs from a USB stick on any x86-64 Linux rescue system.
#
#   bash scripts/build-static.sh [BUILD_DIR]    (default build-static/)
#   -> BUILD_DIR/extsnap (stripped)
#
# Why libxml2 is rebuilt here: Debian's libxml2.a is built with ICU, and a
# static link then pulls in ICU's 30 MiB data library for encodings that
# libvirt's UTF-8 files never use. So this script builds Debian's own libxml2
# source (with Debian's patches, security fixes included) without ICU, iconv,
# lzma, zlib, HTTP/FTP or Python, into BUILD_DIR/deps, for this build only.
# libxml2 keeps its built-in UTF-8/UTF-16/ISO-8859-1/ASCII decoders; a file in
# any other encoding is refused with libxml2's own error. zlib, zstd and json-c
# come from Debian's static libraries (-dev packages) as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
dir=${1:-build-static}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

bash scripts/deps.sh
if ! command -v dpkg-source >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update && apt-get install -y --no-install-recommends dpkg-dev
fi

deps=$dir/deps
prefix=$deps/prefix
if [ ! -f "$prefix/lib/libxml2.a" ]; then
    mkdir -p "$deps/apt/lists/partial" "$deps/src"
    # A private deb-src list: the host's apt configuration is left alone.
    echo "deb-src http://deb.debian.org/debian bookworm main" >"$deps/apt/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$deps/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$deps/apt/lists" -o APT::Sandbox::User=root)
    (cd "$deps/src" && apt-get "${apt_opts[@]}" -qq update &&
        apt-get "${apt_opts[@]}" -qq source --download-only libxml2)
    rm -rf "$deps/src/libxml2"
    dsc=$(ls "$deps"/src/libxml2_*.dsc | head -n1)
    dpkg-source --no-check -x "$dsc" "$deps/src/libxml2" >/dev/null
    cmake -S "$deps/src/libxml2" -B "$deps/libxml2-build" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib -DBUILD_SHARED_LIBS=OFF \
        -DCMAKE_POSITION_INDEPENDENT_CODE=OFF \
        -DLIBXML2_WITH_ICU=OFF -DLIBXML2_WITH_ICONV=OFF -DLIBXML2_WITH_LZMA=OFF \
        -DLIBXML2_WITH_ZLIB=OFF -DLIBXML2_WITH_PYTHON=OFF -DLIBXML2_WITH_HTTP=OFF \
        -DLIBXML2_WITH_FTP=OFF -DLIBXML2_WITH_PROGRAMS=OFF -DLIBXML2_WITH_TESTS=OFF \
        -DLIBXML2_WITH_MODULES=OFF -DLIBXML2_WITH_THREADS=ON >/dev/null
    cmake --build "$deps/libxml2-build" -j"$(nproc)" >/dev/null
    cmake --install "$deps/libxml2-build" >/dev/null
fi

cmake -S "$top" -B "$dir" -DES_WERROR=ON -DES_STATIC=ON -DES_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DES_STATIC_PREFIX="$prefix" >/dev/null
cmake --build "$dir" -j"$(nproc)" --target extsnap
strip "$dir/extsnap"
echo "static extsnap: $dir/extsnap ($(stat -c %s "$dir/extsnap") bytes)"
