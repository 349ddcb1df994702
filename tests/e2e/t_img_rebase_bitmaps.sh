#!/usr/bin/env bash
# extsnap img rebase (the safe rebase) on images with persistent dirty
# bitmaps, and with -c (compressed writes), qemu-img 7.2 as the oracle:
#  A. random chains (seeded qemu-io writes, zero writes, discards; qcow2 and
#     raw bases; 64 KiB, 4 KiB and 512-byte clusters) where the image has
#     enabled bitmaps of 512-byte, 64 KiB and 1 MiB granularity with bits
#     set, and a disabled one: the same rebase by qemu-img on a copy and by
#     extsnap (onto a sibling, onto the base, onto a shorter unrelated
#     image, flatten; the middle image flattened; an image without a
#     backing file onto a chain): guest content equal
#     (qemu-img compare), check clean, the bitmaps listed alike and equal
#     bit for bit (read through qemu-nbd -B and qemu-img map x-dirty-bitmap);
#     and a rebase of two batches (the bitmaps written twice).
#  B. -u leaves the bitmaps untouched (every byte past the header sector).
#  C. -c on random chains, zlib and zstd, v2 and v3, with incompressible
#     (random) clusters and a virtual size that cuts the last cluster:
#     content equal to qemu-img rebase's (7.2 has no rebase -c), check clean
#     (so the refcounts of shared host clusters are right), compressed
#     clusters present (qemu-img check "compressed-clusters"), the cut last
#     cluster and the random ones stored uncompressed, bitmaps as in A;
#     refcount_bits 1, 2 and 8 (a host cluster full of references: the next
#     compressed cluster starts a new one).
#  D. refusals (one line, nothing changed): a bitmap marked in use, an
#     inconsistent bitmap (reserved bits in its table), -c with -u, -c on
#     an image with extended L2 entries or an external data file.
#  E. crash sweep over a rebase with bitmaps and -c (EXTSNAP_FAULT at every
#     write and flush, stopped or failed): the image checks without
#     corruption and reads as before, no bit the image had is lost, every
#     cluster it now holds that it did not hold before has its bit (no
#     missed change), no bit beyond qemu-img's; a re-run equals qemu-img's
#     result, bitmaps bit for bit.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/bitmaps.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/random_io.sh"
need_cmd qemu-img qemu-io qemu-nbd jq sha256sum od dd cmp

X=$EXTSNAP
cd "$T"
BM_TMP=$T
RANDOM=${ES_REBASE_SEED:-23}
eq() { ok_eq "$@" || true; }
KIB=1024
MIB=$((1 << 20))

# bitmaps FILE: "name:granularity:flags ..." as qemu-img info lists them.
bitmaps() {
    qemu-img info -U --output=json "$1" |
        jq -r '[."format-specific".data.bitmaps // [] | .[] | "\(.name):\(.granularity):\(.flags | join(","))"] | join(" ")'
}
# bm_all FILE: every bitmap's dirty ranges, one line per bitmap.
bm_all() {
    local n
    for n in $(qemu-img info -U --output=json "$1" | jq -r '."format-specific".data.bitmaps // [] | .[].name'); do
        echo "$n: $(bitmap_dirty "$1" "$n" | tr '\n' ' ')"
    done
}
fmt_of() { [[ $1 == *.raw ]] && echo raw || echo qcow2; }
layer() { # IMG SIZE CS N
    random_ops "$2" "$3" "$4"
    qemu-io -f "$(fmt_of "$1")" "${RANDOM_OPS[@]}" "$1" >/dev/null
}
mk() { # IMG SIZE OPTS [BACKING]
    if [[ $1 == *.raw ]]; then
        truncate -s "$2" "$1"
    elif [[ -n ${4:-} ]]; then
        qemu-img create -q -f qcow2 -o "$3" -b "$4" -F "$(fmt_of "$4")" "$1" "$2"
    else
        qemu-img create -q -f qcow2 -o "$3" "$1" "$2"
    fi
}
# add_bitmaps IMG SIZE CS: enabled g512, g64k, g1m and a disabled one, each
# with bits from writes made after it was added.
add_bitmaps() {
    qemu-img bitmap --add -g 512 "$1" g512
    qemu-img bitmap --add -g 64k "$1" g64k
    qemu-img bitmap --add "$1" off
    layer "$1" "$2" "$3" 3
    qemu-img bitmap --disable "$1" off
    qemu-img bitmap --add -g 1M "$1" g1m
    layer "$1" "$2" "$3" 3
}
compressed() { { qemu-img check -U --output=json "$1" || true; } | jq ".\"compressed-clusters\" // 0"; }

