#!/usr/bin/env bash
# delete's free-space check and late refusals (issue #10, §1 second and
# third bullets), with the images of lib/snap.sh's domain tvm on a small
# tmpfs mounted by the test (SKIP when mounting is not allowed here):
#  A. the issue's case, scaled down by 5: a 64 MiB file system, BASE holds
#     36 MiB, the overlay rewrites 0-18 MiB that BASE already has, about
#     6 MiB free: 'delete tvm f1' needs no space and goes through (it was
#     refused, "may need up to" what the overlay holds), the guest content
#     is kept and the file system lost no space;
#  B. two disks whose merges each fit alone but not together on one file
#     system: refused before anything is written, naming both disks (the
#     second merge used to fail past the point of no return with a false
#     "nothing was changed"), every file unchanged, no journal; with room
#     for both it goes through;
#  C. a BASE carrying a persistent dirty bitmap marked in use (vdb's, vda's
#     BASE clean): refused before anything is written (a refusal of the
#     engine used to come after vda was merged, with the journal left),
#     every file unchanged, no journal;
#  D. an image the delete repoints whose cluster 0 cannot hold the new
#     backing name: refused before anything is written;
#  E. a read-only config directory (the config is rewritten after the
#     merges): refused before anything is written.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap_ops.sh"
if ! command -v qemu-img >/dev/null || ! command -v qemu-io >/dev/null; then
    echo "SKIP: qemu-img and qemu-io are the oracles of this test"
    exit 77
fi
need_cmd xmllint virt-xml-validate fallocate df
export TZ=UTC

MOUNTS=()
cleanup() {
    local m
    for m in "${MOUNTS[@]}"; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
    rm -rf "$T"
}
trap cleanup EXIT

# small_fs R SIZE: a tmpfs of SIZE for R's images (skip the test if we cannot).
small_fs() {
    local r=$1 size=$2
    snap_root_new "$r"
    if ! mount -t tmpfs -o "size=$size" tmpfs "$r$SNAP_IMG" 2>"$T/mount.log"; then
        echo "SKIP: cannot mount a tmpfs here ($(cat "$T/mount.log")); this test needs a small file system"
        exit 77
    fi
    MOUNTS+=("$r$SNAP_IMG")
}

# fill_to_free DIR MIB: leave about MIB MiB free on DIR's file system.
fill_to_free() {
    local dir=$1 avail
    rm -f "$dir/filler"
    avail=$(df -B1 --output=avail "$dir" | tail -1)
    fallocate -l $((avail - $2 * 1048576)) "$dir/filler"
}
avail_of() { df -B1 --output=avail "$1" | tail -1; }

# refused_early WHAT PATTERN CMD...: exit 1, PATTERN in stderr, every file
# under the root unchanged, no journal.
refused_early() {
    local what=$1 pat=$2 rc=0 before after
    shift 2
    before=$(root_sums "$R")
    "$@" >"$T/out" 2>"$T/err" || rc=$?
    check_eq "$what: exit status ($(head -c 400 "$T/err"))" 1 "$rc"
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -qF -- "$pat" "$T/err" || fail "$what: stderr lacks [$pat]: $(head -c 400 "$T/err")"
    after=$(root_sums "$R")
    check_eq "$what: every file under the root unchanged" "$before" "$after"
    check_eq "$what: no journal left" "" "$(ls -a "$R$SNAP_DIR" | grep -i journal || true)"
}

# --- A: a merge that overwrites in place needs no space ------------------------
R=$T/a
small_fs "$R" 64M
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
qemu-img create -q -f qcow2 "$IMG/vda.qcow2" 64M
qemu-io -f qcow2 -c 'write -P 0xa1 0 36M' "$IMG/vda.qcow2" >/dev/null
x create tvm f1 -q
guest_write "$R" tvm vda 0xb2 0 18M
LIVE=$(all_guest_sums "$R" tvm)
fill_to_free "$IMG" 6
before=$(avail_of "$IMG")
rc=0
x delete tvm f1 -q >"$T/out" 2>"$T/err" || rc=$?
check_eq "A: delete f1 with 6 MiB free, nothing to allocate ($(head -c 400 "$T/err"))" 0 "$rc"
check_eq "A: live content kept" "$LIVE" "$(all_guest_sums "$R" tvm)"
full_check "A: delete f1" tvm 0
after=$(avail_of "$IMG")
# The overlay (18 MiB) is gone and nothing was allocated: more room than before.
ES_CHECKS=$((ES_CHECKS + 1))
((after >= before)) || fail "A: free space went from $before to $after bytes"

