#!/bin/bash
# Image locks against a real VM (qemu-system-x86_64 -machine none): extsnap
# refuses images a running QEMU writes, reads its backing files, names the
# holder, writes nothing it was refused; a QEMU (and qemu-img) started while
# extsnap holds an image gets QEMU's own lock error.
# extsnap is paused while holding its locks by pointing EXTSNAP_FAULT_TRACE at
# a FIFO: the first traced I/O (after the images are opened and locked)
# blocks until the test starts reading the FIFO.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img qemu-io qemu-system-x86_64 timeout sha256sum

VM_WRAP= READER= PAUSED=
# QEMU itself, by its pidfile (only if it is still our VM): killing the
# timeout wrapper with SIGKILL would orphan it.
kill_vm() {
    local qp
    qp=$(cat "$T/vm.pid" 2>/dev/null) || return 0
    if [[ -n "$qp" ]] && grep -qF "$T" "/proc/$qp/cmdline" 2>/dev/null; then
        kill -KILL "$qp" 2>/dev/null || true
    fi
}
cleanup() {
    local p
    kill_vm
    for p in $PAUSED $READER $VM_WRAP; do
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$T"
}
trap cleanup EXIT

# Bytes 100..299 of FILE locked by anyone, from /proc/locks: "100 101 103 201 203".
locked_bytes() {
    local d key
    d=$(stat -c %D "$1")
    key=$(printf '%02x:%02x:%s' $((0x$d >> 8)) $((0x$d & 0xff)) "$(stat -c %i "$1")")
    awk -v key="$key" '
        { for (i = 1; i <= NF; i++) if ($i == key) {
              s = $(i + 1); e = $(i + 2); if (e == "EOF") e = 299
              for (b = s; b <= e && b < 300; b++) if (b >= 100) L[b] = 1 } }
        END { out = ""; for (b = 100; b < 300; b++) if (b in L) out = out (out == "" ? "" : " ") b
              print out }' /proc/locks
}

wait_locked() { # FILE BYTES
    local i
    for i in $(seq 300); do
        [[ "$(locked_bytes "$1")" == "$2" ]] && return 0
        sleep 0.1
    done
    fail "$1: waited for locks [$2], have [$(locked_bytes "$1")]"
    return 1
}

# A VM on IMAGE (and its backing chain); QEMU's pid in QP. Fixed timeout so
# nothing outlives the test.
start_vm() {
    rm -f "$T/vm.pid"
    timeout -s KILL 120 qemu-system-x86_64 -machine none -nodefaults -display none \
        -pidfile "$T/vm.pid" \
        -blockdev "driver=qcow2,node-name=top,file.driver=file,file.filename=$1" \
        >"$T/vm.log" 2>&1 &
    VM_WRAP=$!
}
stop_vm() {
    kill "$VM_WRAP" 2>/dev/null || true # timeout passes SIGTERM on to QEMU
    wait "$VM_WRAP" 2>/dev/null || true
    kill_vm
    VM_WRAP=
}

# A VM expected to be refused: its exit status in VM_RC (-1 if it kept running).
wait_vm_refused() {
    local i
    VM_RC=-1
    for i in $(seq 300); do
        if ! kill -0 "$VM_WRAP" 2>/dev/null; then
            VM_RC=0
            wait "$VM_WRAP" || VM_RC=$?
            VM_WRAP=
            return 0
        fi
        sleep 0.1
    done
    stop_vm
}

# expect WHAT RC PATTERN CMD...: CMD exits RC and its stderr contains PATTERN.
expect() {
    local what=$1 want=$2 pat=$3 rc=0
    shift 3
    ES_CHECKS=$((ES_CHECKS + 1))
    "$@" >"$T/out" 2>"$T/err" || rc=$?
    if [[ $rc -ne $want ]]; then
        fail "$what: '$*' exited $rc, expected $want: $(head -c 400 "$T/err")"
    elif [[ -n "$pat" ]] && ! grep -qF -- "$pat" "$T/err"; then
        fail "$what: stderr lacks [$pat]: $(head -c 400 "$T/err")"
    fi
}

sums() { sha256sum "$T"/base.qcow2 "$T"/mid.qcow2 "$T"/top.qcow2; }

cd "$T"
qemu-img create -q -f qcow2 base.qcow2 4M
qemu-io -f qcow2 -c 'write -P 0xaa 0 1M' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
qemu-io -f qcow2 -c 'write -P 0xbb 1M 1M' mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
qemu-io -f qcow2 -c 'write -P 0xcc 2M 1M' top.qcow2 >/dev/null
W="100 101 103 201 203" R="100 201 203"

# ---- a VM runs on top: extsnap refuses what QEMU would refuse ----
start_vm "$T/top.qcow2"
wait_locked top.qcow2 "$W"
wait_locked base.qcow2 "$R"
QP=$(cat vm.pid)
VMW="process $QP (qemu-system-x86_64"
before=$(sums)

expect "info of the VM's active image" 1 "image is being written by $VMW" \
    "$EXTSNAP" img info top.qcow2
