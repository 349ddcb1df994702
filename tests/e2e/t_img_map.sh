#!/usr/bin/env bash
# extsnap img map against qemu-img map (the oracle): the whole JSON array
# must be identical, and the human text too, for chains built with qemu-img
# and qemu-io (fixed cases plus random 3-layer chains; the seed is printed).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img qemu-io jq timeout

SEED=${ES_SEED:-$RANDOM}
echo "t_img_map: seed $SEED (rerun with ES_SEED=$SEED)"
RANDOM=$SEED

# check_map WHAT IMAGE [map options]: JSON (compared as parsed arrays, then
# byte for byte) and human output identical to qemu-img's.
check_map() {
    local what=$1 img=$2 rc=0 d
    shift 2
    qemu-img map --output=json "$@" "$img" >"$T/q.json"
    timeout 60 "$EXTSNAP" img map --output=json "$@" "$img" >"$T/e.json" 2>"$T/e.err" || rc=$?
    ES_CHECKS=$((ES_CHECKS + 1))
    if [[ $rc -ne 0 ]]; then
        fail "$what: extsnap img map --output=json exited $rc: $(cat "$T/e.err")"
        return
    fi
    if ! d=$(diff <(jq -c '.[]' "$T/e.json" 2>&1) <(jq -c '.[]' "$T/q.json")); then
        fail "$what: map differs from qemu-img (< extsnap, > qemu-img) [seed $SEED]:"$'\n'"$d"
        return
    fi
    ES_CHECKS=$((ES_CHECKS + 1))
    cmp -s "$T/e.json" "$T/q.json" || fail "$what: JSON text formatting differs from qemu-img's"
    # Human output: qemu-img refuses compressed clusters; so must we.
    local rc_q=0 rc_e=0
    qemu-img map "$@" "$img" >"$T/q.txt" 2>/dev/null || rc_q=$?
    timeout 60 "$EXTSNAP" img map "$@" "$img" >"$T/e.txt" 2>"$T/e.err" || rc_e=$?
    ES_CHECKS=$((ES_CHECKS + 1))
    if [[ $rc_q -ne 0 ]]; then
        [[ $rc_e -eq 1 ]] || fail "$what: qemu-img map (human) failed, extsnap exited $rc_e"
        [[ $rc_e -ne 1 ]] || grep -q '^extsnap: img map: .*compressed' "$T/e.err" ||
            fail "$what: human map error does not explain compressed clusters: $(cat "$T/e.err")"
    elif [[ $rc_e -ne 0 ]]; then
        fail "$what: extsnap img map (human) exited $rc_e: $(cat "$T/e.err")"
    elif ! d=$(diff "$T/e.txt" "$T/q.txt"); then
        fail "$what: human map differs (< extsnap, > qemu-img):"$'\n'"$d"
    fi
}

cd "$T"

# --- single images --------------------------------------------------------
for cs in 512 4k 64k 2M; do
    qemu-img create -q -f qcow2 -o cluster_size=$cs cs$cs.qcow2 8M
    qemu-io -c 'write -P 0x11 0 100k' -c 'write -z 1M 64k' -c 'write -P 0x22 3M 4k' \
        -c 'write -z 3M 2k' cs$cs.qcow2 >/dev/null
    check_map "cluster_size=$cs" cs$cs.qcow2
done
qemu-img create -q -f qcow2 empty.qcow2 16M
check_map "empty image" empty.qcow2
qemu-img create -q -f qcow2 size0.qcow2 0
check_map "zero-size image" size0.qcow2
# Zero clusters that keep their host cluster (write -z without unmap) map
# with an offset; unmapped ones without.
qemu-img create -q -f qcow2 zeroalloc.qcow2 4M
qemu-io -c 'write -P 1 0 1M' -c 'write -z 64k 64k' -c 'write -z -u 192k 64k' \
    -c 'write -z 256k 128k' -c 'write -z -u 384k 64k' -c 'write -z 448k 64k' zeroalloc.qcow2 >/dev/null
check_map "zero-alloc and zero-plain clusters" zeroalloc.qcow2
qemu-img create -q -f qcow2 -o extended_l2=on xl2.qcow2 4M
qemu-io -c 'write -P 1 4k 4k' -c 'write -P 2 200k 4k' -c 'write -z 300k 8k' \
    -c 'write -P 3 1M 64k' -c 'write -z -u 1M 2k' xl2.qcow2 >/dev/null
