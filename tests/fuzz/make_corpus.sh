#!/usr/bin/env bash
# Regenerate the seed corpora of the libFuzzer harnesses (README.md) from
# real inputs, then minimize them into tests/fuzz/corpus/KIND.
#
#   tests/fuzz/make_corpus.sh BUILD_DIR [SEED_DIR]
#
# BUILD_DIR has the harnesses (tests/fuzz/fuzz_KIND) and extsnap (or set
# EXTSNAP to another one, such as the normal build's): with an
# ES_FUZZ build the seeds are merged with -merge=1 (only inputs that add
# coverage are kept); with any other build they are copied as they are.
# SEED_DIR (default: a temporary directory) keeps the unminimized seeds.
# Files named finding-* in a corpus (inputs of past findings) are kept.
# Needs qemu-img, qemu-io, qemu-system-x86_64 (the QMP transcripts).
#
# Seeds:
#   qcow2_read, qcow2_write: a top image and its backing image (fz_split:
#     4-byte little-endian length of top, top, base) across the format matrix;
#   domxml, snapxml: the libvirt 9.0 fixtures, and the files extsnap writes
#     in a create/create/revert/delete/commit sequence;
#   journal: the journals an interrupted create, delete and commit leave
#     (EXTSNAP_FAULT stops extsnap at each file-system change), and inexact
#     records in the documented format;
#   qmp: transcripts of a real QEMU (query-block, query-named-block-nodes,
#     x-debug-query-block-graph, a block-commit job and its events).
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:?usage: make_corpus.sh BUILD_DIR [SEED_DIR]}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seeds=${2:-$work/seeds}
mkdir -p "$seeds"/{qcow2,domxml,snapxml,journal,qmp}
EXTSNAP=${EXTSNAP:-$build/extsnap}
export ASAN_OPTIONS=detect_leaks=0

