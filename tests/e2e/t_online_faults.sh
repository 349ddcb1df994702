#!/usr/bin/env bash
# Online domain commands interrupted at their most delicate points (the
# test hook EXTSNAP_QMP_FAULT, qmp/qmp_fault.h), then recovered by the next
# command with the VM still running ('extsnap recover' goes through QMP):
#   - a 2-disk delete (active commits) with extsnap killed right after the
#     first job-finalize: one disk switched, the other's job pending in
#     QEMU (its I/O drained);
#   - a 2-disk delete (intermediate commits) whose second job-finalize
#     fails: one disk switched, the other's job cancelled;
#   - a create killed between QEMU's transaction and the journal's phase
#     change: QEMU writes into overlays the libvirt files do not name yet.
# After each recovery: both disks in QEMU on the images the config names,
# config and metadata equal to the offline result of the same operation,
# merged files gone, nothing of the guest's writes lost (qemu-img compare
# once QEMU quit), every image passes qemu-img check, no record of inexact
# snapshots left. Also: delete --metadata clears such a record.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/online_domain.sh"
need_cmd qemu-img qemu-io qemu-system-x86_64 jq tar
trap 'vm_kill; rm -rf "$T"' EXIT
J=$SNAPS/ovm.extsnap.journal
M=$SNAPS/ovm.extsnap.inexact
jobs_now() { vm_qmp query-block-jobs | jq -r '[.[] | .status] | join(" ")'; }
journal_phase() { jq -r .phase "$J"; }
after_recovery() { # WHAT: the checks every recovery must pass (VM still running)
    eq "$1: no job left" "" "$(jobs_now)"
    eq "$1: vda runs on the config's image" "$(src -vda ovm)" "$(vm_chain_files drive-vda | head -n1)"
    eq "$1: vdb runs on the config's image" "$(src -vdb ovm)" "$(vdb_file)"
    same_as_offline "$1"
    [[ ! -e $J ]] || fail "$1: journal left: $(cat "$J")"
    [[ ! -e $M ]] || fail "$1: record of inexact snapshots left: $(cat "$M")"
    rc_is "$1: verify" 0 X verify ovm -q
}

write_config ovm vda vdb
for d in vda vdb; do
    qemu-img create -q -f qcow2 "$IMG/ovm-$d.qcow2" 8M
    qemu-img create -q -f raw "$T/expect-$d.raw" 8M
done
off_write vda 0x11 0 2M
off_write vdb 0x12 1M 2M
X create ovm s1 -q
off_write vda 0x21 1M 2M
off_write vdb 0x22 2M 2M
X create ovm s2 -q
off_write vda 0x31 2M 1M
off_write vdb 0x32 3M 1M

# ------------------------------------------------------------ killed after the first finalize
# delete s2 (current): active commits of both live overlays into s1's images.
# The first disk is switched, then extsnap dies: the journal says "merge"
# and the second job waits in QEMU, pending.
offline_reference delete ovm s2
start_vm
vm_write vda 0x41 4M 64k
vm_write vdb 0x42 4M 64k
rc=0
EXTSNAP_QMP_FAULT=finalize:2:kill X delete ovm s2 >"$T/out" 2>&1 || rc=$?
eq "killed after finalize: SIGKILL" 137 "$rc"
eq "killed after finalize: journal phase" merge "$(journal_phase)"
eq "killed after finalize: vda switched" "$IMG/ovm-vda.s1" "$(vm_chain_files drive-vda | head -n1)"
eq "killed after finalize: vdb's job left pending" pending "$(jobs_now)"
eq "killed after finalize: vdb not switched yet" "$IMG/ovm-vdb.s2" "$(vdb_file)"
eq "killed after finalize: recorded while copying" "s2 copying" \
    "$(jq -r '.snapshots[] | .name + " " + .state' "$M")"
rc_is "killed after finalize: list works" 0 X list ovm -q
out=$(X recover ovm 2>&1) || fail "recover after the kill: $out"
has "recover output" "Finished: delete snapshot s2 of domain ovm" "$out"
has "recover output" "(interrupted after its commit point, phase merge)" "$out"
after_recovery "killed after the first finalize, recovered"
gone "killed after the first finalize, recovered" "$IMG/ovm-vda.s2" "$IMG/ovm-vdb.s2"
vm_write vda 0x43 5M 64k
vm_write vdb 0x44 5M 64k
stop_vm
check_guest "killed after the first finalize"
check_images "killed after the first finalize"

# ------------------------------------------------------------ the second finalize fails
# s3, s4 on top of s1; delete s3 (not current, s4 its child): intermediate
# commits of s3's overlays into s1's, QEMU writing s4's backing names. The
# second job-finalize fails: vda is switched, vdb's job is cancelled (its
# copy was complete). The journal redoes vdb's merge, through QEMU.
X create ovm s3 -q
off_write vda 0x51 0 1M
off_write vdb 0x52 1M 1M
X create ovm s4 -q
off_write vda 0x61 512k 1M
offline_reference delete ovm s3
start_vm
vm_write vdb 0x62 6M 64k
rc=0
EXTSNAP_QMP_FAULT=finalize:2:error X delete ovm s3 >"$T/out" 2>"$T/err" || rc=$?
eq "second finalize fails: exit status" 1 "$rc"
eq "second finalize fails: one line" 1 "$(wc -l <"$T/err")"
has "second finalize fails: message" "injected fault at finalize #2" "$(cat "$T/err")"
has "second finalize fails: message" "1 of 2 disks were switched; the operation is half done: run 'extsnap recover --config-dir $CFG --snapshot-dir $SNAPS --run-dir $RUN ovm' to finish it" "$(cat "$T/err")"
eq "second finalize fails: journal phase" merge "$(journal_phase)"
eq "second finalize fails: no job left" "" "$(jobs_now)"
eq "second finalize fails: vda's chain" "$IMG/ovm-vda.s4 $IMG/ovm-vda.s1 $IMG/ovm-vda.qcow2 " \
    "$(vm_chain_files drive-vda | tr '\n' ' ')"
