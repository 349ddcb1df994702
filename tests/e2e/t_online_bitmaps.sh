#!/usr/bin/env bash
# Persistent dirty bitmaps through the running-VM path (QMP), against
# libvirt 9.0's own sequence done by hand as the oracle.
#
# One qemu-system-x86_64 -machine none runs the domain "ovm" (vda as -drive,
# vdb as -blockdev with an NBD export, lib/online_domain.sh) and, beside it,
# a copy of vda's chain as -blockdev nodes o0, o1, ... (read-only below the
# active layer, as libvirt opens them) on which the test does what libvirt
# does: blockdev-snapshot + block-dirty-bitmap-add in one transaction
# (qemuSnapshotDiskBitmapsPropagate); block-commit, then for an active
# commit a temporary bitmap on BASE before block-job-complete, and after the
# job the merge transaction of qemuBlockGetBitmapMergeActions (an
# intermediate commit's BASE reopened read-write around it). Guest writes go
# to both chains (HMP qemu-io). After every extsnap create, commit and
# delete the bitmaps of each image are compared with the oracle's, bit for
# bit (x-debug-block-dirty-bitmap-sha256), and the same for img commit
# --qmp on a second -drive chain. Also: a bitmap merge that fails (fault
# point, and QEMU refusing the transaction through tests/qmp/qmp_proxy)
# switches nothing and loses nothing (the re-run equals the oracle);
# extsnap killed before the merge or before the first finalize, and the
# second finalize failing after the merge, leave what recovery undoes or
# finishes to the oracle's bitmaps; the proxy's log shows the merge between
# block-job-complete and job-finalize;
# refusals of an inconsistent and a busy bitmap; after QEMU quits, every
# cluster whose guest content changed since the bitmap was added has its bit
# set (qemu-nbd -B), the disabled bitmap is untouched, qemu-img check clean.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/online_domain.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/bitmaps.sh"
need_cmd qemu-img qemu-io qemu-nbd qemu-system-x86_64 jq cmp
PROXY=$(dirname "$EXTSNAP")/qmp_proxy
[[ -x $PROXY ]] || skip_test "$PROXY not built"
PROXY_PID=
stop_proxy() { [[ -z $PROXY_PID ]] || { kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null || true; PROXY_PID=; }; }
trap 'stop_proxy; vm_kill; rm -rf "$T"' EXIT
BM_TMP=$T
O=$T/o
mkdir -p "$O"

# ------------------------------------------------------------ QEMU's view
nodes_json() { vm_qmp query-named-block-nodes '{"flat": true}'; }
# The format node QEMU has FILE open with (plain or json: name).
node_of() {
    nodes_json | jq -r --arg f "$1" '[.[] | select(.drv == "qcow2" and (.file == $f or
        (.file | startswith("json:") and contains("\"" + $f + "\""))))][0]."node-name"'
}
# "name granularity recording persistent sha256" per bitmap of NODE, sorted.
bitmap_state() {
    local n=$1 b
    nodes_json | jq -r --arg n "$n" '.[] | select(."node-name" == $n) | ."dirty-bitmaps" // []
        | .[] | "\(.name) \(.granularity) \(.recording) \(.persistent)"' | sort |
        while read -r b rest; do
            echo "$b $rest $(vm_qmp x-debug-block-dirty-bitmap-sha256 \
                "{\"node\": \"$n\", \"name\": \"$b\"}" | jq -r .sha256)"
        done
}
same_bitmaps() { # WHAT REAL-FILE ORACLE-NODE
    local real
    real=$(node_of "$2")
    [[ $real != null ]] || { fail "$1: QEMU does not have $2 open"; return; }
    eq "$1: bitmaps of ${2#"$T"/} as libvirt's" "$(bitmap_state "$3")" "$(bitmap_state "$real")"
}

# ------------------------------------------------------------ the oracle
# Chains as bash arrays of node names, active layer first; LAYERS counts
# the oracle's files ($O/L<k>.qcow2, node o<k>).
OCH=(o0)
ICH=()
LAYERS=1
o_write() { vm_hmp "qemu-io $1 \"write -P $2 $3 $4\"" >/dev/null || fail "oracle write on $1"; }
# Both chains get the guest write: vda through extsnap's chain, the oracle's.
both_write() { vm_write vda "$1" "$2" "$3"; o_write "${OCH[0]}" "$1" "$2" "$3"; }

