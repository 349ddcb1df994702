#!/usr/bin/env bash
# Crash consistency of 'setup' on one file system (hard links, the config
# switched under a journal, the old names removed): stopped at every
# file-system change (and past the last one), an I/O error at every third;
# then 'recover': the config names either all old or all new images, the
# guest sees the same content, every image passes qemu-img check and verify
# is clean; then 'setup' again completes (it takes over what a stop before
# the switch left): exactly the state of an uninterrupted setup. See
# lib/crash_sweep.sh (t_snap_setup.sh sweeps the copy across file systems).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/crash_sweep.sh"
need_cmd qemu-img qemu-io xmllint

B=$T/base
snap_make_tvm "$B"
mkdir -p "$B/srv/vm"
W=$T/w
cp -a "$B" "$W"
guest_of() { sweep_state "$1" tvm | grep '^live:'; }
before=$(sweep_state "$W" tvm)
before_guest=$(guest_of "$W")
"$EXTSNAP" setup tvm /srv/vm -q --root "$W" --dry-run >/dev/null
EXTSNAP_FAULT_TRACE=$T/trace "$EXTSNAP" setup tvm /srv/vm -q --root "$W" || fail "reference setup failed"
after=$(sweep_state "$W" tvm)
sweep_after_checks "reference setup" "$W" tvm
check_eq "the reference setup keeps the guest content" "$before_guest" "$(guest_of "$W")"
grep -q '^mutate .* link ' "$T/trace" || fail "the trace shows no link"
max=$(grep -c '^mutate ' "$T/trace")
pts=0
t0=$SECONDS
for action in stop eio; do
    for ((n = 1; n <= max + 1; n++)); do
        [[ $action == eio ]] && ((n % 3 != 1 && n != max)) && continue
        ((n <= max)) || [[ $action == stop ]] || continue
        op=$(awk -v n="$n" '$1 == "mutate" && $2 == n { print $3, $4 }' "$T/trace")
        rm -rf "$W" && cp -a "$B" "$W"
        rc=0
        EXTSNAP_FAULT=mutate:$n:$action "$EXTSNAP" setup tvm /srv/vm -q --root "$W" >/dev/null 2>"$T/err" || rc=$?
        if ((n > max)); then
            ((rc == 0)) || fail "setup past the last point: exit $rc"
        elif [[ $action == stop ]]; then
            ((rc == 86)) || fail "setup mutate:$n:stop ($op): exit $rc, not 86"
        elif [[ $op != "unlink "*.extsnap.lock ]]; then
            ((rc == 1)) || fail "setup mutate:$n:eio ($op): exit $rc, not 1 ($(cat "$T/err"))"
        fi
        out=$("$EXTSNAP" recover tvm --root "$W" -q 2>&1) || fail "setup $n:$action ($op): recover failed: $out"
        got=$(sweep_state "$W" tvm)
        check_eq "setup $n:$action ($op): the guest content after recover" "$before_guest" "$(guest_of "$W")"
        [[ $(grep -A200 '^config:' <<<"$got" | sed '/^live:/,$d') == "$(grep -A200 '^config:' <<<"$before" | sed '/^live:/,$d')" ||
           $(grep -A200 '^config:' <<<"$got" | sed '/^live:/,$d') == "$(grep -A200 '^config:' <<<"$after" | sed '/^live:/,$d')" ]] ||
            fail "setup $n:$action ($op): the config is neither before nor after"
        sweep_after_checks "setup $n:$action ($op), recovered" "$W" tvm
        out=$("$EXTSNAP" setup tvm /srv/vm -q --root "$W" 2>&1) || fail "setup $n:$action ($op): setup again failed: $out"
        got=$(sweep_state "$W" tvm)
        ES_CHECKS=$((ES_CHECKS + 1))
        if [[ $got != "$after" ]]; then
            fail "setup $n:$action ($op): setup again does not give the state of an uninterrupted setup"
            diff <(echo "$after") <(echo "$got") | head -8 >&2 || true
        fi
        sweep_after_checks "setup $n:$action ($op), set up again" "$W" tvm
        [[ $action == stop ]] && pts=$((pts + 1))
    done
done
echo "setup: $max mutate points; stopped at all $pts (the last one past them), $((SECONDS - t0)) s"
finish