# ---------------------------------------------------------------- qcow2
# pair NAME: pack $work/q/top.img and $work/q/base.img into one seed.
pair() {
    local t=$work/q/top.img b=$work/q/base.img n
    n=$(stat -c %s "$t")
    { perl -e 'print pack("V", shift)' "$n"; cat "$t"; [[ ! -e $b ]] || cat "$b"; } \
        >"$seeds/qcow2/$1"
    rm -f "$work/q"/*
}
mkdir -p "$work/q"
cd "$work/q"
qio() { qemu-io "$@" >/dev/null; }
mk() { qemu-img create -q "$@"; }
# base OPTS SIZE: base.img, qcow2 with OPTS, some data; top FMT OPTS: top.img over it.
base() { mk -f qcow2 -o "$1" base.img "$2"; qio -f qcow2 -c 'write -P 1 0 8k' -c 'write -P 2 96k 4k' base.img; }
top() {
    mk -f qcow2 -o "$2" -b base.img -F "$1" top.img
    qio -f qcow2 -c 'write -P 3 4k 8k' -c 'write -z 96k 4k' -c 'write -P 4 160k 4k' top.img
}
for cs in 512 2k 4k; do
    base "cluster_size=$cs" 256k; top qcow2 "cluster_size=$cs"; pair "v3-c$cs"
done
base compat=0.10,cluster_size=4k 256k; top qcow2 compat=0.10,cluster_size=4k; pair v2
base cluster_size=16k,extended_l2=on 256k; top qcow2 cluster_size=16k,extended_l2=on; pair xl2
base cluster_size=4k 256k; top qcow2 cluster_size=16k,extended_l2=on; pair xl2-over-v3
for rb in 1 2 8 16 32 64; do
    base "cluster_size=4k,refcount_bits=$rb" 256k; top qcow2 "cluster_size=4k,refcount_bits=$rb"
    pair "refcount$rb"
done
for ct in zlib zstd; do
    mk -f qcow2 -o cluster_size=4k src.img 256k
    qio -f qcow2 -c 'write -P 5 0 32k' -c 'write -P 6 64k 4k' src.img
    qemu-img convert -c -O qcow2 -o "cluster_size=4k,compression_type=$ct" src.img base.img
    rm src.img
    top qcow2 "cluster_size=4k,compression_type=$ct"
    pair "compressed-$ct"
done
mk -f raw base.img 168k; qio -f raw -c 'write -P 7 0 16k' base.img; top raw cluster_size=4k; pair raw-base
base cluster_size=4k 256k; top qcow2 cluster_size=4k
qemu-img snapshot -c s1 top.img; qio -f qcow2 -c 'write -P 8 0 4k' top.img
qemu-img snapshot -c s2 top.img; pair internal-snapshots
base cluster_size=4k 256k; top qcow2 cluster_size=4k
qemu-img bitmap --add top.img bm0; qemu-img bitmap --add --disable top.img bm1; pair bitmaps-top
base cluster_size=4k 256k; qemu-img bitmap --add base.img bm0; top qcow2 cluster_size=4k
pair bitmap-base
base cluster_size=4k,lazy_refcounts=on 256k; top qcow2 cluster_size=4k,lazy_refcounts=on
qemu-io -c 'write -P 9 0 12k' -c abort top.img >/dev/null 2>&1 || true; pair dirty-lazy
mk -f qcow2 -o cluster_size=4k base.img 128k; qio -f qcow2 -c 'write -P 1 0 8k' base.img
mk -f qcow2 -o cluster_size=4k -b base.img -F qcow2 top.img; qemu-img resize -q top.img 512k
qio -f qcow2 -c 'write -P 12 4k 4k' -c 'write -P 13 300k 8k' top.img; pair grown-top
base cluster_size=4k 256k; mk -f qcow2 -o cluster_size=4k -b base.img -F qcow2 top.img 128k
qio -f qcow2 -c 'write -P 10 0 64k' top.img; pair smaller-top
mk -f qcow2 -o cluster_size=4k top.img 256k; qio -f qcow2 -c 'write -P 11 0 4k' top.img; pair single
mk -f qcow2 -o cluster_size=4k -b top.img -F qcow2 -u base.img 256k
mk -f qcow2 -o cluster_size=4k -b base.img -F qcow2 -u top.img 256k; pair loop
base cluster_size=4k 256k; top qcow2 cluster_size=4k,data_file=data.raw,data_file_raw=on 2>/dev/null \
    || top qcow2 cluster_size=4k
rm -f data.raw; pair data-file
cd "$src"

# ---------------------------------------------------------------- XML
fx=$src/tests/fixtures/domxml
cp "$fx"/libvirt-9.0/*-domain-*.xml "$fx"/libvirt-9.0/*-define-*.xml "$src/tests/fixtures/sample-vm/demo.xml" \
    "$seeds/domxml/"
cp "$fx"/libvirt-9.0/*-snapshot-*.xml "$fx"/newer/*.xml "$seeds/snapxml/"
# Files extsnap writes, and the journals it leaves when stopped midway.
. "$src/tests/e2e/lib/snap.sh"
T=$work # scratch directory of snap.sh's helpers
export T
R=$work/root
snap_make_tvm "$R"
x() { "$EXTSNAP" "$@" --root "$R"; }
keep() { # keep STEP: the config and every snapshot file now
    cp "$R$SNAP_CFG/tvm.xml" "$seeds/domxml/extsnap-$1-tvm.xml"
    local f
    for f in "$R$SNAP_DIR"/tvm/*.xml; do
        [[ -e $f ]] && cp "$f" "$seeds/snapxml/extsnap-$1-$(basename "$f")"
    done
}
# stopped STEP CMD...: run CMD stopped at every 3rd file-system change and
# keep each journal left, recovering after each.
stopped() {
    local step=$1 n rc
    shift
    for n in 2 5 8 11 14; do
        rc=0
        EXTSNAP_FAULT=mutate:$n:stop x "$@" -q >/dev/null 2>&1 || rc=$?
        if [[ -e $R$SNAP_DIR/tvm.extsnap.journal ]]; then
            cp "$R$SNAP_DIR/tvm.extsnap.journal" "$seeds/journal/$step-at-$n.json"
        fi
        x recover tvm -q >/dev/null 2>&1 || true
        ((rc)) || return 0
    done
}
stopped create-s1 create tvm s1; [[ -e $R$SNAP_DIR/tvm/s1.xml ]] || x create tvm s1 -q; keep s1
stopped create-s2 create tvm s2 --description "second"; [[ -e $R$SNAP_DIR/tvm/s2.xml ]] || x create tvm s2 -q; keep s2
x create tvm s3 -q; keep s3
stopped revert-s1 revert tvm s1; keep revert
stopped delete-s2 delete tvm s2; keep delete
stopped commit commit tvm s1 s3; keep commit
now=$(date +%s)
printf '{"extsnap-inexact": 1, "snapshots": [{"name": "s1", "creation-time": %s, "state": "copying", "since": %s, "operation": "the online delete of snapshot s1", "command": "delete", "reason": null, "images": ["/var/lib/libvirt/images/tvm/vda.qcow2"]}]}\n' \
    "$now" "$now" >"$seeds/journal/inexact-copying.json"
printf '{"extsnap-inexact": 1, "snapshots": [{"name": "s4", "creation-time": %s, "state": "cancelled", "since": %s, "operation": "the online commit of snapshot s4", "command": "commit", "reason": "interrupted", "images": ["/i/a.qcow2", "/i/b.qcow2"]}, {"name": "s5", "creation-time": 1, "state": "cancelled", "since": 2, "operation": "x", "command": "delete", "reason": "job cancelled", "images": []}]}\n' \
    "$now" "$now" >"$seeds/journal/inexact-cancelled.json"

# ---------------------------------------------------------------- QMP
# transcript NAME DEVICE QEMU-ARGS...: QEMU's side of a session asking what
# the node mapping asks (each command's id is its name: the harness's key),
# then committing DEVICE's active layer.
transcript() {
    local name=$1 dev=$2
    shift 2
    {
        echo '{"execute": "qmp_capabilities"}'
        sleep 0.5
        for c in query-block x-debug-query-block-graph; do
            echo "{\"execute\": \"$c\", \"id\": \"$c\"}"
        done
        echo '{"execute": "query-named-block-nodes", "arguments": {"flat": true}, "id": "query-named-block-nodes"}'
        sleep 0.5
        echo '{"execute": "block-commit", "arguments": {"job-id": "j0", "device": "'"$dev"'"}, "id": "commit"}'
        sleep 1
        echo '{"execute": "query-block-jobs", "id": "jobs"}'
        echo '{"execute": "block-job-complete", "arguments": {"device": "j0"}, "id": "complete"}'
        sleep 1
        echo '{"execute": "query-named-block-nodes", "arguments": {"flat": true}, "id": "query-named-block-nodes"}'
        echo '{"execute": "quit"}'
    } | timeout 30 qemu-system-x86_64 -nodefaults -display none -S -qmp stdio "$@" \
        >"$seeds/qmp/$name" 2>/dev/null || true
}
q=$work/qmp
mkdir -p "$q"
qemu-img create -q -f qcow2 "$q/base.qcow2" 1M
qemu-img create -q -f qcow2 -b "$q/base.qcow2" -F qcow2 "$q/mid.qcow2"
qemu-img create -q -f qcow2 -b "$q/mid.qcow2" -F qcow2 "$q/top.qcow2"
qemu-img create -q -f qcow2 -b "$q/base.qcow2" -F qcow2 "$q/other.qcow2"
transcript drive drive0 -machine none \
    -drive "if=none,id=drive0,file=$q/top.qcow2,format=qcow2" \
    -drive "if=none,id=drive1,file=$q/other.qcow2,format=qcow2"
bd() { # libvirt's -blockdev pair for one image: file node + format node
    echo "-blockdev {\"driver\":\"file\",\"filename\":\"$2\",\"node-name\":\"libvirt-$1-storage\",\"read-only\":$3}"
    echo "-blockdev {\"node-name\":\"libvirt-$1-format\",\"read-only\":$3,\"driver\":\"qcow2\",\"file\":\"libvirt-$1-storage\",\"backing\":$4}"
}
# shellcheck disable=SC2046
transcript blockdev libvirt-1-format -machine pc $(bd 3 "$q/base.qcow2" true null) $(bd 2 "$q/mid.qcow2" true '"libvirt-3-format"') \
    $(bd 1 "$q/top.qcow2" false '"libvirt-2-format"') \
    -device virtio-blk-pci,drive=libvirt-1-format,id=virtio-disk0
transcript single top -machine none -drive "if=none,id=top,file=$q/base.qcow2,format=qcow2"

# ---------------------------------------------------------------- merge
out=$src/tests/fuzz/corpus
for kind in qcow2_read qcow2_write domxml snapxml journal qmp; do
    from=$seeds/${kind%_*}
    [[ $kind == qcow2_* ]] && from=$seeds/qcow2
    # Inputs of past findings (finding-SHA1) stay whatever their coverage.
    mkdir -p "$out/$kind"
    find "$out/$kind" -type f ! -name 'finding-*' -delete
    h=$build/tests/fuzz/fuzz_$kind
    if nm "$h" 2>/dev/null | grep LLVMFuzzerRunDriver >/dev/null; then
        "$h" -merge=1 -max_len=1048576 -timeout=30 "$out/$kind" "$from" 2>"$work/merge-$kind.log" \
            || { cat "$work/merge-$kind.log" >&2; exit 1; }
    else
        cp "$from"/* "$out/$kind/"
    fi
    echo "$kind: $(find "$out/$kind" -type f ! -name 'finding-*' | wc -l) of $(find "$from" -type f | wc -l) seeds kept"
done