expect "info hint" 1 "use --force-share to read it anyway" "$EXTSNAP" img info top.qcow2
expect "info -U" 0 "" "$EXTSNAP" img info -U top.qcow2
expect "info of a backing file the VM reads" 0 "" "$EXTSNAP" img info base.qcow2
expect "map of a backing file" 0 "" "$EXTSNAP" img map mid.qcow2
expect "map of the active image" 1 "image is being written by $VMW" "$EXTSNAP" img map top.qcow2
expect "check of the active image" 1 "image is being written by $VMW" \
    "$EXTSNAP" img check top.qcow2
expect "check of a backing file" 0 "" "$EXTSNAP" img check base.qcow2
expect "repair of a backing file" 1 "image is in use by $VMW" \
    "$EXTSNAP" img check -r leaks base.qcow2
expect "compare with the active image" 2 "image is being written by $VMW" \
    "$EXTSNAP" img compare top.qcow2 mid.qcow2
expect "compare -U" 1 "" "$EXTSNAP" img compare -U top.qcow2 mid.qcow2
expect "commit of the active image" 1 "$VMW" "$EXTSNAP" img commit top.qcow2
expect "commit into the VM's backing file" 1 "image is in use by $VMW" \
    "$EXTSNAP" img commit mid.qcow2
expect "commit into a backing file: why" 1 "it does not allow others to write it" \
    "$EXTSNAP" img commit mid.qcow2
expect "rebase -u of the active image" 1 "image is in use by $VMW" \
    "$EXTSNAP" img rebase -u -b base.qcow2 -F qcow2 top.qcow2
expect "rebase -u: why" 1 "it holds a write lock" \
    "$EXTSNAP" img rebase -u -b base.qcow2 -F qcow2 top.qcow2
ok_eq "nothing written while the VM ran" "$before" "$(sums)" || true
ok_eq "QEMU's locks untouched" "$W" "$(locked_bytes top.qcow2)" || true
stop_vm
ok_eq "locks gone with the VM" "" "$(locked_bytes top.qcow2)" || true
expect "info once the VM stopped" 0 "" "$EXTSNAP" img info top.qcow2
expect "check once the VM stopped" 0 "" "$EXTSNAP" img check top.qcow2

# ---- extsnap holds locks: QEMU and qemu-img are refused ----
# Pause extsnap at its first traced I/O: a FIFO with no reader blocks the open.
pause_extsnap() { # image locked_bytes_expected CMD...
    local img=$1 want=$2
    shift 2
    rm -f fifo && mkfifo fifo
    EXTSNAP_FAULT_TRACE="$T/fifo" "$@" >"$T/paused.out" 2>"$T/paused.err" &
    PAUSED=$!
    wait_locked "$img" "$want"
}
resume_extsnap() { # expected exit status
    local rc=0
    # One reader that never sees EOF (it holds the FIFO open for writing too),
    # so every later traced operation's open goes through.
    ( exec 3<>fifo; exec cat <&3 >/dev/null ) &
    READER=$!
    wait "$PAUSED" || rc=$?
    PAUSED=
    kill "$READER" 2>/dev/null || true
    wait "$READER" 2>/dev/null || true
    READER=
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $rc -eq $1 ]] || fail "paused extsnap exited $rc, expected $1: $(cat paused.err)"
}

# A writer (rebase -u holds the write lock on top).
pause_extsnap top.qcow2 "$W" "$EXTSNAP" img rebase -u -b mid.qcow2 -F qcow2 top.qcow2
EP=$PAUSED
start_vm "$T/top.qcow2"
wait_vm_refused
ok_eq "VM start on an image extsnap writes: exit" 1 "$VM_RC" || true
grep -qF 'Failed to get "write" lock' vm.log || fail "VM start: no QEMU lock error: $(cat vm.log)"
expect "qemu-img info of an image extsnap writes" 1 'Failed to get shared "write" lock' \
    qemu-img info top.qcow2
expect "a second extsnap names the first" 1 "image is being written by process $EP (" \
    "$EXTSNAP" img info top.qcow2
grep -qF "img rebase -u" err || fail "holder's command line missing: $(cat err)"
resume_extsnap 0
ok_eq "rebase done after the pause" "mid.qcow2" \
    "$(qemu-img info --output=json top.qcow2 | grep -o '"backing-filename": "[^"]*"' | cut -d'"' -f4)" ||
    true

# A reader (img info holds the read lock on top): QEMU may not write it, qemu-img info may read it.
pause_extsnap top.qcow2 "$R" "$EXTSNAP" img info top.qcow2
start_vm "$T/top.qcow2"
wait_vm_refused
ok_eq "VM start on an image extsnap reads: exit" 1 "$VM_RC" || true
grep -qF 'Failed to get "write" lock' vm.log || fail "VM start: no QEMU lock error: $(cat vm.log)"
expect "qemu-img info beside an extsnap reader" 0 "" qemu-img info top.qcow2
resume_extsnap 0

# Positive control: with nobody holding anything the VM starts.
start_vm "$T/top.qcow2"
wait_locked top.qcow2 "$W"
stop_vm
finish
