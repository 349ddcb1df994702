#!/usr/bin/env bash
# The free-space estimate of a commit (issue #10, §1 second and fourth
# bullets): one figure, from the allocation maps, for img commit, delete and
# commit. On a small tmpfs mounted by the test (SKIP when mounting is not
# allowed here), for each case of the matrix:
#   overwrite in place, fresh allocation (64 KiB and 512-byte clusters: the
#   latter grows the refcount table), zero clusters over data, compressed
#   clusters in BASE, a BASE made with preallocation=metadata (the writes
#   land in holes of its file), a sparse raw BASE written in 512-byte pieces
#   (the file system allocates whole 4 KiB blocks):
#  1. the estimate E: what 'img commit -d' says it may need when nothing is
#     free (0 when it goes through on a full file system);
#  2. the space the commit really takes A (df before and after, with room);
#     E >= A (never an under-estimate) and E <= A + one L2 table and one
#     refcount block per GiB merged (+ one file-system block of rounding
#     when clusters are smaller than blocks);
#  3. with exactly E free (rounded up to the page), the commit goes through
#     and BASE reads what TOP read (qemu-img compare): the estimate suffices.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
if ! command -v qemu-img >/dev/null || ! command -v qemu-io >/dev/null; then
    echo "SKIP: qemu-img and qemu-io are the oracles of this test"
    exit 77
fi
need_cmd fallocate df
mnt=$T/mnt
trap 'mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"; rm -rf "$T"' EXIT
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=48M tmpfs "$mnt" 2>"$T/mount.log"; then
    echo "SKIP: cannot mount a tmpfs here ($(cat "$T/mount.log")); this test needs a small file system"
    exit 77
fi
PAGE=$(getconf PAGESIZE)
GIB=$((1 << 30))

avail() { df -B1 --output=avail "$mnt" | tail -1; }
fill_to_free() { # BYTES
    rm -f "$mnt/filler"
    local a
    a=$(avail)
    if ((a > $1)); then fallocate -l $((a - $1)) "$mnt/filler"; fi
}

# check_case NAME CLUSTER MERGED FORMAT MAKE: MAKE (a function) makes BASE
# ($mnt/base, of FORMAT) and TOP ($T/top.qcow2, on another file system),
# the same each time it runs; MERGED: guest bytes the commit covers (for
# the bound on the over-estimate).
check_case() {
    local name=$1 cs=$2 merged=$3 fmt=$4 make=$5 rc est a0=0 a1=0 actual bound
    rm -f "$mnt/filler" "$mnt/base" "$T/top.qcow2"
    $make
    qemu-img convert -U -O raw "$T/top.qcow2" "$T/view.raw"
    # 1. The estimate, on a full file system.
    fill_to_free 0
    rc=0
    "$EXTSNAP" img commit -d -q "$T/top.qcow2" >"$T/out" 2>&1 || rc=$?
    if ((rc == 0)); then
        est=0 # it went through with nothing free: it took nothing
    else
        est=$(grep -o '(\([0-9]*\) bytes)' "$T/out" | head -1 | tr -dc 0-9)
        if [[ -z $est ]]; then
            fail "$name: no estimate in [$(head -c 300 "$T/out")]"
            return
        fi
        # 2. What it really takes, with room.
        rm -f "$mnt/filler"
        a0=$(avail)
        rc=0
        "$EXTSNAP" img commit -d -q "$T/top.qcow2" >"$T/out" 2>&1 || rc=$?
        ok_eq "$name: commit with room ($(head -c 300 "$T/out"))" 0 "$rc" || true
        a1=$(avail)
    fi
    actual=$((a0 - a1))
    bound=$(( (2 * cs) * ((merged + GIB - 1) / GIB) ))
    ((cs < PAGE)) && bound=$((bound + 2 * PAGE))
    echo "$name: estimate $est bytes, taken $actual bytes"
    ES_CHECKS=$((ES_CHECKS + 2))
    ((est >= actual)) || fail "$name: estimate $est < $actual bytes the commit took"
    ((est <= actual + bound)) || fail "$name: estimate $est > $actual taken + $bound"
    # 3. Exactly the estimate free: it suffices.
    rm -f "$mnt/filler" "$mnt/base" "$T/top.qcow2"
    $make
    fill_to_free $(( (est + PAGE - 1) / PAGE * PAGE ))
    rc=0
    "$EXTSNAP" img commit -d -q "$T/top.qcow2" >"$T/out" 2>&1 || rc=$?
    ok_eq "$name: commit with the estimate free ($(head -c 300 "$T/out"))" 0 "$rc" || true
    ok_rc "$name: BASE reads what TOP read" 0 qemu-img compare -q -f raw -F "$fmt" "$T/view.raw" "$mnt/base" || true
    if [[ $fmt == qcow2 ]]; then
        ok_rc "$name: qemu-img check of BASE" 0 qemu-img check -q "$mnt/base" || true
    fi
    rm -f "$mnt/filler" "$mnt/base" "$T/top.qcow2" "$T/view.raw"
}

