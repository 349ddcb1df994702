#!/usr/bin/env bash
# Crash consistency of 'revert' (new overlays, three XML files, discarded
# overlays deleted after the commit point): stopped at every file-system
# change (and past the last one), an I/O error at every third, then
# 'recover' (or the next command); and 'recover' stopped at every one of its
# changes while it finishes a revert stopped past its commit point. The
# domain must be wholly before or wholly after the revert, with clean images
# and a clean verify. See lib/crash_sweep.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/crash_sweep.sh"
need_cmd qemu-img qemu-io xmllint

crash_base "$T/base"
SWEEP_NEXT="delete tvm no-such-snapshot" sweep_case "$T/base" tvm "revert s1" revert tvm s1
# Stopped after its commit point, at the first removal of a discarded overlay:
# recover goes forward.
k=$(awk '$1 == "mutate" && $3 == "unlink" && $4 ~ /images/ { print $2; exit }' "$T/trace.revert s1")
sweep_recover "$T/base" tvm "revert s1 stopped at $k" "$k" revert tvm s1
finish
