#!/usr/bin/env bash
# Refusals of the domain commands: each exits 1 with a clear message and
# changes nothing (sha256 and mode of every file under the root, before and
# after): libvirtd/virtqemud running, the VM running (run-dir pid file,
# status file, an image held by a real QEMU), another extsnap at work, a
# taken or invalid snapshot name, an existing overlay file, a missing image,
# a malformed config, a snapshot without <domain>, a block disk, --root
# escapes (a symlink pointing outside the root, '..' in a path, a backing
# name leaving the root), an unreadable journal. list --output=json says
# "running" exactly where the VM-running refusals apply.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io qemu-system-x86_64 xmllint python3

R=$T/root
snap_make_tvm "$R"
x create tvm s1 -q
IMG=$R$SNAP_IMG
CFG=$R$SNAP_CFG/tvm.xml
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT

# refused WHAT PATTERN CMD...: CMD exits 1, says PATTERN, changes nothing.
refused() {
    local what=$1 pattern=$2 before after rc=0
    shift 2
    before=$(root_sums "$R")
    "$@" >"$T/out" 2>"$T/err" || rc=$?
    check_eq "$what: exit status" 1 "$rc"
    grep -q -- "$pattern" "$T/err" || fail "$what: message lacks '$pattern': $(cat "$T/err")"
    check_eq "$what: one line on stderr" 1 "$(wc -l <"$T/err")"
    after=$(root_sums "$R")
    check_eq "$what: nothing changed under the root" "$before" "$after"
}

# start_fake NAME: a live process whose /proc/PID/comm is NAME; its pid in
# FAKE_PID (not printed: a $(...) would wait for the process to end).
start_fake() {
    mkdir -p "$T/bin"
    cp /bin/sleep "$T/bin/$1"
    "$T/bin/$1" 300 </dev/null >/dev/null 2>&1 &
    FAKE_PID=$!
    PIDS+=("$FAKE_PID")
}

# --- libvirt daemons ---------------------------------------------------------
start_fake libvirtd
pid=$FAKE_PID
echo "$pid" >"$R/run/libvirtd.pid"
refused "libvirtd running" "libvirtd is running (pid $pid)" x create tvm s2
grep -q "systemctl stop libvirtd" "$T/err" || fail "libvirtd message lacks what to do: $(cat "$T/err")"
refused "libvirtd running (revert)" "libvirtd is running" x revert tvm s1
# The system daemon leaves a session daemon's files alone (another --run-dir,
# e.g. $XDG_RUNTIME_DIR/libvirt/qemu/run): there its driver's pid file counts.
mkdir -p "$R/srv/session-run"
check_rc "the system libvirtd is no obstacle for another --run-dir" 0 \
    x create tvm s2 --run-dir /srv/session-run --dry-run -q
echo "$pid" >"$R/srv/session-run/driver.pid"
refused "a session libvirtd running (its driver.pid)" "libvirtd is running (pid $pid)" \
    x create tvm s2 --run-dir /srv/session-run
grep -q "stop it first (kill $pid, or wait for it to exit when idle)" "$T/err" ||
    fail "a session daemon is no service: $(cat "$T/err")"
rm "$R/srv/session-run/driver.pid"
ln -s ../run "$R/var/run"
refused "the system's run dir named through /var/run" "libvirtd is running (pid $pid)" \
    x create tvm s2 --run-dir /var/run/libvirt/qemu/
rm "$R/var/run"
# Other spellings of the same directory are it too (compared as files).
refused "the system's run dir spelled /run//libvirt/qemu/." "libvirtd is running (pid $pid)" \
    x create tvm s2 --run-dir /run//libvirt/qemu/.
ln -s ../run/libvirt/qemu "$R/srv/qemu-run"
refused "the system's run dir through a symlink" "libvirtd is running (pid $pid)" \
    x create tvm s2 --run-dir /srv/qemu-run
