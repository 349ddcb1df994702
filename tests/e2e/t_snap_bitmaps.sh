#!/usr/bin/env bash
# Incremental-backup bitmaps through the domain commands, offline (lib/snap.sh's
# tvm; vda carries an enabled bitmap b1, a 4 KiB one g4k and a disabled one):
#  A. create: each new overlay gets the enabled bitmaps of the image it
#     covers (same name and granularity, enabled, empty), as QEMU leaves an
#     overlay made by libvirt's transaction (blockdev-snapshot plus
#     block-dirty-bitmap-add persistent, run on a copy over QMP): same
#     bitmaps in qemu-img info, same content (x-debug-block-dirty-bitmap-sha256);
#     the disabled bitmap is not carried; vdb (no bitmaps) gets none;
#  B. delete (a merge), commit BASE TOP (the rest), revert and refresh on
#     top, writes between every step (qemu-io, which records them in the
#     active image's bitmaps as QEMU does);
#  C. bitmaps a backup tool added after a snapshot (so BASE lacks them),
#     on a fresh tvm: bk in vda's active image after c1, bk2 in vdb's after
#     c2; delete c1 (vda.c1 into vda.qcow2: a new bk there) and commit
#     base c3 (vdb.c3 and vdb.c2 into vdb.qcow2: a new bk2), each compared
#     bit for bit with QEMU doing libvirt's sequence on copies (block-commit,
#     then block-dirty-bitmap-add and -merge in one transaction), and the
#     backup check for bk and bk2 after each step;
# after every step: the backup check: every 4 KiB guest block whose
# content differs from when the bitmaps were added has its bit set in the
# same-named bitmap of some image of the disk's chain (read through
# qemu-nbd -B and qemu-img map x-dirty-bitmap), for b1 and g4k; the
# disabled bitmap is never changed; qemu-img check clean, extsnap verify 0.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap_ops.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/bitmaps.sh"
need_cmd qemu-img qemu-io qemu-nbd qemu-system-x86_64 virt-xml-validate xmllint jq
export TZ=UTC
trap 'vm_kill; rm -rf "$T"' EXIT
S=$T/q.sock
BM_TMP=$T

R=$T/a
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
qemu-img bitmap --add "$IMG/vda.qcow2" b1
qemu-img bitmap --add -g 4k "$IMG/vda.qcow2" g4k
qemu-img bitmap --add -g 1M --disable "$IMG/vda.qcow2" dis
qemu-io -f qcow2 -c 'write -q -P 0xa1 3M 64k' "$IMG/vda.qcow2"  # marks b1, g4k
qemu-img convert -U -O raw "$IMG/vda.qcow2" "$T/t0.raw" # the state b1 and g4k start from

