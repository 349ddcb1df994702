#!/usr/bin/env bash
# extsnap img check against qemu-img check (the oracle), on the same images:
# exit status and every JSON figure (corruptions, leaks, check-errors,
# image-end-offset, total/allocated/fragmented/compressed clusters, *-fixed),
# the human summary on stdout and the detail lines on stderr. Healthy images
# of every layout, images damaged by patching metadata, repairs (-r leaks,
# -r all: afterwards qemu-img check must agree and the guest content must equal
# a copy repaired by qemu-img), and backing-chain problems (extsnap only).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img qemu-io jq xxd

SEED=${SEED:-$RANDOM}
RANDOM=$SEED
echo "t_img_check: seed $SEED (rerun with SEED=$SEED)"

# ---- tiny qcow2 poking helpers (big-endian fields, bash 64-bit arithmetic) ----
u64() { echo $((0x$(xxd -p -s "$2" -l 8 "$1"))); }
u32() { echo $((0x$(xxd -p -s "$2" -l 4 "$1"))); }
# put FILE OFFSET HEXBYTES
put() { echo -n "$3" | xxd -r -p | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
hex64() { printf '%016x' "$1"; }
cluster_size() { echo $((1 << $(u32 "$1" 20))); }
refcount_order() { if [[ $(u32 "$1" 4) -ge 3 ]]; then u32 "$1" 96; else echo 4; fi; }
l1_entry() { u64 "$1" $(($(u64 "$1" 40) + 8 * $2)); }
l2_table() { echo $(($(l1_entry "$1" "$2") & 0x00fffffffffffe00)); }
# refcount_addr FILE CLUSTER: byte offset of a 16-bit refcount entry
refcount_addr() {
    local f=$1 k=$2 cs rbe rb
    cs=$(cluster_size "$f")
    [[ $(refcount_order "$f") -eq 4 ]] || { echo "refcount_addr: 16-bit refcounts only" >&2; exit 1; }
    rbe=$((cs / 2))
    rb=$(($(u64 "$f" $(($(u64 "$f" 48) + 8 * (k / rbe)))) & ~0x1ff))
    echo $((rb + 2 * (k % rbe)))
}
get_refcount() { echo $((0x$(xxd -p -s "$(refcount_addr "$1" "$2")" -l 2 "$1"))); }
set_refcount() { put "$1" "$(refcount_addr "$1" "$2")" "$(printf '%04x' "$3")"; }
# first data cluster (host cluster index) of the first allocated L2 entry
first_data_cluster() {
    local f=$1 l2 e i cs
    cs=$(cluster_size "$f")
    l2=$(l2_table "$f" 0)
    for ((i = 0; i < 64; i++)); do
        e=$(u64 "$f" $((l2 + 8 * i)))
        if (((e & 0x00fffffffffffe00) != 0 && (e & 0x4000000000000000) == 0)); then
            echo $(((e & 0x00fffffffffffe00) / cs))
            return
        fi
    done
    echo "no data cluster in $f" >&2
    exit 1
}

jget() { jq -r --arg k "$2" '.[$k] // 0' "$1"; }
FIELDS="corruptions leaks check-errors image-end-offset total-clusters allocated-clusters
        fragmented-clusters compressed-clusters corruptions-fixed leaks-fixed"

# Detail lines both tools print (qemu-img adds a few of its own).
details() { grep -E '^(Leaked|ERROR|Repairing|Rebuilding)' "$1" | grep -v 'need to rebuild' || true; }

# same_check WHAT IMG [check options]: run both tools on IMG (in place when
# read-only; with -r on two copies, left in $T/q.img and $T/e.img) and compare
# exit status, JSON figures, detail lines and (HUMAN=1 or read-only) the
# human summary.
same_check() {
    local what=$1 img=$2 rc_q=0 rc_e=0 k qi=$2 ei=$2
    shift 2
    if (($#)); then
        cp "$img" "$T/q.img"
        cp "$img" "$T/e.img"
        qi=$T/q.img
        ei=$T/e.img
    fi
    qemu-img check "$@" --output=json "$qi" >"$T/q.json" 2>"$T/q.err" || rc_q=$?
    "$EXTSNAP" img check "$@" --output=json "$ei" >"$T/e.json" 2>"$T/e.err" || rc_e=$?
    ok_eq "$what: exit status (stderr: $(head -c 300 "$T/e.err"))" "$rc_q" "$rc_e" || true
    local rebuilt=false
    grep -q '^Rebuilding refcount structure' "$T/e.err" && rebuilt=true
    if [[ -s $T/q.json ]]; then
        local fields=$FIELDS
        # A rebuilt refcount structure goes to the end of the file with
        # extsnap (QEMU fills holes): the end offset may differ, nothing else.
        $rebuilt && fields=${fields/image-end-offset/}
        for k in $fields; do
            ok_eq "$what: $k" "$(jget "$T/q.json" "$k")" "$(jget "$T/e.json" "$k")" || true
        done
    fi
    ES_CHECKS=$((ES_CHECKS + 1))
    if ! diff -q <(details "$T/q.err") <(details "$T/e.err") >/dev/null; then
        fail "$what: detail lines differ (< qemu-img, > extsnap):"$'\n'"$(diff <(details "$T/q.err") <(details "$T/e.err") | head -20)"
    fi
    if (($# == 0)) || [[ ${HUMAN:-0} == 1 ]]; then
        if (($#)); then
            cp "$img" "$T/q.img"
            cp "$img" "$T/e.img"
        fi
        (cd "$(dirname "$qi")" && qemu-img check "$@" "$(basename "$qi")" >"$T/q.txt" 2>/dev/null) || true
        (cd "$(dirname "$ei")" && "$EXTSNAP" img check "$@" "$(basename "$ei")" >"$T/e.txt" 2>/dev/null) || true
        $rebuilt && sed -i '/^Image end offset/d' "$T/q.txt" "$T/e.txt"
        ES_CHECKS=$((ES_CHECKS + 1))
        if ! diff -q "$T/q.txt" "$T/e.txt" >/dev/null; then
            fail "$what: human summary differs (< qemu-img, > extsnap):"$'\n'"$(diff "$T/q.txt" "$T/e.txt" | head -20)"
        fi
    fi
}

# repaired_same WHAT IMG MODE: repair one copy with each tool; afterwards
# qemu-img check must say the same about both and the guest sees the same data.
repaired_same() {
    local what=$1 img=$2 mode=$3 rc_q=0 rc_e=0
    same_check "$what (-r $mode)" "$img" -r "$mode"
    qemu-img check --output=json "$T/q.img" >"$T/rq.json" 2>/dev/null || rc_q=$?
    qemu-img check --output=json "$T/e.img" >"$T/re.json" 2>"$T/re.err" || rc_e=$?
    ok_eq "$what: qemu-img check after -r $mode (extsnap-repaired vs qemu-repaired): $(head -c 300 "$T/re.err")" \
        "$rc_q" "$rc_e" || true
    for k in corruptions leaks; do
        ok_eq "$what: $k after -r $mode" "$(jget "$T/rq.json" "$k")" "$(jget "$T/re.json" "$k")" || true
    done
    if [[ $rc_q -le 3 ]]; then
        ok_rc "$what: guest data after -r $mode equals qemu-img's repair" 0 \
            qemu-img compare -q "$T/q.img" "$T/e.img" || true
    fi
}

# write_random IMG SIZE COUNT: COUNT writes of 1..3 clusters' worth at random offsets
write_random() {
    local img=$1 size=$2 n=$3 cs=$4 cmds=() i off len
    for ((i = 0; i < n; i++)); do
        off=$(((RANDOM * 32768 + RANDOM) % (size / cs) * cs))
        len=$(((RANDOM % 3 + 1) * cs))
        ((off + len <= size)) || len=$((size - off))
        cmds+=(-c "write -P $((RANDOM % 255 + 1)) $off $len")
    done
    qemu-io "${cmds[@]}" "$img" >/dev/null
}

cd "$T"

# ---------------------------------------------------------------- healthy images
for cs in 512 4096 65536 2097152; do
    size=$((cs >= 2097152 ? 256 << 20 : 16 << 20))
    qemu-img create -q -f qcow2 -o cluster_size=$cs h.qcow2 $size
    same_check "fresh cluster_size=$cs" h.qcow2
    write_random h.qcow2 $size 12 $cs
    qemu-io -c "write -z $((cs * 3)) $cs" -c "write -z -u $((cs * 7)) $cs" h.qcow2 >/dev/null
    same_check "written cluster_size=$cs" h.qcow2
done
for compat in 0.10 1.1; do
    qemu-img create -q -f qcow2 -o compat=$compat h.qcow2 32M
    write_random h.qcow2 $((32 << 20)) 10 65536
    same_check "compat=$compat" h.qcow2
done
for cs in 65536 2097152; do
    qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=$cs h.qcow2 64M
    write_random h.qcow2 $((64 << 20)) 8 $((cs / 32))
    qemu-io -c "write -z $((cs * 5)) $((cs / 32 * 3))" h.qcow2 >/dev/null
    same_check "extended_l2 cluster_size=$cs" h.qcow2
done
for bits in 1 2 8 16 32 64; do
    qemu-img create -q -f qcow2 -o refcount_bits=$bits h.qcow2 32M
    write_random h.qcow2 $((32 << 20)) 8 65536
    same_check "refcount_bits=$bits" h.qcow2
done
qemu-img create -q -f qcow2 -o lazy_refcounts=on h.qcow2 32M
write_random h.qcow2 $((32 << 20)) 6 65536
same_check "lazy refcounts, clean" h.qcow2

# compressed clusters (zlib and zstd), partly overwritten afterwards
qemu-img create -q -f qcow2 src.qcow2 8M
write_random src.qcow2 $((8 << 20)) 10 65536
for ct in zlib zstd; do
    qemu-img convert -c -O qcow2 -o compression_type=$ct src.qcow2 comp.qcow2
    same_check "compressed ($ct)" comp.qcow2
    qemu-io -c 'write -P 9 64k 64k' comp.qcow2 >/dev/null
    same_check "compressed ($ct), partly rewritten" comp.qcow2
done
qemu-img convert -c -O qcow2 -o cluster_size=4096 src.qcow2 comp4k.qcow2
same_check "compressed, 4 KiB clusters" comp4k.qcow2

# internal snapshots: shared clusters have refcount 2, COPIED cleared
qemu-img create -q -f qcow2 snap.qcow2 32M
write_random snap.qcow2 $((32 << 20)) 8 65536
qemu-img snapshot -c s1 snap.qcow2
write_random snap.qcow2 $((32 << 20)) 4 65536
qemu-img snapshot -c s2 snap.qcow2
qemu-io -c 'write -P 5 0 128k' snap.qcow2 >/dev/null
same_check "internal snapshots" snap.qcow2

# persistent bitmaps
qemu-img create -q -f qcow2 bm.qcow2 64M
write_random bm.qcow2 $((64 << 20)) 6 65536
qemu-img bitmap --add bm.qcow2 b0
qemu-img bitmap --add -g 128k bm.qcow2 b1
qemu-img bitmap --add bm.qcow2 b2
qemu-img bitmap --disable bm.qcow2 b2
same_check "bitmaps" bm.qcow2
cp bm.qcow2 bmleak.qcow2
set_refcount bmleak.qcow2 0 2
repaired_same "bitmaps with a leak" bmleak.qcow2 all
# QEMU 7.2's -r all on an image with an auto bitmap AND internal snapshots
# rewrites the header with nb_snapshots = 0 (the snapshots are lost); extsnap
# must keep them.
cp bm.qcow2 bmsnap.qcow2
qemu-img snapshot -c keep bmsnap.qcow2
"$EXTSNAP" img check -q -r all bmsnap.qcow2
ok_eq "-r all keeps internal snapshots next to bitmaps" keep \
    "$(qemu-img snapshot -l bmsnap.qcow2 | awk 'NR > 2 { print $2 }')"
ok_rc "-r all on bitmaps + snapshots leaves a clean image" 0 qemu-img check -q bmsnap.qcow2

# a backing chain (the check covers the top image only, like qemu-img)
qemu-img create -q -f qcow2 base.qcow2 32M
write_random base.qcow2 $((32 << 20)) 6 65536
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
write_random mid.qcow2 $((32 << 20)) 4 65536
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
qemu-io -c 'write -P 3 1M 100k' top.qcow2 >/dev/null
same_check "overlay in a chain" top.qcow2
ok_rc "several clean images exit 0" 0 "$EXTSNAP" img check -q top.qcow2 mid.qcow2 base.qcow2

# raw: no check (63), like qemu-img
qemu-img create -q -f raw r.raw 1M
same_check "raw image" r.raw

# --------------------------------------------------------------- damaged images
mkdamage() {
    qemu-img create -q -f qcow2 d.qcow2 32M
    qemu-io -c 'write -P 1 0 256k' -c 'write -P 2 4M 64k' -c 'write -P 3 20M 128k' d.qcow2 >/dev/null
}

# refcount too high on a used cluster and on a free cluster inside the file: leaks
mkdamage
hole=$((($(u64 d.qcow2 $(($(l2_table d.qcow2 0) + 8))) & 0x00fffffffffffe00) / 65536))
qemu-io -c 'discard 64k 64k' d.qcow2 >/dev/null # frees guest cluster 1: a hole in the file
ok_eq "discarded cluster is free (test setup)" 0 "$(get_refcount d.qcow2 "$hole")"
set_refcount d.qcow2 "$hole" 1
set_refcount d.qcow2 0 2
cp d.qcow2 leak.qcow2
same_check "leaks" leak.qcow2
HUMAN=1 repaired_same "leaks" leak.qcow2 leaks
repaired_same "leaks" leak.qcow2 all
# a data cluster with refcount 3: a leak, and its COPIED flag is now wrong
set_refcount d.qcow2 "$(first_data_cluster d.qcow2)" 3
same_check "leak on a data cluster" d.qcow2
repaired_same "leak on a data cluster" d.qcow2 leaks
repaired_same "leak on a data cluster" d.qcow2 all

# refcount too low but not zero: shared snapshot cluster with refcount 1
qemu-img create -q -f qcow2 low.qcow2 32M
qemu-io -c 'write -P 1 0 192k' low.qcow2 >/dev/null
qemu-img snapshot -c s1 low.qcow2
set_refcount low.qcow2 "$(first_data_cluster low.qcow2)" 1
same_check "refcount too low (snapshot)" low.qcow2
repaired_same "refcount too low (snapshot)" low.qcow2 all
repaired_same "refcount too low (snapshot)" low.qcow2 leaks

# refcount zero for a referenced cluster: needs a rebuild (-r leaks cannot: exit 1)
mkdamage
set_refcount d.qcow2 "$(first_data_cluster d.qcow2)" 0
cp d.qcow2 zero.qcow2
same_check "refcount zero" zero.qcow2
HUMAN=1 repaired_same "refcount zero" zero.qcow2 all
repaired_same "refcount zero" zero.qcow2 leaks

# COPIED flag wrong in an L2 entry and in an L1 entry
mkdamage
l2=$(l2_table d.qcow2 0)
e=$(u64 d.qcow2 "$l2")
put d.qcow2 "$l2" "$(hex64 $((e & 0x7fffffffffffffff)))"
e=$(l1_entry d.qcow2 0)
put d.qcow2 "$(u64 d.qcow2 40)" "$(hex64 $((e & 0x7fffffffffffffff)))"
cp d.qcow2 copied.qcow2
same_check "COPIED flags" copied.qcow2
repaired_same "COPIED flags" copied.qcow2 all
repaired_same "COPIED flags" copied.qcow2 leaks

# an L2 entry pointing into the refcount table; one with reserved bits; one unaligned
mkdamage
l2=$(l2_table d.qcow2 0)
put d.qcow2 $((l2 + 8)) "$(hex64 $((0x8000000000000000 | $(u64 d.qcow2 48))))"
e=$(u64 d.qcow2 $((l2 + 16)))
put d.qcow2 $((l2 + 16)) "$(hex64 $((e | 0x0100000000000000)))"
cp d.qcow2 overlap.qcow2
same_check "L2 entries into the refcount table / reserved bits" overlap.qcow2
repaired_same "L2 entries into the refcount table / reserved bits" overlap.qcow2 all
put d.qcow2 $((l2 + 8 * 100)) "$(hex64 $((0x8000000000000000 | 0x70200)))"
put d.qcow2 $((l2 + 8 * 101)) "$(hex64 $((0x8000000000000001 | 0x70200)))"
cp d.qcow2 unaligned.qcow2
same_check "unaligned data and zero-alloc L2 entries" unaligned.qcow2
same_check "unaligned data and zero-alloc L2 entries" unaligned.qcow2 -r all

# an L1 entry pointing at the header; a refblock entry cleared (rebuild)
mkdamage
put d.qcow2 $(($(u64 d.qcow2 40) + 8)) "$(hex64 $((0x8000000000000000 | 0x200)))"
cp d.qcow2 l1bad.qcow2
same_check "L1 entry into the header" l1bad.qcow2
mkdamage
put d.qcow2 "$(u64 d.qcow2 48)" 0000000000000000
cp d.qcow2 norefblock.qcow2
same_check "refcount block missing" norefblock.qcow2
repaired_same "refcount block missing" norefblock.qcow2 all

# entries pointing past the end of the file, reserved bits in L1, an
# unaligned refcount table entry
mkdamage
put d.qcow2 $(($(u64 d.qcow2 40) + 8)) "$(hex64 $((0x8000000000000000 | (1 << 40))))"
e=$(l1_entry d.qcow2 0)
put d.qcow2 "$(u64 d.qcow2 40)" "$(hex64 $((e | 0x0200000000000000)))"
cp d.qcow2 l1far.qcow2
same_check "L2 table past EOF, L1 reserved bits" l1far.qcow2
repaired_same "L2 table past EOF, L1 reserved bits" l1far.qcow2 all
mkdamage
rt=$(u64 d.qcow2 48)
put d.qcow2 $((rt + 8)) "$(hex64 $(($(stat -c %s d.qcow2) / 65536 * 65536 + 3 * 65536)))"
cp d.qcow2 rbfar.qcow2
same_check "refcount block past EOF" rbfar.qcow2
repaired_same "refcount block past EOF" rbfar.qcow2 all
put d.qcow2 $((rt + 8)) "$(hex64 $((0x50000 + 0x200)))"
same_check "refcount table entry unaligned" d.qcow2
cp comp.qcow2 cfar.qcow2
l2=$(l2_table cfar.qcow2 0)
for ((i = 0; i < 128; i++)); do
    e=$(u64 cfar.qcow2 $((l2 + 8 * i)))
    if (((e & 0x4000000000000000) != 0)); then
        put cfar.qcow2 $((l2 + 8 * i)) "$(hex64 $((e | 0x003f000000000000)))"
        break
    fi
done
same_check "compressed descriptor past EOF" cfar.qcow2
same_check "compressed descriptor past EOF" cfar.qcow2 -r all # unreadable: no data compare

# truncated in the middle of the data
mkdamage
truncate -s $(( $(stat -c %s d.qcow2) - 100000 )) d.qcow2
cp d.qcow2 trunc.qcow2
same_check "truncated" trunc.qcow2
repaired_same "truncated" trunc.qcow2 all

# a lazy-refcounts image left dirty by a crash
qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 32M
(qemu-io -c 'write -P 7 0 64k' -c 'write -P 8 3M 64k' -c abort dirty.qcow2 >/dev/null 2>&1 || true) 2>/dev/null
ok_eq "lazy refcounts image is dirty (test setup)" 1 $(( $(u64 dirty.qcow2 72) & 1 ))
same_check "dirty lazy-refcounts image" dirty.qcow2
repaired_same "dirty lazy-refcounts image" dirty.qcow2 all
repaired_same "dirty lazy-refcounts image" dirty.qcow2 leaks
cp dirty.qcow2 dirty2.qcow2
"$EXTSNAP" img check -q -r all dirty2.qcow2 2>/dev/null || true
ok_eq "dirty bit cleared by -r all" 0 $(( $(u64 dirty2.qcow2 72) & 1 ))

# the corrupt bit is cleared by a successful -r all
mkdamage
set_refcount d.qcow2 "$(first_data_cluster d.qcow2)" 0
put d.qcow2 72 "$(hex64 $(( $(u64 d.qcow2 72) | 2 )))"
"$EXTSNAP" img check -q -r all d.qcow2 2>/dev/null || true
ok_eq "corrupt bit cleared by -r all" 0 $(( $(u64 d.qcow2 72) & 2 ))
ok_rc "qemu-img check clean after clearing the corrupt bit" 0 qemu-img check -q d.qcow2

# unknown autoclear bits: kept by a read-only check, dropped by any repair (like QEMU)
qemu-img create -q -f qcow2 ac.qcow2 8M
put ac.qcow2 88 0000000000000008
"$EXTSNAP" img check -q ac.qcow2
ok_eq "read-only check keeps unknown autoclear bits" 8 "$(u64 ac.qcow2 88)"
cp ac.qcow2 acq.qcow2
qemu-img check -q -r leaks acq.qcow2
"$EXTSNAP" img check -q -r leaks ac.qcow2
ok_eq "-r leaks drops unknown autoclear bits as qemu-img does" "$(u64 acq.qcow2 88)" "$(u64 ac.qcow2 88)"

# ------------------------------------------------------------------ the chain
# check_chain WHAT IMG EXPECTED_RC PATTERN: extsnap's own verdict (qemu-img
# cannot open most of these images at all)
check_chain() {
    local what=$1 img=$2 want=$3 pat=$4 rc=0
    "$EXTSNAP" img check --output=json "$img" >"$T/c.json" 2>"$T/c.err" || rc=$?
    ok_eq "$what: exit status ($(head -c 200 "$T/c.err"))" "$want" "$rc" || true
    ES_CHECKS=$((ES_CHECKS + 1))
    if ! jq -e --arg p "$pat" '."backing-errors" | any(test($p))' "$T/c.json" >/dev/null 2>&1; then
        fail "$what: no backing-errors entry matching /$pat/ in: $(cat "$T/c.json")"
    fi
    rc=0
    "$EXTSNAP" img check "$img" >"$T/c.txt" 2>/dev/null || rc=$?
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -q "found in the backing chain" "$T/c.txt" || fail "$what: human output lacks the chain problem: $(cat "$T/c.txt")"
}
mkdir chain && cd chain
qemu-img create -q -f qcow2 base.qcow2 16M
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 ov.qcow2
ok_rc "chain intact: exit 0" 0 "$EXTSNAP" img check -q ov.qcow2
ok_eq "chain intact: no backing-errors" null "$("$EXTSNAP" img check --output=json ov.qcow2 | jq '."backing-errors"')"

mv base.qcow2 gone.qcow2
check_chain "missing backing file" ov.qcow2 2 "does not exist"
mv gone.qcow2 base.qcow2

qemu-img create -q -f qcow2 -b ov.qcow2 -F qcow2 ov2.qcow2
qemu-img rebase -u -b ov2.qcow2 -F qcow2 ov.qcow2 # ov -> ov2 -> ov
check_chain "loop of two" ov2.qcow2 2 "loop"
qemu-img create -q -f qcow2 self.qcow2 16M
qemu-img rebase -u -b self.qcow2 -F qcow2 self.qcow2
check_chain "image is its own backing file" self.qcow2 2 "loop"

qemu-img create -q -f raw plain.raw 16M
qemu-img create -q -f qcow2 -b plain.raw -F raw ovr.qcow2
ok_rc "raw backing named raw: exit 0" 0 "$EXTSNAP" img check -q ovr.qcow2
qemu-img rebase -u -b plain.raw -F qcow2 ovr.qcow2
check_chain "backing format qcow2, file raw" ovr.qcow2 2 "qcow2"
qemu-img create -q -f qcow2 -b base.qcow2 -F raw ovq.qcow2
check_chain "backing format raw, file qcow2" ovq.qcow2 2 "format 'raw'"

qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 nofmt.qcow2
put nofmt.qcow2 "$(u32 nofmt.qcow2 100)" 12345678 # backing-format extension -> unknown type
check_chain "backing format missing" nofmt.qcow2 2 "without a backing format"

qemu-img create -q -f qcow2 -b 'nbd://localhost:10809/x' -F raw proto.qcow2 2>/dev/null ||
    { qemu-img create -q -f qcow2 proto.qcow2 16M && qemu-img rebase -u -b 'nbd://localhost:10809/x' -F raw proto.qcow2; }
check_chain "protocol backing name" proto.qcow2 2 "protocol"
cd ..

# several images: one JSON object each, worst exit status
rc=0
"$EXTSNAP" img check --output=json top.qcow2 mid.qcow2 leak.qcow2 r.raw >multi.json 2>/dev/null || rc=$?
ok_eq "several images: worst exit status (leaks 3 beats raw 63 and clean 0)" 3 "$rc"
ok_eq "several images: JSON array of 4" 4 "$(jq length multi.json)"
rc=0
"$EXTSNAP" img check -q top.qcow2 zero.qcow2 leak.qcow2 2>/dev/null || rc=$?
ok_eq "several images: corruption (2) beats leaks (3)" 2 "$rc"
rc=0
"$EXTSNAP" img check -q zero.qcow2 missing.qcow2 2>/dev/null || rc=$?
ok_eq "several images: could not check (1) beats corruption" 1 "$rc"

# image locks: a running VM's image is refused (like qemu-img), -U reads it,
# a repair is refused; afterwards it works again
if ! command -v qemu-system-x86_64 >/dev/null; then
    skip_part "qemu-system-x86_64 is not installed: the image-lock checks did not run"
else
    qemu-img create -q -f qcow2 vm.qcow2 16M
    qemu-system-x86_64 -machine none -nographic -monitor none -serial none -display none \
        -blockdev driver=qcow2,node-name=top,file.driver=file,file.filename="$T/vm.qcow2" &
    vmpid=$!
    trap 'kill $vmpid 2>/dev/null || true; rm -rf "$T"' EXIT
    for ((i = 0; i < 100; i++)); do
        grep -q "$(stat -c %i vm.qcow2)" /proc/locks && break
        sleep 0.1
    done
    ok_rc "image written by a VM: qemu-img check refuses it (test setup)" 1 qemu-img check -q vm.qcow2
    ok_rc "image written by a VM: check refuses it" 1 "$EXTSNAP" img check -q vm.qcow2
    ok_rc "image written by a VM: check -U reads it" 0 "$EXTSNAP" img check -q -U vm.qcow2
    ok_rc "image written by a VM: -r all refuses it" 1 "$EXTSNAP" img check -q -r all vm.qcow2
    "$EXTSNAP" img check vm.qcow2 >/dev/null 2>lock.err || true
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -q "process $vmpid" lock.err || fail "lock conflict does not name the VM (pid $vmpid): $(cat lock.err)"
    kill $vmpid
    wait $vmpid 2>/dev/null || true
    ok_rc "VM gone: check works again" 0 "$EXTSNAP" img check -q vm.qcow2
fi
ok_rc "-U with -r is a usage error" 1 "$EXTSNAP" img check -U -r all top.qcow2

# usage errors
ok_rc "bad -r value" 1 "$EXTSNAP" img check -r bogus top.qcow2
ok_rc "no image" 1 "$EXTSNAP" img check

finish
