#!/usr/bin/env bash
# Crash consistency of the NVRAM steps (issue 14 part 2; lib/crash_sweep.sh):
# create saving the NVRAM copy, revert putting it back, delete removing it,
# each stopped at every file-system change (and an I/O error at every third),
# then 'recover' (or the next command); and 'recover' itself stopped at
# every one of its changes while it finishes a revert stopped after its
# commit point, before the NVRAM was put back. The domain must be wholly
# before or wholly after: besides what crash_sweep.sh compares, the live
# NVRAM's contents, mode and extended attribute, and every saved copy's
# contents (sweep_state_extra). A one-disk domain keeps it quick.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/crash_sweep.sh"
need_cmd qemu-img qemu-io xmllint python3

NV=/var/lib/libvirt/qemu/nvram/tvm_VARS.fd

sweep_state_extra() {
    local w=$1 f
    echo "nvram: $(sha256sum <"$w$NV" | cut -c1-16) $(stat -c '%a' "$w$NV")" \
        "$(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.label").decode())' "$w$NV" 2>/dev/null || echo none)"
    for f in "$w$SNAP_IMG"/*.nvram; do
        [[ -e $f ]] && echo "copy $(basename "$f"): $(sha256sum <"$f" | cut -c1-16) $(stat -c '%a' "$f")"
    done
    return 0
}
nvram_write() { # ROOT TEXT
    printf '%s' "$2" | dd of="$1$NV" bs=1 seek=100 conv=notrunc status=none
}

# B: tvm with vda only and an NVRAM; s1, writes, s2, writes.
B=$T/base R=$T/base
snap_make_tvm "$B"
python3 - "$B$SNAP_CFG/tvm.xml" "$NV" <<'PY'
import re, sys
p, nv = sys.argv[1], sys.argv[2]
s = open(p).read()
s = re.sub(r"    <disk type='file' device='disk'>\n(?:(?!</disk>).)*?<target dev='vd[bc]'.*?</disk>\n", "", s, flags=re.S)
s = s.replace("    <boot dev='hd'/>", "    <nvram>%s</nvram>\n    <boot dev='hd'/>" % nv)
open(p, "w").write(s)
PY
rm -f "$B$SNAP_IMG/vdb.qcow2" "$B$SNAP_IMG/vdc.raw"
mkdir -p "$(dirname "$B$NV")"
head -c 131072 /dev/zero | tr '\0' 'N' >"$B$NV"
chmod 600 "$B$NV"
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.label", b"vars")' "$B$NV"
x create tvm s1 -q
guest_write "$B" tvm vda 0x11 0 64k
nvram_write "$B" "after s1"
x create tvm s2 -q
guest_write "$B" tvm vda 0x22 64k 64k
nvram_write "$B" "after s2"
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.label", b"later")' "$B$NV"
chmod 640 "$B$NV"

# Only the NVRAM's own points and their neighbours (t_snap_crash_create.sh
# and the others sweep the rest); an I/O error at the copy's write, rename
# and the removal of a copy.
SWEEP_MATCH='nvram' SWEEP_EIO_MATCH='^(pwrite|copy|rename|unlink) .*nvram' \
    SWEEP_NEXT="delete tvm no-such-snapshot" sweep_case "$B" tvm "create s3" create tvm s3
SWEEP_MATCH='nvram' SWEEP_EIO_MATCH='^rename .*nvram' sweep_case "$B" tvm "revert s1" revert tvm s1
SWEEP_MATCH='nvram' SWEEP_EIO_MATCH='^unlink .*nvram' sweep_case "$B" tvm "delete s2" delete tvm s2
# A revert stopped after its commit point, at the NVRAM's rename: recover
# finishes it, however often it is itself stopped.
k=$(awk '$1 == "mutate" && $3 == "rename" && $4 ~ /nvram\/tvm_VARS/ { print $2; exit }' "$T/trace.revert s1")
[[ -n $k ]] || fail "revert s1: no rename of the NVRAM traced"
sweep_recover "$B" tvm "revert s1 stopped at $k" "$k" revert tvm s1
finish