# --- B: two disks on one file system, each fits, both do not -------------------
R=$T/b
small_fs "$R" 48M
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
qemu-img create -q -f qcow2 "$IMG/vda.qcow2" 32M
qemu-img create -q -f qcow2 "$IMG/vdb.qcow2" 32M
x create tvm s1 -q
guest_write "$R" tvm vda 0xc1 8M 6M
guest_write "$R" tvm vdb 0xc2 8M 6M
LIVE=$(all_guest_sums "$R" tvm)
fill_to_free "$IMG" 9
refused_early "B: delete s1, 6 MiB to allocate per disk, 9 MiB free" "merging disks vda, vdb" \
    x delete tvm s1
refused_early "B: the same with --dry-run" "merging disks vda, vdb" x delete tvm s1 --dry-run
fill_to_free "$IMG" 14
check_rc "B: delete s1 with room for both" 0 x delete tvm s1 -q
check_eq "B: live content kept" "$LIVE" "$(all_guest_sums "$R" tvm)"
full_check "B: delete s1" tvm 0

# --- C: an inconsistent persistent dirty bitmap in one BASE -------------------
R=$T/c
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
x create tvm s1 -q
guest_write "$R" tvm vda 0xd1 0 64k
guest_write "$R" tvm vdb 0xd2 0 64k
qemu-img bitmap --add "$IMG/vdb.qcow2" b0
bitmap_mark_in_use "$IMG/vdb.qcow2"
refused_early "C: delete s1, vdb's BASE has a bitmap in use" "bitmap 'b0' marked in use" x delete tvm s1
check_rc "C: the bitmap removed" 0 qemu-img bitmap --remove "$IMG/vdb.qcow2" b0
check_rc "C: delete s1 then" 0 x delete tvm s1 -q
full_check "C: delete s1" tvm 0
# --- D: a repointed image whose new backing name no longer fits ---------------
# vda's base image has a long name; vda.s2 (repointed from vda.s1 to it by
# 'delete s1') has 512-byte clusters: the old name fits in its cluster 0,
# the new one does not, which the rebase refuses. It used to be found after
# the merge, past the point of no return.
R=$T/d
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
LONGDIR=$(printf 'd%.0s' {1..150})
LONGEXT=$(printf 'x%.0s' {1..250})
mkdir "$IMG/$LONGDIR"
mv "$IMG/vda.qcow2" "$IMG/$LONGDIR/vda.$LONGEXT"
sed -i "s|$SNAP_IMG/vda.qcow2|$SNAP_IMG/$LONGDIR/vda.$LONGEXT|" "$R$SNAP_CFG/tvm.xml"
x create tvm s1 -q
guest_write "$R" tvm vda 0xe1 0 64k
x create tvm s2 -q
qemu-img create -q -f qcow2 -o cluster_size=512 -u -b "$SNAP_IMG/$LONGDIR/vda.s1" -F qcow2 \
    "$IMG/$LONGDIR/vda.s2" 4M
refused_early "D: delete s1, vda.s2's new backing name does not fit" "does not fit" x delete tvm s1

# --- E: the config directory is read-only --------------------------------------
# Deleting the current leaf s1 merges the live overlays and rewrites the
# config: a read-only config directory used to stop it after the merges.
R=$T/e
snap_make_tvm "$R"
x create tvm s1 -q
guest_write "$R" tvm vda 0xf1 0 64k
LIVE=$(all_guest_sums "$R" tvm)
if mount --bind "$R$SNAP_CFG" "$R$SNAP_CFG" 2>"$T/mount.log"; then
    MOUNTS+=("$R$SNAP_CFG")
    mount -o remount,bind,ro "$R$SNAP_CFG"
    refused_early "E: delete s1 with the config directory read-only" "cannot be written" \
        x delete tvm s1
    umount "$R$SNAP_CFG"
    check_rc "E: delete s1 once it is writable" 0 x delete tvm s1 -q
    check_eq "E: live content kept" "$LIVE" "$(all_guest_sums "$R" tvm)"
    full_check "E: delete s1" tvm 0
else
    echo "SKIP: cannot bind-mount here ($(cat "$T/mount.log"))"
    exit 77
fi
finish
