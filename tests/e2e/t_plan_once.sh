#!/usr/bin/env bash
# -v prints the plan once (issue #13): before the work, on stdout under
# "Plan:", then "Done:" with the plan's summary and no second listing. For
# every domain command that runs a plan (setup, create, revert, refresh,
# commit, delete; and create, commit, delete on a running VM through QMP):
# the listing a -v run prints, stdout and stderr together, is the listing a
# run without -v prints on a copy of the same root (overlay names made of
# the time and QEMU's node names are normalized), "Plan:" comes once and first, "Done:" last with
# the same summary. With --output=json, -v leaves stdout one JSON document.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io jq

# listing FILE...: the plan's lines (indented), names made of the time and
# QEMU's automatic node names normalized.
listing() { cat "$@" | grep '^  ' | sed -E 's/\.[0-9]{6,}/.TIME/g; s/#block[0-9]+/#blockN/g' || true; }

# once ARGS...: the checks above for `extsnap ARGS` on root $R (run last on
# $R, so that the caller's sequence goes on from its result).
once() {
    local what="$*" plain verbose summary
    rm -rf "$T/copy" && cp -a "$R" "$T/copy"
    R=$T/copy x "$@" >"$T/plain.out" 2>"$T/plain.err" || fail "$what: exit $? ($(cat "$T/plain.err"))"
    x "$@" -v >"$T/v.out" 2>"$T/v.err" || fail "$what -v: exit $? ($(cat "$T/v.err"))"
    plain=$(listing "$T/plain.out" "$T/plain.err")
    verbose=$(listing "$T/v.out" "$T/v.err")
    [[ -n $plain ]] || fail "$what: no plan listed without -v: $(cat "$T/plain.out")"
    check_eq "$what -v: the plan's lines (stdout and stderr), printed once" "$plain" "$verbose"
    check_eq "$what -v: 'Plan:' lines on stdout" 1 "$(grep -c '^Plan: ' "$T/v.out" || true)"
    check_eq "$what -v: first line" "Plan:" "$(head -n1 "$T/v.out" | cut -d' ' -f1)"
    summary=$(head -n1 "$T/v.out" | cut -d' ' -f2-)
    check_eq "$what -v: last line" "Done: $summary" "$(tail -n1 "$T/v.out")"
    check_eq "$what -v: stderr" "" "$(cat "$T/v.err")"
}

R=$T/root
snap_make_tvm "$R"
mkdir -p "$R/srv"
once setup tvm /srv
once create tvm s1
guest_write "$R" tvm vda 0x11 0 64k
once create tvm s2
guest_write "$R" tvm vda 0x22 64k 64k
x create tvm s3 -q
once revert tvm s1
once refresh tvm
x create tvm s4 -q
once commit tvm s1 s4
once delete tvm s3

# --output=json: -v adds nothing to stdout.
x create tvm s5 -q
x delete tvm s5 -v --output=json >"$T/j.out" 2>"$T/j.err" || fail "delete -v --output=json: $(cat "$T/j.err")"
check_eq "delete -v --output=json: JSON documents on stdout" 1 "$(jq -s length "$T/j.out" 2>&1)"
check_eq "delete -v --output=json: stderr" "" "$(cat "$T/j.err")"

# ---------------------------------------------------------------- a running VM
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
need_cmd qemu-system-x86_64
. "$(dirname "${BASH_SOURCE[0]}")/lib/online_domain.sh"
trap 'vm_kill; rm -rf "$T"' EXIT
write_config ovm vda vdb
for d in vda vdb; do
    qemu-img create -q -f qcow2 "$IMG/ovm-$d.qcow2" 8M
    qemu-img create -q -f raw "$T/expect-$d.raw" 8M
done
X create ovm s1 -q
off_write vda 0x21 1M 1M
X create ovm s2 -q
# online_once ARGS...: as once, the VM running; the run without -v goes
# first, on the same files (the state is saved and put back between).
online_once() {
    local what="online $*" plain verbose summary
    save_state
    start_vm
    X "$@" >"$T/plain.out" 2>"$T/plain.err" || fail "$what: exit $? ($(cat "$T/plain.err"))"
    stop_vm
    restore_state
    start_vm
    X "$@" -v >"$T/v.out" 2>"$T/v.err" || fail "$what -v: exit $? ($(cat "$T/v.err"))"
    stop_vm
    plain=$(listing "$T/plain.out" "$T/plain.err")
    verbose=$(listing "$T/v.out" "$T/v.err")
    grep -q '^Through QEMU' "$T/plain.out" || fail "$what: not run through QEMU: $(head -3 "$T/plain.out")"
    check_eq "$what -v: the plan's lines (stdout and stderr), printed once" "$plain" "$verbose"
    check_eq "$what -v: 'Plan:' lines on stdout" 1 "$(grep -c '^Plan: ' "$T/v.out" || true)"
    check_eq "$what -v: first line" "Plan:" "$(head -n1 "$T/v.out" | cut -d' ' -f1)"
    summary=$(head -n1 "$T/v.out" | cut -d' ' -f2-)
    check_eq "$what -v: 'Done:' line" "Done: $summary" "$(grep '^Done' "$T/v.out")"
}
online_once create ovm s3
online_once commit ovm s1 s2
online_once delete ovm s3
finish