rm "$R/srv/qemu-run"
kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
check_rc "libvirtd pid file of a dead process is no obstacle" 0 x create tvm s2 --dry-run -q
rm "$R/run/libvirtd.pid"
start_fake virtqemud
pid=$FAKE_PID
echo "$pid" >"$R/run/virtqemud.pid"
refused "virtqemud running" "virtqemud is running (pid $pid)" x create tvm s2
rm "$R/run/virtqemud.pid"
echo "$pid" >"$R/run/libvirt/qemu/driver.pid"
refused "QEMU driver lock held by virtqemud" "virtqemud is running" x refresh tvm
rm "$R/run/libvirt/qemu/driver.pid"
kill "$pid" 2>/dev/null || true
start_fake sleeper
other=$FAKE_PID
echo "$other" >"$R/run/libvirtd.pid"
check_rc "a pid file naming some other process is no obstacle" 0 x create tvm s2 --dry-run -q
rm "$R/run/libvirtd.pid"

# --- the VM running ------------------------------------------------------------
# list_running: what 'list --output=json' says of the VM ("running"), as the
# refusals below see it (the Ansible modules decide on it).
list_running() { x list tvm --output=json | python3 -c 'import json,sys; print(json.load(sys.stdin)["running"])'; }
check_eq "list: a stopped VM is not running" False "$(list_running)"
echo "$other" >"$R/run/libvirt/qemu/tvm.pid"
refused "VM pid file" "domain tvm is running (pid $other" x create tvm s2
check_eq "list: the VM pid file means running" True "$(list_running)"
rm "$R/run/libvirt/qemu/tvm.pid"
echo "<domstatus/>" >"$R/run/libvirt/qemu/tvm.xml"
refused "VM status file" "libvirt status file" x revert tvm s1
check_eq "list: the status file means running" True "$(list_running)"
rm "$R/run/libvirt/qemu/tvm.xml"
top=$IMG/vda.s1
qemu-system-x86_64 -machine none -nodefaults -display none -monitor none -serial none \
    -blockdev "driver=file,node-name=f,filename=$top" \
    -blockdev '{"driver":"qcow2","node-name":"top","file":"f","backing":null}' 2>"$T/qemu.err" &
qpid=$!
PIDS+=($qpid)
for _ in $(seq 100); do
    # qemu-img info fails once QEMU holds its write lock on the image.
    qemu-img info "$top" >/dev/null 2>&1 || break
    sleep 0.1
done
if qemu-img info "$top" >/dev/null 2>&1; then
    fail "test setup: QEMU does not hold $top"
else
    # (create may be able to work through QEMU's QMP socket: without one it
    # refuses too, naming the process the same way.)
    refused "image held by QEMU" "$qpid (qemu-system-x86_64" x create tvm s2
    refused "image held by QEMU (revert)" "$qpid (qemu-system-x86_64" x revert tvm s1
    check_eq "list: QEMU's image lock means running" True "$(list_running)"
fi
kill "$qpid" 2>/dev/null || true; wait "$qpid" 2>/dev/null || true

# --- another extsnap -----------------------------------------------------------
# One process takes the flock and becomes `sleep` (same pid, lock kept).
python3 -c 'import fcntl, os, sys
f = open(sys.argv[1], "a"); os.set_inheritable(f.fileno(), True)
fcntl.flock(f, fcntl.LOCK_EX); os.execvp("sleep", ["sleep", "300"])' \
    "$R$SNAP_DIR/tvm.extsnap.lock" </dev/null >/dev/null 2>&1 &
fpid=$!
PIDS+=($fpid)
# Wait for that process's own lock (other tests may hold flocks too).
for _ in $(seq 100); do grep -Eq "FLOCK +ADVISORY +WRITE +$fpid " /proc/locks && break; sleep 0.1; done
refused "another extsnap at work" "another extsnap is working on domain tvm (pid $fpid)" x create tvm s2
kill "$fpid" 2>/dev/null || true; wait "$fpid" 2>/dev/null || true
# (the extsnap this stands for removes its lock file as it lets go; a stale
# one is removed by the next writer, even a refused one: t_snap_leftovers.sh)
rm -f "$R$SNAP_DIR/tvm.extsnap.lock"

