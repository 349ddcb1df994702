#!/usr/bin/env bash
# --dry-run refuses whatever the real run refuses, with the same message and
# exit status, and neither run changes a file (sha256 and mode of every file
# under the root). For every domain command with --dry-run (create, delete,
# commit, revert, refresh, setup, recover, current, describe), under each condition the real run
# refuses: libvirtd running (its pid file in the test's root), virtqemud
# holding the QEMU driver (run dir), the VM running with no QMP socket
# extsnap can use, another extsnap holding the domain lock (exclusively, or
# shared as list does), an unreadable journal; and per command: a missing or
# taken snapshot name, a block disk; and recover on a running VM (a real
# QEMU) while virtqemud runs, which would have to write libvirt's files.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
need_cmd qemu-img qemu-io qemu-system-x86_64 python3 xmllint jq
PIDS=()
cleanup() {
    local p
    vm_kill
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT

R=$T/root
snap_make_tvm "$R"
mkdir -p "$R/srv"
x create tvm s1 -q
guest_write "$R" tvm vda 0x11 0 256k
x create tvm s2 -q
guest_write "$R" tvm vdb 0x22 1M 256k
RUN=$R/run/libvirt/qemu
LOCK=$R$SNAP_DIR/tvm.extsnap.lock
J=$R$SNAP_DIR/tvm.extsnap.journal
CMDS=("create tvm s3" "delete tvm s1" "commit tvm s1 s2" "revert tvm s1" "refresh tvm"
    "setup tvm /srv" "recover tvm" "current tvm s2" "describe tvm s1 --description x")

# same_refusal WHAT ARGS...: `x ARGS` is refused, `x ARGS --dry-run` too,
# with the same stderr and status; neither changes a file.
same_refusal() {
    local what=$1 before after rc=0 drc=0
    shift
    before=$(root_sums "$R")
    x "$@" >"$T/out" 2>"$T/err" || rc=$?
    after=$(root_sums "$R")
    check_eq "$what: '$*' changes nothing" "$before" "$after"
    x "$@" --dry-run >"$T/dout" 2>"$T/derr" || drc=$?
    after=$(root_sums "$R")
    check_eq "$what: '$* --dry-run' changes nothing" "$before" "$after"
    ES_CHECKS=$((ES_CHECKS + 1))
    ((rc != 0)) || fail "$what: '$*' was not refused (the condition did not hold?)"
    check_eq "$what: '$* --dry-run' exit status" "$rc" "$drc"
    check_eq "$what: '$* --dry-run' message" "$(same_msg "$T/err")" "$(same_msg "$T/derr")"
}
# The lock holder's pid comes from /proc/locks, which a reader can see
# without some entries while other processes take and drop flocks: it is
# left out of the comparison (the rest of the message is not).
same_msg() { sed -E 's/(another extsnap is working on domain [^ ]*) \(pid [0-9]+\)$/\1/' "$1"; }
each_cmd() { # WHAT
    local c
    for c in "${CMDS[@]}"; do
        # shellcheck disable=SC2086
        same_refusal "$1" $c
    done
}

# start_fake NAME: a live process whose comm is NAME, pid in FAKE_PID.
start_fake() {
    mkdir -p "$T/bin"
    cp /bin/sleep "$T/bin/$1"
    "$T/bin/$1" 300 </dev/null >/dev/null 2>&1 &
    FAKE_PID=$!
    PIDS+=("$FAKE_PID")
}
stop_fake() { kill "$FAKE_PID" 2>/dev/null || true; wait "$FAKE_PID" 2>/dev/null || true; }

# ------------------------------------------------------------ libvirt's daemons
start_fake libvirtd
echo "$FAKE_PID" >"$R/run/libvirtd.pid"
each_cmd "libvirtd running"
stop_fake
rm "$R/run/libvirtd.pid"
start_fake virtqemud
echo "$FAKE_PID" >"$RUN/driver.pid"
each_cmd "virtqemud holds the QEMU driver"
stop_fake
rm "$RUN/driver.pid"

# ------------------------------------------------------------ the VM runs, no QMP socket
start_fake qemu-kvm
echo "$FAKE_PID" >"$RUN/tvm.pid"
each_cmd "VM running without a QMP socket"
stop_fake
rm "$RUN/tvm.pid"

# ------------------------------------------------------------ the domain lock
hold_lock() { # MODE (EX or SH): a process holding the flock, pid in LOCK_PID
    python3 -c 'import fcntl, os, sys
f = open(sys.argv[1], "a"); os.set_inheritable(f.fileno(), True)
fcntl.flock(f, getattr(fcntl, "LOCK_" + sys.argv[2])); os.execvp("sleep", ["sleep", "300"])' \
        "$LOCK" "$1" </dev/null >/dev/null 2>&1 &
    LOCK_PID=$!
    PIDS+=("$LOCK_PID")
    local kind=WRITE
    [[ $1 == SH ]] && kind=READ
    for _ in $(seq 100); do
        grep -Eq "FLOCK +ADVISORY +$kind +$LOCK_PID " /proc/locks && return 0
        sleep 0.1
    done
    fail "the lock holder did not get its lock"
}
release_lock() { kill "$LOCK_PID" 2>/dev/null || true; wait "$LOCK_PID" 2>/dev/null || true; rm -f "$LOCK"; }
hold_lock EX
each_cmd "another extsnap holds the lock"
release_lock
hold_lock SH
each_cmd "a reader (list) holds the lock"
release_lock

# ------------------------------------------------------------ an unreadable journal
echo "{ not json" >"$J"
each_cmd "unreadable journal"
rm "$J"

# ------------------------------------------------------------ names and disks
same_refusal "missing snapshot" delete tvm nosuch
same_refusal "missing snapshot" revert tvm nosuch
same_refusal "missing snapshot" commit tvm nosuch s2
same_refusal "taken name" create tvm s1
cp "$R$SNAP_CFG/tvm.xml" "$T/tvm.xml"
sed -i "s|</devices>|<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev-blk'/><target dev='vdx' bus='virtio'/></disk></devices>|" \
    "$R$SNAP_CFG/tvm.xml"
same_refusal "block disk" create tvm s3
cp "$T/tvm.xml" "$R$SNAP_CFG/tvm.xml"

# ------------------------------------------------------------ inexact snapshots
ct() { xmllint --xpath 'string(/domainsnapshot/creationTime)' "$R$SNAP_DIR/tvm/$1.xml"; }
printf '{"extsnap-inexact": 1, "snapshots": [%s, %s]}\n' \
    "{\"name\": \"s1\", \"creation-time\": $(ct s1), \"state\": \"cancelled\", \"images\": []}" \
    "{\"name\": \"s2\", \"creation-time\": $(ct s2), \"state\": \"cancelled\", \"images\": []}" \
    >"$R$SNAP_DIR/tvm.extsnap.inexact"
same_refusal "inexact snapshot" revert tvm s1
grep -q "saved state is inexact" "$T/err" || fail "revert to an inexact snapshot: $(cat "$T/err")"
same_refusal "inexact snapshot" refresh tvm
rm "$R$SNAP_DIR/tvm.extsnap.inexact"

# ------------------------------------------------------------ recover, VM running, under virtqemud
# A journal left by a delete stopped dead, then the VM "runs" (a real QEMU
# with the QMP socket the config names) under virtqemud: recovery would
# write libvirt's files, refused.
cp -a "$R" "$T/root.base"
EXTSNAP_FAULT_TRACE=$T/trace x delete tvm s1 -q
points=$(grep -c '^mutate ' "$T/trace")
rm -rf "$R" && cp -a "$T/root.base" "$R"
for ((n = points / 2; n <= points; n++)); do
    EXTSNAP_FAULT=mutate:$n:stop x delete tvm s1 -q >/dev/null 2>&1 || true
    [[ -e $J ]] && break
    rm -rf "$R" && cp -a "$T/root.base" "$R"
done
if [[ ! -e $J ]]; then
    fail "no stop point of delete left a journal"
else
    # (The stopped run's lock file too: the next command removes it, a
    # clean-up that is not what is compared here.)
    rm -f "$LOCK"
    python3 - "$R$SNAP_CFG/tvm.xml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("<domain type='qemu'>",
              "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>")
s = s.replace("</domain>", "  <qemu:commandline>\n    <qemu:arg value='-qmp'/>\n"
              "    <qemu:arg value='unix:/tvm.qmp,server=on,wait=off'/>\n"
              "  </qemu:commandline>\n</domain>")
open(p, "w").write(s)
PY
    vm_start "$R/tvm.qmp"
    echo "$QEMU_PID" >"$RUN/tvm.pid"
    start_fake virtqemud
    echo "$FAKE_PID" >"$RUN/driver.pid"
    for c in "recover tvm" "delete tvm s2" "create tvm s3"; do
        # shellcheck disable=SC2086
        same_refusal "pending journal, running VM under virtqemud" $c
        grep -q "stop libvirtd" "$T/err" || fail "$c under virtqemud: not the refusal expected: $(cat "$T/err")"
    done
    stop_fake
    rm "$RUN/driver.pid"
    vm_quit
    rm "$RUN/tvm.pid"
fi
finish
