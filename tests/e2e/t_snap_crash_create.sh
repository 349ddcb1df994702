#!/usr/bin/env bash
# Crash consistency of 'create': stopped at every file-system change (and
# past the last one), an I/O error at every third, then 'recover' (or, after
# every fifth stop, the next command, which recovers first); and 'recover'
# itself stopped at every one of its changes while it rolls back a create
# stopped half-way. The domain must be wholly before or wholly after the
# snapshot: config, snapshot files, the files under the root, the guest
# content of every disk live and at every snapshot; every image passes
# qemu-img check, verify is clean, nothing temporary is left. See
# lib/crash_sweep.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/crash_sweep.sh"
need_cmd qemu-img qemu-io xmllint

crash_base "$T/base"
SWEEP_NEXT="delete tvm no-such-snapshot" sweep_case "$T/base" tvm "create s3" create tvm s3 --description "third"
# Stopped before its commit point (the config not yet switched): recover rolls back.
k=$(awk '$1 == "mutate" && $4 ~ /etc\/libvirt\/qemu/ { print $2; exit }' "$T/trace.create s3")
sweep_recover "$T/base" tvm "create s3 stopped at $k" "$k" create tvm s3
finish
