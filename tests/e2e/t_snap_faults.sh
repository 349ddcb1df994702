#!/usr/bin/env bash
# Crash consistency of delete (a snapshot with a child: merges, rebases):
# stopped at EVERY file-system change EXTSNAP_FAULT_TRACE lists (journal
# writes, every disk's merge, the rebases, the XML files, the deletes, the
# lock file) and past the last one, an I/O error at every third, on a fresh
# copy of the domain each time; then 'recover' or the next command (which
# must recover first). The domain must be
# wholly before or wholly after: config, metadata, the files under the root,
# the live guest content and the content at every snapshot; every image
# passes qemu-img check (no leak either); 'extsnap verify' exits 0. See
# lib/crash_sweep.sh; t_snap_faults_commit.sh and t_snap_faults_leaf.sh do
# the same for commit and for deleting the current leaf,
# t_snap_crash_recover.sh stops recover itself.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/crash_sweep.sh"
need_cmd qemu-img qemu-io xmllint

faults_base "$T/base"
NEXT="delete tvm no-such-snapshot"
L="delete s2 (non-leaf: merge)"
SWEEP_NEXT=$NEXT sweep_case "$T/base" tvm "$L" delete tvm s2
grep -q '^mutate .* pwrite .*/vd[abc]\.s[12]$' "$T/trace.$L" || fail "$L: the trace shows no merge writes"
finish