check_map "extended L2 subclusters" xl2.qcow2
qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 4M
qemu-io -c 'write -P 1 0 64k' -c 'write -z 1M 64k' v2.qcow2 >/dev/null
check_map "v2 image" v2.qcow2
qemu-img create -q -f qcow2 src.qcow2 4M
qemu-io -c 'write -P 0x41 0 1M' -c 'write -P 0x42 2M 64k' -c 'write -z 3M 64k' src.qcow2 >/dev/null
qemu-img convert -c -O qcow2 src.qcow2 compressed.qcow2
check_map "compressed clusters" compressed.qcow2
qemu-img create -q -f qcow2 -b compressed.qcow2 -F qcow2 over-compressed.qcow2
qemu-io -c 'write -P 5 64k 64k' over-compressed.qcow2 >/dev/null
check_map "overlay over compressed clusters" over-compressed.qcow2
qemu-img create -q -f raw disk.raw 8M
qemu-io -f raw -c 'write -P 9 1M 64k' -c 'write -P 8 5M 4k' disk.raw >/dev/null
check_map "raw image with holes" disk.raw
truncate -s 4M sparse.raw
check_map "raw image, all hole" sparse.raw
head -c 1000 /dev/urandom >odd.raw # QEMU counts whole sectors: a zero tail to 1024
check_map "raw image of 1000 bytes" odd.raw

qemu-img convert -c -O qcow2 -o compression_type=zstd src.qcow2 compressed-zstd.qcow2
check_map "zstd compressed clusters" compressed-zstd.qcow2
for rb in 1 64; do
    qemu-img create -q -f qcow2 -o refcount_bits=$rb rb$rb.qcow2 4M
    qemu-io -c 'write -P 3 0 128k' -c 'write -z 1M 64k' rb$rb.qcow2 >/dev/null
    check_map "refcount_bits=$rb" rb$rb.qcow2
done
qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 4M
(qemu-io -c 'write -P 1 0 64k' -c abort dirty.qcow2 >/dev/null 2>&1 || true) 2>/dev/null
check_map "dirty image (lazy refcounts + abort)" dirty.qcow2
# After an internal snapshot clusters are shared (refcount 2, no COPIED flag).
qemu-img create -q -f qcow2 snaps.qcow2 4M
qemu-io -c 'write -P 1 0 256k' snaps.qcow2 >/dev/null
qemu-img snapshot -c first snaps.qcow2
qemu-io -c 'write -P 2 64k 64k' -c 'write -z 128k 64k' snaps.qcow2 >/dev/null
qemu-img bitmap --add snaps.qcow2 bm0
check_map "internal snapshot and bitmap" snaps.qcow2

# A 16 TiB image with a few clusters: the map must not walk the virtual size.
qemu-img create -q -f qcow2 huge.qcow2 16T
qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 8T 64k' -c 'write -z 12T 1M' huge.qcow2 >/dev/null
start=$(date +%s)
check_map "16 TiB sparse image" huge.qcow2
(($(date +%s) - start < 20)) || fail "16 TiB sparse image: map took $(($(date +%s) - start)) s"
qemu-img create -q -f qcow2 -o extended_l2=on hugexl2.qcow2 16T
qemu-io -c 'write -P 1 4k 4k' -c 'write -P 2 8T 64k' hugexl2.qcow2 >/dev/null
check_map "16 TiB sparse image, extended L2" hugexl2.qcow2

