#!/usr/bin/env bash
# extsnap img commit keeps persistent dirty bitmaps, compared bit for bit
# with QEMU doing what libvirt does (qemu-system-x86_64 -machine none over
# QMP, on a copy of the same chain): block-dirty-bitmap-merge of the
# same-named bitmaps of the merged images into BASE's, then block-commit
# (which marks BASE's enabled bitmaps for everything it copies). Both
# results are opened in that QEMU and compared with
# x-debug-block-dirty-bitmap-sha256, bitmap by bitmap:
#  A. intermediate commit (img commit -d MID: MID into BASE, TOP above);
#  B. the whole chain into BASE (img commit -b BASE TOP; QEMU: active commit);
#  C. img commit TOP (emptied): TOP keeps its bitmaps unchanged;
# BASE's disabled bitmap is untouched in every case; granularities 4 KiB,
# 64 KiB, 1 MiB and a merge across granularities; qemu-img check clean,
# qemu-img info lists the same bitmaps. Backup check: BASE's bitmaps cover
# every 64 KiB cluster whose guest content differs from before the bitmap
# was added (read through qemu-nbd -B and qemu-img map x-dirty-bitmap).
#  D. bitmaps of TOP that BASE lacks (libvirt, after block-commit: one
#     transaction of block-dirty-bitmap-add and -merge per name whose chain
#     is valid): the whole chain root <- base <- mid <- top into BASE, which
#     has no bitmap (the header extension is added, the backing name moved):
#     BASE gets nb (in MID and TOP, TOP's granularity) and solo (TOP only);
#     not gap (also in root, below a layer without it), dis2 (disabled in
#     TOP), midonly (not in TOP);
#  E. the same into a BASE with bitmaps, intermediate commit (-d MID): BASE
#     gets MID's nb at MID's granularity, next to b1, g4k and dis;
# compared bit for bit with QEMU, bitmap lists alike, and the backup check
# for D's nb: BASE's nb alone covers every change since nb was added.
# Refusals, nothing changed: a bitmap marked in use (QEMU killed while it
# had the image open) in BASE or in TOP; BASE with bitmaps that would grow;
# a new bitmap for a BASE that would grow, or that is qcow2 version 2.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/bitmaps.sh"
need_cmd qemu-img qemu-io qemu-nbd qemu-system-x86_64 jq sha256sum

trap 'vm_kill; rm -rf "$T"' EXIT
eq() { ok_eq "$@" || true; }
S=$T/q.sock
BM_TMP=$T

wr() { qemu-io -f qcow2 -c "write -q $2" "$1" >/dev/null; }
bm_add() { qemu-img bitmap --add "$@"; }
# bitmaps FILE: "name:granularity:flags ..." as qemu-img info shows them
bitmaps() {
    qemu-img info -U --output=json "$1" |
        jq -r '[."format-specific".data.bitmaps // [] | .[] | "\(.name):\(.granularity):\(.flags | join(","))"] | join(" ")'
}
check_clean() {
    local f out
    for f in "$@"; do
        ES_CHECKS=$((ES_CHECKS + 1))
        out=$(qemu-img check -U -q "$f" 2>&1) || fail "qemu-img check $f: $out"
    done
}

# The chain base (64M) <- mid <- top, in directory $1. BASE has bitmaps
# b1 (64K), g4k (4K), dis (1M, disabled); MID has b1 (128K granularity:
# merged across granularities) and dis (enabled there); TOP has b1.
# Writes before and after each bitmap was added.
make_chain() {
    local d=$1
    mkdir -p "$d"
    qemu-img create -q -f qcow2 "$d/base.qcow2" 64M
    wr "$d/base.qcow2" "-P 0x11 0 2M"
    bm_add "$d/base.qcow2" b1
    bm_add -g 4k "$d/base.qcow2" g4k
    bm_add -g 1M --disable "$d/base.qcow2" dis
    wr "$d/base.qcow2" "-P 0x12 8M 64k"        # marks b1 and g4k
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/mid.qcow2"
    wr "$d/mid.qcow2" "-P 0x21 1M 192k"         # before mid's bitmaps
    bm_add -g 128k "$d/mid.qcow2" b1
    bm_add -g 64k "$d/mid.qcow2" dis
    wr "$d/mid.qcow2" "-P 0x22 20M 4k"          # marks mid's b1 and dis
    qemu-io -f qcow2 -c "write -q -z 30M 64k" "$d/mid.qcow2" >/dev/null
    qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top.qcow2"
    bm_add "$d/top.qcow2" b1
    wr "$d/top.qcow2" "-P 0x31 40M 64k"
    wr "$d/top.qcow2" "-P 0x32 1M 4k"
}

