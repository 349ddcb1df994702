#!/usr/bin/env bash
# Crash consistency of commit (two snapshots merged at once): the sweep of
# t_snap_faults.sh (every mutate point and past the last one, then recover
# or the next command; before-or-after, qemu-img check, verify).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/crash_sweep.sh"
need_cmd qemu-img qemu-io xmllint

faults_base "$T/base"
NEXT="delete tvm no-such-snapshot"
L="commit s1 s3 (two snapshots at once)"
SWEEP_NEXT=$NEXT sweep_case "$T/base" tvm "$L" commit tvm s1 s3
grep -q '^mutate .* pwrite .*/vd[abc]\.s1$' "$T/trace.$L" || fail "$L: the trace shows no merge writes"
finish