# --- names -----------------------------------------------------------------------
refused "name taken" "already has a snapshot named 's1'" x create tvm s1
refused "name base" "invalid snapshot name 'base'" x create tvm base
refused "name with /" "name can't contain '/'" x create tvm a/b
refused "name starting with ." "name can't start with '.'" x create tvm .hidden
refused "revert to an unknown snapshot" "no snapshot named 'nope'" x revert tvm nope
refused "unknown --disk" "has no disk 'vdz'" x create tvm s2 --disk vdz
check_rc "usage error: no domain" 1 x create 2>/dev/null

# --- files in the way --------------------------------------------------------------
echo data >"$IMG/vdb.s2"
refused "overlay file exists" "already exists and is not an empty file" x create tvm s2
rm "$IMG/vdb.s2"
: >"$IMG/vdb.s2"
check_rc "an existing empty overlay file is used, as libvirt does" 0 x create tvm s2 -q
check_eq "the empty file became vdb's overlay" qcow2 \
    "$(qemu-img info -U --output=json "$IMG/vdb.s2" | jq -r .format)"
mv "$IMG/vdb.s2" "$T/vdb.s2.away"
refused "disk image missing" "vdb.s2" x create tvm s3
mv "$IMG/vdb.s1" "$T/vdb.s1.away"
refused "a saved image the revert needs is missing" "vdb.s1" x revert tvm s2
mv "$T/vdb.s1.away" "$IMG/vdb.s1"
mv "$T/vdb.s2.away" "$IMG/vdb.s2"

# --- malformed files ---------------------------------------------------------------
cp "$CFG" "$T/cfg.good"
head -c 300 "$T/cfg.good" >"$CFG"
refused "malformed config" "tvm.xml" x create tvm s3
refused "malformed config (revert)" "tvm.xml" x revert tvm s1
cp "$T/cfg.good" "$CFG"
sed -i '/^  <domain /,/^  <\/domain>/d' "$R$SNAP_DIR/tvm/s1.xml"
refused "snapshot without <domain>" "lacks the saved domain definition" x revert tvm s1
echo "{ not json" >"$R$SNAP_DIR/tvm.extsnap.journal"
refused "unreadable journal" "journal is not valid JSON" x create tvm s3
rm "$R$SNAP_DIR/tvm.extsnap.journal"

# --- --root escapes ------------------------------------------------------------------
mkdir -p "$T/outside"
qemu-img create -q -f qcow2 "$T/outside/x.qcow2" 4M
ln -s ../../../../../../../../../../outside/x.qcow2 "$IMG/escape.qcow2"
sed "s|$SNAP_IMG/vdb.s2|$SNAP_IMG/escape.qcow2|" "$T/cfg.good" >"$CFG"
refused "disk source: symlink leaving the root" "leads outside the root directory" x create tvm s3
sed "s|$SNAP_IMG/vdb.s2|/var/lib/../../../../outside/x.qcow2|" "$T/cfg.good" >"$CFG"
refused "disk source: '..' leaving the root" "leads outside the root directory" x create tvm s3
qemu-img create -q -f qcow2 -u -b ../../../../../../../outside/x.qcow2 -F qcow2 "$IMG/relesc.qcow2" 4M
sed "s|$SNAP_IMG/vdb.s2|$SNAP_IMG/relesc.qcow2|" "$T/cfg.good" >"$CFG"
refused "backing name leaving the root" "leads outside the root directory" x create tvm s3
cp "$T/cfg.good" "$CFG"
rm "$IMG/escape.qcow2" "$IMG/relesc.qcow2"

# --- a block disk ------------------------------------------------------------------------
qemu-img create -q -f raw "$R/dev-blk" 4M
sed "s|</devices>|  <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev-blk'/><target dev='vdx' bus='virtio'/></disk>\n  </devices>|" \
    "$T/cfg.good" >"$CFG"
refused "block disk" "source for disk 'vdx' is not a regular file" x create tvm s3
check_rc "block disk left out with --disk" 0 x create tvm s3 --disk vda,vdb,vdc -q
check_eq "block disk recorded with snapshot='no'" no \
    "$(xmllint --xpath "string(//disks/disk[@name='vdx']/@snapshot)" "$R$SNAP_DIR/tvm/s3.xml")"

finish
