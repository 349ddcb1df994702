#!/usr/bin/env bash
# delete and commit refuse in planning, before anything is written, when an
# image the plan writes, repoints or deletes is in use elsewhere (issue #10,
# §1 first bullet). Chain s1 -> s2 -> s3 of lib/snap.sh's stopped domain tvm:
#  A. another process (a read-only qemu-system-x86_64 -machine none, the
#     way a second VM or a backup job opens an image) holds QEMU's locks on
#     vda's BASE image (merged into), then on vda.s2 (repointed), then on
#     vda.s1 (merged and deleted): 'delete tvm s1' and 'commit tvm s1 s3'
#     are refused naming the process (pid and command line) and the file;
#     every file under the root is unchanged (sha256, modes, sizes), no
#     journal is left, and while the holder still runs 'create' and
#     'revert' work (nothing half-done blocks them);
#  B. once the holder is gone the same delete goes through;
#  C. another domain (same config dir) whose disk uses the image the plan
#     repoints: refused naming that domain, nothing changed.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap_ops.sh"
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v qemu-img >/dev/null ||
    ! command -v qemu-io >/dev/null; then
    echo "SKIP: qemu-system-x86_64, qemu-img and qemu-io are the oracles of this test"
    exit 77
fi
need_cmd xmllint virt-xml-validate timeout
export TZ=UTC

HOLDER=
HOLDER_WRAP=
stop_holder() {
    [[ -n $HOLDER_WRAP ]] || return 0
    kill "$HOLDER_WRAP" 2>/dev/null || true
    wait "$HOLDER_WRAP" 2>/dev/null || true
    HOLDER_WRAP= HOLDER=
}
trap 'stop_holder; rm -rf "$T"' EXIT

# holder FILE: a read-only QEMU on FILE alone (no backing chain); HOLDER is
# its pid once its locks are in place.
holder() {
    local f=$1 i
    rm -f "$T/holder.pid"
    timeout -s KILL 300 qemu-system-x86_64 -machine none -nodefaults -display none \
        -pidfile "$T/holder.pid" \
        -blockdev "{\"driver\":\"qcow2\",\"node-name\":\"h\",\"read-only\":true,\"backing\":null,\"file\":{\"driver\":\"file\",\"filename\":\"$f\"}}" \
        >"$T/holder.log" 2>&1 &
    HOLDER_WRAP=$!
    for i in $(seq 300); do
        if [[ -s $T/holder.pid ]]; then
            HOLDER=$(cat "$T/holder.pid")
            # QEMU writes its pid file before it opens the image: wait for
            # the locks on that file (lslocks-free: /proc/locks by inode).
            local ino
            ino=$(stat -c %i "$f")
            if grep -q ":$ino " /proc/locks; then
                return 0
            fi
        fi
        kill -0 "$HOLDER_WRAP" 2>/dev/null || break
        sleep 0.1
    done
    echo "ERROR: QEMU did not open $f: $(cat "$T/holder.log")" >&2
    exit 1
}

# refused WHAT PATTERN... -- CMD...: CMD exits 1, stderr has every PATTERN,
# and nothing under the root changed.
refused() {
    local what=$1 rc=0 before after
    shift
    local pats=()
    while [[ $1 != -- ]]; do pats+=("$1"); shift; done
    shift
    before=$(root_sums "$R")
    "$@" >"$T/out" 2>"$T/err" || rc=$?
    check_eq "$what: exit status ($(head -c 300 "$T/err"))" 1 "$rc"
    local p
    for p in "${pats[@]}"; do
        ES_CHECKS=$((ES_CHECKS + 1))
        grep -qF -- "$p" "$T/err" || fail "$what: stderr lacks [$p]: $(head -c 400 "$T/err")"
    done
    after=$(root_sums "$R")
    check_eq "$what: every file under the root unchanged" "$before" "$after"
    check_eq "$what: no journal left" "" "$(ls -a "$R$SNAP_DIR/tvm" | grep -i journal || true)"
}

R=$T/r
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
x create tvm s1 -q
guest_write "$R" tvm vda 0x11 0 64k
x create tvm s2 -q
guest_write "$R" tvm vda 0x21 64k 64k
x create tvm s3 -q
LIVE=$(all_guest_sums "$R" tvm)

# --- A: a process holds an image the plan changes ----------------------------
# delete s1 merges vda.s1 into vda.qcow2, repoints vda.s2, deletes vda.s1;
# commit s1 s3 merges vda.s3 and vda.s2 into vda.s1, deletes both.
declare -A CMDS=([vda.qcow2]="delete" [vda.s1]="delete commit" [vda.s2]="delete commit")
for held in vda.qcow2 vda.s1 vda.s2; do
    holder "$IMG/$held"
    for cmd in ${CMDS[$held]}; do
        if [[ $cmd == delete ]]; then
            args=(delete tvm s1) what="delete snapshot s1"
        else
            args=(commit tvm s1 s3) what="commit domain tvm"
        fi
        refused "A: ${args[*]} while a QEMU holds $held" \
            "$IMG/$held" "process $HOLDER (qemu-system-x86_64" "$what" -- x "${args[@]}"
        refused "A: ${args[*]} --dry-run while a QEMU holds $held" \
            "process $HOLDER (qemu-system-x86_64" -- x "${args[@]}" --dry-run
    done
    if [[ $held == vda.qcow2 ]]; then
        # Nothing is half-done: operations that do not touch the held file work.
        check_rc "A: create s4 while the holder runs" 0 x create tvm s4 -q
        check_rc "A: revert to s3 while the holder runs" 0 x revert tvm s3 -q
        check_rc "A: delete s4 (a leaf left behind) while the holder runs" 0 x delete tvm s4 -q
        check_eq "A: live content after create/revert" "$LIVE" "$(all_guest_sums "$R" tvm)"
    fi
    stop_holder
done
full_check "A: after the refusals" tvm 1

# --- B: the holder gone, the delete goes through -------------------------------
check_rc "B: delete s1" 0 x delete tvm s1 -q
full_check "B: delete s1" tvm 1
check_eq "B: live content kept" "$LIVE" "$(all_guest_sums "$R" tvm)"

# --- C: another domain uses the image the plan repoints ------------------------
sed -e 's/<name>tvm</<name>other</' -e 's/6b1f7f4e-2f0c/6b1f7f4e-2f0d/' \
    -e "s|$SNAP_IMG/vda.qcow2|$SNAP_IMG/vda.s2|" "$R$SNAP_CFG/tvm.xml" >"$R$SNAP_CFG/other.xml"
refused "C: delete s2 while domain other uses vda.s2" "domain other" -- x delete tvm s2
finish
