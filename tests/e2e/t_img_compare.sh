#!/usr/bin/env bash
# extsnap img compare against qemu-img compare (the oracle): same exit
# status and the same stdout ("Images are identical.", "Content mismatch at
# offset N!", "Warning: Image size mismatch!") for chains, flattened copies,
# single changed bytes, size differences; exit 2 on errors.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img qemu-io timeout

SEED=${ES_SEED:-$RANDOM}
echo "t_img_compare: seed $SEED (rerun with ES_SEED=$SEED)"
RANDOM=$SEED

# check_cmp WHAT EXPECTED_RC IMAGE1 IMAGE2
check_cmp() {
    local what=$1 want=$2 a=$3 b=$4 rc_q=0 rc_e=0
    qemu-img compare "$a" "$b" >"$T/q.out" 2>/dev/null || rc_q=$?
    timeout 60 "$EXTSNAP" img compare "$a" "$b" >"$T/e.out" 2>"$T/e.err" || rc_e=$?
    ES_CHECKS=$((ES_CHECKS + 1))
    if [[ $rc_q -ne $want ]]; then
        fail "$what: test setup: qemu-img compare exited $rc_q, expected $want: $(cat "$T/q.out")"
        return
    fi
    if [[ $rc_e -ne $rc_q ]]; then
        fail "$what: extsnap img compare exited $rc_e, qemu-img $rc_q [seed $SEED]: $(cat "$T/e.out" "$T/e.err")"
        return
    fi
    local d
    d=$(diff "$T/e.out" "$T/q.out") ||
        fail "$what: output differs (< extsnap, > qemu-img) [seed $SEED]:"$'\n'"$d"
}

cd "$T"

# --- a chain against its flattened copy -------------------------------------
qemu-img create -q -f qcow2 base.qcow2 8M
qemu-io -c 'write -P 1 0 2M' -c 'write -P 2 5M 64k' -c 'write -z 6M 64k' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
qemu-io -c 'write -P 3 1M 64k' -c 'write -z 128k 64k' mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
qemu-io -c 'write -P 4 3M 4k' -c 'write -z -u 0 4k' top.qcow2 >/dev/null
qemu-img convert -O qcow2 top.qcow2 flat.qcow2
check_cmp "chain vs flattened copy" 0 top.qcow2 flat.qcow2
check_cmp "flattened copy vs chain" 0 flat.qcow2 top.qcow2
qemu-img convert -O raw top.qcow2 flat.raw
check_cmp "chain vs flat raw" 0 top.qcow2 flat.raw
qemu-img convert -c -O qcow2 top.qcow2 flat-compressed.qcow2
check_cmp "chain vs compressed copy" 0 top.qcow2 flat-compressed.qcow2
check_cmp "image vs itself" 0 top.qcow2 top.qcow2

# --- one byte changed ---------------------------------------------------------
for off in 0 511 512 1048577 3145728 5242880 6291456 7340032 8388607; do
    cp flat.qcow2 changed.qcow2
    qemu-io -c "write -P 0xee $off 1" changed.qcow2 >/dev/null
    check_cmp "one byte changed at $off" 1 top.qcow2 changed.qcow2
    check_cmp "one byte changed at $off (swapped)" 1 changed.qcow2 top.qcow2
done
# Changed in an overlay over the chain (the other side shares the backing).
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top2.qcow2
qemu-io -c 'write -P 4 3M 4k' -c 'write -z -u 0 4k' -c 'write -P 0 7M 1k' top2.qcow2 >/dev/null
check_cmp "sibling overlays, zero data written" 0 top.qcow2 top2.qcow2
qemu-io -c 'write -P 9 4M 1' top2.qcow2 >/dev/null
check_cmp "sibling overlays, one byte differs" 1 top.qcow2 top2.qcow2