# same_rebase LABEL IMG ARGS...: qemu-img rebase (without -c: 7.2 has none)
# on a copy, extsnap on IMG; compared.
same_rebase() {
    local label=$1 img=$2 rc=0 qargs=()
    shift 2
    for a in "$@"; do [[ $a == -c ]] || qargs+=("$a"); done
    qemu-img convert -O raw "$img" view.raw
    cp "$img" q.qcow2
    qemu-img rebase -q "${qargs[@]}" q.qcow2
    "$X" img rebase "$@" "$img" 2>err.log || rc=$?
    eq "$label: exit status ($(head -c 300 err.log))" 0 "$rc"
    ((rc == 0)) || return 0
    ok_rc "$label: equals qemu-img's result" 0 qemu-img compare -q q.qcow2 "$img" || true
    ok_rc "$label: reads as before" 0 qemu-img compare -q view.raw "$img" || true
    ok_rc "$label: qemu-img check" 0 qemu-img check -q "$img" || true
    eq "$label: bitmaps listed alike" "$(bitmaps q.qcow2)" "$(bitmaps "$img")"
    eq "$label: bitmaps bit for bit" "$(bm_all q.qcow2)" "$(bm_all "$img")"
}

# --- A. random chains with bitmaps ------------------------------------------------
cases=0
for round in 1 2 3; do
    rm -f -- *.qcow2 *.raw
    cs=$((round == 1 ? 65536 : round == 2 ? 4096 : 512))
    opts="cluster_size=$cs"
    size=$(((RANDOM % 4 + 3) * MIB))
    base=base.qcow2
    ((round == 2)) && base=base.raw
    mk "$base" "$size" "$opts"
    layer "$base" "$size" "$cs" 14
    mk mid.qcow2 "$size" "$opts" "$base"
    layer mid.qcow2 "$size" "$cs" 10
    add_bitmaps mid.qcow2 "$size" "$cs"
    mk top.qcow2 "$size" "$opts" mid.qcow2
    layer top.qcow2 "$size" "$cs" 6
    add_bitmaps top.qcow2 "$size" "$cs"
    mk sib.qcow2 "$size" "$opts" "$base"
    layer sib.qcow2 "$size" "$cs" 10
    mk other.qcow2 $((size / 2)) "$opts"
    layer other.qcow2 $((size / 2)) "$cs" 10
    add_bitmaps other.qcow2 $((size / 2)) "$cs"
    tag="round $round ($cs-byte clusters, $(fmt_of "$base") base, $((size >> 10)) KiB)"
    keep=$T/keep && rm -rf "$keep" && mkdir "$keep" && cp -- *.qcow2 *.raw "$keep" 2>/dev/null || true
    restore() { rm -f -- *.qcow2 *.raw; cp "$keep"/* .; }
    [[ -n $(bm_all top.qcow2 | grep -v ': $' || true) ]] || fail "$tag: no bits set before the rebase"

    same_rebase "$tag: onto a sibling" top.qcow2 -b sib.qcow2 -F qcow2
    restore
    same_rebase "$tag: onto the base" top.qcow2 -b "$base" -F "$(fmt_of "$base")"
    restore
    same_rebase "$tag: onto a shorter unrelated image" top.qcow2 -b other.qcow2 -F qcow2
    restore
    same_rebase "$tag: flatten" top.qcow2 -b ""
    restore
    same_rebase "$tag: flatten the middle" mid.qcow2 -b ""
    restore
    # no old backing file: the old chain reads zeroes (qemu-img writes zeroes)
    same_rebase "$tag: a standalone image onto a chain" other.qcow2 -b top.qcow2 -F qcow2
    restore
    cases=$((cases + 6))
done
echo "A: $cases rebases with bitmaps compared (${SECONDS}s)"

# Two batches (512-byte clusters, more than 32768 candidates): the second
# batch's bits go to the directory the first one wrote.
rm -f -- *.qcow2 *.raw
truncate -s 24M base.raw
qemu-io -f raw -c 'write -P 1 0 20M' -c 'write -z 3M 1M' base.raw >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=512 -b base.raw -F raw top.qcow2
qemu-io -c 'write -P 2 5M 1M' top.qcow2 >/dev/null
add_bitmaps top.qcow2 $((24 * MIB)) 512
qemu-img create -q -f qcow2 sib.qcow2 24M
qemu-io -c 'write -P 1 0 10M' -c 'write -P 3 22M 1M' sib.qcow2 >/dev/null
same_rebase "two batches: onto a sibling" top.qcow2 -b sib.qcow2 -F qcow2

# --- B. -u leaves the bitmaps alone -------------------------------------------------
cp keep/top.qcow2 u.qcow2
before=$(bm_all u.qcow2)
ok_rc "B: -u" 0 "$X" img rebase -u -b sib.qcow2 -F qcow2 u.qcow2 || true
eq "B: -u: bitmaps bit for bit" "$before" "$(bm_all u.qcow2)"
eq "B: -u: bitmaps listed alike" "$(bitmaps keep/top.qcow2)" "$(bitmaps u.qcow2)"
ok_rc "B: -u: nothing changed past the header (first sector)" 0 \
    cmp -s <(tail -c +$((512 + 1)) keep/top.qcow2) <(tail -c +$((512 + 1)) u.qcow2) || true
ok_rc "B: -u: check" 0 qemu-img check -q u.qcow2 || true

# --- C. -c ------------------------------------------------------------------------
head -c $((256 * KIB)) /dev/urandom >noise.bin
for round in 1 2 3 4; do
    rm -f -- *.qcow2 *.raw
    case $round in
    1) opts="cluster_size=65536,compression_type=zlib" ;;
    2) opts="cluster_size=65536,compression_type=zstd" ;;
    3) opts="cluster_size=4096,compat=0.10" ;;
    4) opts="cluster_size=512,compression_type=zstd" ;;
    esac
    cs=${opts#cluster_size=} cs=${cs%%,*}
    # 3-4 MiB and a few sectors: the last cluster is cut by the virtual size
    size=$(((RANDOM % 2 + 3) * MIB + 3 * 512))
    mk base.qcow2 "$size" "$opts"
    qemu-io -c "write -c -P 9 0 65536" base.qcow2 >/dev/null # the old chain compressed too
    layer base.qcow2 "$size" "$cs" 14
    mk mid.qcow2 "$size" "$opts" base.qcow2
    layer mid.qcow2 "$size" "$cs" 10
    # after mid's random writes (top's may cover them: then top holds them)
    qemu-io -c "write -s noise.bin $MIB $((128 * KIB))" -c "write -P 5 $((size - 3 * 512)) 1536" \
        mid.qcow2 >/dev/null
    mk top.qcow2 "$size" "$opts" mid.qcow2
    layer top.qcow2 "$size" "$cs" 6
    [[ $opts == *compat=0.10* ]] || add_bitmaps top.qcow2 "$size" "$cs"
    mk sib.qcow2 "$size" "$opts" base.qcow2
    layer sib.qcow2 "$size" "$cs" 10
    tag="C round $round ($opts)"
    cp top.qcow2 top.keep
    same_rebase "$tag: -c flatten" top.qcow2 -c -b ""
    n=$(compressed top.qcow2)
    ((n > 0)) || fail "$tag: flatten: no compressed cluster"
    ES_CHECKS=$((ES_CHECKS + 1))
    # Random data does not compress: stored as it is, with its own offset.
    got=$(qemu-img map --output=json "$(bitmap_alone top.qcow2)" |
        jq -r --argjson at $((MIB + 64 * KIB)) '.[] | select(.start <= $at and .start + .length > $at) | has("offset")')
    eq "$tag: flatten: random data stored uncompressed" true "$got"
    if ((size % cs)); then
        last=$(((size - 1) / cs * cs))
        got=$(qemu-img map --output=json "$(bitmap_alone top.qcow2)" |
            jq -r --argjson at "$last" '.[] | select(.start <= $at and .start + .length > $at) | has("offset")')
        eq "$tag: flatten: the cut last cluster stored uncompressed" true "$got"
    fi
    plain=$T/plain.qcow2
    cp top.keep "$plain"
    "$X" img rebase -b "" "$plain"
    echo "$tag: flatten: $n compressed clusters, $(stat -c %s top.qcow2) bytes with -c, $(stat -c %s "$plain") without"
    cp top.keep top.qcow2
    same_rebase "$tag: -c onto a sibling" top.qcow2 -c -b sib.qcow2 -F qcow2
    rm -f top.keep "$plain"
done
# Narrow refcounts: a host cluster takes at most 2^refcount_bits - 1
# compressed clusters; the next one starts a cluster of its own (as QEMU's
# allocator does) instead of failing half-way on an overflowing refcount.
rm -f -- *.qcow2
qemu-img create -q -f qcow2 base.qcow2 8M
qemu-io -c "write -P 0x5a 0 4M" base.qcow2 >/dev/null
for bits in 1 2 8; do
    qemu-img create -q -f qcow2 -o refcount_bits=$bits -b base.qcow2 -F qcow2 top.qcow2
    qemu-io -c "write -P 0x11 1M 64k" top.qcow2 >/dev/null
    qemu-img convert -O raw top.qcow2 view.raw
    ok_rc "C: refcount_bits=$bits: -c flatten" 0 "$X" img rebase -c -b "" top.qcow2 || true
    ok_rc "C: refcount_bits=$bits: check clean" 0 qemu-img check -q top.qcow2 || true
    ok_rc "C: refcount_bits=$bits: content" 0 qemu-img compare -q -f raw -F qcow2 view.raw top.qcow2 || true
    n=$(qemu-img check --output=json top.qcow2 | jq '."compressed-clusters" // 0')
    ES_CHECKS=$((ES_CHECKS + 1))
    ((n > 0)) || fail "C: refcount_bits=$bits: no compressed cluster"
    rm -f view.raw
done
echo "C: -c done (${SECONDS}s)"

# --- D. refusals: one error line, nothing changed -------------------------------------
rm -f -- *.qcow2 *.raw
qemu-img create -q -f qcow2 base.qcow2 4M
qemu-io -c 'write -P 1 0 1M' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
add_bitmaps top.qcow2 $((4 * MIB)) 65536
qemu-img create -q -f qcow2 sib.qcow2 4M
hash_all() { sha256sum -- *.qcow2 | sha256sum | cut -c1-16; }
refuse() { # LABEL TEXT IMG ARGS...
    local label=$1 text=$2 img=$3 before rc=0
    shift 3
    before=$(hash_all)
    "$X" img rebase "$@" "$img" 2>refuse.err || rc=$?
    eq "$label: exit status" 1 "$rc"
    eq "$label: nothing changed" "$before" "$(hash_all)"
    eq "$label: one error line ($(head -c 300 refuse.err))" 1 \
        "$(grep -vc "^Try 'extsnap img rebase --help'.$" refuse.err)"
    grep -q -- "$text" refuse.err || fail "$label: [$(head -c 300 refuse.err)] lacks [$text]"
    ES_CHECKS=$((ES_CHECKS + 1))
}
be() { od -An -tu1 -j "$2" -N "$3" "$1" | awk '{ for (i = 1; i <= NF; i++) v = v * 256 + $i } END { printf "%.0f\n", v }'; }
# bm_dir FILE: byte offset of the bitmap directory (the bitmaps extension).
bm_dir() {
    local f=$1 pos type len
    pos=$(be "$f" 100 4)
    while :; do
        type=$(be "$f" "$pos" 4) len=$(be "$f" $((pos + 4)) 4)
        ((type != 0)) || return 1
        ((type == 0x23852875)) && { be "$f" $((pos + 24)) 8; return 0; }
        pos=$((pos + 8 + (len + 7) / 8 * 8))
    done
}
poke() { printf "\\x$(printf %02x "$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
cp top.qcow2 iu.qcow2
d=$(bm_dir iu.qcow2)
poke iu.qcow2 $((d + 15)) $(($(be iu.qcow2 $((d + 15)) 1) | 1)) # IN_USE of the first entry
qemu-img info iu.qcow2 | grep -q in-use || fail "D: the in-use flag did not take"
refuse "D: bitmap in use" "marked in use" iu.qcow2 -b sib.qcow2 -F qcow2
rm iu.qcow2
cp top.qcow2 bad.qcow2
d=$(bm_dir bad.qcow2)
t=$(be bad.qcow2 "$d" 8)
poke bad.qcow2 $((t + 7)) $(($(be bad.qcow2 $((t + 7)) 1) | 2)) # a reserved bit
refuse "D: inconsistent bitmap" "bitmap" bad.qcow2 -b sib.qcow2 -F qcow2
rm bad.qcow2
refuse "D: -c with -u" "-c makes no sense with -u" top.qcow2 -c -u -b sib.qcow2 -F qcow2
qemu-img create -q -f qcow2 -o extended_l2=on -b base.qcow2 -F qcow2 ext.qcow2
refuse "D: -c, extended L2" "extended L2" ext.qcow2 -c -b sib.qcow2 -F qcow2
rm ext.qcow2
qemu-img create -q -f qcow2 -o data_file=df.raw df.qcow2 4M
refuse "D: -c, external data file" "external data file" df.qcow2 -c -b sib.qcow2 -F qcow2
rm df.qcow2 df.raw

# --- E. crash sweep: bitmaps and -c ---------------------------------------------
# sectors FILE NAME: the 512-byte sectors bitmap NAME marks, one a line.
sectors() { bitmap_dirty "$1" "$2" | awk '{ for (s = $1 / 512; s < ($1 + $2) / 512; s++) print s }' | sort; }
# data_clusters FILE: the 64 KiB clusters FILE (alone) holds data in (map
# may split a cluster where its host range has a hole: every cluster a
# range touches).
data_clusters() {
    qemu-img map --output=json "$(bitmap_alone "$1")" |
        jq -r '.[] | select(.data) | "\(.start) \(.length)"' |
        awk '{ for (c = int($1 / 65536); c <= int(($1 + $2 - 1) / 65536); c++) print c }' | sort -u
}
rm -f -- *.qcow2 *.raw
qemu-img create -q -f qcow2 base.qcow2 8M
qemu-io -c 'write -P 1 0 3M' -c 'write -z 5M 1M' -c "write -s noise.bin 6M 256k" base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
qemu-io -c 'write -P 2 1M 64k' -c 'write -P 4 7M 64k' top.qcow2 >/dev/null
add_bitmaps top.qcow2 $((8 * MIB)) 65536
qemu-img create -q -f qcow2 sib.qcow2 8M
qemu-io -c 'write -P 1 0 1M' -c 'write -P 1 1M 512' -c 'write -P 3 5M 2M' sib.qcow2 >/dev/null
args=(-c -b sib.qcow2 -F qcow2)
orig=$T/crash && rm -rf "$orig" && mkdir "$orig" && cp -- *.qcow2 "$orig"
qemu-img convert -O raw top.qcow2 view.raw
cp top.qcow2 q.ref
qemu-img rebase -q -b sib.qcow2 -F qcow2 q.ref
for b in g512 g64k g1m off; do
    sectors top.qcow2 $b >"before.$b"
    sectors q.ref $b >"ref.$b"
done
data_clusters top.qcow2 >before.data
ref_bits=$(bm_all q.ref)
: >trace
EXTSNAP_FAULT_TRACE=$T/trace "$X" img rebase "${args[@]}" top.qcow2 || fail "E: the traced run failed"
eq "E: the traced run: bitmaps bit for bit" "$ref_bits" "$(bm_all top.qcow2)"
(($(compressed top.qcow2) > 0)) || fail "E: the traced run wrote no compressed cluster"
n=$(grep -c '^mutate ' trace || true)
((n > 5)) || fail "E: only $n mutate points traced"
points=0
# The first 6 points (the bitmaps' writes and the first data), then every
# stride-th and the last 4 (the tables, the header); I/O errors at every
# third of those.
stride=$(((n + 5) / 6))
for ((i = 1; i <= n; i++)); do
    ((i <= 6 || i % stride == 0 || i > n - 4)) || continue
    for action in stop eio; do
        [[ $action == eio ]] && ((i % 3)) && continue
        rm -f -- *.qcow2 && cp "$orig"/* .
        rc=0
        EXTSNAP_FAULT=mutate:$i:$action "$X" img rebase "${args[@]}" top.qcow2 2>out.log || rc=$?
        want=86
        [[ $action == eio ]] && want=1
        eq "E mutate:$i:$action: exit status ($(head -c 200 out.log))" $want $rc
        rc=0
        qemu-img check top.qcow2 >check.log 2>&1 || rc=$?
        ((rc == 0 || rc == 3)) || fail "E mutate:$i:$action: check exits $rc: $(grep -m2 -i error check.log | tr '\n' ' ')"
        ok_rc "E mutate:$i:$action: reads as before" 0 qemu-img compare -q view.raw top.qcow2 || true
        for b in g512 g64k g1m off; do
            sectors top.qcow2 $b >now
            eq "E mutate:$i:$action: $b lost no bit" "" "$(comm -23 before.$b now | head -3 | tr '\n' ' ')"
            eq "E mutate:$i:$action: $b has no bit beyond qemu-img's" "" "$(comm -13 ref.$b now | head -3 | tr '\n' ' ')"
        done
        # every cluster newly holding data is marked (64 KiB clusters and bits)
        data_clusters top.qcow2 | comm -13 before.data - >new.data
        bitmap_dirty top.qcow2 g64k | awk '{ for (c = int($1 / 65536); c <= int(($1 + $2 - 1) / 65536); c++) print c }' | sort -u >dirty.g64k
        eq "E mutate:$i:$action: new clusters all marked" "" "$(comm -23 new.data dirty.g64k | head -3 | tr '\n' ' ')"
        ok_rc "E mutate:$i:$action: re-run" 0 "$X" img rebase "${args[@]}" top.qcow2 || true
        ok_rc "E mutate:$i:$action: re-run equals qemu-img's" 0 qemu-img compare -q q.ref top.qcow2 || true
        ok_rc "E mutate:$i:$action: re-run checks clean" 0 qemu-img check -q top.qcow2 || true
        eq "E mutate:$i:$action: re-run: bitmaps bit for bit" "$ref_bits" "$(bm_all top.qcow2)"
        points=$((points + 1))
    done
done
echo "E: crash sweep: $points interrupted runs of $n points (${SECONDS}s)"
finish
