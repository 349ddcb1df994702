#!/usr/bin/env bash
# Crash consistency of 'revert' (new overlays, three XML files, discarded
# overlays deleted after the commit point): a fault at every file-changing
# step, then recovery; the domain must be wholly before or wholly after the
# revert. See crash_case in lib/snap.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io virt-xml-validate xmllint jq

crash_base "$T/base"
crash_case "$T/base" "revert s1" revert tvm s1
finish
