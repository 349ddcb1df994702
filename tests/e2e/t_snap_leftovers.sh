#!/usr/bin/env bash
# Files extsnap keeps for itself must not outlive their use (issue #10,
# "Leftovers"): the domain lock file <dom>.extsnap.lock left by a crash or by
# a locker that did not create it is removed by the next command that
# changes the domain; verify names a fifo or character-device disk source
# plainly.
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
x delete tvm s2 -q
rm -f "$T/trace"
rc=0
EXTSNAP_FAULT=mutate:$max:stop x create tvm s2 -q 2>/dev/null || rc=$?
check_eq "stop at the last mutate point" 86 "$rc"
check_eq "the stop left the lock file (the last point removes it)" yes \
    "$([[ -e $LOCK ]] && echo yes || echo no)"
check_rc "recover after the stop" 0 x recover tvm -q
check_eq "recover removed the lock file" no "$([[ -e $LOCK ]] && echo yes || echo no)"

# Two writers at once, the winner having opened the file without creating it
# (the other locker made it): the winner holds the lock, paused at its first
# traced step on a FIFO, while the second is refused; neither leaves the file.
: >"$LOCK"
mkfifo "$T/pause"
EXTSNAP_FAULT_TRACE=$T/pause "$EXTSNAP" create tvm s3 -q --root "$R" >"$T/win.out" 2>&1 &
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
wait "$wpid" || fail "the first writer failed: $(cat "$T/win.out")"
check_eq "no lock file after two writers" no "$([[ -e $LOCK ]] && echo yes || echo no)"

finish
