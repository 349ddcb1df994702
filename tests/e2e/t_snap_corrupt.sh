#!/usr/bin/env bash
# Domain operations refuse images 'verify' calls corrupt (issue #10 §2):
# on lib/snap.sh's tvm, snapshots s1 and s2 with writes in between; then
#  A. vda.qcow2 (s1's frozen image, the BASE `delete tvm s1` merges into)
#     gets an L2 entry pointing into its own L1 table (resp. refcount
#     table): verify reports corrupt-image, qemu-img check reports
#     corruption, and `delete tvm s1` is refused with nothing changed under
#     the root (sha256 of every file, so no journal either);
#  B. vda.s1 (the overlay `delete tvm s1` merges and removes, the BASE of
#     `commit tvm s1 s2`) has a refcount lowered to 0 under a data cluster:
#     both are refused the same way.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
for c in qemu-img qemu-io xmllint od; do
    command -v "$c" >/dev/null || { echo "SKIP: $c is not installed"; exit 77; }
done

be64() { echo $((16#$(od -An -tx1 -j "$2" -N "${3:-8}" "$1" | tr -d ' \n'))); }
put_be() {
    local f=$1 off=$2 n=$3 v=$4 esc="" i
    for ((i = (n - 1) * 8; i >= 0; i -= 8)); do esc+=$(printf '\\x%02x' $(((v >> i) & 255))); done
    printf '%b' "$esc" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}
qcheck() {
    qemu-img check -U "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$1\"},\"backing\":null}" \
        >/dev/null 2>&1
}
MASK=$((0x00fffffffffffe00))
COPIED=$((1 << 63))

# setup R: tvm with s1 and s2 (vda.qcow2 <- vda.s1 <- vda.s2).
setup() {
    R=$1
    snap_make_tvm "$R"
    x create tvm s1 -q
    guest_write "$R" tvm vda 0x11 0 64k
    x create tvm s2 -q
    guest_write "$R" tvm vda 0x21 64k 64k
}

# refused WHAT OP...: each operation refused, nothing changed.
refused() {
    local what=$1 before out rc op
    shift
    before=$(root_sums "$R")
    check_rc "$what: qemu-img check sees the corruption" 2 qcheck "$BAD"
    rc=0
    out=$(x verify tvm 2>&1) || rc=$?
    check_eq "$what: verify fails" 1 "$((rc != 0))"
    grep -q "corrupt" <<<"$out" || fail "$what: verify does not call it corrupt: $out"
    for op in "$@"; do
        rc=0
        # shellcheck disable=SC2086
        out=$(x $op 2>&1) || rc=$?
        check_eq "$what: $op exits 1" 1 "$rc"
        grep -q "corruption(s) in the image's metadata" <<<"$out" ||
            fail "$what: $op: no corruption named: $out"
        check_eq "$what: $op: nothing changed under the root" "$before" "$(root_sums "$R")"
    done
}

for target in l1 reftable; do
    setup "$T/a.$target"
    BAD=$R$SNAP_IMG/vda.qcow2
    l1=$(be64 "$BAD" 40)
    rt=$(be64 "$BAD" 48)
    l2=$(($(be64 "$BAD" "$l1") & MASK))
    [[ $target == l1 ]] && to=$l1 || to=$rt
    put_be "$BAD" "$l2" 8 $((COPIED | to))
    refused "A ($target)" "delete tvm s1"
done

# B: the overlay's refcount of its first data cluster dropped to 0.
setup "$T/b"
BAD=$R$SNAP_IMG/vda.s1
l1=$(be64 "$BAD" 40)
rt=$(be64 "$BAD" 48)
l2=$(($(be64 "$BAD" "$l1") & MASK))
data=$(($(be64 "$BAD" "$l2") & MASK))
rb=$(($(be64 "$BAD" "$rt") & MASK))
cs=$((1 << $(be64 "$BAD" 20 4)))
put_be "$BAD" $((rb + 2 * (data / cs))) 2 0
refused "B" "delete tvm s1" "commit tvm s1 s2"

finish
