#!/usr/bin/env bash
# extsnap img commit --qmp against a running qemu-system-x86_64 -machine none:
# intermediate and active commits of a chain attached with -drive (device)
# and with -blockdev (node names, a read-only NBD export as the user that
# pivots; a writable one refused),
# backing names written by QEMU, files reported as no longer used, guest
# data checked with qemu-img after QEMU quit; errors (socket missing, QEMU
# not answering, a QMP error reply, ENOSPC in the job), SIGINT during a
# rate-limited commit, QEMU killed during a commit.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
need_cmd qemu-img qemu-io qemu-system-x86_64 jq md5sum

trap 'vm_kill; rm -rf "$T"' EXIT
# Assertions that record a failure and go on (set -e would stop at the first).
eq() { ok_eq "$@" || true; }
rc_is() { ok_rc "$@" || true; }
S=$T/q.sock
D=$T/img
mkdir -p "$D"

# mk NAME SIZE [BACKING]: qcow2 image (backing name as given, format qcow2).
mk() {
    if [[ -n ${3:-} ]]; then
        qemu-img create -q -f qcow2 -b "$3" -F qcow2 "$1" "$2"
    else
        qemu-img create -q -f qcow2 "$1" "$2"
    fi
}
# wr IMG PATTERN OFFSET LEN
wr() { qemu-io -f qcow2 -c "write -q -P $2 $3 $4" "$1" >/dev/null; }
guest() { qemu-img convert -U -O raw "$1" "$2"; }
backing_name() { qemu-img info -U --output=json "$1" | jq -r '."backing-filename" // "none"'; }
sums() { (cd "$1" && md5sum -- *.qcow2); }
same_guest() {
    local what=$1 a=$2 b=$3 out
    ES_CHECKS=$((ES_CHECKS + 1))
    if ! out=$(qemu-img compare -U "$a" "$b" 2>&1); then
        fail "$what: guest content differs: $out"
    fi
}
check_clean() {
    local f out
    for f in "$@"; do
        ES_CHECKS=$((ES_CHECKS + 1))
        out=$(qemu-img check -q "$f" 2>&1) || fail "qemu-img check $f: $out"
    done
}
ok_has() {
    local what=$1 needle=$2 hay=$3
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $hay == *"$needle"* ]] || fail "$what: [$needle] not in [$hay]"
}
chain_is() { eq "$1" "$3" "$(vm_chain_files "$2" | tr '\n' ' ')"; }

# ---------------------------------------------------------------- -drive
mk "$D/base.qcow2" 4M
mk "$D/mid1.qcow2" 4M base.qcow2
mk "$D/mid2.qcow2" 4M mid1.qcow2
mk "$D/top.qcow2" 4M mid2.qcow2
wr "$D/base.qcow2" 0x11 0 1M
wr "$D/mid1.qcow2" 0x22 512k 1M
wr "$D/mid2.qcow2" 0x33 1M 1M
wr "$D/top.qcow2" 0x44 1536k 64k
qemu-io -f qcow2 -c "write -q -z 2M 64k" "$D/top.qcow2" >/dev/null
guest "$D/top.qcow2" "$T/expect.raw"

vm_start "$S" -drive "if=none,id=drive0,file=$D/top.qcow2,format=qcow2"
chain_is "-drive chain" drive0 "$D/top.qcow2 $D/mid2.qcow2 $D/mid1.qcow2 $D/base.qcow2 "

# Intermediate: mid2 into mid1 (BASE defaults to TOP's backing file).
out=$("$EXTSNAP" img commit --qmp "$S" --device drive0 "$D/mid2.qcow2" 2>&1) ||
    fail "intermediate commit: $out"
ok_has "intermediate output" "now has backing file mid1.qcow2" "$out"
ok_has "intermediate: mid2 released" "No longer used by QEMU (not deleted): $D/mid2.qcow2" "$out"
chain_is "after intermediate" drive0 "$D/top.qcow2 $D/mid1.qcow2 $D/base.qcow2 "
# The chain named mid1 relatively, and that still resolves from top's directory.
eq "top's backing name" "mid1.qcow2" "$(backing_name "$D/top.qcow2")"
[[ -f $D/mid2.qcow2 ]] || fail "img commit deleted mid2"

# The guest keeps writing into the active layer meanwhile.
vm_hmp 'qemu-io drive0 "write -P 0x55 3M 64k"' >/dev/null || fail "qemu-io write"
qemu-io -f raw -c "write -q -P 0x55 3M 64k" "$T/expect.raw" >/dev/null

