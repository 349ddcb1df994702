#!/usr/bin/env bash
# Crash consistency of 'refresh' (the current snapshot's overlays replaced by
# empty ones): stopped at every file-system change (and past the last one),
# an I/O error at every third, then 'recover' (or the next command). The
# domain must be wholly before or wholly after the refresh, with clean images
# and a clean verify. See lib/crash_sweep.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/crash_sweep.sh"
need_cmd qemu-img qemu-io xmllint

crash_base "$T/base"
SWEEP_NEXT="delete tvm no-such-snapshot" sweep_case "$T/base" tvm "refresh" refresh tvm
finish
