#!/usr/bin/env bash
# Files extsnap keeps for itself must not outlive their use (issue #10,
# "Leftovers"): the domain lock file <dom>.extsnap.lock left by a crash or by
# a locker that did not create it is removed by the next command that
# changes the domain; so is <dom>.extsnap-pending/ once libvirt's files
# say what it holds (its virsh commands ran); verify says plainly that a disk source which is a fifo
# or a character device is no image file; list --output=json says whether a
# journal is pending.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io xmllint python3

R=$T/root
snap_make_tvm "$R"
LOCK=$R$SNAP_DIR/tvm.extsnap.lock

# --- the lock file ---------------------------------------------------------
# A stale one, as a crash (or a concurrent locker that lost) leaves it: the
# next writer opens it without creating it, and must still remove it.
: >"$LOCK"
check_rc "create with a stale lock file" 0 x create tvm s1 -q
check_eq "the stale lock file is gone after create" "no" "$([[ -e $LOCK ]] && echo yes || echo no)"

# A crash at the very last file-system step (the lock file's removal)
# leaves it; the next writer (here recover) removes it.
max=$(EXTSNAP_FAULT_TRACE=$T/trace x create tvm s2 -q && grep -c '^mutate ' "$T/trace")
# (the step after the journal's rename and its directory's fsync: a crash
# there leaves a journal pending)
pend=$(($(grep '^mutate ' "$T/trace" | grep -n 'rename .*/tvm\.extsnap\.journal$' | head -n1 | cut -d: -f1) + 2))
x delete tvm s2 -q
rm -f "$T/trace"
rc=0
EXTSNAP_FAULT=mutate:$max:stop x create tvm s2 -q 2>/dev/null || rc=$?
check_eq "stop at the last mutate point" 86 "$rc"
check_eq "the stop left the lock file (the last point removes it)" yes \
    "$([[ -e $LOCK ]] && echo yes || echo no)"
pending() { x list tvm --output=json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending-journal"])'; }
check_eq "list --output=json: no journal pending at the last step" False "$(pending)"
rc=0
EXTSNAP_FAULT=mutate:$pend:stop x create tvm s3 -q 2>/dev/null || rc=$?
check_eq "stop once the journal is written" 86 "$rc"
check_eq "list --output=json: the journal is pending" True "$(pending)"
check_rc "recover after the stop" 0 x recover tvm -q
check_eq "list --output=json: no journal pending after recover" False "$(pending)"
check_eq "recover removed the lock file" no "$([[ -e $LOCK ]] && echo yes || echo no)"

# Two writers at once, the winner having opened the file without creating it
# (the other locker made it): the winner holds the lock, paused at its first
# traced step on a FIFO, while the second is refused; neither leaves the file.
: >"$LOCK"
mkfifo "$T/pause"
# SIGPIPE ignored: a trace reader that goes away mid-line (the readers below
# come and go) must cost the winner a trace line, not its life.
(trap '' PIPE; EXTSNAP_FAULT_TRACE=$T/pause exec "$EXTSNAP" create tvm s3 -q --root "$R") \
    >"$T/win.out" 2>&1 &
wpid=$!
# Read its trace lines up to its first change (made under the lock), then
# stop reading: its next traced step blocks.
timeout 60 python3 -c 'import sys
while True:
    with open(sys.argv[1]) as f:
        if "mutate " in f.read():
            break' "$T/pause" || fail "the first writer never reached a change"
grep -Eq "FLOCK +ADVISORY +WRITE +$wpid " /proc/locks || fail "the first writer holds no lock"
rc=0
x create tvm s4 -q 2>"$T/err" || rc=$?
check_eq "the second writer is refused" 1 "$rc"
grep -q "another extsnap is working on domain tvm (pid $wpid)" "$T/err" ||
    fail "second writer: $(cat "$T/err")"
# Let the winner go on: read its trace lines until it exits.
while kill -0 "$wpid" 2>/dev/null; do timeout 1 cat "$T/pause" >/dev/null || true; done
wrc=0
wait "$wpid" || wrc=$?
((wrc == 0)) || fail "the first writer failed (exit $wrc): $(cat "$T/win.out")"
check_eq "no lock file after two writers" no "$([[ -e $LOCK ]] && echo yes || echo no)"

# --- the pending directory ---------------------------------------------------
# Under libvirtd, extsnap leaves libvirt's files alone and writes what they
# should become to <dom>.extsnap-pending/ with the virsh commands that load
# them. Once libvirt's files say what the pending files say (the commands
# ran), the next command removes the directory; while they do not, it stays.
PEND=$R$SNAP_DIR/tvm.extsnap-pending
mkdir -p "$PEND"
cp "$R$SNAP_CFG/tvm.xml" "$PEND/tvm.xml"
cp "$R$SNAP_DIR/tvm/s1.xml" "$PEND/s1.xml"
# (libvirt rewrites its files: its own header comment, as a define would)
sed -i '1,/^-->$/s/virsh edit tvm/virsh edit tvm /' "$R$SNAP_CFG/tvm.xml"
sed -i 's|<description>third</description>|<description>not yet</description>|' "$PEND/s1.xml"
echo '<description>not yet</description>' >>"$PEND/s1.xml"
check_rc "create with a pending directory not yet applied" 0 x create tvm p1 -q
check_eq "a pending directory not yet applied stays" "s1.xml tvm.xml" \
    "$(find "$PEND" -mindepth 1 -printf '%f\n' | sort | tr '\n' ' ' | sed 's/ $//')"
x delete tvm p1 -q
cp "$R$SNAP_CFG/tvm.xml" "$PEND/tvm.xml"
cp "$R$SNAP_DIR/tvm/s1.xml" "$PEND/s1.xml"
check_rc "list with an applied pending directory (a reader)" 0 x list tvm
check_eq "a reader leaves it" yes "$([[ -d $PEND ]] && echo yes || echo no)"
check_rc "create with an applied pending directory" 0 x create tvm p2 -q
check_eq "an applied pending directory is gone after the next writer" no \
    "$([[ -e $PEND ]] && echo yes || echo no)"

# --- verify on a disk source that is no file -------------------------------
R=$T/root2
snap_make_tvm "$R"
skip_cdev=0
for kind in fifo cdev; do
    rm -f "$R$SNAP_IMG/vdc.raw"
    if [[ $kind == fifo ]]; then
        mkfifo "$R$SNAP_IMG/vdc.raw"
        want="is a fifo, not an image file"
    else
        # (making a character device needs CAP_MKNOD: without it, the script
        # ends as skipped once the other checks ran)
        mknod "$R$SNAP_IMG/vdc.raw" c 1 3 2>/dev/null || { skip_cdev=1; continue; }
        want="is a character device, not an image file"
    fi
    rc=0
    out=$(timeout 60 "$EXTSNAP" verify tvm --root "$R" 2>&1) || rc=$?
    check_eq "verify with a $kind as vdc's source: exit status (2: problems found)" 2 "$rc"
    if ! grep -qF "vdc.raw" <<<"$out" || ! grep -qF "$want" <<<"$out"; then
        fail "verify with a $kind as vdc's source does not say '$want': $out"
    fi
    grep -qF ': ?' <<<"$out" && fail "verify with a $kind: a '?' for a reason: $out"
done

if ((skip_cdev && ES_FAILS == 0)); then
    echo "SKIP: cannot make a character device (mknod) to verify on" >&2
    exit 77
fi
finish
