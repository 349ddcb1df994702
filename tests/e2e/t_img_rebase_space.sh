#!/usr/bin/env bash
# The free-space check of the safe rebase (img rebase without -u): refused
# before the first write when IMAGE's file system may not hold what the
# rebase writes. On a small tmpfs mounted by the test (IMAGE there, its
# backing files outside), for each case (drop a middle layer, flatten,
# flatten with -c, an image with persistent bitmaps, 512-byte clusters):
#  1. with nothing free: exit 1, one error line naming the bound E, IMAGE
#     byte for byte as before;
#  2. with room: the space the rebase really takes A (df before and after);
#     E >= A (never an under-estimate);
#  3. with exactly E free (rounded up to the page): it goes through, and
#     the guest content equals qemu-img rebase's on a copy (qemu-img
#     compare), and qemu-img check is clean.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img qemu-io fallocate df sha256sum
mnt=$T/mnt
trap 'mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"; rm -rf "$T"' EXIT
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=64M tmpfs "$mnt" 2>"$T/mount.log"; then
    echo "SKIP: cannot mount a tmpfs here ($(cat "$T/mount.log")); this test needs a small file system"
    exit 77
fi
PAGE=$(getconf PAGESIZE)

avail() { df -B1 --output=avail "$mnt" | tail -1; }
fill_to_free() { # BYTES
    rm -f "$mnt/filler"
    local a
    a=$(avail)
    if ((a > $1)); then fallocate -l $((a - $1)) "$mnt/filler"; fi
}

# make CLUSTER [bitmaps]: base and mid in $T, top on the tmpfs; mid holds
# 6 MiB top does not, top 1 MiB of its own.
make_chain() {
    local cs=$1
    rm -f "$T/base.qcow2" "$T/mid.qcow2" "$mnt/top.qcow2"
    qemu-img create -q -f qcow2 -o cluster_size="$cs" "$T/base.qcow2" 64M
    qemu-io -c "write -P 0x11 0 4M" "$T/base.qcow2" >/dev/null
    qemu-img create -q -f qcow2 -o cluster_size="$cs" -b "$T/base.qcow2" -F qcow2 "$T/mid.qcow2"
    qemu-io -c "write -P 0x22 2M 4M" -c "write -P 0x23 40M 2M" "$T/mid.qcow2" >/dev/null
    qemu-img create -q -f qcow2 -o cluster_size="$cs" -b "$T/mid.qcow2" -F qcow2 "$mnt/top.qcow2"
    qemu-io -c "write -P 0x33 3M 1M" "$mnt/top.qcow2" >/dev/null
    if [[ ${2:-} == bitmaps ]]; then
        qemu-img bitmap --add -g 4096 "$mnt/top.qcow2" b4k
        qemu-img bitmap --add "$mnt/top.qcow2" b64k
    fi
}

# case NAME CLUSTER BITMAPS REBASE-ARGS...
check_case() {
    local name=$1 cs=$2 bm=$3 rc est a0 a1 actual sum
    shift 3
    local args=("$@")
    # qemu-img's result on a copy: the oracle for the content.
    make_chain "$cs" "$bm"
    cp "$mnt/top.qcow2" "$T/ref.qcow2"
    local qargs=("${args[@]}")
    [[ ${qargs[0]} == -c ]] && qargs=("${qargs[@]:1}") # qemu-img 7.2 has no rebase -c
    qemu-img rebase -q "${qargs[@]}" "$T/ref.qcow2"
    # 1. Nothing free: refused, nothing changed.
    fill_to_free 0
    sum=$(sha256sum <"$mnt/top.qcow2")
    rc=0
    "$EXTSNAP" img rebase "${args[@]}" "$mnt/top.qcow2" >"$T/out" 2>&1 || rc=$?
    ok_eq "$name: refused when full" 1 "$rc" || true
    ok_eq "$name: one error line" 1 "$(wc -l <"$T/out")" || true
    grep -q "not enough free space for the rebase" "$T/out" || fail "$name: message [$(head -c 300 "$T/out")]"
    ok_eq "$name: top unchanged" "$sum" "$(sha256sum <"$mnt/top.qcow2")" || true
    est=$(grep -o '(\([0-9]*\) bytes)' "$T/out" | head -1 | tr -dc 0-9)
    if [[ -z $est ]]; then
        fail "$name: no estimate in [$(head -c 300 "$T/out")]"
        return
    fi
    # 2. What it really takes, with room.
    rm -f "$mnt/filler"
    a0=$(avail)
    ok_rc "$name: rebase with room" 0 "$EXTSNAP" img rebase "${args[@]}" "$mnt/top.qcow2" || true
    a1=$(avail)
    actual=$((a0 - a1))
    echo "$name: estimate $est bytes, taken $actual bytes"
    ES_CHECKS=$((ES_CHECKS + 1))
    ((est >= actual)) || fail "$name: estimate $est < $actual bytes the rebase took"
    # 3. Exactly the estimate free: it suffices, and the result is qemu-img's.
    make_chain "$cs" "$bm"
    fill_to_free $(((est + PAGE - 1) / PAGE * PAGE))
    ok_rc "$name: rebase with the estimate free" 0 "$EXTSNAP" img rebase "${args[@]}" "$mnt/top.qcow2" || true
    ok_rc "$name: content equals qemu-img rebase's" 0 qemu-img compare -q "$T/ref.qcow2" "$mnt/top.qcow2" || true
    ok_rc "$name: qemu-img check" 0 qemu-img check -q "$mnt/top.qcow2" || true
    rm -f "$mnt/filler" "$mnt/top.qcow2" "$T/ref.qcow2"
}

check_case drop-mid 65536 "" -b "$T/base.qcow2" -F qcow2
check_case flatten 65536 "" -b ""
check_case flatten-c 65536 "" -c -b ""
check_case bitmaps 65536 bitmaps -b "$T/base.qcow2" -F qcow2
check_case small-clusters 512 "" -b ""

# Nothing to copy: no space needed, so a full file system does not refuse.
make_chain 65536 ""
qemu-img rebase -q -u -b "$T/mid.qcow2" -F qcow2 "$mnt/top.qcow2"
fill_to_free 0
ok_rc "same backing, full file system: nothing to write, done" 0 \
    "$EXTSNAP" img rebase -b "$T/mid.qcow2" -F qcow2 "$mnt/top.qcow2" || true

finish