# The chain in QEMU, as node names fbase/base, mid, top.
chain_args() {
    local d=$1
    echo "-blockdev driver=file,node-name=fbase,filename=$d/base.qcow2" \
        "-blockdev driver=qcow2,node-name=base,file=fbase,backing=" \
        "-blockdev driver=file,node-name=fmid,filename=$d/mid.qcow2" \
        "-blockdev driver=qcow2,node-name=mid,file=fmid,backing=base" \
        "-blockdev driver=file,node-name=ftop,filename=$d/top.qcow2" \
        "-blockdev driver=qcow2,node-name=top,file=ftop,backing=mid"
}

sha() { vm_qmp x-debug-block-dirty-bitmap-sha256 "{\"node\": \"$1\", \"name\": \"$2\"}" | jq -r .sha256; }
open_ro() { # NODE FILE: an image alone, read-only (its bitmaps load read-only)
    vm_qmp blockdev-add "{\"driver\": \"qcow2\", \"node-name\": \"$1\", \"read-only\": true,
        \"file\": {\"driver\": \"file\", \"filename\": \"$2\"}, \"backing\": null}" >/dev/null
}
wait_job() { # ID [complete]: until the job is gone (completing it when ready)
    local i st
    for ((i = 0; i < 2000; i++)); do
        st=$(vm_qmp query-jobs | jq -r --arg id "$1" '.[] | select(.id == $id) | .status')
        [[ -z $st ]] && return 0
        [[ $st == ready && ${2:-} == complete ]] && vm_qmp job-complete "{\"id\": \"$1\"}" >/dev/null
        sleep 0.02
    done
    fail "job $1 did not finish"
}
merge() { # TARGET-NAME SRC-NODES...: libvirt's merge into base
    local name=$1 srcs="" n
    shift
    for n in "$@"; do srcs+="{\"node\": \"$n\", \"name\": \"$name\"},"; done
    vm_qmp block-dirty-bitmap-merge "{\"node\": \"base\", \"target\": \"$name\", \"bitmaps\": [${srcs%,}]}" >/dev/null
}

# compare WHAT QDIR EDIR: every bitmap of QEMU's BASE (node base, still
# open) equals that of extsnap's BASE.
compare_base() {
    local what=$1 e=$2 n
    open_ro ebase "$e/base.qcow2"
    for n in b1 g4k dis; do
        eq "$what: bitmap $n" "$(sha base $n)" "$(sha ebase $n)"
    done
    vm_qmp blockdev-del '{"node-name": "ebase"}' >/dev/null
}

# ---- A: intermediate commit -------------------------------------------------
make_chain "$T/a0"
cp -a "$T/a0" "$T/aq"
cp -a "$T/a0" "$T/ae"
out=$("$EXTSNAP" img commit -d "$T/ae/mid.qcow2" 2>&1) || fail "A: extsnap img commit -d: $out"
# shellcheck disable=SC2046
vm_start "$S" $(chain_args "$T/aq")
dis_before=$(sha base dis)
merge b1 mid
vm_qmp block-commit '{"job-id": "c", "device": "top", "top-node": "mid", "base-node": "base"}' >/dev/null
wait_job c
compare_base "A" "$T/ae"
eq "A: disabled bitmap untouched" "$dis_before" "$(sha base dis)"
vm_quit
check_clean "$T/ae/base.qcow2" "$T/ae/mid.qcow2" "$T/aq/base.qcow2"
eq "A: qemu-img info bitmaps" "$(bitmaps "$T/aq/base.qcow2")" "$(bitmaps "$T/ae/base.qcow2")"
eq "A: BASE's bitmaps listed" "b1:65536:auto g4k:4096:auto dis:1048576:" "$(bitmaps "$T/ae/base.qcow2")"
cmp -s "$T/a0/mid.qcow2" "$T/ae/mid.qcow2" || fail "A: -d changed MID"