# --- chains ----------------------------------------------------------------
qemu-img create -q -f qcow2 b1.qcow2 4M
qemu-io -c 'write -P 1 0 1M' -c 'write -z 2M 128k' b1.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b b1.qcow2 -F qcow2 b2.qcow2
qemu-io -c 'write -P 2 512k 64k' -c 'write -z 3M 64k' -c 'write -z 128k 64k' b2.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b b2.qcow2 -F qcow2 b3.qcow2
qemu-io -c 'write -P 3 64k 64k' -c 'write -z -u 2M 64k' -c 'discard 0 64k' b3.qcow2 >/dev/null
check_map "3-layer chain" b3.qcow2
check_map "3-layer chain, absolute path" "$T/b3.qcow2"
check_map "3-layer chain, --start-offset/--max-length" b3.qcow2 --start-offset=100000 --max-length=2500000
check_map "3-layer chain, --start-offset past the end" b3.qcow2 --start-offset=5000000
check_map "3-layer chain, --max-length=0" b3.qcow2 --max-length=0
# Backing shorter than the overlay: beyond it the overlay reads zeroes itself.
qemu-img create -q -f qcow2 short.qcow2 1M
qemu-io -c 'write -P 1 0 512k' short.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b short.qcow2 -F qcow2 long.qcow2 4M
qemu-io -c 'write -P 2 2M 64k' long.qcow2 >/dev/null
check_map "backing shorter than overlay" long.qcow2
# Raw base, relative names in other directories.
mkdir -p other sub/dir vm
qemu-img create -q -f raw other/base.raw 4M
qemu-io -f raw -c 'write -P 7 0 64k' -c 'write -P 7 3M 8k' other/base.raw >/dev/null
qemu-img create -q -f qcow2 -b ../other/base.raw -F raw vm/mid.qcow2
qemu-io -c 'write -P 6 1M 64k' vm/mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b vm/mid.qcow2 -F qcow2 top-raw.qcow2
qemu-io -c 'write -z 3M 64k' top-raw.qcow2 >/dev/null
check_map "chain over a raw base in ../other" top-raw.qcow2
check_map "chain over a raw base in ../other (./ path)" ./top-raw.qcow2
# A backing name of exactly 1023 bytes (a long relative path).
c250=$(printf 'd%.0s' {1..250})
long="$c250/$c250/$c250/$c250/"
long="$long$(printf 'b%.0s' $(seq 1 $((1023 - ${#long} - 6)))).qcow2"
ok_eq "test setup: long backing name length" 1023 "${#long}"
mkdir -p "$(dirname "$long")"
qemu-img create -q -f qcow2 "$long" 4M
qemu-io -c 'write -P 1 0 64k' "$long" >/dev/null
qemu-img create -q -f qcow2 -b "$long" -F qcow2 longname.qcow2
qemu-io -c 'write -P 2 1M 64k' longname.qcow2 >/dev/null
check_map "1023-byte backing name" longname.qcow2
# v2 overlay: write-zeroes over a backing allocates a data cluster.
qemu-img create -q -f qcow2 -o compat=0.10 -b b1.qcow2 -F qcow2 v2top.qcow2
qemu-io -c 'write -z 0 64k' -c 'write -P 4 1M 4k' v2top.qcow2 >/dev/null
check_map "v2 overlay" v2top.qcow2
# Extended L2 chain: unallocated subclusters of an allocated cluster fall
# through to the backing.
qemu-img create -q -f qcow2 -o extended_l2=on xbase.qcow2 4M
qemu-io -c 'write -P 1 0 256k' xbase.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o extended_l2=on -b xbase.qcow2 -F qcow2 xtop.qcow2
qemu-io -c 'write -P 2 4k 4k' -c 'write -z 40k 8k' -c 'write -P 3 300k 2k' xtop.qcow2 >/dev/null
check_map "extended L2 chain" xtop.qcow2

# --- random 3-layer chains ---------------------------------------------------
# Each layer gets random data writes, zero writes (with and without unmap)
# and discards at 512-byte granularity over a 4 MiB guest.
random_ops() {
    local n=$1 i op off len pat
    for ((i = 0; i < n; i++)); do
        off=$(((RANDOM % 8192) * 512))
        len=$(((RANDOM % 384 + 1) * 512))
        ((off + len <= 4194304)) || len=$((4194304 - off))
        pat=$((RANDOM % 255 + 1))
        case $((RANDOM % 5)) in
        0 | 1) op="write -P $pat $off $len" ;;
        2) op="write -z $off $len" ;;
        3) op="write -z -u $off $len" ;;
        4) op="discard $off $len" ;;
        esac
        printf -- "-c\n%s\n" "$op"
    done
}
for round in 1 2 3 4; do
    opts=""
    case $round in
    2) opts="-o cluster_size=4k" ;;
    3) opts="-o extended_l2=on" ;;
    4) opts="-o cluster_size=512" ;;
    esac
    rm -f r0.qcow2 r1.qcow2 r2.qcow2
    qemu-img create -q -f qcow2 $opts r0.qcow2 4M
    qemu-img create -q -f qcow2 $opts -b r0.qcow2 -F qcow2 r1.qcow2
    qemu-img create -q -f qcow2 $opts -b r1.qcow2 -F qcow2 r2.qcow2
    for layer in r0 r1 r2; do
        mapfile -t ops < <(random_ops 12)
        qemu-io "${ops[@]}" $layer.qcow2 >/dev/null
    done
    check_map "random chain round $round ($opts)" r2.qcow2
    check_map "random chain round $round, middle" r1.qcow2
done

# --- errors and usage ------------------------------------------------------
ok_rc "missing image" 1 "$EXTSNAP" img map nonexistent.qcow2 2>/dev/null
qemu-img create -q -f qcow2 -u -b missing.qcow2 -F qcow2 orphan.qcow2 4M
ok_rc "missing backing file" 1 "$EXTSNAP" img map orphan.qcow2 2>"$T/err"
grep -q '^extsnap: img map: .*missing.qcow2' "$T/err" ||
    fail "missing backing: error does not name missing.qcow2: $(cat "$T/err")"
ok_rc "no image" 1 "$EXTSNAP" img map 2>/dev/null
ok_rc "bad --output" 1 "$EXTSNAP" img map --output=yaml b3.qcow2 2>/dev/null

finish
