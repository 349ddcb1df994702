#!/usr/bin/env bash
# Running VM behind a QMP proxy that alters what QEMU says (issue 20): the
# domain "ovm" of lib/online_domain.sh, its QEMU listening on a socket of
# its own and tests/qmp/qmp_proxy.c on the socket the config names.
#   - events of finished jobs for commit jobs that still run: the delete
#     ends (bounded) with the jobs cancelled and the contradiction named;
#   - a create whose transaction QEMU "accepted" but never saw: refused,
#     nothing recorded, the VM still on its old images;
#   - the second disk's block-commit refused: only the image the first
#     job wrote to is named and recorded as inexact;
#   - a create whose transaction reached QEMU for one disk only: stopped,
#     recovery refuses until the other disk is switched too;
#   - a writer (NBD client) writing faster than a rate-limited active commit
#     copies: the limit is lifted after the stall bound; its export, added
#     while the jobs ran, is refused once they are pending (nothing switched,
#     no write lost).
# Oracles: QEMU's own query-block/query-block-jobs on the test's monitor,
# the files (config, metadata, journal, record), qemu-img.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/online_domain.sh"
need_cmd qemu-img qemu-io qemu-system-x86_64 jq sha256sum timeout script
PROXY=$(dirname "$EXTSNAP")/qmp_proxy
if [[ ! -x $PROXY ]]; then
    echo "SKIP: $PROXY not built" >&2
    exit 77
fi
PROXY_PID=
LOOP_PID=
stop_proxy() { [[ -z $PROXY_PID ]] || { kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null || true; PROXY_PID=; }; }
trap '[[ -z $LOOP_PID ]] || kill "$LOOP_PID" 2>/dev/null; stop_proxy; vm_kill; rm -rf "$T"' EXIT
J=$SNAPS/ovm.extsnap.journal
M=$SNAPS/ovm.extsnap.inexact
REAL=$T/real.qmp

