#!/usr/bin/env bash
# Domain commands on a running VM (qemu-system-x86_64 -machine none; vda
# attached with -drive, vdb with -blockdev and a read-only NBD export as its
# user;
# the QMP socket named in the config's <qemu:commandline>):
#   create (one QMP transaction for both disks; the VM keeps writing into
#   the new overlays), commit BASE TOP (intermediate commits), delete of the
#   current snapshot (active commits with pivot), a one-disk domain.
# After each: the config and metadata equal what the same operation gives
# offline on the same state (creation times aside), merged files are gone,
# and once QEMU quit the guest content of every disk is what it wrote.
# Refusals (revert/refresh/setup, no socket, a busy dirty bitmap, a writable
# NBD export of vda: delete/commit and their dry runs), SIGINT during a rate-limited
# delete (the snapshot recorded as inexact: every other file byte for byte
# as before, revert refused, verify exit 2, list marks it, the delete run
# again clears it), QEMU killed during a commit (with and without extsnap),
# and libvirtd running the VM (pending files and virsh commands).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/online_domain.sh"
need_cmd qemu-img qemu-io qemu-system-x86_64 jq md5sum tar
trap 'vm_kill; [[ -n ${LVD:-} ]] && kill "$LVD" 2>/dev/null; rm -rf "$T"' EXIT

# ------------------------------------------------------------ setup
write_config ovm vda vdb
for d in vda vdb; do
    qemu-img create -q -f qcow2 "$IMG/ovm-$d.qcow2" 8M
    qemu-img create -q -f raw "$T/expect-$d.raw" 8M
done
off_write vda 0x11 0 2M
off_write vdb 0x12 1M 2M
X create ovm s1 -q
off_write vda 0x21 1M 1M
off_write vdb 0x22 2M 1M
X create ovm s2 -q
off_write vda 0x31 1536k 1M
off_write vdb 0x32 3M 512k

# ------------------------------------------------------------ online create
offline_reference create ovm s3
start_vm
out=$(X create ovm s3 2>&1) || fail "online create: $out"
has "online create output" "vda: switch node" "$out"
has "online create output" "vdb: switch node vdb-top to the new overlay $IMG/ovm-vdb.s3" "$out"
eq "vda runs on s3" "$IMG/ovm-vda.s3" "$(vm_chain_files drive-vda | head -n1)"
eq "vdb runs on s3" "$IMG/ovm-vdb.s3" "$(vdb_file)"
same_as_offline "online create"
# The VM keeps writing, into the new overlays.
vm_write vda 0x41 4M 64k
vm_write vdb 0x42 5M 64k
stop_vm
ES_CHECKS=$((ES_CHECKS + 1))
[[ $(qemu-img map -U --output=json "$IMG/ovm-vda.s3" | jq '[.[] | select(.depth == 0 and .data)] | length') -ge 1 ]] ||
    fail "online create: vda's writes did not land in ovm-vda.s3"
check_guest "after online create"
check_images "after online create"

# ------------------------------------------------------------ online commit
# commit s1 s2: s2's overlay (below the live s3 overlays) into s1's: two
# intermediate commits; QEMU writes the plan's absolute backing names.
offline_reference commit ovm s1 s2
start_vm
vm_write vda 0x51 6M 64k
out=$(X commit ovm s1 s2 --output=json 2>&1) || fail "online commit: $out"
eq "online commit: QEMU's actions" "vda intermediate-commit $IMG/ovm-vda.s1|vdb intermediate-commit $IMG/ovm-vdb.s1" \
    "$(jq -r '[.online.actions[] | .disk + " " + .action + " " + ."backing-filename"] | join("|")' <<<"$out")"
eq "vda chain after commit" "$IMG/ovm-vda.s3 $IMG/ovm-vda.s1 $IMG/ovm-vda.qcow2 " \
    "$(vm_chain_files drive-vda | tr '\n' ' ')"
same_as_offline "online commit"
gone "online commit" "$IMG/ovm-vda.s2" "$IMG/ovm-vdb.s2"
eq "s3 overlay's backing name" "$IMG/ovm-vdb.s1" \
    "$(qemu-img info -U --output=json "$IMG/ovm-vdb.s3" | jq -r '."backing-filename"')"
vm_write vdb 0x52 6M 64k
stop_vm

