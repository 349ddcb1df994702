#!/usr/bin/env bash
# Crash consistency of 'create': a fault at every file-changing step (stop,
# as a power cut; eio, a failed write), then recovery; the domain must be
# wholly before or wholly after the snapshot (config, metadata, image files,
# guest content), with clean images and nothing temporary left. See
# crash_case in lib/snap.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io virt-xml-validate xmllint jq

crash_base "$T/base"
crash_case "$T/base" "create s3" create tvm s3 --description "third"
finish
