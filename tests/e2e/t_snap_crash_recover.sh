#!/usr/bin/env bash
# Crash consistency of 'recover' itself: a delete stopped in its merge (past
# the point of no return) leaves a journal; recover, which goes forward, is
# stopped at every one of its file-system changes (and past the last one),
# then recover runs again: the domain must be wholly before or wholly after
# the delete, every image passes qemu-img check, verify is clean. (Recover
# rolling a create back and finishing a revert: t_snap_crash_create.sh,
# t_snap_crash_revert.sh.) See lib/crash_sweep.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/crash_sweep.sh"
need_cmd qemu-img qemu-io xmllint

faults_base "$T/base"
W=$T/w
cp -a "$T/base" "$W"
EXTSNAP_FAULT_TRACE=$T/trace "$EXTSNAP" delete tvm s2 --root "$W" -q || fail "the traced delete failed"
k=$(awk '$1 == "mutate" && $3 == "pwrite" && $4 ~ /images/ { print $2; exit }' "$T/trace")
[[ -n $k ]] || fail "the delete's trace shows no merge write"
sweep_recover "$T/base" tvm "delete s2 stopped at $k (its first merge write)" "$k" delete tvm s2
finish