# libvirt's create on chain $1 (array name): new overlay, snapshot and the
# bitmaps of every persistent, recording, consistent bitmap in one transaction.
o_create() {
    local -n ch=$1
    local k=$LAYERS below=${ch[0]} acts
    LAYERS=$((LAYERS + 1))
    local f
    f=$(nodes_json | jq -r --arg n "$below" '.[] | select(."node-name" == $n) | .file')
    qemu-img create -q -u -f qcow2 -b "$f" -F qcow2 "$O/L$k.qcow2" 8M
    vm_qmp blockdev-add "{\"driver\": \"file\", \"node-name\": \"o${k}f\", \"filename\": \"$O/L$k.qcow2\"}" >/dev/null
    vm_qmp blockdev-add "{\"driver\": \"qcow2\", \"node-name\": \"o$k\", \"file\": \"o${k}f\", \"backing\": null}" >/dev/null
    acts=$(nodes_json | jq -c --arg n "$below" --arg o "o$k" '
        [{type: "blockdev-snapshot", data: {node: $n, overlay: $o}}] +
        [.[] | select(."node-name" == $n) | ."dirty-bitmaps" // [] | .[]
         | select(.persistent and .recording and (.inconsistent | not))
         | {type: "block-dirty-bitmap-add", data: {node: $o, name: .name, persistent: true,
            disabled: false, granularity: .granularity}}]')
    vm_qmp transaction "{\"actions\": $acts}" >/dev/null || fail "oracle create"
    ch=("o$k" "${ch[@]}")
}

o_wait_job() { # JOB STATUS: until query-block-jobs shows it so ("gone": not listed)
    local i s
    for ((i = 0; i < 1000; i++)); do
        s=$(vm_qmp query-block-jobs | jq -r --arg j "$1" '[.[] | select(.device == $j)
            | if .ready then "ready" else .status end][0] // "gone"')
        [[ $s == "$2" ]] && return 0
        sleep 0.02
    done
    fail "oracle job $1 never got $2 (now $s)"
}

# reopen NODE read-only or read-write (libvirt's qemuBlockReopenFormat).
o_reopen() {
    local n=$1 ro=$2 file backing
    file=$(nodes_json | jq -r --arg n "$n" '.[] | select(."node-name" == $n) | .file')
    backing=$(vm_qmp x-debug-query-block-graph | jq -r --arg n "$n" '
        (.nodes | map({key: (.id | tostring), value: .name}) | from_entries) as $names
        | (.nodes[] | select(.name == $n) | .id) as $id
        | [.edges[] | select(.parent == $id and .name == "backing") | $names[.child | tostring]][0] // "null"')
    [[ $backing == null ]] || backing="\"$backing\""
    vm_qmp blockdev-reopen "{\"options\": [{\"driver\": \"qcow2\", \"node-name\": \"$n\",
        \"file\": \"${n}f\", \"backing\": $backing, \"read-only\": $ro}]}" >/dev/null ||
        fail "oracle reopen $n read-only=$ro"
}

# libvirt's commit on chain $1 of ch[$2] (top) into ch[$3] (base).
o_commit() {
    local -n ch=$1
    local ti=$2 bi=$3 top=${ch[$2]} base=${ch[$3]} active=false nj acts ro
    ((ti == 0)) && active=true
    if $active; then
        vm_qmp block-commit "{\"device\": \"${ch[0]}\", \"job-id\": \"oj\", \"base-node\": \"$base\"}" >/dev/null
        o_wait_job oj ready
        vm_qmp transaction "{\"actions\": [{\"type\": \"block-dirty-bitmap-add\", \"data\":
            {\"node\": \"$base\", \"name\": \"libvirt-tmp-activewrite\", \"persistent\": false,
             \"disabled\": false}}]}" >/dev/null
        vm_qmp block-job-complete '{"device": "oj"}' >/dev/null
    else
        vm_qmp block-commit "{\"device\": \"${ch[0]}\", \"job-id\": \"oj\", \"top-node\": \"$top\",
            \"base-node\": \"$base\"}" >/dev/null
    fi
    o_wait_job oj gone
    ro=$(nodes_json | jq -r --arg n "$base" '.[] | select(."node-name" == $n) | .ro')
    [[ $ro == true ]] && o_reopen "$base" false
    nj=$(nodes_json)
    # qemuBlockGetBitmapMergeActions: TOP's bitmaps whose chain (TOP down,
    # no gap, each persistent, recording, consistent) is valid.
    local chain_json
    chain_json=$(printf '%s\n' "${ch[@]:$ti}" | jq -R . | jq -sc .)
    acts=$(jq -c --argjson chain "$chain_json" --argjson nb "$((bi - ti))" --argjson act "$active" '
        (map({key: ."node-name", value: (."dirty-bitmaps" // [])}) | from_entries) as $bm
        | def get($n; $b): [$bm[$n][] | select(.name == $b)][0];
          def valid($b): [ $chain[] | get(.; $b) ] as $l
            | ($l[0] != null) and
              ([range(0; $l | length)] | all(. as $i | ($l[$i] == null) or
                 (($i == 0 or $l[$i - 1] != null) and $l[$i].persistent and $l[$i].recording
                  and ($l[$i].inconsistent | not))));
          $chain[$nb] as $base
        | [ $bm[$chain[0]][] | .name as $b | select(valid($b))
            | (if get($base; $b) == null then [{type: "block-dirty-bitmap-add", data: {node: $base,
                 name: $b, persistent: true, disabled: false, granularity: get($chain[0]; $b).granularity}}]
               else [] end)
              + [{type: "block-dirty-bitmap-merge", data: {node: $base, target: $b, bitmaps:
                  ([ $chain[0:$nb][] | select(get(.; $b) != null) | {node: ., name: $b} ]
                   + (if $act then [{node: $base, name: "libvirt-tmp-activewrite"}] else [] end))}}]
          ] | add // []
        | . + (if $act then [{type: "block-dirty-bitmap-remove", data: {node: $base,
              name: "libvirt-tmp-activewrite"}}] else [] end)' <<<"$nj")
    [[ $acts == "[]" ]] || vm_qmp transaction "{\"actions\": $acts}" >/dev/null || fail "oracle merge"
    [[ $ro == true ]] && o_reopen "$base" true
    # libvirt then releases the merged images (blockdev-del).
    local n
    for n in "${ch[@]:$ti:$((bi - ti))}"; do
        vm_qmp blockdev-del "{\"node-name\": \"$n\"}" >/dev/null || fail "oracle: blockdev-del $n"
        vm_qmp blockdev-del "{\"node-name\": \"${n}f\"}" >/dev/null || fail "oracle: blockdev-del ${n}f"
    done
    ch=("${ch[@]:0:$ti}" "${ch[@]:$bi}")
}

# ------------------------------------------------------------ setup
write_config ovm vda vdb
for d in vda vdb; do
    qemu-img create -q -f qcow2 "$IMG/ovm-$d.qcow2" 8M
    qemu-img create -q -f raw "$T/expect-$d.raw" 8M
done
off_write vda 0x11 0 2M
off_write vdb 0x12 0 2M
qemu-img bitmap --add "$IMG/ovm-vda.qcow2" b1
qemu-img bitmap --add -g 128k "$IMG/ovm-vda.qcow2" b2
qemu-img bitmap --add --disable "$IMG/ovm-vda.qcow2" bd
qemu-img bitmap --add "$IMG/ovm-vdb.qcow2" bb
cp "$T/expect-vda.raw" "$T/t0-vda.raw"   # the guest when the bitmaps were added
cp "$T/expect-vdb.raw" "$T/t0-vdb.raw"
off_write vda 0x13 3M 64k
off_write vdb 0x14 3M 64k
cp "$IMG/ovm-vda.qcow2" "$O/L0.qcow2"
bd_before=$(qemu-img info --output=json "$IMG/ovm-vda.qcow2" | jq -c '."format-specific".data.bitmaps[] | select(.name == "bd")')
# img commit --qmp's chain (and the oracle's copy): c0 <- c1 <- c2, bitmaps
# in c1 and c2 (c0 has none: the merge adds them).
qemu-img create -q -f qcow2 "$T/c0.qcow2" 8M
qemu-io -f qcow2 -c "write -q -P 0x61 0 1M" "$T/c0.qcow2"
qemu-img create -q -f qcow2 -b "$T/c0.qcow2" -F qcow2 "$T/c1.qcow2" 8M
qemu-img bitmap --add "$T/c1.qcow2" ck
qemu-io -f qcow2 -c "write -q -P 0x62 1M 256k" "$T/c1.qcow2"
qemu-img create -q -f qcow2 -b "$T/c1.qcow2" -F qcow2 "$T/c2.qcow2" 8M
qemu-img bitmap --add "$T/c2.qcow2" ck
qemu-io -f qcow2 -c "write -q -P 0x63 4M 128k" "$T/c2.qcow2"
for i in 0 1 2; do cp "$T/c$i.qcow2" "$O/C$i.qcow2"; done
# An image whose bitmap a killed qemu-io left marked in use.
qemu-img create -q -f qcow2 "$T/inc.qcow2" 1M
qemu-img bitmap --add "$T/inc.qcow2" stale
qemu-io -f qcow2 -c "sleep 60000" "$T/inc.qcow2" >/dev/null 2>&1 &
qio=$!
for ((i = 0; i < 500; i++)); do
    qemu-img info -U --output=json "$T/inc.qcow2" 2>/dev/null |
        jq -e '."format-specific".data.bitmaps[0].flags | index("in-use")' >/dev/null && break
    sleep 0.01
done
kill -KILL "$qio"; wait "$qio" 2>/dev/null || true
qemu-img create -q -f qcow2 -b "$T/inc.qcow2" -F qcow2 "$T/inc-top.qcow2" 1M

args=(-drive "if=none,id=drive-vda,file=$(src -vda ovm),format=qcow2")
args+=(-blockdev "driver=qcow2,node-name=vdb-top,file.driver=file,file.filename=$(src -vdb ovm)")
args+=(-blockdev "driver=file,node-name=o0f,filename=$O/L0.qcow2")
args+=(-blockdev '{"driver": "qcow2", "node-name": "o0", "file": "o0f", "backing": null}')
args+=(-drive "if=none,id=drive-c,file=$T/c2.qcow2,format=qcow2")
args+=(-drive "if=none,id=drive-inc,file=$T/inc-top.qcow2,format=qcow2")
for i in 0 1 2; do
    args+=(-blockdev "driver=file,node-name=i${i}f,filename=$O/C$i.qcow2")
    b=null; ((i)) && b="\"i$((i - 1))\""
    ro=true; ((i == 2)) && ro=false
    args+=(-blockdev "{\"driver\": \"qcow2\", \"node-name\": \"i$i\", \"file\": \"i${i}f\", \"backing\": $b, \"read-only\": $ro}")
done
ICH=(i2 i1 i0)
vm_start "$SOCK" "${args[@]}"
vm_qmp nbd-server-start "{\"addr\": {\"type\": \"unix\", \"data\": {\"path\": \"$T/nbd.sock\"}}}" >/dev/null
vm_qmp block-export-add '{"type": "nbd", "id": "vdb", "node-name": "vdb-top", "writable": false}' >/dev/null
vm_qmp block-export-add '{"type": "nbd", "id": "o", "node-name": "o0", "writable": false}' >/dev/null
vm_qmp block-export-add '{"type": "nbd", "id": "i", "node-name": "i2", "writable": false}' >/dev/null
echo "$QEMU_PID" >"$RUN/ovm.pid"
same_bitmaps "start" "$IMG/ovm-vda.qcow2" o0

# ------------------------------------------------------------ refusals
# A bitmap in use by an NBD export is busy: nothing is done.
vm_qmp block-export-add '{"type": "nbd", "id": "bk", "name": "bk", "node-name": "vdb-top", "writable": true, "bitmaps": ["bb"]}' >/dev/null
before=$(xml_state; ls "$IMG")
rc_is "create with a busy bitmap" 1 X create ovm s9 2>"$T/err"
has "busy bitmap refused" "disk vdb: dirty bitmap 'bb' of this image is in use in QEMU" "$(cat "$T/err")"
eq "busy refusal: one line" 1 "$(wc -l <"$T/err")"
rc_is "dry run with a busy bitmap" 1 X create ovm s9 --dry-run 2>"$T/err"
has "dry run refuses the same" "dirty bitmap 'bb' of this image is in use" "$(cat "$T/err")"
eq "refusals change nothing" "$before" "$(xml_state; ls "$IMG")"
vm_qmp block-export-del '{"id": "bk"}' >/dev/null
for ((i = 0; i < 500; i++)); do
    [[ $(nodes_json | jq -r '.[] | select(."node-name" == "vdb-top") | ."dirty-bitmaps"[0].busy') == false ]] && break
    sleep 0.01
done
# An inconsistent bitmap (loaded marked in use) below TOP.
rc_is "img commit with an inconsistent bitmap" 1 "$EXTSNAP" img commit --qmp "$SOCK" \
    --device drive-inc "$T/inc-top.qcow2" 2>"$T/err"
has "inconsistent bitmap refused" "QEMU holds dirty bitmap 'stale' of this image as inconsistent" "$(cat "$T/err")"
eq "inconsistent refusal: one line" 1 "$(wc -l <"$T/err")"
eq "inconsistent refusal: chain unchanged" "$T/inc-top.qcow2 $T/inc.qcow2 " "$(vm_chain_files drive-inc | tr '\n' ' ')"

# ------------------------------------------------------------ create
out=$(X create ovm s1 --dry-run 2>&1) || fail "dry run create: $out"
has "dry run shows the bitmaps" "add bitmap 'b1' (granularity 65536) to the new overlay" "$out"
ES_CHECKS=$((ES_CHECKS + 1))
[[ $out != *"'bd'"* ]] || fail "the disabled bitmap is not propagated: $out"
X create ovm s1 -q || fail "online create s1"
o_create OCH
same_bitmaps "create s1" "$IMG/ovm-vda.s1" "${OCH[0]}"
both_write 0x21 1M 64k
both_write 0x22 5M 128k
X create ovm s2 -q || fail "online create s2"
o_create OCH
# A bitmap added live on the active layer only (BASE of the next commit lacks it).
vm_qmp block-dirty-bitmap-add "{\"node\": \"$(node_of "$IMG/ovm-vda.s2")\", \"name\": \"bn\", \"persistent\": true}" >/dev/null
vm_qmp block-dirty-bitmap-add "{\"node\": \"${OCH[0]}\", \"name\": \"bn\", \"persistent\": true}" >/dev/null
both_write 0x31 2M 64k
both_write 0x32 6M 64k
X create ovm s3 -q || fail "online create s3"
o_create OCH
both_write 0x41 1536k 128k
same_bitmaps "create s3: s3" "$IMG/ovm-vda.s3" "${OCH[0]}"
same_bitmaps "create s3: s2" "$IMG/ovm-vda.s2" "${OCH[1]}"
same_bitmaps "create s3: s1" "$IMG/ovm-vda.s1" "${OCH[2]}"
same_bitmaps "create s3: base" "$IMG/ovm-vda.qcow2" "${OCH[3]}"

# ------------------------------------------------------------ commit (intermediate)
out=$(X commit ovm s1 s2 --dry-run 2>&1) || fail "dry run commit: $out"
has "dry run commit shows the merge" "add bitmap to BASE, merge bitmap 'bn' of 1 image into BASE's" "$out"
# extsnap killed once the bitmaps are merged and the journal says "merge",
# before the first job-finalize: recovery (the VM running) finalizes.
rc_is "commit killed before finalize" 137 env EXTSNAP_QMP_FAULT=finalize:1:kill \
    "${OWN_RUN[@]}" "$EXTSNAP" commit ovm s1 s2 -q --config-dir="$CFG" --snapshot-dir="$SNAPS" --run-dir="$RUN"
X recover ovm -q || fail "recover after the killed commit"
o_commit OCH 1 2
eq "vda chain after commit" "$IMG/ovm-vda.s3 $IMG/ovm-vda.s1 $IMG/ovm-vda.qcow2 " \
    "$(vm_chain_files drive-vda | tr '\n' ' ')"
same_bitmaps "commit s1 s2: BASE" "$IMG/ovm-vda.s1" "${OCH[1]}"
same_bitmaps "commit s1 s2: active" "$IMG/ovm-vda.s3" "${OCH[0]}"
both_write 0x51 7M 64k

# ------------------------------------------------------------ delete (active), merge failing first
bitmap_names() { bitmap_state "$(node_of "$1")" | cut -d' ' -f1-4 | tr '\n' ' '; }
s1_before=$(bitmap_names "$IMG/ovm-vda.s1")
top_before=$(bitmap_state "$(node_of "$IMG/ovm-vda.s3")")
rc=0
EXTSNAP_QMP_FAULT=bitmaps:1:error X delete ovm s3 >"$T/out" 2>"$T/err" || rc=$?
eq "failed bitmap merge: exit status" 1 "$rc"
has "failed bitmap merge: the error" "merging the dirty bitmaps into BASE (nothing of them changed): injected fault at bitmaps #1" "$(cat "$T/err")"
has "failed bitmap merge: nothing switched" "the chains and libvirt's files are as before" "$(cat "$T/err")"
eq "failed bitmap merge: one line" 1 "$(wc -l <"$T/err")"
eq "failed bitmap merge: chain unchanged" "$IMG/ovm-vda.s3 $IMG/ovm-vda.s1 $IMG/ovm-vda.qcow2 " \
    "$(vm_chain_files drive-vda | tr '\n' ' ')"
eq "failed bitmap merge: TOP's bitmaps kept" "$top_before" "$(bitmap_state "$(node_of "$IMG/ovm-vda.s3")")"
eq "failed bitmap merge: no bitmap added to BASE" "$s1_before" "$(bitmap_names "$IMG/ovm-vda.s1")"
both_write 0x61 6M 32k
X delete ovm s3 -q || fail "online delete s3 (again)"
o_commit OCH 0 1
eq "vda chain after delete s3" "$IMG/ovm-vda.s1 $IMG/ovm-vda.qcow2 " "$(vm_chain_files drive-vda | tr '\n' ' ')"
same_bitmaps "delete s3: BASE" "$IMG/ovm-vda.s1" "${OCH[0]}"
both_write 0x71 3M 64k
# extsnap killed just before the merge transaction (jobs pending, the
# journal still "prepare"): recovery cancels, the delete runs again.
rc_is "delete killed before the bitmap merge" 137 env EXTSNAP_QMP_FAULT=bitmaps:1:kill \
    "${OWN_RUN[@]}" "$EXTSNAP" delete ovm s1 -q --config-dir="$CFG" --snapshot-dir="$SNAPS" --run-dir="$RUN"
X recover ovm -q || fail "recover after the killed delete"
eq "killed delete undone" "$IMG/ovm-vda.s1 $IMG/ovm-vda.qcow2 " "$(vm_chain_files drive-vda | tr '\n' ' ')"
# The second job-finalize fails after the merge (one transaction for both
# disks) and the first finalize: vda is switched, vdb's job cancelled, the
# merge stays in vdb's BASE; recovery redoes vdb's commit through QEMU
# (merging again: the same bits), vdb's bitmap checked after QEMU quits.
vm_write vdb 0xb1 6M 64k
rc=0
EXTSNAP_QMP_FAULT=finalize:2:error X delete ovm s1 -q 2>"$T/err" || rc=$?
eq "finalize failing after the merge: exit status" 1 "$rc"
has "finalize failing after the merge: the error" "1 of 2 disks were switched" "$(cat "$T/err")"
X recover ovm -q || fail "recover after the half-done delete"
eq "vdb switched by the recovery" "$IMG/ovm-vdb.qcow2" "$(vdb_file)"
o_commit OCH 0 1
eq "vda chain after delete s1" "$IMG/ovm-vda.qcow2 " "$(vm_chain_files drive-vda | tr '\n' ' ')"
both_write 0x81 7680k 64k
same_bitmaps "delete s1: the last image" "$IMG/ovm-vda.qcow2" "${OCH[0]}"

# ------------------------------------------------------------ img commit --qmp
vm_hmp 'qemu-io drive-c "write -P 0x64 6M 64k"' >/dev/null
o_write "${ICH[0]}" 0x64 6M 64k
# QEMU refusing the merge (the proxy answers the transaction with an error).
rm -f "$T/proxy.sock"
"$PROXY" "$T/proxy.sock" "$SOCK" "$T/proxy.log" \
    'reply:transaction:1:{"error": {"class": "GenericError", "desc": "Bitmap refused"}}' &
PROXY_PID=$!
for ((i = 0; i < 500; i++)); do [[ -S $T/proxy.sock ]] && break; sleep 0.01; done
c1_before=$(bitmap_state "$(node_of "$T/c1.qcow2")")
rc_is "img commit, merge refused by QEMU" 1 "$EXTSNAP" img commit --qmp "$T/proxy.sock" \
    --device drive-c -b "$T/c0.qcow2" "$T/c1.qcow2" 2>"$T/err"
stop_proxy
has "merge refused: the error" "merging the dirty bitmaps into BASE (nothing of them changed): QMP command transaction failed: GenericError: Bitmap refused; no disk was switched" "$(cat "$T/err")"
eq "merge refused: one line" 1 "$(wc -l <"$T/err")"
eq "merge refused: chain unchanged" "$T/c2.qcow2 $T/c1.qcow2 $T/c0.qcow2 " "$(vm_chain_files drive-c | tr '\n' ' ')"
eq "merge refused: TOP's bitmaps kept" "$c1_before" "$(bitmap_state "$(node_of "$T/c1.qcow2")")"
"$EXTSNAP" img commit --qmp "$SOCK" --device drive-c -b "$T/c0.qcow2" "$T/c1.qcow2" >/dev/null ||
    fail "img commit --qmp (intermediate)"
o_commit ICH 1 2
same_bitmaps "img commit intermediate: BASE" "$T/c0.qcow2" "${ICH[1]}"
# QEMU reopened BASE read-only at the finalize, which stored the new bitmap.
eq "img commit intermediate: the bitmap added to BASE is in its file" '[{"flags":["auto"],"name":"ck","granularity":65536}]' \
    "$(qemu-img info -U --output=json "$T/c0.qcow2" | jq -c '."format-specific".data.bitmaps')"
vm_hmp 'qemu-io drive-c "write -P 0x65 2M 64k"' >/dev/null
o_write "${ICH[0]}" 0x65 2M 64k
# Through the proxy, to see the order of QEMU's commands: the merge goes
# once the job is pending, before job-finalize.
rm -f "$T/proxy.sock" "$T/proxy.log"
"$PROXY" "$T/proxy.sock" "$SOCK" "$T/proxy.log" &
PROXY_PID=$!
for ((i = 0; i < 500; i++)); do [[ -S $T/proxy.sock ]] && break; sleep 0.01; done
"$EXTSNAP" img commit --qmp "$T/proxy.sock" --device drive-c "$T/c2.qcow2" >/dev/null ||
    fail "img commit --qmp (active)"
stop_proxy
eq "the merge goes between block-job-complete and job-finalize" "block-job-complete transaction job-finalize" \
    "$(grep -x 'block-job-complete\|transaction\|job-finalize' "$T/proxy.log" | tr '\n' ' ' | sed 's/ $//')"
o_commit ICH 0 1
vm_hmp 'qemu-io drive-c "write -P 0x66 7M 64k"' >/dev/null
o_write "${ICH[0]}" 0x66 7M 64k
same_bitmaps "img commit active: BASE" "$T/c0.qcow2" "${ICH[0]}"

# ------------------------------------------------------------ after QEMU quit
vm_write vdb 0x91 5M 64k
stop_vm
rm -f "$RUN/ovm.pid"
check_guest "after the online operations"
check_images "after the online operations"
for f in "$T/c0.qcow2" "$O/L0.qcow2"; do
    ES_CHECKS=$((ES_CHECKS + 1))
    out=$(qemu-img check -q "$f" 2>&1) || fail "qemu-img check $f: $out"
done
eq "the disabled bitmap untouched" "$bd_before" \
    "$(qemu-img info --output=json "$IMG/ovm-vda.qcow2" | jq -c '."format-specific".data.bitmaps[] | select(.name == "bd")')"
eq "bitmaps stored in the last image" "b1 b2 bd bn" \
    "$(qemu-img info --output=json "$IMG/ovm-vda.qcow2" | jq -r '[."format-specific".data.bitmaps[].name] | sort | join(" ")')"
# Backup check: every 4 KiB block changed since the bitmap was added is dirty.
for b in b1 b2; do
    mapfile -t ranges < <(bitmap_dirty "$IMG/ovm-vda.qcow2" "$b")
    eq "vda bitmap $b covers every change since it was added" "" \
        "$(bitmap_missed "$T/t0-vda.raw" "$T/expect-vda.raw" "${ranges[@]}")"
done
mapfile -t ranges < <(bitmap_dirty "$IMG/ovm-vdb.qcow2" bb)
eq "vdb bitmap bb covers every change since it was added" "" \
    "$(bitmap_missed "$T/t0-vdb.raw" "$T/expect-vdb.raw" "${ranges[@]}")"
ES_CHECKS=$((ES_CHECKS + 1))
[[ $(bitmap_dirty "$IMG/ovm-vda.qcow2" b1 | wc -l) -gt 0 ]] || fail "b1 has no dirty range at all"

finish
