#!/usr/bin/env bash
# The static binary for rescue media (scripts/build-static.sh) works alone:
# no dynamic section, no NSS, and inside an empty chroot that holds only the
# binary and the test's files it runs img info/check/commit and the domain
# commands create/list/delete/verify on the sample VM under --root.
# Oracles: qemu-img (info, check, compare) and qemu-io, run outside the chroot.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img qemu-io readelf chroot

src=${ES_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
# Built once per build tree (the ICU-free libxml2 takes a minute), reused after.
sb=${ES_STATIC_BUILD:-$(dirname "${ES_TEST_TMP:-/tmp/x}")/static}
if ! bash "$src/scripts/build-static.sh" "$sb" >"$T/build.log" 2>&1; then
    tail -n 30 "$T/build.log" >&2
    fail "scripts/build-static.sh failed"
    finish
fi
X=$sb/extsnap

# One executable, nothing to load at run time.
ES_CHECKS=$((ES_CHECKS + 1))
readelf -lW "$X" | grep -q 'Requesting program interpreter' && fail "static binary asks for an interpreter"
ES_CHECKS=$((ES_CHECKS + 1))
readelf -dW "$X" | grep -q 'NEEDED' && fail "static binary needs shared libraries: $(readelf -dW "$X" | grep NEEDED)"
ES_CHECKS=$((ES_CHECKS + 1))
grep -aq 'libnss_' "$X" && fail "static binary carries NSS look-ups (user/group names)"
size=$(stat -c %s "$X")
echo "static binary: $size bytes"
ES_CHECKS=$((ES_CHECKS + 1))
((size <= 10 * 1024 * 1024)) || fail "static binary is $size bytes, over 10 MiB"

# The chroot: the binary and the files, nothing else (no /proc, /dev, /etc, libs).
C=$T/chroot
mkdir -p "$C/img"
cp "$X" "$C/extsnap"
in_chroot() { chroot "$C" /extsnap "$@"; }

# img info / check / commit on a two-image chain made by qemu-img.
qemu-img create -q -f qcow2 "$C/img/base.qcow2" 64M
qemu-io -f qcow2 -c 'write -P 0x11 0 1M' "$C/img/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$C/img/top.qcow2"
qemu-io -f qcow2 -c 'write -P 0x22 512k 1M' "$C/img/top.qcow2" >/dev/null

vs=$(in_chroot img info --output=json /img/top.qcow2 | jq -r '.["virtual-size"]')
ok_eq "img info virtual-size in the chroot" "$(qemu-img info --output=json "$C/img/top.qcow2" | jq -r '.["virtual-size"]')" "$vs"
bf=$(in_chroot img info --output=json /img/top.qcow2 | jq -r '.["backing-filename"]')
ok_eq "img info backing-filename in the chroot" "base.qcow2" "$bf"
ok_rc "img check in the chroot" 0 in_chroot img check /img/top.qcow2 >/dev/null

cp "$C/img/base.qcow2" "$T/base.orig"; cp "$C/img/top.qcow2" "$T/top.orig"
qemu-img rebase -u -q -F qcow2 -b "$T/base.orig" "$T/top.orig"
ok_rc "img commit in the chroot" 0 in_chroot img commit -q /img/top.qcow2
ok_rc "committed base equals the chain before (qemu-img compare)" 0 \
    qemu-img compare -q "$C/img/base.qcow2" "$T/top.orig"
ok_rc "committed base checks clean (qemu-img check)" 0 qemu-img check -q "$C/img/base.qcow2"

# The sample VM under --root, inside the chroot.
R=/root-of-host
IMG=/var/lib/libvirt/images/demo
mkdir -p "$C$R/etc/libvirt/qemu" "$C$R/var/lib/libvirt/qemu/snapshot" "$C$R/run/libvirt/qemu" "$C$R$IMG"
install -m 600 "$src/tests/fixtures/sample-vm/demo.xml" "$C$R/etc/libvirt/qemu/demo.xml"
qemu-img create -q -f qcow2 "$C$R$IMG/vda.qcow2" 64M
qemu-img create -q -f raw "$C$R$IMG/vdb.raw" 32M
qemu-img create -q -f raw "$C$R$IMG/install.iso" 1M
qemu-io -f qcow2 -c 'write -P 0x01 0 64k' "$C$R$IMG/vda.qcow2" >/dev/null

ok_rc "create in the chroot" 0 in_chroot create demo s1 --root "$R" -q
ES_CHECKS=$((ES_CHECKS + 1))
[[ -f "$C$R$IMG/vda.s1" ]] || fail "create made no overlay vda.s1"
[[ -f "$C$R/var/lib/libvirt/qemu/snapshot/demo/s1.xml" ]] || fail "create wrote no snapshot metadata"
# The guest's write, a whole cluster, so the host-path backing name need not be opened.
qemu-io -c 'write -P 0x33 64k 64k' \
    "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$C$R$IMG/vda.s1\"},\"backing\":null}" >/dev/null
ok_eq "list in the chroot names s1" "s1" \
    "$(in_chroot list demo --root "$R" --output=json | jq -r '.snapshots[].name')"
ok_rc "delete in the chroot" 0 in_chroot delete demo s1 --root "$R" -q
ES_CHECKS=$((ES_CHECKS + 1))
[[ ! -e "$C$R$IMG/vda.s1" ]] || fail "delete left the overlay"
ok_eq "guest data merged into vda.qcow2" "" \
    "$(qemu-io -f qcow2 -c 'read -P 0x33 64k 64k' "$C$R$IMG/vda.qcow2" | grep -i 'pattern verification failed' || true)"
ok_rc "verify in the chroot" 0 in_chroot verify demo --root "$R" -q
ok_rc "vda.qcow2 checks clean (qemu-img check)" 0 qemu-img check -q "$C$R$IMG/vda.qcow2"

finish
