#!/usr/bin/env bash
# Seed corpus for the libFuzzer harness: small images of every shape the
# engine reads, made with qemu-img / qemu-io. Usage: make_corpus.sh DIR
set -euo pipefail
dir=${1:?usage: make_corpus.sh DIR}
mkdir -p "$dir"
cd "$dir"
q() { qemu-io -f qcow2 "$@" >/dev/null; }
new() { qemu-img create -q -f qcow2 "$@"; }
new -o cluster_size=512,refcount_bits=1 s512.qcow2 256k
q -c 'write -P 4 0 2k' -c 'write -P 5 100k 1k' -c 'write -z 200k 1k' s512.qcow2
new -o cluster_size=4k,compat=0.10 sv2.qcow2 1M
q -c 'write -P 6 0 8k' -c 'write -P 7 512k 4k' sv2.qcow2
new -o cluster_size=16k,extended_l2=on sxl2.qcow2 1M
q -c 'write -P 9 4k 4k' -c 'write -z 8k 4k' -c 'write -P 10 64k 16k' sxl2.qcow2
new -o cluster_size=4k src.qcow2 256k
q -c 'write -P 11 0 32k' -c 'write -P 12 64k 4k' src.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=4k src.qcow2 szlib.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=512,compression_type=zstd src.qcow2 szstd.qcow2
rm src.qcow2
new -o cluster_size=4k,refcount_bits=64 ssnap.qcow2 1M
q -c 'write -P 8 4k 8k' ssnap.qcow2
qemu-img snapshot -c s1 ssnap.qcow2
q -c 'write -P 13 4k 4k' ssnap.qcow2
new -o cluster_size=4k sbm.qcow2 1M
qemu-img bitmap --add sbm.qcow2 bm0
new -o cluster_size=4k,lazy_refcounts=on slazy.qcow2 1M
qemu-io -c 'write -P 15 0 12k' -c abort slazy.qcow2 >/dev/null 2>&1 || true
ls -l