# ------------------------------------------------------------ online delete
# delete s3 (current): the live overlays into s1's images, with pivot.
offline_reference delete ovm s3
start_vm
out=$(X delete ovm s3 2>&1) || fail "online delete: $out"
has "online delete output" "vda: block-commit $IMG/ovm-vda.s3 into $IMG/ovm-vda.s1, then switch" "$out"
eq "vda runs on s1" "$IMG/ovm-vda.s1" "$(vm_chain_files drive-vda | head -n1)"
eq "vdb runs on s1" "$IMG/ovm-vdb.s1" "$(vdb_file)"
same_as_offline "online delete"
gone "online delete" "$IMG/ovm-vda.s3" "$IMG/ovm-vdb.s3"
vm_write vda 0x61 7M 64k
vm_write vdb 0x62 7M 64k
stop_vm
check_guest "after online commit and delete"
check_images "after online commit and delete"

# ------------------------------------------------------------ refusals
start_vm
before=$(xml_state; ls "$IMG")
for op in "revert ovm s1" "refresh ovm" "setup ovm $T/moved"; do
    rc_is "$op while running" 1 X $op 2>"$T/err"
    has "$op while running" "domain ovm is running (pid $QEMU_PID" "$(cat "$T/err")"
done
rc_is "socket missing" 1 X delete ovm s1 --qmp "$T/nope.sock" 2>"$T/err"
has "socket missing" "domain ovm is running (pid $QEMU_PID" "$(cat "$T/err")"
has "socket missing" "$T/nope.sock: domain ovm is running" "$(cat "$T/err")"
has "socket missing" "cannot be used: QMP socket does not exist" "$(cat "$T/err")"
cp "$CFG/ovm.xml" "$T/ovm.xml.keep"
sed -i '/qemu:commandline\|qemu:arg/d' "$CFG/ovm.xml"
rm -f "$RUN/ovm.pid" # found by QEMU's image locks alone
rc_is "no socket in the config" 1 X create ovm s9 2>"$T/err"
has "no socket in the config" "domain ovm is running (pid $QEMU_PID (qemu-system-x86_64" "$(cat "$T/err")"
has "no socket in the config" "has no QMP socket extsnap can use" "$(cat "$T/err")"
cp "$T/ovm.xml.keep" "$CFG/ovm.xml"
echo "$QEMU_PID" >"$RUN/ovm.pid"
# --qmp-timeout (and EXTSNAP_QMP_TIMEOUT, which it replaces as the library's
# input) bounds the wait for a QEMU that does not answer (default 30 s).
# (kill returns before every thread of QEMU has stopped: wait until they have.)
kill -STOP "$QEMU_PID"
for ((i = 0; i < 200; i++)); do
    [[ $(sed 's/.*) //' /proc/"$QEMU_PID"/task/*/stat 2>/dev/null | cut -c1 | sort -u) == T ]] && break
    sleep 0.01
done
for how in "--qmp-timeout=1" "env"; do
    t0=$SECONDS
    if [[ $how == env ]]; then
        EXTSNAP_QMP_TIMEOUT=1 rc_is "QEMU silent ($how)" 1 X delete ovm s1 2>"$T/err"
    else
        rc_is "QEMU silent ($how)" 1 X delete ovm s1 "$how" 2>"$T/err"
    fi
    has "QEMU silent ($how)" "QEMU is not answering on its QMP socket" "$(cat "$T/err")"
    has "QEMU silent ($how)" "timed out after 1 s waiting for the QMP greeting" "$(cat "$T/err")"
    ((SECONDS - t0 < 10)) || fail "QEMU silent ($how): took $((SECONDS - t0)) s"
done
kill -CONT "$QEMU_PID"
rc_is "invalid --qmp-timeout" 1 X delete ovm s1 --qmp-timeout=0 2>"$T/err"
has "invalid --qmp-timeout" "invalid --qmp-timeout '0' (seconds)" "$(cat "$T/err")"
rc_is "invalid --speed" 1 X commit ovm s1 s2 --speed=fast 2>"$T/err"
has "invalid --speed" "invalid --speed 'fast'" "$(cat "$T/err")"
rc_is "invalid --stall" 1 X create ovm s9 --stall=-1 2>"$T/err"
has "invalid --stall" "invalid --stall '-1' (seconds)" "$(cat "$T/err")"
# A persistent dirty bitmap is carried on (the dry run says how); one in use
# (here by an NBD export: busy) is refused, the dry run refusing the same.
vm_qmp block-dirty-bitmap-add '{"node": "drive-vda", "name": "bk", "persistent": true}' >/dev/null
out=$(X create ovm s9 --dry-run 2>&1) || fail "dry run with a persistent bitmap: $out"
has "dry run with a persistent bitmap" "add bitmap 'bk' (granularity 65536) to the new overlay" "$out"
vda_node=$(vm_qmp query-block | jq -r '.[] | select(.device == "drive-vda") | .inserted."node-name"')
vm_qmp block-export-add "{\"type\": \"nbd\", \"id\": \"bk\", \"name\": \"bk\", \"node-name\": \"$vda_node\", \"writable\": true, \"bitmaps\": [\"bk\"]}" >/dev/null
rc_is "create with a busy bitmap" 1 X create ovm s9 2>"$T/err"
has "create with a busy bitmap" "disk vda: dirty bitmap 'bk' of this image is in use in QEMU (a backup job or an NBD export)" "$(cat "$T/err")"
eq "bitmap refusal: one line" 1 "$(wc -l <"$T/err")"
rc_is "dry run with a busy bitmap" 1 X create ovm s9 --dry-run 2>"$T/err"
has "dry run with a busy bitmap" "dirty bitmap 'bk' of this image is in use" "$(cat "$T/err")"
vm_qmp block-export-del '{"id": "bk"}' >/dev/null
for ((i = 0; i < 500; i++)); do
    vm_qmp block-dirty-bitmap-remove '{"node": "drive-vda", "name": "bk"}' >/dev/null 2>&1 && break
    sleep 0.01
done
out=$(X delete ovm s1 --dry-run 2>&1) || fail "online dry run: $out"
has "online dry run" "vda: block-commit $IMG/ovm-vda.s1 into $IMG/ovm-vda.qcow2, then switch" "$out"
eq "refusals and dry run change nothing" "$before" "$(xml_state; ls "$IMG")"

# ------------------------------------------------------------ writable export
# A writer outside the VM through a writable NBD export of a disk's node:
# its writes made while an active commit's job waits to switch are lost
# (QEMU drains devices there, not exports; docs/online.md). delete and
# commit are refused before anything changes, the dry run the same, with
# one line naming the disk, the export and the node; QEMU's graph and every
# file stay as they were. vdb's read-only export (its user) is no reason.
# Once the export is removed the same delete runs.
X create ovm s5 -q || fail "online create s5"
vda_node=$(vm_qmp query-block | jq -r '.[] | select(.device == "drive-vda") | .inserted."node-name"')
vm_qmp block-export-add "{\"type\": \"nbd\", \"id\": \"w0\", \"name\": \"w0\", \"node-name\": \"$vda_node\", \"writable\": true}" >/dev/null
qemu_state() {
    vm_qmp query-named-block-nodes | jq -c '[.[] | [."node-name", .file, .backing_file, .ro]] | sort'
    vm_qmp query-block-exports | jq -c 'sort_by(.id)'
    vm_qmp query-jobs | jq -c .
}
files_before=$(file_sums "$CFG"/*.xml "$SNAPS"/ovm/*.xml "$IMG"/*)
qemu_before=$(qemu_state)
export_msg="disk vda: QEMU exports node $vda_node writable (nbd block export 'w0'); writes through an export while the commit switches the disk would be lost: remove it first (block-export-del) or shut the VM down"
for op in "delete ovm s5" "delete ovm s5 --dry-run" "commit ovm s1 s5" "commit ovm s1 s5 --dry-run"; do
    rc_is "$op with a writable export" 1 X $op 2>"$T/err"
    has "$op with a writable export" "$export_msg" "$(cat "$T/err")"
    eq "$op with a writable export: one line" 1 "$(wc -l <"$T/err")"
done
eq "export refusals: files unchanged" "$files_before" "$(file_sums "$CFG"/*.xml "$SNAPS"/ovm/*.xml "$IMG"/*)"
eq "export refusals: QEMU's graph unchanged" "$qemu_before" "$(qemu_state)"
vm_qmp block-export-del '{"id": "w0"}' >/dev/null
for ((i = 0; i < 500; i++)); do
    [[ -z $(vm_qmp query-block-exports | jq -r '.[] | select(.id == "w0") | .id') ]] && break
    sleep 0.01
done
out=$(X delete ovm s5 2>&1) || fail "delete once the export is removed: $out"
eq "delete once the export is removed: vda runs on s1" "$IMG/ovm-vda.s1" "$(vm_chain_files drive-vda | head -n1)"
gone "delete once the export is removed" "$IMG/ovm-vda.s5" "$IMG/ovm-vdb.s5"

# ------------------------------------------------------------ SIGINT
# A rate-limited delete of a snapshot with 4 MiB to merge, interrupted once
# QEMU copies. QEMU 7.2 does not undo a cancelled commit: the merge targets
# (s4's saved images) keep what was copied, so s4 is recorded as inexact;
# every other file, and what every other chain shows, is as before.
X create ovm s4 -q || fail "online create s4"
vm_write vda 0x71 0 4M
vm_write vdb 0x72 2M 4M
flush_vm
before=$(xml_state; ls "$IMG")
targets="$IMG/ovm-vda.s1 $IMG/ovm-vdb.s1" # s4's saved images
libvirt_sums_before=$(file_sums "$CFG"/ovm.xml "$SNAPS"/ovm/*.xml)
image_sums_before=$(file_sums $(ls "$IMG"/* | grep -vxF -e "$IMG/ovm-vda.s1" -e "$IMG/ovm-vdb.s1"))
targets_before=$(file_sums $targets)
live_before=$(guest_sums "$(src -vda ovm)" "$(src -vdb ovm)")
s1_before=$(guest_sums $(saved_images s1))
s4_before=$(guest_sums $(saved_images s4))
# slow_delete NAME: delete NAME at 1 MiB/s in the background (pid in $slow)
slow_delete() {
    # (not through X: $! must be extsnap itself, for the signals)
    EXTSNAP_QMP_SPEED=1048576 "${OWN_RUN[@]}" "$EXTSNAP" delete ovm "$1" --config-dir="$CFG" \
        --snapshot-dir="$SNAPS" --run-dir="$RUN" >"$T/out" 2>"$T/err" &
    slow=$!
    local i off=0
    for ((i = 0; i < 200; i++)); do
        off=$(vm_qmp query-block-jobs | jq '[.[].offset] | add // 0')
        ((off > 0)) && return 0
        sleep 0.05
    done
    fail "slow delete of $1: the commit jobs never started: $(cat "$T/err")"
}
slow_delete s4
kill -INT "$slow"
rc=0
wait "$slow" || rc=$?
eq "SIGINT: exit status (128 + SIGINT, the jobs cancelled first)" 130 "$rc"
eq "SIGINT: one line" 1 "$(wc -l <"$T/err")"
has "SIGINT message" "interrupted while waiting for the commit jobs" "$(cat "$T/err")"
has "SIGINT message" "the chains and libvirt's files are as before" "$(cat "$T/err")"
has "SIGINT message" "QEMU does not undo a cancelled commit: $IMG/ovm-vda.s1, $IMG/ovm-vdb.s1 already hold part of the data" "$(cat "$T/err")"
has "SIGINT message" "so the saved state of snapshot s4 is no longer exact (recorded in $SNAPS/ovm.extsnap.inexact)" "$(cat "$T/err")"
has "SIGINT message" "revert and refresh to it are refused until the same delete runs again and finishes (or give them --force" "$(cat "$T/err")"
eq "SIGINT: no job left" "[]" "$(vm_qmp query-block-jobs)"
eq "SIGINT: vda still on s4" "$IMG/ovm-vda.s4" "$(vm_chain_files drive-vda | head -n1)"
eq "SIGINT: files as before" "$before" "$(xml_state; ls "$IMG")"
[[ ! -e $SNAPS/ovm.extsnap.journal ]] || fail "SIGINT: journal left behind"
flush_vm
eq "SIGINT: config and metadata byte for byte" "$libvirt_sums_before" \
    "$(file_sums "$CFG"/ovm.xml "$SNAPS"/ovm/*.xml)"
eq "SIGINT: every image but the merge targets byte for byte" "$image_sums_before" \
    "$(file_sums $(ls "$IMG"/* | grep -vxF -e "$IMG/ovm-vda.s1" -e "$IMG/ovm-vdb.s1"))"
eq "SIGINT: the live chains show the same" "$live_before" \
    "$(guest_sums "$(src -vda ovm)" "$(src -vdb ovm)")"
eq "SIGINT: s1's saved state is the same" "$s1_before" "$(guest_sums $(saved_images s1))"
# What the record is about: the targets did change, and so did s4's state.
ES_CHECKS=$((ES_CHECKS + 1))
[[ $(file_sums $targets) != "$targets_before" ]] || fail "SIGINT: QEMU copied nothing into $targets (nothing to record?)"
ES_CHECKS=$((ES_CHECKS + 1))
[[ $(guest_sums $(saved_images s4)) != "$s4_before" ]] || fail "SIGINT: s4's saved state did not change"
check_images "SIGINT"
M=$SNAPS/ovm.extsnap.inexact
eq "SIGINT: recorded" "s4 cancelled delete $IMG/ovm-vda.s1,$IMG/ovm-vdb.s1" \
    "$(jq -r '.snapshots[] | "\(.name) \(.state) \(.command) \(.images | join(","))"' "$M")"
out=$(X list ovm 2>&1) || fail "list: $out"
has "list marks s4" "(inexact: see 'extsnap verify')" "$(grep ' s4 ' <<<"$out")"
has "list warns" "warning: snapshot s4's saved state is inexact: the online delete of snapshot s4 was cancelled" "$out"
eq "list JSON marks s4 only" "s4" \
    "$(X list ovm --output=json 2>/dev/null | jq -r '[.snapshots[] | select(.inexact) | .name] | join(" ")')"
rc_is "verify: exit 2" 2 X verify ovm --output=json >"$T/verify.json"
eq "verify: inexact-snapshot" "error $M" \
    "$(jq -r '.[0].problems[] | select(.code == "inexact-snapshot") | .severity + " " + .file' "$T/verify.json")"
has "verify message" "snapshot s4's saved state is inexact" "$(jq -r '.[0].problems[].message' "$T/verify.json")"
eq "verify: the only error" "inexact-snapshot" \
    "$(jq -r '[.[0].problems[] | select(.severity == "error") | .code] | join(" ")' "$T/verify.json")"
# (QEMU 7.2 keeps the cancelled jobs' targets open read-write too.)
eq "verify: the VM's images are not checked" "image-in-use $IMG/ovm-vda.s4 image-in-use $IMG/ovm-vdb.s4" \
    "$(jq -r '[.[0].problems[] | select(.severity == "warning") | .code + " " + .file | select(endswith(".s4"))] | join(" ")' "$T/verify.json")"
eq "verify: warnings only for that" "image-in-use" \
    "$(jq -r '[.[0].problems[] | select(.severity == "warning") | .code] | unique | join(" ")' "$T/verify.json")"
stop_vm
rc_is "revert to s4 refused" 1 X revert ovm s4 2>"$T/err"
eq "revert refusal: one line" 1 "$(wc -l <"$T/err")"
has "revert refusal" "extsnap: revert: cannot revert to s4: its saved state is inexact: the online delete of snapshot s4 was cancelled (" "$(cat "$T/err")"
has "revert refusal" "run the same delete again to finish it, or give --force to revert to the inexact state" "$(cat "$T/err")"
rc_is "refresh (to s4) refused" 1 X refresh ovm 2>"$T/err"
has "refresh refusal" "cannot refresh to s4: its saved state is inexact" "$(cat "$T/err")"
rc_is "revert --force accepts it" 0 X revert ovm s4 --force --dry-run -q
rc_is "revert base (s1's state) is not refused" 0 X revert ovm base --dry-run -q
eq "refusals change nothing" "$libvirt_sums_before" "$(file_sums "$CFG"/ovm.xml "$SNAPS"/ovm/*.xml)"
# Running the delete again (online) finishes the merge and clears the record.
start_vm
out=$(X delete ovm s4 2>&1) || fail "delete of s4 again: $out"
eq "delete again: vda on s1" "$IMG/ovm-vda.s1" "$(vm_chain_files drive-vda | head -n1)"
[[ ! -e $M ]] || fail "delete again: the record is still there: $(cat "$M")"
out=$(X list ovm 2>&1) || fail "list: $out"
ES_CHECKS=$((ES_CHECKS + 1))
[[ $out != *inexact* ]] || fail "list after the delete still marks: $out"
stop_vm
check_guest "SIGINT, then delete again"
check_images "SIGINT, then delete again"
rc_is "verify after the delete" 0 X verify ovm -q

# ------------------------------------------------------------ QEMU killed
# Recorded too (QEMU may have copied); the offline delete clears it.
start_vm
X create ovm s4 -q || fail "online create s4 (again)"
vm_write vda 0x73 0 4M
vm_write vdb 0x74 2M 4M
before=$(xml_state; ls "$IMG")
slow_delete s4
vm_kill
rc=0
wait "$slow" || rc=$?
eq "QEMU killed: exit status" 1 "$rc"
has "QEMU killed message" "the chains and libvirt's files are as before" "$(cat "$T/err")"
has "QEMU killed message" "the saved state of snapshot s4 is no longer exact" "$(cat "$T/err")"
eq "QEMU killed: recorded" "s4" "$(jq -r '[.snapshots[].name] | join(" ")' "$M")"
eq "QEMU killed: files as before" "$before" "$(xml_state; ls "$IMG")"
[[ ! -e $SNAPS/ovm.extsnap.journal ]] || fail "QEMU killed: journal left behind"
check_guest "QEMU killed during a commit"
check_images "QEMU killed during a commit"
# The VM is off now: the same delete finishes offline.
X delete ovm s4 -q || fail "offline delete of s4 after QEMU was killed"
[[ ! -e $M ]] || fail "offline delete: the record is still there: $(cat "$M")"
check_guest "offline delete after QEMU was killed"

# ------------------------------------------------------------ both killed
start_vm
X create ovm s5 -q || fail "online create s5"
vm_write vda 0x81 0 4M
vm_write vdb 0x82 2M 4M
before=$(xml_state; ls "$IMG")
slow_delete s5
kill -KILL "$slow"
wait "$slow" 2>/dev/null || true
vm_kill
rm -f "$RUN/ovm.pid"
[[ -e $SNAPS/ovm.extsnap.journal ]] || fail "both killed: no journal left (nothing to recover?)"
out=$(X list ovm 2>&1) || fail "list after both were killed: $out"
has "list warns" "an interrupted operation on domain ovm is pending" "$out"
eq "both killed: recorded while copying" "s5 copying" \
    "$(jq -r '.snapshots[] | .name + " " + .state' "$M")"
out=$(X recover ovm 2>&1) || fail "recover after both were killed: $out"
eq "both killed: files as before after recover" "$before" "$(xml_state; ls "$IMG")"
[[ ! -e $SNAPS/ovm.extsnap.journal ]] || fail "both killed: journal left after recover"
check_guest "both killed, recovered"
check_images "both killed, recovered"
rc_is "both killed: revert to s5 refused" 1 X revert ovm s5 --dry-run 2>"$T/err"
has "both killed: revert refusal" "the online delete of snapshot s5 was interrupted (extsnap or QEMU stopped) while QEMU copied into" "$(cat "$T/err")"
X delete ovm s5 -q || fail "offline delete of s5 after recovery"
[[ ! -e $M ]] || fail "delete of s5: the record is still there"
check_guest "offline delete of s5 after recovery"

# ------------------------------------------------------------ extsnap killed
# QEMU still runs the job extsnap started: the next command cancels it,
# undoes the journal, then does its own work.
start_vm
X create ovm s6 -q || fail "online create s6"
vm_write vda 0x91 0 4M
slow_delete s6
kill -KILL "$slow"
wait "$slow" 2>/dev/null || true
ES_CHECKS=$((ES_CHECKS + 1))
[[ $(vm_qmp query-block-jobs | jq length) == 2 ]] || fail "extsnap killed: its 2 jobs are not left in QEMU"
out=$(X delete ovm s6 2>&1) || fail "delete after extsnap was killed: $out"
has "recovered first" "rolled back an interrupted operation first: " "$out"
[[ ! -e $M ]] || fail "extsnap killed, then delete: the record is still there"
eq "extsnap killed: vda on s1 after delete" "$IMG/ovm-vda.s1" "$(vm_chain_files drive-vda | head -n1)"
gone "extsnap killed, then delete" "$IMG/ovm-vda.s6" "$IMG/ovm-vdb.s6"
vm_write vdb 0x92 7M 64k
stop_vm
check_guest "extsnap killed, then delete"
check_images "extsnap killed, then delete"

# ------------------------------------------------------------ libvirtd runs the VM
# A process called libvirtd named by the QEMU driver's pid file. extsnap
# does the QMP work, leaves libvirt's files alone, and writes what they
# should become to the pending directory, with the virsh commands.
offline_reference create ovm s7
cp "$(command -v sleep)" "$T/libvirtd"
"$T/libvirtd" 300 &
LVD=$!
for ((i = 0; i < 100; i++)); do # until it is called libvirtd (exec done)
    [[ $(cat "/proc/$LVD/comm" 2>/dev/null) == libvirtd ]] && break
    sleep 0.02
done
echo "$LVD" >"$RUN/driver.pid"
rc_is "libvirtd and the VM off" 1 X create ovm s7 2>"$T/err"
has "libvirtd and the VM off" "libvirtd is running (pid $LVD)" "$(cat "$T/err")"
start_vm
before=$(xml_state)
out=$(X create ovm s7 2>&1) || fail "create under libvirtd: $out"
P=$SNAPS/ovm.extsnap-pending
has "libvirtd output" "libvirtd runs this VM, so extsnap did not touch libvirt's files" "$out"
has "libvirtd output" "virsh snapshot-create ovm $P/s7.xml --redefine --current" "$out"
has "libvirtd output" "virsh snapshot-create ovm $P/s1.xml --redefine" "$out"
has "libvirtd output" "virsh define $P/ovm.xml" "$out"
has "libvirtd output" "libvirt does not know yet:" "$out"
has "libvirtd output" "libvirt files below were NOT written" "$out"
eq "libvirtd: libvirt's files untouched" "$before" "$(xml_state)"
eq "libvirtd: vda runs on s7" "$IMG/ovm-vda.s7" "$(vm_chain_files drive-vda | head -n1)"
vm_write vda 0xa1 5M 64k
stop_vm
kill "$LVD"
wait "$LVD" 2>/dev/null || true
LVD=
rm -f "$RUN/driver.pid"
# What virsh would load is what the offline path writes.
for f in etc/ovm.xml snap/ovm/s7.xml snap/ovm/s1.xml; do
    ES_CHECKS=$((ES_CHECKS + 1))
    diff <(sed 's|<creationTime>[0-9]*</creationTime>||' "$T/offref/$f") \
        <(sed 's|<creationTime>[0-9]*</creationTime>||' "$P/$(basename "$f")") >"$T/xml.diff" ||
        fail "pending $(basename "$f") differs from the offline result: $(head -n 20 "$T/xml.diff")"
done
# Loading them (as virsh would) gives the offline state.
cp "$P/ovm.xml" "$CFG/ovm.xml"
cp "$P/s7.xml" "$P/s1.xml" "$SNAPS/ovm/"
same_as_offline "libvirtd: after loading the pending files"
check_guest "libvirtd: after loading the pending files"

# ------------------------------------------------------------ one disk
write_config one vda
qemu-img create -q -f qcow2 "$IMG/one-vda.qcow2" 4M
qemu-io -f qcow2 -c "write -q -P 0x13 0 1M" "$IMG/one-vda.qcow2" >/dev/null
X create one s1 -q
qemu-io -f qcow2 -c "write -q -P 0x23 512k 1M" "$IMG/one-vda.s1" >/dev/null
offline_reference delete one s1
guest_one=$T/one.raw
qemu-img convert -O raw "$IMG/one-vda.s1" "$guest_one"
vm_start "$SOCK" -drive "if=none,id=drive-vda,file=$IMG/one-vda.s1,format=qcow2"
out=$(X delete one s1 2>&1) || fail "one disk: online delete: $out"
eq "one disk: vda runs on its base" "$IMG/one-vda.qcow2" "$(vm_chain_files drive-vda | head -n1)"
same_as_offline "one disk: online delete"
gone "one disk: online delete" "$IMG/one-vda.s1"
vm_quit
ES_CHECKS=$((ES_CHECKS + 1))
out=$(qemu-img compare -f raw "$guest_one" "$IMG/one-vda.qcow2" 2>&1) || fail "one disk: guest content: $out"

finish