eq "second finalize fails: s4's vdb overlay still on s3's" "$IMG/ovm-vdb.s3" \
    "$(qemu-img info -U --output=json "$IMG/ovm-vdb.s4" | jq -r '."backing-filename"')"
# The VM runs on; the next command finishes the operation.
vm_write vda 0x63 6M 64k
out=$(X recover ovm 2>&1) || fail "recover after the failed finalize: $out"
has "recover output" "Finished: delete snapshot s3 of domain ovm" "$out"
after_recovery "second finalize failed, recovered"
gone "second finalize failed, recovered" "$IMG/ovm-vda.s3" "$IMG/ovm-vdb.s3"
eq "recovered: s4's vdb overlay on s1's" "$IMG/ovm-vdb.s1" \
    "$(qemu-img info -U --output=json "$IMG/ovm-vdb.s4" | jq -r '."backing-filename"')"
stop_vm
check_guest "second finalize failed"
check_images "second finalize failed"

# ------------------------------------------------------------ create killed after the transaction
# QEMU switched both disks to the new overlays, extsnap died before its
# journal said so ("prepare"): recovery sees QEMU writing into them and
# rolls forward, so the config and metadata name them.
offline_reference create ovm s5
start_vm
rc=0
EXTSNAP_QMP_FAULT=transaction-done:1:kill X create ovm s5 >"$T/out" 2>&1 || rc=$?
eq "create killed: SIGKILL" 137 "$rc"
eq "create killed: journal phase" prepare "$(journal_phase)"
eq "create killed: vda runs on s5" "$IMG/ovm-vda.s5" "$(vm_chain_files drive-vda | head -n1)"
eq "create killed: vdb runs on s5" "$IMG/ovm-vdb.s5" "$(vdb_file)"
ES_CHECKS=$((ES_CHECKS + 1))
[[ ! -e $SNAPS/ovm/s5.xml ]] || fail "create killed: s5's metadata written already"
vm_write vda 0x71 7M 64k # into s5's overlays, which no libvirt file names yet
vm_write vdb 0x72 7M 64k
out=$(X recover ovm 2>&1) || fail "recover after the killed create: $out"
has "recover output" "Finished: create snapshot s5" "$out"
after_recovery "create killed, recovered"
eq "create killed, recovered: config names s5's overlays" "$IMG/ovm-vda.s5 $IMG/ovm-vdb.s5" \
    "$(src -vda ovm) $(src -vdb ovm)"

# The same, failing there instead (error) and recovered by the next create.
stop_vm
offline_reference create ovm s6
start_vm
rc=0
EXTSNAP_QMP_FAULT=transaction-done:1:error X create ovm s6 >"$T/out" 2>"$T/err" || rc=$?
eq "create fails after the transaction: exit status" 1 "$rc"
has "create fails after the transaction: message" "the VM writes into the new overlays but the rest is not done; run 'extsnap recover --config-dir $CFG --snapshot-dir $SNAPS --run-dir $RUN ovm' to finish it" "$(cat "$T/err")"
vm_write vda 0x73 7M 64k
out=$(X create ovm s7 2>&1) || fail "create s7 after the failed create: $out"
has "create s7 output" "finished an interrupted operation first: create snapshot s6" "$out"
eq "create s7: vda runs on s7" "$IMG/ovm-vda.s7" "$(vm_chain_files drive-vda | head -n1)"
ES_CHECKS=$((ES_CHECKS + 1))
[[ -e $SNAPS/ovm/s6.xml && -e $SNAPS/ovm/s7.xml ]] || fail "create s7: s6 and s7 are not both there"
vm_write vdb 0x74 7M 64k
stop_vm
check_guest "create interrupted after the transaction"
check_images "create interrupted after the transaction"

# ------------------------------------------------------------ delete --metadata
# A snapshot recorded as inexact whose metadata is deleted leaves the record.
ct=$(X list ovm --output=json | jq '.snapshots[] | select(.name == "s5") | ."creation-time"')
cat >"$M" <<EOT
{"extsnap-inexact": 1, "snapshots": [{"name": "s5", "creation-time": $ct, "state": "cancelled",
 "since": 1, "operation": "the online delete of snapshot s5", "command": "delete",
 "reason": "interrupted", "images": ["$IMG/ovm-vda.s4"]}]}
EOT
rc_is "recorded s5: verify exit 2" 2 X verify ovm -q
X delete ovm s5 --metadata -q || fail "delete --metadata s5"
[[ ! -e $M ]] || fail "delete --metadata: the record is still there"
rc_is "delete --metadata: verify" 0 X verify ovm -q

finish
