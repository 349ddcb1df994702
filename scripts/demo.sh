#!/usr/bin/env bash
# A short demo of extsnap on the bundled sample VM (tests/fixtures/sample-vm),
# in a temporary directory used as the host's root (--root), as in a rescue
# shell: no libvirtd, no QEMU process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build=${EXTSNAP_BUILD_DIR:-build}
bash scripts/build.sh "$build" >/dev/null
X=$PWD/$build/extsnap
R=$(mktemp -d /tmp/extsnap-demo.XXXXXX)
trap 'rm -rf "$R"' EXIT
IMG=/var/lib/libvirt/images/demo

# run extsnap ARGS: show the command, then run it with --root.
run() {
    printf '\n$ extsnap %s --root %s\n' "$*" "$R"
    "$X" "$@" --root "$R"
}
# guest_write FILE PATTERN: the guest writes 64 KiB at offset 0 of a disk's
# top image (a whole cluster, so its backing file need not be opened).
guest_write() {
    printf '\n# the guest writes 0x%s to %s\n' "${2#0x}" "$1"
    qemu-io -c "write -P $2 0 64k" \
        "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$R$1\"},\"backing\":null}" \
        >/dev/null
}

echo "extsnap demo: host root in $R"
mkdir -p "$R/etc/libvirt/qemu" "$R/var/lib/libvirt/qemu/snapshot" "$R/run/libvirt/qemu" "$R$IMG"
install -m 600 tests/fixtures/sample-vm/demo.xml "$R/etc/libvirt/qemu/demo.xml"
printf '\n$ extsnap img create -f qcow2 $R%s/vda.qcow2 64M (and vdb.raw, install.iso)\n' "$IMG"
"$X" img create -f qcow2 "$R$IMG/vda.qcow2" 64M
"$X" img create -f raw "$R$IMG/vdb.raw" 32M
"$X" img create -f raw "$R$IMG/install.iso" 1M
qemu-io -f qcow2 -c 'write -P 0x01 0 64k' "$R$IMG/vda.qcow2" >/dev/null  # the installed system

run disks demo
run create demo s1 --description "fresh install"
guest_write $IMG/vda.s1 0x11
run create demo s2
guest_write $IMG/vda.s2 0x22
run list demo --tree
run disks demo --chain
run revert demo s1 --dry-run
run revert demo s1 -q   # the same plan, carried out
run list demo
printf '\n# vda now reads what it held at s1:\n'
qemu-img compare -U "$R$IMG/vda.qcow2" \
    "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$R$("$X" disks demo --root "$R" --output=json | jq -r '.disks[0].source')\"},\"backing\":{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$R$IMG/vda.qcow2\"}}}"

run delete demo s2          # a leaf the VM has left: its files go, nothing to merge
run create demo s3
guest_write $IMG/vda.s3 0x33
run delete demo s3 --dry-run
run delete demo s3 -q       # the current snapshot: its overlay is merged down
run list demo --tree
run verify demo             # what a CI pipeline runs: exit 0 when every chain and file is sound
