#!/usr/bin/env bash
# extsnap img rebase without -u (the safe rebase), with qemu-img as the
# oracle: on random chains (seeded qemu-io writes of patterns, zero writes,
# discards over 2-3 layers; qcow2 and raw bases; v2 and v3; 64 KiB and
# 512-byte clusters) the same rebase is done by qemu-img on a copy and by
# extsnap, and the two results must read the same (qemu-img compare), read
# as the image did before, and check clean. Cases: onto a sibling, onto the
# base of the chain, onto a chain sharing the base, flatten (-b ""), a new
# backing shorter than the image, an image without a backing file. Then the
# refusals (nothing changed, one error line) and a crash sweep with the
# fault hook (one scenario with -c, compressed writes): stopped or failed at
# every write/flush, the image checks without corruption and reads as
# before; a re-run completes, equal to qemu-img's result, without leaks.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img qemu-io sha256sum od dd jq

X=$EXTSNAP
cd "$T"
RANDOM=${ES_REBASE_SEED:-14}

MIB=$((1 << 20))

# layer IMG SIZE N: N random operations on IMG (guest range [0, SIZE)).
layer() {
    local img=$1 size=$2 n=$3 cmds=() i off len op
    for ((i = 0; i < n; i++)); do
        off=$(((RANDOM * 32768 + RANDOM) % (size / 512) * 512))
        len=$(((RANDOM % 256 + 1) * 512))
        ((off + len <= size)) || len=$((size - off))
        op=$((RANDOM % 10))
        if ((op < 6)); then
            cmds+=(-c "write -P $((RANDOM % 250 + 1)) $off $len")
        elif ((op < 8)); then
            cmds+=(-c "write -z $off $len")
        else
            cmds+=(-c "discard $off $len")
        fi
    done
    qemu-io -f "$(fmt_of "$img")" "${cmds[@]}" "$img" >/dev/null
}
fmt_of() { [[ $1 == *.raw ]] && echo raw || echo qcow2; }

# mk IMG SIZE OPTS [BACKING]: a new image (qcow2 with OPTS, or raw).
mk() {
    local img=$1 size=$2 opts=$3 back=${4:-}
    if [[ $img == *.raw ]]; then
        truncate -s "$size" "$img"
    elif [[ -n $back ]]; then
        qemu-img create -q -f qcow2 -o "$opts" -b "$back" -F "$(fmt_of "$back")" "$img" "$size"
    else
        qemu-img create -q -f qcow2 -o "$opts" "$img" "$size"
    fi
}

hash_all() { sha256sum -- *.qcow2 | sha256sum | cut -c1-16; }

# same_rebase LABEL IMG ARGS...: rebase IMG with qemu-img (on a copy) and
# with extsnap; compare both with each other and with IMG's view before.
same_rebase() {
    local label=$1 img=$2 rc=0
    shift 2
    qemu-img convert -O raw "$img" view.raw
    if [[ ${NO_QEMU_REF:-} != 1 ]]; then
        cp "$img" q.qcow2
        qemu-img rebase -q "$@" q.qcow2
    fi
    "$X" img rebase "$@" "$img" 2>err.log || rc=$?
    ok_eq "$label: exit status ($(head -c 300 err.log))" 0 "$rc" || return 0
    # qemu-img 7.2 loses data when it rebases a version 2 image that has no
    # backing file: its zero writes are no-ops there (the image already
    # reads zeroes), so the new backing shows through. extsnap writes the
    # zeroes; only the comparison with the image's own view holds then.
    if [[ ${QEMU_V2_NO_BACKING:-} != 1 && ${NO_QEMU_REF:-} != 1 ]]; then
        ok_rc "$label: qemu-img compare with qemu-img's result" 0 qemu-img compare -q q.qcow2 "$img" || true
    fi
    ok_rc "$label: reads as before" 0 qemu-img compare -q view.raw "$img" || true
    ok_rc "$label: qemu-img check" 0 qemu-img check -q "$img" || true
    [[ ${NO_QEMU_REF:-} == 1 ]] ||
        ok_eq "$label: backing file" "$(qemu-img info --output=json q.qcow2 | grep -o '"backing-filename": "[^"]*"' || true)" \
            "$(qemu-img info --output=json "$img" | grep -o '"backing-filename": "[^"]*"' || true)" || true
}