bitmaps() {
    qemu-img info -U --output=json "$1" |
        jq -r '[."format-specific".data.bitmaps // [] | .[] | "\(.name):\(.granularity):\(.flags | join(","))"] | join(" ")'
}
# chain_files LOGICAL: the files of vda's chain, active first
chain_files() {
    local p=$1 b
    while [[ -n $p ]]; do
        echo "$R$p"
        b=$(backing_of "$R$p")
        [[ -z $b || $b == /* ]] || b="$(dirname "$p")/$b"
        p=$b
    done
}
has_bitmap() { [[ " $(bitmaps "$1") " == *" $2:"* ]]; }
# backup_check WHAT: every changed 4 KiB block of vda is dirty in b1 and g4k
# of some image of its chain.
backup_check() {
    local what=$1 n f
    local -a files ranges
    mapfile -t files < <(chain_files "$(cfg_source "$R" tvm vda)")
    qemu-img convert -U -O raw "$(chain_spec "$R" "$(cfg_source "$R" tvm vda)" qcow2)" "$T/now.raw"
    for n in b1 g4k; do
        ranges=()
        for f in "${files[@]}"; do
            has_bitmap "$f" $n && mapfile -t -O "${#ranges[@]}" ranges < <(bitmap_dirty "$f" $n)
        done
        check_eq "$what: changed 4 KiB blocks of vda not in any $n (block indexes)" "" \
            "$(bitmap_missed "$T/t0.raw" "$T/now.raw" "${ranges[@]}")"
    done
    check_eq "$what: disabled bitmap unchanged" "$DIS" "$(bitmap_dirty "$IMG/vda.qcow2" dis | tr '\n' ' ')"
}
DIS=$(bitmap_dirty "$IMG/vda.qcow2" dis | tr '\n' ' ')

# --- A: create -----------------------------------------------------------------
cp "$IMG/vda.qcow2" "$T/qbase.qcow2"
x create tvm s1 -q
check_eq "A: vda's overlay bitmaps" "b1:65536:auto g4k:4096:auto" "$(bitmaps "$IMG/vda.s1")"
check_eq "A: vdb's overlay has none" "" "$(bitmaps "$IMG/vdb.s1")"
# QEMU, as libvirt drives it: the overlay made by qemu-img, then one
# transaction of blockdev-snapshot and block-dirty-bitmap-add.
qemu-img create -q -f qcow2 -b "$T/qbase.qcow2" -F qcow2 "$T/qov.qcow2"
vm_start "$S" -blockdev "driver=qcow2,node-name=base,file.driver=file,file.filename=$T/qbase.qcow2"
vm_qmp blockdev-add "{\"driver\": \"qcow2\", \"node-name\": \"ov\", \"backing\": null,
    \"file\": {\"driver\": \"file\", \"filename\": \"$T/qov.qcow2\"}}" >/dev/null
vm_qmp transaction '{"actions": [
    {"type": "blockdev-snapshot", "data": {"node": "base", "overlay": "ov"}},
    {"type": "block-dirty-bitmap-add", "data": {"node": "ov", "name": "b1", "granularity": 65536, "persistent": true}},
    {"type": "block-dirty-bitmap-add", "data": {"node": "ov", "name": "g4k", "granularity": 4096, "persistent": true}}]}' >/dev/null
vm_qmp blockdev-add "{\"driver\": \"qcow2\", \"node-name\": \"ex\", \"backing\": null, \"read-only\": true,
    \"file\": {\"driver\": \"file\", \"filename\": \"$IMG/vda.s1\"}}" >/dev/null
for n in b1 g4k; do
    check_eq "A: overlay bitmap $n as QEMU's" \
        "$(vm_qmp x-debug-block-dirty-bitmap-sha256 "{\"node\": \"ov\", \"name\": \"$n\"}")" \
        "$(vm_qmp x-debug-block-dirty-bitmap-sha256 "{\"node\": \"ex\", \"name\": \"$n\"}")"
done
vm_quit
check_eq "A: qemu-img info as QEMU's overlay (any order)" "$(bitmaps "$T/qov.qcow2" | tr ' ' '\n' | sort)" \
    "$(bitmaps "$IMG/vda.s1" | tr ' ' '\n' | sort)"
full_check "A: create s1" tvm 1
backup_check "A: create s1"

# --- B: writes, create, delete, commit, revert, refresh --------------------------
guest_write "$R" tvm vda 0x11 0 64k
guest_write "$R" tvm vda 0x12 1M 4k
backup_check "B: writes into s1's overlay"
x create tvm s2 -q
guest_write "$R" tvm vda 0x21 64k 128k
x create tvm s3 -q
guest_write "$R" tvm vda 0x31 2M 64k
backup_check "B: s2, s3 and writes"
x delete tvm s2 -q
full_check "B: delete s2" tvm 1
backup_check "B: delete s2"
guest_write "$R" tvm vda 0x32 3M 4k
x commit tvm s1 s3 -q
full_check "B: commit s1 s3" tvm
backup_check "B: commit s1 s3"
x create tvm s4 -q
guest_write "$R" tvm vda 0x41 1536k 64k
x refresh tvm -q
full_check "B: refresh" tvm 1
backup_check "B: refresh"
guest_write "$R" tvm vda 0x42 2560k 64k
x revert tvm s1 -q
guest_write "$R" tvm vda 0x43 3584k 64k
full_check "B: revert s1" tvm 1
backup_check "B: revert s1"

# --- C: bitmaps BASE lacks, through delete and commit -----------------------------
R=$T/c
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
# new_check WHAT DISK NAME REF.raw: every changed 4 KiB block of DISK since
# NAME was added is dirty in NAME of some image of its chain.
new_check() {
    local what=$1 disk=$2 n=$3 f
    local -a files ranges=()
    mapfile -t files < <(chain_files "$(cfg_source "$R" tvm "$disk")")
    qemu-img convert -U -O raw "$(chain_spec "$R" "$(cfg_source "$R" tvm "$disk")" qcow2)" "$T/now.raw"
    for f in "${files[@]}"; do
        has_bitmap "$f" "$n" && mapfile -t -O "${#ranges[@]}" ranges < <(bitmap_dirty "$f" "$n")
    done
    check_eq "$what: changed 4 KiB blocks of $disk not in any $n (block indexes)" "" \
        "$(bitmap_missed "$4" "$T/now.raw" "${ranges[@]}")"
}
# qemu_copy FILES...: copies of a disk's chain (active image first, BASE
# last) for QEMU, taken before extsnap merges it.
qemu_copy() {
    local i
    mkdir -p "$T/q" && rm -f "$T"/q/*
    for ((i = 0; i < $#; i++)); do cp "${@:i+1:1}" "$T/q/$i.qcow2"; done
    QK=$#
}
# qemu_commit WHAT NAME GRANULARITY MERGED RESULT: QEMU merges the MERGED
# top-most images of the copies' chain below the active one (all of them:
# an active commit) into BASE, then, as libvirt, adds NAME to BASE with the
# merge of those images' NAME in one transaction; compared with extsnap's
# RESULT bit for bit.
qemu_commit() {
    local what=$1 n=$2 g=$3 merged=$4 result=$5 k=$QK i args=() below="" srcs="" st top=""
    for ((i = k - 1; i >= 0; i--)); do
        args+=(-blockdev "driver=qcow2,node-name=n$i,file.driver=file,file.filename=$T/q/$i.qcow2,backing=$below")
        below=n$i
    done
    vm_start "$S" "${args[@]}"
    ((merged == k - 1)) || top=", \"top-node\": \"n$((k - merged - 1))\""
    vm_qmp block-commit "{\"job-id\": \"c\", \"device\": \"n0\"$top, \"base-node\": \"n$((k - 1))\"}" >/dev/null
    for ((i = 0; i < 2000; i++)); do
        st=$(vm_qmp query-jobs | jq -r '.[] | select(.id == "c") | .status')
        [[ -z $st ]] && break
        [[ $st == ready ]] && vm_qmp job-complete '{"id": "c"}' >/dev/null
        sleep 0.02
    done
    for ((i = k - merged - 1; i < k - 1; i++)); do srcs+="{\"node\": \"n$i\", \"name\": \"$n\"},"; done
    vm_qmp transaction "{\"actions\": [
        {\"type\": \"block-dirty-bitmap-add\", \"data\": {\"node\": \"n$((k - 1))\", \"name\": \"$n\", \"granularity\": $g, \"persistent\": true}},
        {\"type\": \"block-dirty-bitmap-merge\", \"data\": {\"node\": \"n$((k - 1))\", \"target\": \"$n\", \"bitmaps\": [${srcs%,}]}}]}" >/dev/null
    vm_qmp blockdev-add "{\"driver\": \"qcow2\", \"node-name\": \"ex\", \"backing\": null, \"read-only\": true,
        \"file\": {\"driver\": \"file\", \"filename\": \"$result\"}}" >/dev/null
    check_eq "$what: $n as QEMU's" \
        "$(vm_qmp x-debug-block-dirty-bitmap-sha256 "{\"node\": \"n$((k - 1))\", \"name\": \"$n\"}")" \
        "$(vm_qmp x-debug-block-dirty-bitmap-sha256 "{\"node\": \"ex\", \"name\": \"$n\"}")"
    vm_quit
}
x create tvm c1 -q
guest_write "$R" tvm vda 0x51 1M 64k
guest_write "$R" tvm vdb 0x52 0 64k
qemu-img bitmap --add "$IMG/vda.c1" bk # a backup tool, after the snapshot
qemu-img convert -U -O raw "$(chain_spec "$R" "$(cfg_source "$R" tvm vda)" qcow2)" "$T/bk0.raw"
guest_write "$R" tvm vda 0x53 2M 64k
guest_write "$R" tvm vdb 0x54 1M 64k
x create tvm c2 -q
qemu-img bitmap --add -g 128k "$IMG/vdb.c2" bk2
qemu-img convert -U -O raw "$(chain_spec "$R" "$(cfg_source "$R" tvm vdb)" qcow2)" "$T/bk20.raw"
guest_write "$R" tvm vda 0x55 3M 4k
guest_write "$R" tvm vdb 0x56 2M 4k
x create tvm c3 -q
guest_write "$R" tvm vda 0x57 0 4k
guest_write "$R" tvm vdb 0x58 3M 64k
check_eq "C: bk carried to c2's and c3's overlays" "bk:65536:auto bk:65536:auto" "$(bitmaps "$IMG/vda.c2") $(bitmaps "$IMG/vda.c3")"
new_check "C: before delete c1" vda bk "$T/bk0.raw"
qemu_copy "$IMG/vda.c3" "$IMG/vda.c2" "$IMG/vda.c1" "$IMG/vda.qcow2"
x delete tvm c1 -q
full_check "C: delete c1" tvm 1
check_eq "C: delete c1: vda.qcow2's bitmaps" "bk:65536:auto" "$(bitmaps "$IMG/vda.qcow2")"
qemu_commit "C: delete c1" bk 65536 1 "$IMG/vda.qcow2"
new_check "C: delete c1" vda bk "$T/bk0.raw"
new_check "C: delete c1" vdb bk2 "$T/bk20.raw"
guest_write "$R" tvm vdb 0x59 0 4k
qemu_copy "$IMG/vdb.c3" "$IMG/vdb.c2" "$IMG/vdb.qcow2"
x commit tvm base c3 -q
full_check "C: commit base c3" tvm
check_eq "C: commit base c3: vdb.qcow2's bitmaps" "bk2:131072:auto" "$(bitmaps "$IMG/vdb.qcow2")"
qemu_commit "C: commit base c3" bk2 131072 2 "$IMG/vdb.qcow2"
new_check "C: commit base c3" vda bk "$T/bk0.raw"
new_check "C: commit base c3" vdb bk2 "$T/bk20.raw"
finish