# ---- B: the whole chain (active commit in QEMU) -------------------------------
cp -a "$T/a0" "$T/bq"
cp -a "$T/a0" "$T/be"
out=$("$EXTSNAP" img commit -b "$T/be/base.qcow2" "$T/be/top.qcow2" 2>&1) ||
    fail "B: extsnap img commit -b: $out"
# shellcheck disable=SC2046
vm_start "$S" $(chain_args "$T/bq")
merge b1 mid top
vm_qmp block-commit '{"job-id": "c", "device": "top", "base-node": "base"}' >/dev/null
wait_job c complete
compare_base "B" "$T/be"
vm_quit
check_clean "$T/be/base.qcow2" "$T/be/top.qcow2" "$T/bq/base.qcow2"
ES_CHECKS=$((ES_CHECKS + 1))
qemu-img compare -U "$T/a0/top.qcow2" "$T/be/base.qcow2" >/dev/null 2>&1 ||
    fail "B: BASE does not read as TOP did"

# ---- backup check on B's result ---------------------------------------------
# Every 4 KiB block whose content differs from BASE's content when the
# bitmaps were added (the 0x11 write only) is dirty in b1 and g4k.
qemu-img create -q -f qcow2 "$T/t0.qcow2" 64M
wr "$T/t0.qcow2" "-P 0x11 0 2M"
qemu-img convert -U -O raw "$T/t0.qcow2" "$T/t0.raw"
qemu-img convert -U -O raw "$T/be/base.qcow2" "$T/b.raw"
for n in b1 g4k; do
    mapfile -t ranges < <(bitmap_dirty "$T/be/base.qcow2" $n)
    eq "backup check: changed 4 KiB blocks missing from $n" "" "$(bitmap_missed "$T/t0.raw" "$T/b.raw" "${ranges[@]}")"
done

# ---- C: img commit TOP, TOP emptied -------------------------------------------
cp -a "$T/a0" "$T/ce"
out=$("$EXTSNAP" img commit "$T/ce/top.qcow2" 2>&1) || fail "C: extsnap img commit: $out"
check_clean "$T/ce/top.qcow2" "$T/ce/mid.qcow2"
eq "C: TOP keeps its bitmaps" "b1:65536:auto" "$(bitmaps "$T/ce/top.qcow2")"
vm_start "$S"
open_ro t0 "$T/a0/top.qcow2"
open_ro t1 "$T/ce/top.qcow2"
eq "C: TOP's bitmap unchanged" "$(sha t0 b1)" "$(sha t1 b1)"
open_ro m1 "$T/ce/mid.qcow2"
# MID had b1 (128K) and dis; its b1 now also covers TOP's writes at 40M.
ES_CHECKS=$((ES_CHECKS + 1))
[[ $(bitmap_dirty "$T/ce/mid.qcow2" b1) == *"41943040 131072"* ]] ||
    fail "C: MID's b1 does not cover TOP's write at 40M: $(bitmap_dirty "$T/ce/mid.qcow2" b1 | tr '\n' ' ')"
vm_quit