# --- random chains -----------------------------------------------------------
cases=0
for round in 1 2 3 4; do
    rm -f -- *.qcow2 *.raw
    cs=$(((RANDOM % 2) ? 65536 : 512))
    compat=1.1
    ((RANDOM % 2)) && compat=0.10
    opts="cluster_size=$cs,compat=$compat"
    size=$(((RANDOM % 6 + 3) * MIB))
    [[ $cs == 512 ]] && size=$((size / 2))
    # qcow2 or raw at the bottom; raw bases are sparse files.
    base=base.qcow2
    ((RANDOM % 3 == 0)) && base=base.raw
    mk "$base" "$size" "$opts"
    layer "$base" "$size" 12
    mk mid.qcow2 "$size" "$opts" "$base"
    layer mid.qcow2 "$size" 10
    mk top.qcow2 "$size" "$opts" mid.qcow2
    layer top.qcow2 "$size" 8
    # A sibling chain sharing the base, and an unrelated image (shorter).
    mk sib.qcow2 "$size" "$opts" "$base"
    layer sib.qcow2 "$size" 10
    mk other.qcow2 $((size / 2)) "$opts"
    layer other.qcow2 $((size / 2)) 10
    tag="round $round ($opts, $(fmt_of "$base") base, $((size >> 10)) KiB)"
    keep=$T/keep && rm -rf "$keep" && mkdir "$keep" && cp -- *.qcow2 *.raw "$keep" 2>/dev/null || true
    restore() { rm -f -- *.qcow2 *.raw; cp "$keep"/* .; }

    same_rebase "$tag: onto a sibling sharing the base" top.qcow2 -b sib.qcow2 -F qcow2
    restore
    same_rebase "$tag: onto the base" top.qcow2 -b "$base" -F "$(fmt_of "$base")"
    restore
    same_rebase "$tag: onto a shorter unrelated image" top.qcow2 -b other.qcow2 -F qcow2
    restore
    same_rebase "$tag: flatten" top.qcow2 -b ""
    restore
    # mid onto nothing, then top (whose chain it is) must read the same too
    qemu-img convert -O raw top.qcow2 topview.raw
    same_rebase "$tag: flatten the middle" mid.qcow2 -b ""
    ok_rc "$tag: the image above still reads the same" 0 qemu-img compare -q topview.raw top.qcow2 || true
    restore
    # An image without a backing file onto a chain: the old chain is empty.
    QEMU_V2_NO_BACKING=0
    [[ $compat == 0.10 ]] && QEMU_V2_NO_BACKING=1
    same_rebase "$tag: a standalone image onto a chain" other.qcow2 -b top.qcow2 -F qcow2
    QEMU_V2_NO_BACKING=0
    cases=$((cases + 6))
done
echo "random chains: $cases rebases compared (${SECONDS}s)"

# --- several chunks and batches: 512-byte clusters, 16384 a chunk, 32768 a batch
# (qemu-img takes seconds over 40000 small clusters: here the result is
# compared with the image's view before only)
rm -f -- *.qcow2 *.raw
truncate -s 24M base.raw
qemu-io -f raw -c 'write -P 1 0 20M' -c 'write -z 3M 1M' base.raw >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=512 -b base.raw -F raw top.qcow2
qemu-io -c 'write -P 2 5M 1M' -c 'write -z 12M 64k' top.qcow2 >/dev/null
qemu-img create -q -f qcow2 sib.qcow2 24M
qemu-io -c 'write -P 1 0 10M' -c 'write -P 3 22M 1M' sib.qcow2 >/dev/null
cp top.qcow2 top.keep
NO_QEMU_REF=1
same_rebase "many batches: onto a sibling (half equal)" top.qcow2 -b sib.qcow2 -F qcow2
cp top.keep top.qcow2
same_rebase "many batches: flatten" top.qcow2 -b ""
NO_QEMU_REF=0
ok_eq "many batches: no backing file left" "" "$(qemu-img info --output=json top.qcow2 | grep -o '"backing-filename"' || true)" || true
rm -f top.keep
echo "several batches done (${SECONDS}s)"

# --- work follows the data, not the virtual size ------------------------------
rm -f -- *.qcow2 *.raw
qemu-img create -q -f qcow2 big.qcow2 4T
qemu-io -c 'write -P 7 3T 64k' big.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b big.qcow2 -F qcow2 bigtop.qcow2
qemu-img create -q -f qcow2 bigsib.qcow2 4T
qemu-io -c 'write -P 8 1T 64k' bigsib.qcow2 >/dev/null
start=$(date +%s%N)
ok_rc "4 TiB sparse chain onto a sibling" 0 "$X" img rebase -b bigsib.qcow2 -F qcow2 bigtop.qcow2 || true
ms=$((($(date +%s%N) - start) / 1000000))
((ms < 3000)) || fail "4 TiB sparse chain took ${ms} ms: the work should follow the allocated clusters"
ok_eq "4 TiB: 3T shows the old data" "$(qemu-io -c 'read -P 7 3T 64k' bigtop.qcow2 | grep -c 'read 65536')" 1 || true
ok_eq "4 TiB: 1T shows zeroes" "$(qemu-io -c 'read -P 0 1T 64k' bigtop.qcow2 | grep -c 'read 65536')" 1 || true
ok_rc "4 TiB: check" 0 qemu-img check -q bigtop.qcow2 || true

# --- refusals: nothing changed, one error line, exit 1 --------------------------
rm -f -- *.qcow2 *.raw
qemu-img create -q -f qcow2 base.qcow2 4M
qemu-io -c 'write -P 1 0 1M' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
qemu-io -c 'write -P 2 2M 64k' top.qcow2 >/dev/null
qemu-img create -q -f qcow2 sib.qcow2 4M
qemu-io -c 'write -P 3 0 2M' sib.qcow2 >/dev/null
refuse() { # LABEL IMG ARGS...
    local label=$1 img=$2 before rc=0
    shift 2
    before=$(hash_all)
    "$X" img rebase "$@" "$img" 2>refuse.err || rc=$?
    ok_eq "$label: exit status" 1 "$rc" || true
    ok_eq "$label: nothing changed" "$before" "$(hash_all)" || true
    ok_eq "$label: one error line ($(head -c 300 refuse.err))" 1 \
        "$(grep -vc "^Try 'extsnap img rebase --help'.$" refuse.err)" || true
}
refuse "missing new backing file" top.qcow2 -b nothere.qcow2 -F qcow2
echo "not a qcow2 image at all" >junk.qcow2
refuse "new backing file not qcow2" top.qcow2 -b junk.qcow2 -F qcow2
rm junk.qcow2
refuse "new backing is the image itself" top.qcow2 -b top.qcow2 -F qcow2
qemu-img create -q -f qcow2 -b top.qcow2 -F qcow2 loop.qcow2
refuse "new backing chain contains the image" top.qcow2 -b loop.qcow2 -F qcow2
rm loop.qcow2
refuse "-b without -F" top.qcow2 -b sib.qcow2
cp top.qcow2 cor.qcow2
printf '\x02' | dd of=cor.qcow2 bs=1 seek=79 conv=notrunc status=none # corrupt bit
refuse "image marked corrupt" cor.qcow2 -b sib.qcow2 -F qcow2
printf '\x01' | dd of=cor.qcow2 bs=1 seek=79 conv=notrunc status=none # dirty bit
refuse "dirty image" cor.qcow2 -b sib.qcow2 -F qcow2
rm cor.qcow2
# Metadata damage the check finds: the first L2 entry of top's data points
# past the end of the file.
cp top.qcow2 dmg.qcow2
l1off=$((16#$(od -An -tx1 -j 40 -N8 dmg.qcow2 | tr -d ' \n')))
l2off=$((16#$(od -An -tx1 -j "$l1off" -N8 dmg.qcow2 | tr -d ' \n') & 0x00fffffffffffe00))
printf '\x80\x00\x00\x00\x10\x00\x00\x00' | dd of=dmg.qcow2 bs=1 seek=$((l2off + 32 * 8)) conv=notrunc status=none
qemu-img check -q dmg.qcow2 >/dev/null 2>&1 && fail "damaged image: the oracle finds nothing"
refuse "metadata damage" dmg.qcow2 -b sib.qcow2 -F qcow2
rm dmg.qcow2
qemu-img create -q -f qcow2 -o extended_l2=on -b base.qcow2 -F qcow2 ext.qcow2
refuse "extended L2 entries" ext.qcow2 -b sib.qcow2 -F qcow2
rm ext.qcow2
refuse "raw image" sib.qcow2 -f raw -b base.qcow2 -F qcow2
# In use: qemu-io holds QEMU's write lock while it sleeps.
qemu-io -c 'sleep 4000' top.qcow2 &
qpid=$!
sleep 0.5
refuse "image in use" top.qcow2 -b sib.qcow2 -F qcow2
kill "$qpid" 2>/dev/null || true
wait "$qpid" 2>/dev/null || true

# --- crash sweep ----------------------------------------------------------------
echo "refusals done (${SECONDS}s)"
# v3 64 KiB with an internal snapshot (shared L2 tables: copied, then the old
# ones released), and v2 512-byte clusters flattened (new refcount blocks,
# several L2 tables; its points are sampled), without and with -c.
build_crash() {
    rm -f -- *.qcow2 *.raw
    if [[ $1 == a ]]; then
        qemu-img create -q -f qcow2 base.qcow2 8M
        qemu-io -c 'write -P 1 0 3M' -c 'write -z 5M 1M' base.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
        qemu-io -c 'write -P 2 1M 64k' -c 'write -P 4 7M 64k' top.qcow2 >/dev/null
        qemu-img snapshot -c s1 top.qcow2
        qemu-img create -q -f qcow2 sib.qcow2 8M
        qemu-io -c 'write -P 1 0 1M' -c 'write -P 3 5M 2M' sib.qcow2 >/dev/null
        args=(-b sib.qcow2 -F qcow2)
    else
        qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=512 base.qcow2 3M
        qemu-io -c 'write -P 1 0 2M' -c 'write -P 3 2560k 64k' base.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=512 -b base.qcow2 -F qcow2 top.qcow2
        qemu-io -c 'write -P 2 1M 512k' top.qcow2 >/dev/null
        args=(-b "")
        # c: the same with -c (compressed clusters packed several to a
        # host cluster, one after the other across cluster boundaries)
        if [[ $1 == c ]]; then args=(-c -b ""); fi
    fi
}
crash_points=0
for scenario in a b c; do
    build_crash $scenario
    orig=$T/crash.$scenario && rm -rf "$orig" && mkdir "$orig" && cp -- *.qcow2 "$orig"
    qemu-img convert -O raw top.qcow2 view.raw
    cp top.qcow2 q.ref
    qargs=() # qemu-img 7.2's rebase has no -c: the reference is uncompressed
    for a in "${args[@]}"; do [[ $a == -c ]] || qargs+=("$a"); done
    qemu-img rebase -q -f qcow2 "${qargs[@]}" q.ref
    ok_rc "crash $scenario: qemu-img's result reads as before" 0 qemu-img compare -q view.raw q.ref || true
    : >trace
    EXTSNAP_FAULT_TRACE=$T/trace "$X" img rebase "${args[@]}" top.qcow2 ||
        fail "crash $scenario: the traced run failed"
    n=$(grep -c '^mutate ' trace || true)
    ((n > 3)) || fail "crash $scenario: only $n mutate points traced"
    [[ $scenario != c ]] || (($(qemu-img check --output=json top.qcow2 | jq '."compressed-clusters" // 0') > 1000)) ||
        fail "crash c: -c wrote too few compressed clusters"
    # Every point when there are few; else every stride-th and the last 4
    # (the final flushes and the header); I/O errors at every other one.
    stride=$(((n + 7) / 8))
    for ((i = 1; i <= n; i++)); do
        ((i % stride == 0 || i > n - 4 || i == 1)) || continue
        for action in stop eio; do
            [[ $action == eio ]] && ((i % 2)) && continue
            rm -f -- *.qcow2 && cp "$orig"/* .
            rc=0
            EXTSNAP_FAULT=mutate:$i:$action "$X" img rebase "${args[@]}" top.qcow2 2>out.log || rc=$?
            want=86
            [[ $action == eio ]] && want=1
            ok_eq "crash $scenario mutate:$i:$action: exit status ($(head -c 200 out.log))" $want $rc || true
            rc=0
            qemu-img check top.qcow2 >check.log 2>&1 || rc=$?
            ((rc == 0 || rc == 3)) || fail "crash $scenario mutate:$i:$action: check exits $rc: $(grep -m2 -i error check.log | tr '\n' ' ')"
            ok_rc "crash $scenario mutate:$i:$action: reads as before" 0 qemu-img compare -q view.raw top.qcow2 || true
            ok_rc "crash $scenario mutate:$i:$action: re-run" 0 "$X" img rebase "${args[@]}" top.qcow2 || true
            ok_rc "crash $scenario mutate:$i:$action: re-run equals qemu-img's" 0 qemu-img compare -q q.ref top.qcow2 || true
            ok_rc "crash $scenario mutate:$i:$action: re-run checks clean" 0 qemu-img check -q top.qcow2 || true
            crash_points=$((crash_points + 1))
        done
    done
done
echo "crash sweep: $crash_points interrupted runs (${SECONDS}s)"

# Out of space half-way (injected: past the free-space check, another
# writer filled the disk; t_img_rebase_space covers the check): a clear error,
# the guest view unchanged, and a re-run once there is room finishes.
build_crash b
qemu-img convert -O raw top.qcow2 view.raw
rc=0
EXTSNAP_FAULT=write:40:enospc "$X" img rebase -b "" top.qcow2 2>out.log || rc=$?
ok_eq "out of space: exit status" 1 "$rc" || true
grep -q "No space left on device" out.log || fail "out of space: no clear message: $(cat out.log)"
ok_eq "out of space: one error line" 1 "$(wc -l <out.log)" || true
ok_rc "out of space: reads as before" 0 qemu-img compare -q view.raw top.qcow2 || true
ok_rc "out of space: re-run" 0 "$X" img rebase -b "" top.qcow2 || true
ok_rc "out of space: re-run reads as before" 0 qemu-img compare -q view.raw top.qcow2 || true
ok_rc "out of space: re-run checks clean" 0 qemu-img check -q top.qcow2 || true
finish