# Active: top (and mid1) into base, JSON lines.
out=$("$EXTSNAP" img commit --qmp "$S" --device drive0 -b "$D/base.qcow2" -p --output=json \
    "$D/top.qcow2" 2>"$T/err") || fail "active commit: $(cat "$T/err")"
res=$(tail -n1 <<<"$out")
eq "active: status" completed "$(jq -r .status <<<"$res")"
eq "active: mode" active "$(jq -r .mode <<<"$res")"
eq "active: files" "$D/top.qcow2=closed $D/mid1.qcow2=closed" \
    "$(jq -r '[.files[] | .filename + "=" + ."qemu-use"] | join(" ")' <<<"$res")"
eq "active: progress lines" progress "$(head -n1 <<<"$out" | jq -r .type)"
# Each progress line: QEMU's status, bytes left (len - offset), rate, speed.
eq "active: progress fields" "true" "$(head -n1 <<<"$out" | jq -c '(.status | type == "string")
    and .remaining == .len - .offset and (.rate | type == "number") and .speed == 0')"
chain_is "after pivot" drive0 "$D/base.qcow2 "
vm_hmp 'qemu-io drive0 "write -P 0x66 3584k 64k"' >/dev/null || fail "qemu-io write after pivot"
qemu-io -f raw -c "write -q -P 0x66 3584k 64k" "$T/expect.raw" >/dev/null
vm_quit
same_guest "-drive: base after both commits" "$T/expect.raw" "$D/base.qcow2"
check_clean "$D/base.qcow2" "$D/top.qcow2"

# ---------------------------------------------------------------- -blockdev
# top in x/, mid and base in y/, named relatively: after the intermediate
# commit "b-base.qcow2" would not resolve from x/, so QEMU gets the absolute name.
mkdir -p "$D/x" "$D/y"
mk "$D/y/b-base.qcow2" 4M
mk "$D/y/b-mid.qcow2" 4M b-base.qcow2
mk "$D/x/b-top.qcow2" 4M ../y/b-mid.qcow2
wr "$D/y/b-base.qcow2" 0x11 0 2M
wr "$D/y/b-mid.qcow2" 0x22 1M 2M
wr "$D/x/b-top.qcow2" 0x33 2560k 512k
guest "$D/x/b-top.qcow2" "$T/b-expect.raw"
before=$(sums "$D/x"; sums "$D/y")
vm_start "$S" \
    -blockdev "driver=file,filename=$D/y/b-base.qcow2,node-name=base-f" \
    -blockdev "driver=qcow2,file=base-f,node-name=base" \
    -blockdev "driver=file,filename=$D/y/b-mid.qcow2,node-name=mid-f" \
    -blockdev "driver=qcow2,file=mid-f,node-name=mid,backing=base" \
    -blockdev "driver=file,filename=$D/x/b-top.qcow2,node-name=top-f" \
    -blockdev "driver=qcow2,file=top-f,node-name=top,backing=mid"

# Nothing uses node top yet: an active commit would have nothing to pivot.
rc_is "active commit without a user" 1 "$EXTSNAP" img commit --qmp "$S" --node top \
    "$D/x/b-top.qcow2" 2>"$T/err"
ok_has "no-user message" "which no device or export uses" "$(cat "$T/err")"
eq "no-user: files unchanged" "$before" "$(sums "$D/x"; sums "$D/y")"

vm_qmp nbd-server-start "{\"addr\": {\"type\": \"unix\", \"data\": {\"path\": \"$T/nbd.sock\"}}}" >/dev/null
vm_qmp block-export-add '{"type": "nbd", "id": "exp0", "node-name": "top", "writable": false}' >/dev/null

# A writable export of a node of the chain (its writes at the switch would
# be lost, docs/online.md): refused with one line, no file changed, no job;
# the read-only one (exp0, the user) is no reason.
vm_qmp block-export-add '{"type": "nbd", "id": "w", "name": "w", "node-name": "top", "writable": true}' >/dev/null
for what in "$D/y/b-mid.qcow2" "$D/x/b-top.qcow2"; do
    rc_is "writable export: commit of $what" 1 "$EXTSNAP" img commit --qmp "$S" --node top \
        "$what" 2>"$T/err"
    ok_has "writable export: message" "disk top: QEMU exports node top writable (nbd block export 'w'); writes through an export while the commit switches the disk would be lost: remove it first (block-export-del) or shut the VM down" "$(cat "$T/err")"
    eq "writable export: one line" 1 "$(wc -l <"$T/err")"
