#!/usr/bin/env bash
# The VM state besides the disks (issue 14 part 2): a UEFI VM's NVRAM file
# (<os><nvram>) and its vTPM's state (swtpm's directory, libvirt's default
# /var/lib/libvirt/swtpm/UUID) are saved with each snapshot and put back by
# revert and refresh; delete and commit remove the copies of the snapshots they
# remove; verify reports a missing copy; --no-vm-state opts out; a running
# VM, a missing NVRAM file and a file in the copy's way are refused with
# every file left as it was. Every XML written validates (virt-xml-validate).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io xmllint virt-xml-validate python3

R=$T/root
NV=/var/lib/libvirt/qemu/nvram/tvm_VARS.fd
N=$R$NV
I=$R$SNAP_IMG
S=$R$SNAP_DIR/tvm
UUID=6b1f7f4e-2f0c-4c43-9a55-3c1d2f6b9a10 # lib/snap.sh's tvm
TPMDIR=/var/lib/libvirt/swtpm/$UUID
TD=$R$TPMDIR

# vm_nvram R: domain tvm of lib/snap.sh booting with UEFI, its NVRAM with
# known contents, mode 0640, a user.* attribute standing in for the
# SELinux label (security.selinux is copied the same way), owned by 107:107
# when we may chown (libvirt's qemu user).
vm_nvram() {
    local r=$1
    snap_make_tvm "$r"
    sed -i "s|^    <boot dev='hd'/>|    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>\n    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>$NV</nvram>\n    <boot dev='hd'/>|" \
        "$r$SNAP_CFG/tvm.xml"
    # virt-install's <metadata> (the record goes in beside it).
    sed -i 's|^\(  <uuid>.*</uuid>\)$|\1\n  <metadata>\n    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">\n      <libosinfo:os id="http://microsoft.com/win/11"/>\n    </libosinfo:libosinfo>\n  </metadata>|' \
        "$r$SNAP_CFG/tvm.xml"
    mkdir -p "$(dirname "$r$NV")"
    head -c 540672 /dev/zero | tr '\0' 'A' >"$r$NV"
    chmod 640 "$r$NV"
    chown 107:107 "$r$NV" 2>/dev/null || true
    set_label "$r$NV" nvram-label
    # The vTPM: an emulator backend, swtpm's state as libvirt lays it out
    # (UUID/tpm2/tpm2-00.permall, owned by swtpm's user, 59 = tss).
    sed -i "s|^    <controller type='sata' index='0'/>|    <tpm model='tpm-crb'>\n      <backend type='emulator' version='2.0'/>\n    </tpm>\n    <controller type='sata' index='0'/>|" \
        "$r$SNAP_CFG/tvm.xml"
    mkdir -p "$r$TPMDIR/tpm2"
    head -c 8192 /dev/zero | tr '\0' 'T' >"$r$TPMDIR/tpm2/tpm2-00.permall"
    chmod 711 "$r$TPMDIR"
    chmod 700 "$r$TPMDIR/tpm2"
    chmod 600 "$r$TPMDIR/tpm2/tpm2-00.permall"
    chown -R 59:59 "$r$TPMDIR/tpm2" 2>/dev/null || true
    set_label "$r$TPMDIR/tpm2/tpm2-00.permall" tpm-label
}
# tree_sum DIR: names, kinds, modes, owners, user.*/security.* attributes
# and contents of a tree (a tar stream without times, hashed).
tree_sum() {
    [[ -d $1 ]] || { echo missing; return; }
    tar --xattrs --xattrs-include='user.*' --xattrs-include='security.*' --mtime=@0 --sort=name \
        --numeric-owner --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
        -cf - -C "$1" . | sha256sum | cut -c1-16
}
set_label() { python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.label", sys.argv[2].encode())' "$1" "$2"; }
label_of() { python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.label").decode())' "$1" 2>/dev/null || echo none; }
sum() { sha256sum <"$1" | cut -c1-16; }
meta() { stat -c '%u:%g %a' "$1"; }
guest_change() { # WHAT: new NVRAM and TPM contents, written in place as QEMU and swtpm do
    printf '%s' "$1" | dd of="$N" bs=1 seek=4096 conv=notrunc status=none
    printf '%s' "$1" | dd of="$TD/tpm2/tpm2-00.permall" bs=1 seek=100 conv=notrunc status=none
}
# valid WHAT: every XML file written since the last call validates
# (virt-xml-validate: domain, domainsnapshot; lib/snap.sh's validate_all).
declare -A VALIDATED
valid() {
    local f k bad=""
    for f in "$R$SNAP_CFG/tvm.xml" "$S"/*.xml; do
        [[ -e $f ]] || continue
        k=$(sha256sum <"$f")
        [[ ${VALIDATED[$f]:-} == "$k" ]] && continue
        if [[ $f == "$S"/* ]] && grep -q '<revertDisks>' "$f"; then
            xmllint --noout --relaxng "$(snap_schema_dir)/domainsnapshot.rng" "$f" >/dev/null 2>&1 ||
                bad+="$f does not validate (9.0 schema + revertDisks); "
        elif ! virt-xml-validate "$f" >/dev/null 2>&1; then
            bad+="$f: $(virt-xml-validate "$f" 2>&1 | tail -2); "
        fi
        VALIDATED[$f]=$k
    done
    check_eq "$1: every XML written validates" "" "$bad"
}
record_copy() { # SNAPSHOT [nvram|tpm]: the copy its metadata records ("" if none)
    xmllint --xpath "string(//*[local-name()='vmstate'][@snapshot='$1']/*[local-name()='${2:-nvram}']/@copy)" \
        "$S/$1.xml" 2>/dev/null || true
}

vm_nvram "$R"
ok_rc "the config validates" 0 virt-xml-validate "$R$SNAP_CFG/tvm.xml" domain 2>/dev/null
meta0=$(meta "$N")

# --- create saves ------------------------------------------------------------
out=$(x create tvm s1 --dry-run) || fail "dry run of create: $out"
check_eq "the dry run lists the save" 1 "$(grep -c "^  save  *$SNAP_IMG/tvm.s1.nvram" <<<"$out")"
check_eq "the dry run wrote nothing" "" "$(find "$I" -name '*.nvram')"
x create tvm s1 -q
sum1=$(sum "$N")
tsum1=$(tree_sum "$TD")
TC1=$I/tvm.s1.tpm
check_eq "s1: the TPM copy holds the TPM state (files, modes, owners, labels)" "$tsum1" "$(tree_sum "$TC1")"
check_eq "s1: TPM copy recorded" "$SNAP_IMG/tvm.s1.tpm" "$(record_copy s1 tpm)"
check_eq "s1: TPM path recorded" "$TPMDIR" \
    "$(xmllint --xpath "string(//*[local-name()='tpm'][@copy]/@path)" "$S/s1.xml")"
C1=$I/tvm.s1.nvram
check_eq "s1: the copy holds the NVRAM" "$sum1" "$(sum "$C1")"
check_eq "s1: owner and mode kept" "$meta0" "$(meta "$C1")"
check_eq "s1: extended attribute kept" nvram-label "$(label_of "$C1")"
check_eq "s1: recorded in its metadata" "$SNAP_IMG/tvm.s1.nvram" "$(record_copy s1)"
check_eq "the config carries no record" 0 "$(grep -c 'extsnap:vmstate' "$R$SNAP_CFG/tvm.xml" || true)"
valid "create s1"

guest_change "second"
sum2=$(sum "$N")
tsum2=$(tree_sum "$TD")
x create tvm s2 -q
check_eq "s2: the TPM copy" "$tsum2" "$(tree_sum "$I/tvm.s2.tpm")"
check_eq "s1's TPM copy untouched" "$tsum1" "$(tree_sum "$TC1")"
check_eq "s2: the copy holds the NVRAM" "$sum2" "$(sum "$I/tvm.s2.nvram")"
check_eq "s1's copy untouched" "$sum1" "$(sum "$C1")"
valid "create s2"

# --- revert / refresh restore ------------------------------------------------
guest_change "third!"
set_label "$N" changed
set_label "$TD/tpm2/tpm2-00.permall" changed
echo new >"$TD/tpm2/tpm2-01.volatilestate"
x revert tvm s1 -q
check_eq "revert s1: TPM state as at s1's creation (the newer file gone)" "$tsum1" "$(tree_sum "$TD")"
check_eq "revert s1: nothing temporary left beside the TPM state" "$UUID" "$(ls -A "$(dirname "$TD")")"
check_eq "revert s1: NVRAM as at s1's creation" "$sum1" "$(sum "$N")"
check_eq "revert s1: owner and mode" "$meta0" "$(meta "$N")"
check_eq "revert s1: extended attribute back" nvram-label "$(label_of "$N")"
check_eq "revert s1: the copy is still there" "$sum1" "$(sum "$C1")"
check_eq "revert s1: the config carries no record" 0 "$(grep -c 'extsnap:vmstate' "$R$SNAP_CFG/tvm.xml" || true)"
check_eq "revert s1: the config's own <metadata> kept" 1 "$(grep -c '<libosinfo:os id=' "$R$SNAP_CFG/tvm.xml")"
check_eq "s1's <metadata>: libosinfo's element and the record, indented as libvirt does" \
    "    <metadata>|      <libosinfo:libosinfo |        <libosinfo:os |      </libosinfo:libosinfo>|      <extsnap:vmstate |        <extsnap:nvram |        <extsnap:tpm |      </extsnap:vmstate>|    </metadata>|" \
    "$(sed -n '/^    <metadata>/,/^    <\/metadata>/p' "$S/s1.xml" | sed -E 's/^( *<[^ >]+[ >]?).*/\1/' | tr '\n' '|')"
valid "revert s1"
guest_change "fourth"
x refresh tvm -q
check_eq "refresh: NVRAM as at s1's creation" "$sum1" "$(sum "$N")"
check_eq "refresh: TPM state as at s1's creation" "$tsum1" "$(tree_sum "$TD")"
x revert tvm s2 -q
check_eq "revert s2: NVRAM as at s2's creation" "$sum2" "$(sum "$N")"
check_eq "revert s2: TPM state as at s2's creation" "$tsum2" "$(tree_sum "$TD")"
guest_change "fifth!"
sum5=$(sum "$N")
tsum5=$(tree_sum "$TD")
out=$(x refresh tvm --no-vm-state) || fail "refresh --no-vm-state: $out"
check_eq "refresh --no-vm-state leaves the NVRAM" "$sum5" "$(sum "$N")"
check_eq "refresh --no-vm-state leaves the TPM state" "$tsum5" "$(tree_sum "$TD")"
check_eq "refresh --no-vm-state says so" 2 "$(grep -c 'note: --no-vm-state' <<<"$out")"
valid "refresh"

# --- --no-vm-state, and a record copied into the config ----------------------
# Newer libvirt's revert copies a snapshot's <domain> into the config, record
# included: a snapshot made from that config must not take it for its own.
python3 - "$R$SNAP_CFG/tvm.xml" "$S/s1.xml" <<'PY'
import re, sys
cfg, snap = sys.argv[1], sys.argv[2]
rec = re.search(r"<extsnap:vmstate.*?</extsnap:vmstate>", open(snap).read(), re.S).group(0)
c = open(cfg).read()
c = c.replace("  </metadata>", "    " + re.sub(r"\n  ", "\n", rec) + "\n  </metadata>", 1)
open(cfg, "w").write(c)
PY
ok_rc "a config with s1's record validates" 0 virt-xml-validate "$R$SNAP_CFG/tvm.xml" domain 2>/dev/null
out=$(x create tvm s3 --no-vm-state) || fail "create --no-vm-state: $out"
check_eq "create --no-vm-state: no copy" "" "$(find "$I" -name 'tvm.s3.*')"
check_eq "create --no-vm-state: no record in s3" 0 "$(grep -c 'extsnap:vmstate' "$S/s3.xml" || true)"
check_eq "create --no-vm-state says so" 1 "$(grep -c 'note: --no-vm-state' <<<"$out")"
valid "create s3 --no-vm-state"
guest_change "sixth!"
sum6=$(sum "$N")
tsum6=$(tree_sum "$TD")
out=$(x revert tvm s3) || fail "revert to s3 (no copy): $out"
check_eq "revert to a snapshot without a copy leaves the NVRAM" "$sum6" "$(sum "$N")"
check_eq "... and the TPM state" "$tsum6" "$(tree_sum "$TD")"
check_eq "... and says so" 2 "$(grep -c 'has no saved' <<<"$out")"

# --- delete / commit keep the model consistent -------------------------------
x revert tvm s2 -q
x create tvm s4 -q
guest_change "7"
x create tvm s5 -q
check_eq "s4 and s5 have copies" "4" "$(find "$I" -name 'tvm.s[45].*[mt]' | wc -l)"
out=$(x commit tvm s2 s5) || fail "commit s2 s5: $out"
check_eq "commit: the copies of s4 and s5 are gone" "" "$(find "$I" -name 'tvm.s[45].*[mt]')"
check_eq "commit: s1's and s2's copies stay" "4" "$(find "$I" -maxdepth 1 -name 'tvm.s[12].*[mt]' | wc -l)"
valid "commit"
ok_rc "verify after commit" 0 x verify tvm -q
x revert tvm s1 -q
out=$(x delete tvm s2) || fail "delete s2: $out"
check_eq "delete s2: its copies are gone" "" "$(find "$I" -name 'tvm.s2.*[mt]')"
check_eq "delete s2: s1's copies stay" "$sum1 $tsum1" "$(sum "$C1") $(tree_sum "$TC1")"
valid "delete"
ok_rc "verify after delete" 0 x verify tvm -q
x create tvm s6 -q
out=$(x delete tvm s6 --metadata) || fail "delete --metadata: $out"
check_eq "delete --metadata keeps the copies, and says so" "2 2" \
    "$(find "$I" -name 'tvm.s6.*[mt]' | wc -l) $(grep -c 's6.\(nvram\|tpm\) stays' <<<"$out")"
rm -rf "$I/tvm.s6.nvram" "$I/tvm.s6.tpm"

# --- verify, and refusals that change nothing --------------------------------
mv "$C1" "$T/c1"
rc=0
out=$(x verify tvm 2>&1) || rc=$?
check_eq "verify: a missing copy is a problem (exit 2)" 2 "$rc"
check_eq "verify: missing-vm-state reported" 1 "$(grep -c 'missing-vm-state' <<<"$out")"
before=$(root_sums "$R")
rc=0
out=$(x revert tvm s1 2>&1) || rc=$?
check_eq "revert with the copy missing: refused" 1 "$rc"
check_eq "... one line naming --no-vm-state" 1 "$(grep -c -- '--no-vm-state' <<<"$out")"
check_eq "... nothing changed" "$before" "$(root_sums "$R")"
mv "$T/c1" "$C1"
mv "$TC1" "$T/tc1"
rc=0
out=$(x verify tvm 2>&1) || rc=$?
check_eq "verify: a missing TPM copy is a problem (exit 2)" "2 1" "$rc $(grep -c 'missing-vm-state.*tvm.s1.tpm' <<<"$out")"
before=$(root_sums "$R")
rc=0
out=$(x revert tvm s1 2>&1) || rc=$?
check_eq "revert with the TPM copy missing: refused" "1 1" "$rc $(grep -c 'saved vTPM state.*is missing.*--no-vm-state' <<<"$out")"
check_eq "... nothing changed" "$before" "$(root_sums "$R")"
mv "$T/tc1" "$TC1"

touch "$I/tvm.s7.nvram"
before=$(root_sums "$R")
rc=0
out=$(x create tvm s7 2>&1) || rc=$?
check_eq "create with a file in the copy's way: refused" "1 1" "$rc $(grep -c 'in the way' <<<"$out")"
check_eq "... nothing changed" "$before" "$(root_sums "$R")"
rm -f "$I/tvm.s7.nvram"

mv "$N" "$T/nv"
before=$(root_sums "$R")
rc=0
out=$(x create tvm s7 2>&1) || rc=$?
check_eq "create with the NVRAM file missing: refused" "1 1" "$rc $(grep -c 'does not exist' <<<"$out")"
check_eq "... nothing changed" "$before" "$(root_sums "$R")"
mv "$T/nv" "$N"
mv "$TD" "$T/td"
before=$(root_sums "$R")
rc=0
out=$(x create tvm s7 2>&1) || rc=$?
check_eq "create with the TPM state missing: refused" "1 1" "$rc $(grep -c 'vTPM state.*does not exist' <<<"$out")"
check_eq "... nothing changed" "$before" "$(root_sums "$R")"
mv "$T/td" "$TD"

# A running VM (QEMU with the domain's QMP socket, its pid in libvirt's run
# dir): refused before anything is written.
if command -v qemu-system-x86_64 >/dev/null; then
    . "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
    vm_start "$R/run/tvm.qmp"
    echo "$QEMU_PID" >"$R/run/libvirt/qemu/tvm.pid"
    before=$(root_sums "$R")
    rc=0
    out=$(x create tvm s7 --qmp "$R/run/tvm.qmp" 2>&1) || rc=$?
    check_eq "create on a running VM: refused ($out)" 1 "$rc"
    check_eq "... one line: running, NVRAM and vTPM, --no-vm-state ($out)" 1 \
        "$(grep -c 'is running: its NVRAM (UEFI variables) and vTPM state.*--no-vm-state' <<<"$out")"
    check_eq "... nothing changed" "$before" "$(root_sums "$R")"
    vm_quit
    rm -f "$R/run/libvirt/qemu/tvm.pid" "$R/run/tvm.qmp"
else
    skip_part "qemu-system-x86_64 is not installed: the running-VM refusal is not tested"
fi

valid "the end"
ok_rc "verify at the end" 0 x verify tvm -q

# --- a session domain's vTPM: --swtpm-dir ---------------------------------------
# A session daemon (qemu:///session) keeps swtpm's state in
# $XDG_CONFIG_HOME/libvirt/qemu/swtpm/UUID, not /var/lib/libvirt/swtpm.
R=$T/session
vm_nvram "$R"
SW=/home/u/.config/libvirt/qemu/swtpm
mkdir -p "$R$SW"
mv "$R$TPMDIR" "$R$SW/$UUID"
before=$(root_sums "$R")
rc=0
out=$(x create tvm s1 2>&1) || rc=$?
check_eq "session: without --swtpm-dir the vTPM state is not found: refused" "1 1" \
    "$rc $(grep -c "vTPM state.*does not exist" <<<"$out")"
check_eq "session: ... nothing changed" "$before" "$(root_sums "$R")"
tsum=$(tree_sum "$R$SW/$UUID")
check_rc "session: create s1 --swtpm-dir" 0 x create tvm s1 --swtpm-dir "$SW" -q
check_eq "session: s1's TPM path recorded" "$SW/$UUID" \
    "$(xmllint --xpath "string(//*[local-name()='tpm'][@copy]/@path)" "$R$SNAP_DIR/tvm/s1.xml")"
check_eq "session: s1's TPM copy" "$tsum" "$(tree_sum "$R$SNAP_IMG/tvm.s1.tpm")"
printf 'x' | dd of="$R$SW/$UUID/tpm2/tpm2-00.permall" bs=1 seek=100 conv=notrunc status=none
check_rc "session: refresh (the recorded path, no option needed)" 0 x refresh tvm -q
check_eq "session: refresh put the TPM state back" "$tsum" "$(tree_sum "$R$SW/$UUID")"
check_eq "session: /var/lib/libvirt/swtpm untouched" "" "$(ls -A "$R/var/lib/libvirt/swtpm")"
finish