# start_vm of lib/online_domain.sh, with QEMU on $REAL and the proxy
# (rules as arguments) on the config's socket.
start_proxied_vm() {
    local args=(-drive "if=none,id=drive-vda,file=$(src -vda ovm),format=qcow2")
    args+=(-blockdev "driver=qcow2,node-name=vdb-top,file.driver=file,file.filename=$(src -vdb ovm)")
    vm_start "$REAL" "${args[@]}"
    vm_qmp nbd-server-start "{\"addr\": {\"type\": \"unix\", \"data\": {\"path\": \"$T/nbd.sock\"}}}" >/dev/null
    vm_qmp block-export-add '{"type": "nbd", "id": "vdb", "node-name": "vdb-top", "writable": false}' >/dev/null
    echo "$QEMU_PID" >"$RUN/ovm.pid"
    rm -f "$SOCK" "$T/proxy.log"
    "$PROXY" "$SOCK" "$REAL" "$T/proxy.log" "$@" &
    PROXY_PID=$!
    local i
    for ((i = 0; i < 500; i++)); do
        [[ -S $SOCK ]] && return 0
        sleep 0.01
    done
    fail "the proxy did not start"
}
stop_all() { stop_proxy; stop_vm; }
jobs_now() { vm_qmp query-block-jobs | jq -r '[.[] | .status] | join(" ")'; }
chains() { echo "$(vm_chain_files drive-vda | head -n1) $(vdb_file)"; }
sums() { sha256sum "$CFG/ovm.xml" "$SNAPS"/ovm/*.xml | sed "s|$T/||"; }
finished_events() { # the events of a job that finished, for the proxy's $JOB
    local ts='"timestamp": {"seconds": 1700000000, "microseconds": 1}' s ev=
    for s in waiting pending concluded; do
        ev+="{$ts, \"event\": \"JOB_STATUS_CHANGE\", \"data\": {\"id\": \"\$JOB\", \"status\": \"$s\"}}|"
    done
    ev+="{$ts, \"event\": \"BLOCK_JOB_PENDING\", \"data\": {\"type\": \"commit\", \"id\": \"\$JOB\"}}|"
    ev+="{$ts, \"event\": \"BLOCK_JOB_COMPLETED\", \"data\": {\"device\": \"\$JOB\", \"len\": 4194304, \"offset\": 4194304, \"speed\": 0, \"type\": \"commit\"}}"
    printf '%s' "$ev"
}

write_config ovm vda vdb
for d in vda vdb; do
    qemu-img create -q -f qcow2 "$IMG/ovm-$d.qcow2" 8M
    qemu-img create -q -f raw "$T/expect-$d.raw" 8M
done
off_write vda 0x11 0 2M
off_write vdb 0x12 1M 2M
X create ovm s1 -q
off_write vda 0x21 0 4M
off_write vdb 0x22 0 4M
X create ovm s2 -q
off_write vda 0x31 4M 3M
off_write vdb 0x32 4M 3M
save_state
cp "$T/expect-vda.raw" "$T/expect-vda.saved"
cp "$T/expect-vdb.raw" "$T/expect-vdb.saved"
reset() { # back to the state above, guest content expected included
    restore_state
    cp "$T/expect-vda.saved" "$T/expect-vda.raw"
    cp "$T/expect-vdb.saved" "$T/expect-vdb.raw"
}

# ------------------------------------------------------------ events of finished jobs
# delete s2 (current): active commits of both disks, rate-limited so that
# they still run when the proxy's events say they finished.
start_proxied_vm "after:block-commit:1:$(finished_events)" "after:block-commit:2:$(finished_events)"
before_chains=$(chains)
before_sums=$(sums)
rc=0
EXTSNAP_QMP_SPEED=65536 timeout 120 "$EXTSNAP" delete ovm s2 --config-dir="$CFG" \
    --snapshot-dir="$SNAPS" --run-dir="$RUN" >"$T/out" 2>"$T/err" || rc=$?
err=$(cat "$T/err")
eq "lying events: exit status (124: still waiting after 120 s)" 1 "$rc"
has "lying events: message" "QEMU contradicts itself about block job extsnap-snap-vda-" "$err"
# (An active commit's first burst may already have made it ready.)
ES_CHECKS=$((ES_CHECKS + 1))
[[ $err =~ "it sent status concluded, but query-block-jobs sent after that lists the job as "(running|ready) ]] ||
    fail "lying events: message: $err"
has "lying events: message" "no disk was switched (cancelled 2 jobs)" "$err"
eq "lying events: no job left in QEMU" "" "$(jobs_now)"
eq "lying events: QEMU's disks unchanged" "$before_chains" "$(chains)"
eq "lying events: libvirt files unchanged" "$before_sums" "$(sums)"
ES_CHECKS=$((ES_CHECKS + 1))
[[ ! -e $J ]] || fail "lying events: journal left"
ES_CHECKS=$((ES_CHECKS + 1))
grep -q '^block-job-cancel$' "$T/proxy.log" || fail "lying events: no block-job-cancel sent"
ES_CHECKS=$((ES_CHECKS + 1))
! grep -q '^job-finalize$' "$T/proxy.log" || fail "lying events: a job was finalized"
# The record says what the message says: present exactly when it says the
# snapshot is no longer exact.
if [[ $err == *"is no longer exact"* ]]; then
    eq "lying events: s2 recorded as cancelled" "s2 cancelled" \
        "$(jq -r '.snapshots[] | .name + " " + .state' "$M")"
else
    has "lying events: nothing copied" "nothing was changed" "$err"
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ ! -e $M ]] || fail "lying events: a record though nothing was copied"
fi
stop_all
reset

# ------------------------------------------------------------ transaction "accepted", never done
start_proxied_vm 'reply:transaction:1:{"return": {}}'
before_chains=$(chains)
before_sums=$(sums)
rc=0
X create ovm s3 >"$T/out" 2>"$T/err" || rc=$?
err=$(cat "$T/err")
eq "transaction not done: exit status" 1 "$rc"
eq "transaction not done: one line" 1 "$(wc -l <"$T/err")"
has "transaction not done: message" "QEMU's transaction reported success, but nothing changed in QEMU; nothing was changed" "$err"
has "transaction not done: message" "QEMU does not have the new overlay open (the VM still writes into $IMG/ovm-vda.s2)" "$err"
eq "transaction not done: QEMU's disks unchanged" "$before_chains" "$(chains)"
eq "transaction not done: libvirt files unchanged" "$before_sums" "$(sums)"
gone "transaction not done" "$SNAPS/ovm/s3.xml" "$IMG/ovm-vda.s3" "$IMG/ovm-vdb.s3" "$J"
stop_all
reset

# ------------------------------------------------------------ transaction done for one disk only
# The proxy passes the transaction on with vda's action only: QEMU switches
# vda and says success. create stops (vdb's overlay not in QEMU); recovery
# refuses to finish (vdb's saved image would be written on) or undo (vda's
# new writes would go); once vdb is switched too, recover finishes it.
start_proxied_vm 'trim:transaction:1:1'
rc=0
X create ovm s3 >"$T/out" 2>"$T/err" || rc=$?
err=$(cat "$T/err")
eq "transaction for one disk: exit status" 1 "$rc"
has "transaction for one disk: message" "QEMU's transaction reported success, but switched only 1 of 2 disks; run 'extsnap recover " "$err"
has "transaction for one disk: the recover hint names the domain" " ovm'" "$err"
has "transaction for one disk: message" "disk vdb: QEMU does not have the new overlay open (the VM still writes into $IMG/ovm-vdb.s2)" "$err"
eq "transaction for one disk: QEMU's disks" "$IMG/ovm-vda.s3 $IMG/ovm-vdb.s2" "$(chains)"
eq "transaction for one disk: journal kept" prepare "$(jq -r .phase "$J")"
vm_write vda 0x81 6M 64k # into vda's new overlay
rc=0
X recover ovm >"$T/out" 2>"$T/err" || rc=$?
eq "transaction for one disk: recover refuses" 1 "$rc"
has "transaction for one disk: recover's message" "the interrupted create left QEMU writing into the new overlays of vda but not of vdb: it can be neither finished nor undone" "$(cat "$T/err")"
ES_CHECKS=$((ES_CHECKS + 1))
[[ -e $IMG/ovm-vda.s3 && -e $IMG/ovm-vdb.s3 && ! -e $SNAPS/ovm/s3.xml ]] || fail "transaction for one disk: recover changed files"
vm_qmp blockdev-snapshot-sync "{\"node-name\": \"$(vdb_node)\", \"snapshot-file\": \"$IMG/ovm-vdb.s3\", \"snapshot-node-name\": \"vdb-s3\", \"format\": \"qcow2\", \"mode\": \"existing\"}" >/dev/null ||
    fail "transaction for one disk: switching vdb by hand"
out=$(X recover ovm 2>&1) || fail "transaction for one disk: recover after vdb switched: $out"
has "transaction for one disk: recovered" "Finished: create snapshot s3" "$out"
eq "transaction for one disk: config names s3's overlays" "$IMG/ovm-vda.s3 $IMG/ovm-vdb.s3" "$(src -vda ovm) $(src -vdb ovm)"
ES_CHECKS=$((ES_CHECKS + 1))
[[ -e $SNAPS/ovm/s3.xml && ! -e $J ]] || fail "transaction for one disk: s3 not recorded, or journal left"
stop_all
check_guest "transaction for one disk"
reset

# ------------------------------------------------------------ second block-commit refused
# vdb's block-commit is refused (as QEMU does for a base it cannot write)
# after a pause in which vda's job copies: only vda's base holds part of
# the merge.
cp "$IMG/ovm-vdb.s1" "$T/vdb.s1.before"
cp "$IMG/ovm-vda.s1" "$T/vda.s1.before"
start_proxied_vm 'sleep:block-commit:2:1000' \
    'reply:block-commit:2:{"error": {"class": "GenericError", "desc": "Block node is read-only"}}'
rc=0
X delete ovm s2 >"$T/out" 2>"$T/err" || rc=$?
err=$(cat "$T/err")
eq "second commit refused: exit status" 1 "$rc"
has "second commit refused: message" "Block node is read-only" "$err"
has "second commit refused: message" "$IMG/ovm-vda.s1 already holds part of the data being merged" "$err"
ES_CHECKS=$((ES_CHECKS + 1))
[[ $err != *"ovm-vdb.s1"* ]] || fail "second commit refused: vdb's base named: $err"
eq "second commit refused: recorded images" "$IMG/ovm-vda.s1" "$(jq -r '.snapshots[] | select(.name == "s2") | .images | join(" ")' "$M")"
eq "second commit refused: no job left" "" "$(jobs_now)"
stop_all
ES_CHECKS=$((ES_CHECKS + 1))
cmp -s "$T/vdb.s1.before" "$IMG/ovm-vdb.s1" || fail "second commit refused: vdb's base changed"
ES_CHECKS=$((ES_CHECKS + 1))
! cmp -s "$T/vda.s1.before" "$IMG/ovm-vda.s1" || fail "second commit refused: vda's base unchanged, yet named"

reset

# ------------------------------------------------------------ guest outpaces the copy
# A writer at a known rate on vdb, through a writable NBD export (a client
# of QEMU's block layer; HMP qemu-io in a loop can deadlock QEMU 7.2 while a
# mirror completes): 1 MiB every 100 ms (about 10 MiB/s), moving over the
# disk, while delete s2 actively commits at 1 MiB/s. The amount left to
# copy stops shrinking; after the stall bound (2 s) the limit is lifted and
# the copy completes. The export is added once the jobs run (after the
# delete's own check of exports), so the check made once every job is
# pending refuses it: the export's writes at that point would be lost at the
# switch (docs/online.md). The jobs are cancelled, nothing is switched, and
# every write of the writer is in the disk.
start_proxied_vm
wcmds=()
for ((i = 0; i < 250; i++)); do
    wcmds+=(-c "write -P $((0x40 + i % 32)) $(((i % 8) * 1024))k 1M" -c "sleep 100")
done
t0=$SECONDS
# On a terminal (script(1) gives it one) extsnap shows the jobs' progress.
script -qec "EXTSNAP_QMP_SPEED=1048576 EXTSNAP_QMP_STALL=2 timeout 20 $EXTSNAP delete ovm s2 \
    --config-dir=$CFG --snapshot-dir=$SNAPS --run-dir=$RUN" "$T/out" </dev/null >/dev/null &
ext=$!
for ((i = 0; i < 1000; i++)); do
    [[ -n $(jobs_now) ]] && break
    sleep 0.01
done
vm_qmp block-export-add '{"type": "nbd", "id": "w", "name": "w", "node-name": "vdb-top", "writable": true}' >/dev/null
qemu-io -f raw "nbd+unix:///w?socket=$T/nbd.sock" "${wcmds[@]}" >"$T/writer.out" 2>&1 &
LOOP_PID=$!
rc=0
wait "$ext" || rc=$?
took=$((SECONDS - t0))
wrc=0
wait "$LOOP_PID" || wrc=$?
LOOP_PID=
eq "guest outpaces the copy: the writer's exit status ($(head -c 300 "$T/writer.out"))" 0 "$wrc"
eq "guest outpaces the copy: the writer's writes" 250 "$(grep -c '^wrote 1048576/1048576 bytes' "$T/writer.out")"
eq "guest outpaces the copy: exit status (1: refused at pending; 124: no end after 20 s)" 1 "$rc"
has "guest outpaces the copy: the limit was lifted" "block job extsnap-snap-vdb-" "$(cat "$T/out")"
has "guest outpaces the copy: the limit was lifted" "still to copy did not shrink for 2 s at a speed limit of 1048576 bytes/s: limit lifted" "$(cat "$T/out")"
has "guest outpaces the copy: the export refused at pending" "disk vdb: QEMU exports node vdb-top writable (nbd block export 'w'); writes through an export while the commit switches the disk would be lost" "$(cat "$T/out")"
ES_CHECKS=$((ES_CHECKS + 1))
((took < 15)) || fail "guest outpaces the copy: took $took s"
ES_CHECKS=$((ES_CHECKS + 1))
grep -aqE 'vdb commit \[[#.]{20}\] +[0-9]+\.[0-9]% [0-9.]+ [KMG]?i?B / [0-9.]+ [KMG]?i?B' "$T/out" ||
    fail "guest outpaces the copy: no progress shown: $(tr '\r' '\n' <"$T/out" | head -n 5)"
ES_CHECKS=$((ES_CHECKS + 1))
grep -aq '  note: block job extsnap-snap-vdb-.*limit lifted' "$T/out" ||
    fail "guest outpaces the copy: no note on the terminal"
eq "guest outpaces the copy: nothing switched" "$IMG/ovm-vda.s2 $IMG/ovm-vdb.s2" "$(chains)"
eq "guest outpaces the copy: no job left" "" "$(jobs_now)"
stop_all
for ((i = 0; i < 250; i++)); do # the writer's writes, in order, into the expected content
    qemu-io -f raw -c "write -q -P $((0x40 + i % 32)) $(((i % 8) * 1024))k 1M" "$T/expect-vdb.raw" >/dev/null
done
check_guest "guest outpaces the copy"
check_images "guest outpaces the copy"
echo "guest outpaces the copy: 250 writes of 1 MiB every 100 ms on vdb, delete refused after $took s" >&2

finish