done
eq "writable export: files unchanged" "$before" "$(sums "$D/x"; sums "$D/y")"
eq "writable export: no job" "[]" "$(vm_qmp query-jobs | jq -c .)"
vm_qmp block-export-del '{"id": "w"}' >/dev/null
for ((i = 0; i < 500; i++)); do
    [[ $(vm_qmp query-block-exports | jq length) == 1 ]] && break
    sleep 0.01
done

out=$("$EXTSNAP" img commit --qmp "$S" --node top --speed 64M "$D/y/b-mid.qcow2" 2>&1) ||
    fail "blockdev intermediate: $out"
eq "b-top's backing name" "$D/y/b-base.qcow2" "$(backing_name "$D/x/b-top.qcow2")"
# The mid nodes were given on the command line: QEMU keeps them, unused.
ok_has "blockdev intermediate: mid idle" "as node mid, but nothing uses it" "$out"

out=$("$EXTSNAP" img commit --qmp "$S" --node top --output=json "$D/x/b-top.qcow2" 2>"$T/err") ||
    fail "blockdev active: $(cat "$T/err")"
out=$(tail -n1 <<<"$out") # the result line, after the progress lines
eq "blockdev active: mode" active "$(jq -r .mode <<<"$out")"
eq "blockdev active: top idle" "idle top" \
    "$(jq -r '.files[0] | ."qemu-use" + " " + .node' <<<"$out")"
eq "export pivoted to base" base "$(vm_qmp query-block-exports | jq -r '.[0]."node-name"')"
vm_quit
same_guest "-blockdev: base after both commits" "$T/b-expect.raw" "$D/y/b-base.qcow2"
check_clean "$D/y/b-base.qcow2" "$D/x/b-top.qcow2"

# ---------------------------------------------------------------- errors
mk "$D/e-base.qcow2" 4M
mk "$D/e-top.qcow2" 4M e-base.qcow2
wr "$D/e-base.qcow2" 0x11 0 1M
wr "$D/e-top.qcow2" 0x22 0 4M
guest "$D/e-top.qcow2" "$T/e-expect.raw"
mk "$D/f-base.qcow2" 4M
mk "$D/f-top.qcow2" 4M f-base.qcow2
wr "$D/f-top.qcow2" 0x33 0 1M

rc_is "socket missing" 1 "$EXTSNAP" img commit --qmp "$T/nope.sock" --device drive0 \
    "$D/e-top.qcow2" 2>"$T/err"
ok_has "socket missing message" "$T/nope.sock: QMP socket does not exist" "$(cat "$T/err")"
rc_is "usage: no device" 1 "$EXTSNAP" img commit --qmp "$S" "$D/e-top.qcow2" 2>/dev/null

before=$(sums "$D")
vm_start "$S" -drive "if=none,id=drive0,file=$D/e-top.qcow2,format=qcow2" \
    -drive "if=none,id=drive1,file=$D/f-top.qcow2,format=qcow2"