# ---- D: TOP's bitmaps that BASE lacks, BASE without bitmaps --------------------
make_chain_d() {
    local d=$1
    mkdir -p "$d"
    qemu-img create -q -f qcow2 "$d/root.qcow2" 64M
    wr "$d/root.qcow2" "-P 0x01 0 4M"
    bm_add "$d/root.qcow2" gap
    qemu-img create -q -f qcow2 -b root.qcow2 -F qcow2 "$d/base.qcow2"
    wr "$d/base.qcow2" "-P 0x02 2M 1M"
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/mid.qcow2"
    wr "$d/mid.qcow2" "-P 0x03 8M 64k"          # before nb
    qemu-img convert -U -O raw "$d/mid.qcow2" "$T/d-nb0.raw"
    bm_add -g 128k "$d/mid.qcow2" nb
    bm_add "$d/mid.qcow2" midonly
    bm_add "$d/mid.qcow2" dis2
    wr "$d/mid.qcow2" "-P 0x04 12M 64k"
    qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top.qcow2"
    bm_add "$d/top.qcow2" nb                    # as libvirt's snapshot adds it
    wr "$d/top.qcow2" "-P 0x05 24M 4k"
    bm_add "$d/top.qcow2" gap
    bm_add --disable "$d/top.qcow2" dis2
    bm_add -g 4k "$d/top.qcow2" solo
    wr "$d/top.qcow2" "-P 0x06 16M 64k"
    wr "$d/top.qcow2" "-P 0x07 2M 4k"
    qemu-io -f qcow2 -c "write -q -z 12M 64k" "$d/top.qcow2" >/dev/null
}
adopt() { # NAME GRANULARITY SRC-NODES...: libvirt's transaction after the commit
    local name=$1 g=$2 srcs="" n
    shift 2
    for n in "$@"; do srcs+="{\"node\": \"$n\", \"name\": \"$name\"},"; done
    vm_qmp transaction "{\"actions\": [
        {\"type\": \"block-dirty-bitmap-add\", \"data\": {\"node\": \"base\", \"name\": \"$name\", \"granularity\": $g, \"persistent\": true}},
        {\"type\": \"block-dirty-bitmap-merge\", \"data\": {\"node\": \"base\", \"target\": \"$name\", \"bitmaps\": [${srcs%,}]}}]}" >/dev/null
}
sorted_bitmaps() { bitmaps "$1" | tr ' ' '\n' | sort | tr '\n' ' '; }
make_chain_d "$T/d0"
cp -a "$T/d0" "$T/dq"
cp -a "$T/d0" "$T/de"
out=$("$EXTSNAP" img commit -b "$T/de/base.qcow2" "$T/de/top.qcow2" 2>&1) ||
    fail "D: extsnap img commit -b: $out"
vm_start "$S" -blockdev "driver=file,node-name=froot,filename=$T/dq/root.qcow2" \
    -blockdev "driver=qcow2,node-name=root,file=froot,backing=" \
    -blockdev "driver=file,node-name=fbase,filename=$T/dq/base.qcow2" \
    -blockdev "driver=qcow2,node-name=base,file=fbase,backing=root" \
    -blockdev "driver=file,node-name=fmid,filename=$T/dq/mid.qcow2" \
    -blockdev "driver=qcow2,node-name=mid,file=fmid,backing=base" \
    -blockdev "driver=file,node-name=ftop,filename=$T/dq/top.qcow2" \
    -blockdev "driver=qcow2,node-name=top,file=ftop,backing=mid"
vm_qmp block-commit '{"job-id": "c", "device": "top", "base-node": "base"}' >/dev/null
wait_job c complete
adopt nb 65536 top mid
adopt solo 4096 top
open_ro ebase "$T/de/base.qcow2"
for n in nb solo; do
    eq "D: bitmap $n as QEMU's" "$(sha base $n)" "$(sha ebase $n)"
done
vm_qmp blockdev-del '{"node-name": "ebase"}' >/dev/null
vm_quit
check_clean "$T/de/base.qcow2" "$T/de/top.qcow2" "$T/dq/base.qcow2"
eq "D: BASE's bitmaps as QEMU's" "$(sorted_bitmaps "$T/dq/base.qcow2")" "$(sorted_bitmaps "$T/de/base.qcow2")"
eq "D: BASE's bitmaps" "nb:65536:auto solo:4096:auto " "$(sorted_bitmaps "$T/de/base.qcow2")"
eq "D: BASE's backing file" "root.qcow2" \
    "$(qemu-img info -U --output=json "$T/de/base.qcow2" | jq -r '."backing-filename"')"
ES_CHECKS=$((ES_CHECKS + 1))
qemu-img compare -U "$T/dq/base.qcow2" "$T/de/base.qcow2" >/dev/null 2>&1 ||
    fail "D: BASE does not read as QEMU's"
qemu-img convert -U -O raw "$T/de/base.qcow2" "$T/d-now.raw"
mapfile -t ranges < <(bitmap_dirty "$T/de/base.qcow2" nb)
eq "D backup check: changed 4 KiB blocks missing from nb" "" "$(bitmap_missed "$T/d-nb0.raw" "$T/d-now.raw" "${ranges[@]}")"

# ---- E: a new bitmap next to BASE's, intermediate commit ---------------------------
cp -a "$T/a0" "$T/e0"
bm_add -g 128k "$T/e0/mid.qcow2" nb
wr "$T/e0/mid.qcow2" "-P 0x23 44M 64k"
bm_add "$T/e0/top.qcow2" nb
wr "$T/e0/top.qcow2" "-P 0x33 48M 64k"
cp -a "$T/e0" "$T/eq"
cp -a "$T/e0" "$T/ee"
out=$("$EXTSNAP" img commit -d "$T/ee/mid.qcow2" 2>&1) || fail "E: extsnap img commit -d: $out"
# shellcheck disable=SC2046
vm_start "$S" $(chain_args "$T/eq")
merge b1 mid
vm_qmp block-commit '{"job-id": "c", "device": "top", "top-node": "mid", "base-node": "base"}' >/dev/null
wait_job c
adopt nb 131072 mid
compare_base "E" "$T/ee"
open_ro ebase "$T/ee/base.qcow2"
eq "E: bitmap nb as QEMU's" "$(sha base nb)" "$(sha ebase nb)"
vm_qmp blockdev-del '{"node-name": "ebase"}' >/dev/null
vm_quit
check_clean "$T/ee/base.qcow2" "$T/eq/base.qcow2"
eq "E: BASE's bitmaps as QEMU's" "$(sorted_bitmaps "$T/eq/base.qcow2")" "$(sorted_bitmaps "$T/ee/base.qcow2")"
eq "E: BASE's bitmaps" "b1:65536:auto dis:1048576: g4k:4096:auto nb:131072:auto " "$(sorted_bitmaps "$T/ee/base.qcow2")"

# ---- refusals -----------------------------------------------------------------
# in_use FILE: QEMU opens it read-write (bitmaps marked in use) and is killed.
in_use() {
    vm_start "$S" -blockdev "driver=file,node-name=f,filename=$1" -blockdev "driver=qcow2,node-name=n,file=f,backing="
    vm_kill
}
refused() { # WHAT EXPECTED-TEXT DIR ARGS...
    local what=$1 text=$2 d=$3 before out rc=0
    shift 3
    before=$(cd "$d" && sha256sum -- *.qcow2)
    out=$("$EXTSNAP" img commit "$@" 2>&1) || rc=$?
    ES_CHECKS=$((ES_CHECKS + 1))
    ((rc != 0)) || fail "$what: not refused"
    [[ $out == *"$text"* ]] || fail "$what: message [$out] lacks [$text]"
    eq "$what: one line" 1 "$(printf '%s\n' "$out" | wc -l)"
    eq "$what: nothing changed" "$before" "$(cd "$d" && sha256sum -- *.qcow2)"
}
cp -a "$T/a0" "$T/r1"
in_use "$T/r1/base.qcow2"
refused "in-use bitmap in BASE" "BASE has bitmap 'b1' marked in use" "$T/r1" -d "$T/r1/mid.qcow2"
cp -a "$T/a0" "$T/r2"
in_use "$T/r2/top.qcow2"
refused "in-use bitmap in TOP" "TOP has bitmap 'b1' marked in use" "$T/r2" -b "$T/r2/base.qcow2" "$T/r2/top.qcow2"
mkdir -p "$T/r3"
qemu-img create -q -f qcow2 "$T/r3/base.qcow2" 1M
bm_add "$T/r3/base.qcow2" b1
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/r3/top.qcow2" 2M
refused "growing BASE with bitmaps" "BASE has persistent dirty bitmaps and would grow" "$T/r3" "$T/r3/top.qcow2"
mkdir -p "$T/r4"
qemu-img create -q -f qcow2 "$T/r4/base.qcow2" 1M
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/r4/top.qcow2" 2M
bm_add "$T/r4/top.qcow2" nb
refused "a new bitmap in a growing BASE" "TOP's persistent dirty bitmap 'nb' would go into BASE, which would grow" "$T/r4" "$T/r4/top.qcow2"
mkdir -p "$T/r5"
qemu-img create -q -f qcow2 -o compat=0.10 "$T/r5/base.qcow2" 1M
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/r5/top.qcow2"
bm_add "$T/r5/top.qcow2" nb
wr "$T/r5/top.qcow2" "-P 1 0 64k"
refused "a new bitmap in a version 2 BASE" "persistent bitmaps need qcow2 version 3" "$T/r5" "$T/r5/top.qcow2"

finish