top_over() { # BACKING-FORMAT [qemu-img create options]
    qemu-img create -q -f qcow2 -b "$mnt/base" -F "$1" "${@:2}" "$T/top.qcow2" 32M
}

# Overwrite in place: TOP rewrites data BASE has.
make_overwrite() {
    qemu-img create -q -f qcow2 "$mnt/base" 32M
    qemu-io -c 'write -P 1 0 16M' "$mnt/base" >/dev/null
    top_over qcow2
    qemu-io -c 'write -P 2 0 8M' "$T/top.qcow2" >/dev/null
}
check_case "overwrite in place" 65536 $((8 << 20)) qcow2 make_overwrite

# Fresh allocation: TOP writes where BASE has nothing.
make_fresh() {
    qemu-img create -q -f qcow2 "$mnt/base" 32M
    qemu-io -c 'write -P 1 0 1M' "$mnt/base" >/dev/null
    top_over qcow2
    qemu-io -c 'write -P 2 4M 6M' -c 'write -P 3 20M 2M' "$T/top.qcow2" >/dev/null
}
check_case "fresh allocation" 65536 $((8 << 20)) qcow2 make_fresh

# Fresh allocation with 512-byte clusters: new refcount blocks, a larger
# refcount table, many L2 tables.
make_small() {
    qemu-img create -q -f qcow2 -o cluster_size=512 "$mnt/base" 32M
    qemu-io -c 'write -P 1 0 64k' "$mnt/base" >/dev/null
    top_over qcow2
    qemu-io -c 'write -P 2 1M 10M' "$T/top.qcow2" >/dev/null
}
check_case "fresh allocation, 512-byte clusters" 512 $((10 << 20)) qcow2 make_small

# A BASE copied sparsely (cp --sparse=always, or any copy that skips zero
# blocks): its L2 tables and refcount blocks are partly holes, filled again
# when the commit rewrites them in place (here the L2 entry of 100 MiB lies
# in a block of zeroes between those of 0 and 250 MiB).
make_sparse_copy() {
    qemu-img create -q -f qcow2 "$T/dense.qcow2" 256M
    qemu-io -c 'write -P 1 0 1M' -c 'write -P 1 250M 64k' "$T/dense.qcow2" >/dev/null
    cp --sparse=always "$T/dense.qcow2" "$mnt/base"
    rm -f "$T/dense.qcow2"
    qemu-img create -q -f qcow2 -b "$mnt/base" -F qcow2 "$T/top.qcow2" 256M
    qemu-io -c 'write -P 2 0 1M' -c 'write -P 3 100M 64k' "$T/top.qcow2" >/dev/null
}
check_case "sparse copy of BASE" 65536 $(((1 << 20) + 65536)) qcow2 make_sparse_copy

# Zero clusters over data.
make_zero() {
    qemu-img create -q -f qcow2 "$mnt/base" 32M
    qemu-io -c 'write -P 1 0 12M' "$mnt/base" >/dev/null
    top_over qcow2
    qemu-io -c 'write -z 0 8M' "$T/top.qcow2" >/dev/null
}
check_case "zero clusters" 65536 $((8 << 20)) qcow2 make_zero

# Compressed clusters in BASE, rewritten: they cannot be overwritten in place.
make_compressed() {
    qemu-img create -q -f qcow2 "$T/plain.qcow2" 32M
    qemu-io -c 'write -P 1 0 12M' "$T/plain.qcow2" >/dev/null
    qemu-img convert -c -O qcow2 "$T/plain.qcow2" "$mnt/base"
    rm -f "$T/plain.qcow2"
    top_over qcow2
    qemu-io -c 'write -P 2 0 6M' "$T/top.qcow2" >/dev/null
}
check_case "compressed clusters" 65536 $((6 << 20)) qcow2 make_compressed

# preallocation=metadata: every cluster has a host offset, the file is holes.
make_prealloc() {
    qemu-img create -q -f qcow2 -o preallocation=metadata "$mnt/base" 32M
    top_over qcow2
    qemu-io -c 'write -P 2 0 8M' "$T/top.qcow2" >/dev/null
}
check_case "preallocation=metadata BASE" 65536 $((8 << 20)) qcow2 make_prealloc

# A sparse raw BASE, TOP writing 512 bytes in every 4 KiB of 8 MiB.
PIECES=()
for ((off = 0; off < (8 << 20); off += 4096)); do PIECES+=(-c "write -q -P 5 $off 512"); done
make_raw_pieces() {
    qemu-img create -q -f raw "$mnt/base" 32M
    top_over raw -o cluster_size=512
    qemu-io "${PIECES[@]}" "$T/top.qcow2" >/dev/null
}
check_case "sparse raw BASE, 512-byte pieces" 65536 $((8 << 20)) raw make_raw_pieces

finish
