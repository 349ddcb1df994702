#!/usr/bin/env bash
# Crash consistency of the VM-state steps (issue 14 part 2; lib/crash_sweep.sh):
# create saving the NVRAM and vTPM copies, revert putting them back, delete
# removing them, each stopped where those steps write a file or make a name
# appear or go (I/O errors at a few), then 'recover' (or the next command);
# and 'recover' itself stopped at each such point while it finishes a
# revert stopped after its commit point, at the TPM directory's rename. The
# domain must be wholly before or wholly after: besides what crash_sweep.sh
# compares, the live NVRAM's and TPM state's contents, modes and extended
# attributes, and every saved copy (sweep_state_extra). The other points of
# these commands (overlays, XML, journal) are swept by the other
# t_snap_crash_*.sh; a one-disk domain keeps this quick.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/crash_sweep.sh"
need_cmd qemu-img qemu-io xmllint python3

NV=/var/lib/libvirt/qemu/nvram/tvm_VARS.fd
TPMDIR=/var/lib/libvirt/swtpm/6b1f7f4e-2f0c-4c43-9a55-3c1d2f6b9a10

# tar_sum DIR NAME: NAME in DIR (a tree or a file) with names, kinds, modes,
# owners, user.* attributes and contents, times left out, hashed.
tar_sum() {
    tar --xattrs --xattrs-include='user.*' --mtime=@0 --sort=name --numeric-owner \
        --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
        -cf - -C "$1" "$2" | sha256sum | cut -c1-16
}
sweep_state_extra() {
    local w=$1 f
    echo "nvram: $(tar_sum "$w$(dirname "$NV")" "$(basename "$NV")")"
    echo "tpm: $(tar_sum "$w$(dirname "$TPMDIR")" "$(basename "$TPMDIR")")"
    for f in "$w$SNAP_IMG"/*.nvram "$w$SNAP_IMG"/*.tpm; do
        [[ -e $f ]] && echo "copy $(basename "$f"): $(tar_sum "$(dirname "$f")" "$(basename "$f")")"
    done
    ls -A "$w$(dirname "$TPMDIR")" "$w$(dirname "$NV")"
    return 0
}
nvram_write() { # ROOT TEXT: the NVRAM and the TPM state change
    printf '%s' "$2" | dd of="$1$NV" bs=1 seek=100 conv=notrunc status=none
    printf '%s' "$2" | dd of="$1$TPMDIR/tpm2/tpm2-00.permall" bs=1 seek=10 conv=notrunc status=none
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
s = s.replace("    <controller type='sata'", "    <tpm model='tpm-crb'>\n      <backend type='emulator' version='2.0'/>\n    </tpm>\n    <controller type='sata'", 1)
open(p, "w").write(s)
PY
rm -f "$B$SNAP_IMG/vdb.qcow2" "$B$SNAP_IMG/vdc.raw"
mkdir -p "$(dirname "$B$NV")"
head -c 131072 /dev/zero | tr '\0' 'N' >"$B$NV"
chmod 600 "$B$NV"
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.label", b"vars")' "$B$NV"
mkdir -p "$B$TPMDIR/tpm2"
head -c 4096 /dev/zero | tr '\0' 'T' >"$B$TPMDIR/tpm2/tpm2-00.permall"
chmod 600 "$B$TPMDIR/tpm2/tpm2-00.permall"
chmod 711 "$B$TPMDIR"
x create tvm s1 -q
guest_write "$B" tvm vda 0x11 0 64k
nvram_write "$B" "after s1"
x create tvm s2 -q
guest_write "$B" tvm vda 0x22 64k 64k
nvram_write "$B" "after s2"
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.label", b"later")' "$B$NV"
chmod 640 "$B$NV"
echo volatile >"$B$TPMDIR/tpm2/tpm2-00.volatilestate"

# The VM-state steps' points where a file is written or a name appears or
# goes (within 40 s: every point of these steps takes twice as long).
SWEEP_MATCH='^((create|rename) .*(nvram|tpm)|(copy_file_range|clone) .*tpm)' \
    SWEEP_EIO_MATCH='^(copy_file_range|clone) .*tpm' SWEEP_NEXT="delete tvm no-such-snapshot" \
    sweep_case "$B" tvm "create s3" create tvm s3
SWEEP_MATCH='^(rename|rmdir) .*(nvram|tpm)' sweep_case "$B" tvm "revert s1" revert tvm s1
SWEEP_MATCH='^(unlink .*nvram|rmdir .*tpm)$' SWEEP_EIO_MATCH='^rmdir .*tpm$' \
    sweep_case "$B" tvm "delete s2" delete tvm s2
# A revert stopped after its commit point, with the TPM state moved aside
# and its copy not yet in place: recover finishes it, however often it is
# itself stopped.
k=$(awk '$1 == "mutate" && $3 == "rename" && $4 ~ /swtpm\/[0-9a-f-]*$/ { print $2; exit }' "$T/trace.revert s1")
[[ -n $k ]] || fail "revert s1: no rename of the TPM state traced"
SWEEP_MATCH='^(rename|rmdir) .*tpm' sweep_recover "$B" tvm "revert s1 stopped at $k" "$k" revert tvm s1
finish