# QEMU stopped: the socket accepts, nobody answers. (kill returns before
# every thread of QEMU has stopped: wait until they have.)
kill -STOP "$QEMU_PID"
for ((i = 0; i < 200; i++)); do
    [[ $(sed 's/.*) //' /proc/"$QEMU_PID"/task/*/stat 2>/dev/null | cut -c1 | sort -u) == T ]] && break
    sleep 0.01
done
t0=$SECONDS
rc_is "QEMU not answering" 1 "$EXTSNAP" img commit --qmp "$S" --timeout 1 --device drive0 \
    "$D/e-top.qcow2" 2>"$T/err"
kill -CONT "$QEMU_PID"
ok_has "timeout message" "QEMU is not answering on its QMP socket" "$(cat "$T/err")"
ok_has "timeout message" "timed out after 1 s waiting for the QMP greeting" "$(cat "$T/err")"
((SECONDS - t0 < 10)) || fail "timeout took $((SECONDS - t0)) s"

rc_is "unknown device" 1 "$EXTSNAP" img commit --qmp "$S" --device nodrive "$D/e-top.qcow2" \
    2>"$T/err"
ok_has "unknown device message" "QEMU has no block device or node named nodrive" "$(cat "$T/err")"
rc_is "TOP not in chain" 1 "$EXTSNAP" img commit --qmp "$S" --device drive0 "$D/base.qcow2" \
    2>"$T/err"
ok_has "TOP not in chain message" "TOP is not an image in the chain QEMU has open for drive0" \
    "$(cat "$T/err")"

# A QMP error reply: a job with extsnap's job id already runs (the test
# started it, on the other disk).
vm_qmp block-commit '{"device": "drive1", "job-id": "extsnap-drive0", "speed": 1024}' >/dev/null
rc_is "QMP error reply" 1 "$EXTSNAP" img commit --qmp "$S" --device drive0 "$D/e-top.qcow2" \
    2>"$T/err"
ok_has "QMP error message" \
    "QMP command block-commit failed: GenericError: Job ID 'extsnap-drive0' already in use" \
    "$(cat "$T/err")"
vm_qmp block-job-cancel '{"device": "extsnap-drive0", "force": true}' >/dev/null
for ((i = 0; i < 200; i++)); do
    [[ $(vm_qmp query-block-jobs) == "[]" ]] && break
    sleep 0.05
done

# SIGINT during a rate-limited commit: the job is cancelled, the chain stays.
"$EXTSNAP" img commit --qmp "$S" --device drive0 --speed 256K "$D/e-top.qcow2" \
    >"$T/out" 2>"$T/err" &
pid=$!
for ((i = 0; i < 200; i++)); do
    off=$(vm_qmp query-block-jobs | jq '.[0].offset // 0')
    ((off > 0)) && break
    sleep 0.05
done
((off > 0)) || fail "SIGINT: the commit job never started: $(cat "$T/err")"
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
eq "SIGINT: exit status (128 + SIGINT, the job cancelled first)" 130 "$rc"
ok_has "SIGINT message" "interrupted" "$(cat "$T/err")"
ok_has "SIGINT message" "no disk was switched (cancelled 1 job)" "$(cat "$T/err")"
ok_has "SIGINT message" "; QEMU does not undo a cancelled commit: $D/e-base.qcow2 already holds part of the data" "$(cat "$T/err")"
eq "SIGINT: no job left" "[]" "$(vm_qmp query-block-jobs)"
chain_is "SIGINT: chain as before" drive0 "$D/e-top.qcow2 $D/e-base.qcow2 "
vm_quit
after=$(sums "$D")
# The BASEs received copied data (QEMU does not undo a cancelled copy:
# e-base from the interrupted run, f-base from the test's own job); every
# other file, and the guest view, are as before.
eq "SIGINT: files other than the BASEs unchanged" "$(grep -v -e e-base -e f-base <<<"$before")" \
    "$(grep -v -e e-base -e f-base <<<"$after")"
same_guest "SIGINT: guest content" "$T/e-expect.raw" "$D/e-top.qcow2"
check_clean "$D/e-top.qcow2" "$D/e-base.qcow2"
eq "SIGINT: backing name kept" "e-base.qcow2" "$(backing_name "$D/e-top.qcow2")"

# QEMU killed during a commit: a clear error; the chain on disk is intact.
vm_start "$S" -drive "if=none,id=drive0,file=$D/e-top.qcow2,format=qcow2"
"$EXTSNAP" img commit --qmp "$S" --device drive0 --speed 256K "$D/e-top.qcow2" \
    >"$T/out" 2>"$T/err" &
pid=$!
for ((i = 0; i < 200; i++)); do
    off=$(vm_qmp query-block-jobs | jq '.[0].offset // 0')
    ((off > 0)) && break
    sleep 0.05
done
vm_kill
rc=0
wait "$pid" || rc=$?
eq "QEMU killed: exit status" 1 "$rc"
ok_has "QEMU killed message" "the QMP connection" "$(cat "$T/err")"
ok_has "QEMU killed message" "QEMU connection lost, job states unknown" "$(cat "$T/err")"
same_guest "QEMU killed: guest content" "$T/e-expect.raw" "$D/e-top.qcow2"
check_clean "$D/e-top.qcow2" "$D/e-base.qcow2"

# ENOSPC in BASE (blkdebug fails every write with errno 28).
before=$(sums "$D")
vm_start "$S" \
    -blockdev "driver=qcow2,node-name=base,file.driver=blkdebug,file.image.driver=file,file.image.filename=$D/e-base.qcow2,file.inject-error.0.event=none,file.inject-error.0.iotype=write,file.inject-error.0.errno=28" \
    -drive "if=none,id=drive0,driver=qcow2,file=$D/e-top.qcow2,backing=base"
rc_is "ENOSPC" 1 "$EXTSNAP" img commit --qmp "$S" --device drive0 "$D/e-top.qcow2" 2>"$T/err"
ok_has "ENOSPC message" "block job extsnap-drive0 (drive0) failed: No space left on device" \
    "$(cat "$T/err")"
ok_has "ENOSPC message" "no disk was switched" "$(cat "$T/err")"
chain_is "ENOSPC: chain as before" drive0 "$D/e-top.qcow2 $D/e-base.qcow2 "
vm_quit
eq "ENOSPC: no file changed" "$before" "$(sums "$D")"

finish