# --- different sizes -------------------------------------------------------
qemu-img create -q -f qcow2 small.qcow2 1M
qemu-io -c 'write -P 1 0 64k' small.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b small.qcow2 -F qcow2 big.qcow2 4M
qemu-io -c 'write -z 1M 64k' -c 'write -P 0 2M 64k' big.qcow2 >/dev/null
check_cmp "larger image with a zero tail" 0 small.qcow2 big.qcow2
check_cmp "larger image with a zero tail (swapped)" 0 big.qcow2 small.qcow2
qemu-io -c 'write -P 3 3M 512' big.qcow2 >/dev/null
check_cmp "larger image with data in its tail" 1 small.qcow2 big.qcow2
check_cmp "larger image with data in its tail (swapped)" 1 big.qcow2 small.qcow2
qemu-img create -q -f qcow2 small2.qcow2 1M
qemu-io -c 'write -P 2 0 64k' small2.qcow2 >/dev/null
check_cmp "different sizes and different content" 1 small2.qcow2 big.qcow2

# --- random chains against their flattened copy, then one byte flipped ------
for round in 1 2 3; do
    opts=""
    case $round in
    2) opts="-o extended_l2=on" ;;
    3) opts="-o cluster_size=4k" ;;
    esac
    rm -f r0.qcow2 r1.qcow2 r2.qcow2 rflat.qcow2
    qemu-img create -q -f qcow2 $opts r0.qcow2 4M
    qemu-img create -q -f qcow2 $opts -b r0.qcow2 -F qcow2 r1.qcow2
    qemu-img create -q -f qcow2 $opts -b r1.qcow2 -F qcow2 r2.qcow2
    for layer in r0 r1 r2; do
        ops=()
        for ((i = 0; i < 10; i++)); do
            off=$(((RANDOM % 8192) * 512)) len=$(((RANDOM % 256 + 1) * 512))
            ((off + len <= 4194304)) || len=$((4194304 - off))
            case $((RANDOM % 4)) in
            0 | 1) ops+=(-c "write -P $((RANDOM % 255 + 1)) $off $len") ;;
            2) ops+=(-c "write -z $off $len") ;;
            3) ops+=(-c "discard $off $len") ;;
            esac
        done
        qemu-io "${ops[@]}" $layer.qcow2 >/dev/null
    done
    qemu-img convert -O qcow2 r2.qcow2 rflat.qcow2
    check_cmp "random chain $round vs flat copy" 0 r2.qcow2 rflat.qcow2
    off=$(((RANDOM * 32768 + RANDOM) % 4194304))
    qemu-io -c "write -P 0xa5 $off 1" rflat.qcow2 >/dev/null
    # Writing 0xa5 over a byte that already holds 0xa5 changes nothing.
    if qemu-img compare -q r2.qcow2 rflat.qcow2; then want=0; else want=1; fi
    check_cmp "random chain $round vs flat copy with byte $off changed" $want r2.qcow2 rflat.qcow2
done

# --- speed: sparse 16 TiB images compare without reading the holes --------------
qemu-img create -q -f qcow2 huge1.qcow2 16T
qemu-img create -q -f qcow2 huge2.qcow2 16T
qemu-io -c 'write -P 1 8T 64k' huge1.qcow2 >/dev/null
qemu-io -c 'write -P 1 8T 64k' huge2.qcow2 >/dev/null
start=$(date +%s)
ok_rc "16 TiB sparse images compare" 0 timeout 60 "$EXTSNAP" img compare -q huge1.qcow2 huge2.qcow2
(($(date +%s) - start < 20)) || fail "16 TiB sparse compare took $(($(date +%s) - start)) s"

# --- errors -------------------------------------------------------------------
ok_rc "missing first file" 2 "$EXTSNAP" img compare nonexistent.qcow2 top.qcow2 2>"$T/err"
grep -q '^extsnap: img compare: nonexistent.qcow2' "$T/err" ||
    fail "missing file: error does not name it: $(cat "$T/err")"
ok_rc "missing second file" 2 "$EXTSNAP" img compare top.qcow2 nonexistent.qcow2 2>/dev/null
qemu-img create -q -f qcow2 -u -b missing.qcow2 -F qcow2 orphan.qcow2 8M
ok_rc "missing backing file" 2 "$EXTSNAP" img compare orphan.qcow2 top.qcow2 2>/dev/null
ok_rc "one image only" 2 "$EXTSNAP" img compare top.qcow2 2>/dev/null
ok_rc "-q prints nothing" 0 "$EXTSNAP" img compare -q top.qcow2 flat.qcow2 >"$T/out"
ok_eq "-q stdout" "" "$(cat "$T/out")"

finish
