#!/usr/bin/env bash
# A disk's source-only properties (domxml/image_props.h), with real images:
# a raw LUKS disk (qemu-img made, with a secret) and a raw disk with a
# storage slice.
#  - create refuses either disk before writing anything, saying why and how
#    to leave it out (--disk); so does a create through --dry-run's planner;
#  - with those disks left out, create, refresh, revert, delete and commit
#    keep their <encryption> and <slices> byte for byte in the config and the
#    snapshot files, and QEMU (qemu-io) opens them with the domain's options
#    and reads the guest's data; every file validates (virt-xml-validate);
#  - verify reports the chains the old create made (a qcow2 overlay given the
#    LUKS disk's <encryption>; a slice left on a qcow2 overlay) and a
#    libvirt-style overlay reading the LUKS image as raw; delete refuses to
#    merge into the LUKS image;
#  - list keeps its columns aligned for a 'disk-snapshot' state;
#  - disks shows a vhostvdpa disk's <source dev=> (virsh domblklist does);
#  - create writes <backingStore> as libvirt 9.0 does: an explicit chain
#    moves below the new overlay, <backingStore/> (no backing) goes away.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
trap 'vm_kill 2>/dev/null; rm -rf "$T"' EXIT
for c in qemu-img qemu-io qemu-system-x86_64 xmllint virt-xml-validate jq; do
    command -v "$c" >/dev/null 2>&1 || { echo "SKIP: $c is not installed" >&2; exit 77; }
done

IMG=/var/lib/libvirt/images/sp
UUID=0f6f4c1e-5a43-4c2e-9d39-7e0e8f2a5b11
SLICE_OFF=1048576
SLICE_SIZE=2097152
SECRET=(--object secret,id=sec0,data=pw)

# sp_config R [VDA_EXTRA]: domain sp: vda qcow2, vdc raw LUKS, vdd raw slice.
sp_config() {
    local r=$1
    mkdir -p "$r$SNAP_CFG" "$r$SNAP_DIR" "$r/run/libvirt/qemu" "$r$IMG"
    cat >"$r$SNAP_CFG/sp.xml" <<XML
<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh edit sp
or other application using the libvirt API.
-->

<domain type='qemu'>
  <name>sp</name>
  <uuid>6b1f7f4e-2f0c-4c43-9a55-3c1d2f6b9a77</uuid>
  <memory unit='KiB'>131072</memory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' discard='unmap'/>
      <source file='$IMG/vda.qcow2'/>${2:-}
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source file='$IMG/vdc.luks'>
        <encryption format='luks'>
          <secret type='passphrase' uuid='$UUID'/>
        </encryption>
      </source>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$IMG/vdd.raw'>
        <slices>
          <slice type='storage' offset='$SLICE_OFF' size='$SLICE_SIZE'/>
        </slices>
      </source>
      <target dev='vdd' bus='virtio'/>
    </disk>
  </devices>
</domain>
XML
    chmod 600 "$r$SNAP_CFG/sp.xml"
}

# luks_create FILE: a 4 MiB LUKS image. qemu-img times its key derivation
# and gives up on a loaded machine ("Unable to get accurate CPU usage"):
# try again a few times, as test_qcow2_open does; any other error fails.
luks_create() {
    local i out
    for i in 1 2 3 4 5; do
        out=$(qemu-img create -q -f luks "${SECRET[@]}" -o key-secret=sec0 "$1" 4M 2>&1) && return 0
        [[ $out == *"Unable to get accurate CPU usage"* ]] || break
        sleep 1
    done
    echo "$out" >&2
    return 1
}

# sp_make R: config and images, guest data in each disk.
sp_make() {
    local r=$1
    sp_config "$r"
    qemu-img create -q -f qcow2 "$r$IMG/vda.qcow2" 4M
    luks_create "$r$IMG/vdc.luks"
    qemu-img create -q -f raw "$r$IMG/vdd.raw" 4M
    qemu-io -f qcow2 -c 'write -P 0xa1 0 64k' "$r$IMG/vda.qcow2" >/dev/null
    qemu-io "${SECRET[@]}" --image-opts -c 'write -P 0xc1 0 64k' \
        "driver=luks,key-secret=sec0,file.filename=$r$IMG/vdc.luks" >/dev/null
    qemu-io -f raw -c "write -P 0xd1 $SLICE_OFF 64k" "$r$IMG/vdd.raw" >/dev/null
}

# disk_xml FILE TARGET [XPATH-PREFIX]: a disk element as the file has it.
disk_xml() {
    xmllint --xpath "${3:-/domain/devices}/disk[target/@dev='$2']" "$1" 2>/dev/null
}

# opts R TARGET: the --image-opts QEMU gets from the config for this disk
# (libvirt's mapping: raw + <encryption format='luks'> = driver luks with
# the secret; a slice = the raw driver's offset/size).
opts() {
    local cfg=$1$SNAP_CFG/sp.xml t=$2 src fmt enc off size
    src=$(xmllint --xpath "string(/domain/devices/disk[target/@dev='$t']/source/@file)" "$cfg")
    fmt=$(xmllint --xpath "string(/domain/devices/disk[target/@dev='$t']/driver/@type)" "$cfg")
    enc=$(xmllint --xpath "string(/domain/devices/disk[target/@dev='$t']/source/encryption/@format)" "$cfg")
    off=$(xmllint --xpath "string(/domain/devices/disk[target/@dev='$t']/source/slices/slice/@offset)" "$cfg")
    size=$(xmllint --xpath "string(/domain/devices/disk[target/@dev='$t']/source/slices/slice/@size)" "$cfg")
    if [[ $fmt == raw && $enc == luks ]]; then
        echo "driver=luks,key-secret=sec0,file.filename=$1$src"
    elif [[ $fmt == raw && -n $off ]]; then
        echo "driver=raw,offset=$off,size=$size,file.filename=$1$src"
    elif [[ $fmt == qcow2 && $enc == luks ]]; then
        echo "driver=qcow2,encrypt.format=luks,encrypt.key-secret=sec0,file.filename=$1$src"
    else
        echo "driver=$fmt,file.filename=$1$src"
    fi
}

# reads R TARGET PATTERN OFFSET: QEMU, given the config's options, reads PATTERN.
reads() {
    local o out rc=0
    o=$(opts "$1" "$2")
    out=$(qemu-io "${SECRET[@]}" --image-opts -r -U -c "read -P $3 $4 64k" "$o" 2>&1) || rc=$?
    ((rc == 0)) && ! grep -q 'Pattern verification failed' <<<"$out" && return 0
    echo "qemu-io $o: $out" >&2
    return 1
}

# refused WHAT PATTERN CMD...: CMD exits 1, says PATTERN, changes nothing.
refused() {
    local what=$1 pattern=$2 before after rc=0
    shift 2
    before=$(root_sums "$R")
    "$@" >"$T/out" 2>"$T/err" || rc=$?
    check_eq "$what: exit status" 1 "$rc"
    grep -q -- "$pattern" "$T/err" || fail "$what: message lacks '$pattern': $(cat "$T/err")"
    after=$(root_sums "$R")
    check_eq "$what: nothing changed under the root" "$before" "$after"
}

# props_kept WHAT: vdc and vdd are described as at the start in the config
# and in every snapshot's saved <domain>, QEMU reads their data through the
# config's options, and every file validates.
props_kept() {
    local what=$1 f
    check_eq "$what: vdc in the config" "$VDC0" "$(disk_xml "$R$SNAP_CFG/sp.xml" vdc)"
    check_eq "$what: vdd in the config" "$VDD0" "$(disk_xml "$R$SNAP_CFG/sp.xml" vdd)"
    for f in "$R$SNAP_DIR"/sp/*.xml; do
        [[ -e $f ]] || continue
        check_eq "$what: vdc in $(basename "$f")'s <domain>" "$(sed 's/^/  /' <<<"$VDC0" | sed '1s/^  //')" \
            "$(disk_xml "$f" vdc /domainsnapshot/domain/devices)"
    done
    reads "$R" vdc 0xc1 0 || fail "$what: QEMU does not read vdc's data with the config's options"
    reads "$R" vdd 0xd1 0 || fail "$what: QEMU does not read vdd's data with the config's options"
    check_eq "$what: files validate" "" "$(validate_all "$R" sp)"
}

# --- the oracles agree with the setup ----------------------------------------
R=$T/r
sp_make "$R"
check_eq "the domain validates" "" "$(validate_all "$R" sp)"
reads "$R" vdc 0xc1 0 || fail "setup: QEMU does not read the LUKS disk"
reads "$R" vdd 0xd1 0 || fail "setup: QEMU does not read the slice"
check_eq "setup: the LUKS file starts with its header" "4c554b53babe" "$(head -c 6 "$R$IMG/vdc.luks" | xxd -p)"
VDC0=$(disk_xml "$R$SNAP_CFG/sp.xml" vdc)
VDD0=$(disk_xml "$R$SNAP_CFG/sp.xml" vdd)

# --- create refuses, before anything is written --------------------------------
refused "create with a LUKS disk" "disk vdc has LUKS encryption" x create sp s1
grep -q -- "--disk" "$T/err" || fail "the LUKS refusal does not say how to leave the disk out: $(cat "$T/err")"
grep -q "not be encrypted" "$T/err" || fail "the LUKS refusal does not say why: $(cat "$T/err")"
check_eq "the refusal is one line" 1 "$(wc -l <"$T/err")"
refused "create of the sliced disk" "disk vdd has a storage slice" x create sp s1 --disk vdd
grep -q -- "--disk" "$T/err" || fail "the slice refusal does not say how to leave the disk out: $(cat "$T/err")"
refused "create --dry-run with a LUKS disk" "disk vdc has LUKS encryption" x create sp s1 --dry-run
refused "create --no-metadata with a LUKS disk" "LUKS encryption" x create sp s1 --no-metadata

# --- left out, they keep their properties through every operation --------------
x create sp s1 --disk vda -q || fail "create --disk vda"
check_eq "s1 leaves vdc out" "no" \
    "$(xmllint --xpath "string(/domainsnapshot/disks/disk[@name='vdc']/@snapshot)" "$R$SNAP_DIR/sp/s1.xml")"
check_eq "vda's overlay keeps the disk's driver attributes" "none unmap qcow2" \
    "$(xmllint --xpath "concat(//devices/disk[target/@dev='vda']/driver/@cache,' ',//devices/disk[target/@dev='vda']/driver/@discard,' ',//devices/disk[target/@dev='vda']/driver/@type)" "$R$SNAP_CFG/sp.xml")"
props_kept "create --disk vda"
qemu-io -c 'write -P 0xa2 0 64k' \
    "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$R$IMG/vda.s1\"},\"backing\":null}" >/dev/null
x create sp s2 --disk vda -q || fail "create s2 --disk vda"
props_kept "create s2"
x refresh sp -q || fail "refresh"
props_kept "refresh"
x revert sp s1 -q || fail "revert s1"
props_kept "revert s1"
x create sp s3 --disk vda -q || fail "create s3"
x create sp s4 --disk vda -q || fail "create s4"
x commit sp s3 s4 -q || fail "commit s3 s4"
props_kept "commit s3 s4"
x delete sp s2 -q || fail "delete s2"
props_kept "delete s2"
x delete sp s1 -q || fail "delete s1"
props_kept "delete s1 (the snapshot above the LUKS disk's image)"
check_rc "verify: clean" 0 x verify sp -q

# --- create through QMP: the same refusal, in planning ---------------------------
R=$T/on
sp_make "$R"
SOCK=$T/sp.qmp
vm_start "$SOCK" -object secret,id=sec0,data=pw \
    -drive "if=none,id=drive-vda,file=$R$IMG/vda.qcow2,format=qcow2" \
    -blockdev "driver=luks,key-secret=sec0,node-name=vdc-top,file.driver=file,file.filename=$R$IMG/vdc.luks" \
    -blockdev "driver=raw,offset=$SLICE_OFF,size=$SLICE_SIZE,node-name=vdd-top,file.driver=file,file.filename=$R$IMG/vdd.raw"
echo "$QEMU_PID" >"$R/run/libvirt/qemu/sp.pid"
refused "online create with a LUKS disk" "disk vdc has LUKS encryption" x create sp s1 --qmp "$SOCK"
out=$(x create sp s1 --disk vda --qmp "$SOCK" 2>&1) || fail "online create --disk vda: $out"
grep -q "switch" <<<"$out" || fail "online create --disk vda did not go through QEMU: $out"
check_eq "online: vda runs on its overlay" "$R$IMG/vda.s1" \
    "$(vm_chain_files drive-vda | head -n1)"
props_kept "online create --disk vda"
vm_quit
rm -f "$R/run/libvirt/qemu/sp.pid"

# --- verify: the chains the old create made --------------------------------------
# luks_overlay_chain R WITH_ENC: vdc -> vdc.s1, a plain qcow2 overlay naming
# the LUKS file as raw (as 'create' made it); WITH_ENC: the config gives the
# overlay the LUKS disk's <encryption> (old extsnap), else none (libvirt 9.0).
luks_overlay_chain() {
    local r=$1 with=$2
    rm -rf "$r"
    sp_make "$r"
    qemu-img create -q -f qcow2 -F raw -u -b "$IMG/vdc.luks" "$r$IMG/vdc.s1" 4M
    cp "$r$SNAP_CFG/sp.xml" "$T/before.xml"
    python3 - "$r$SNAP_CFG/sp.xml" "$IMG" "$with" <<'PY'
import re, sys
p, img, keep = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
s = open(p).read()
s = s.replace("<driver name='qemu' type='raw' cache='none'/>\n      <source file='%s/vdc.luks'>" % img,
              "<driver name='qemu' type='qcow2' cache='none'/>\n      <source file='%s/vdc.s1'>" % img)
if not keep:
    s = re.sub(r"<source file='%s/vdc.s1'>\s*<encryption.*?</encryption>\s*</source>" % re.escape(img),
               "<source file='%s/vdc.s1'/>" % img, s, flags=re.S)
open(p, "w").write(s)
PY
    mkdir -p "$r$SNAP_DIR/sp"
    {
        echo "<domainsnapshot>"
        echo "  <name>s1</name>"
        echo "  <state>shutoff</state>"
        echo "  <creationTime>1795311975</creationTime>"
        echo "  <memory snapshot='no'/>"
        echo "  <disks>"
        echo "    <disk name='vda' snapshot='no'/>"
        echo "    <disk name='vdc' snapshot='external' type='file'>"
        echo "      <driver type='qcow2'/>"
        echo "      <source file='$IMG/vdc.s1'/>"
        echo "    </disk>"
        echo "    <disk name='vdd' snapshot='no'/>"
        echo "  </disks>"
        sed -n '/^<domain /,/^<\/domain>/p' "$T/before.xml" | sed 's/^/  /'
        echo "  <active>1</active>"
        echo "</domainsnapshot>"
    } >"$r$SNAP_DIR/sp/s1.xml"
}

# verify_code R CODE FILE: verify exits 2 and reports CODE about FILE.
verify_code() {
    local r=$1 code=$2 file=$3 out rc=0 hit
    out=$("$EXTSNAP" verify sp --root "$r" --output=json 2>"$T/err") || rc=$?
    check_eq "verify $code: exit status" 2 "$rc"
    hit=$(jq -r --arg c "$code" --arg f "$file" '[.[0].problems[] | select(.code==$c and .file==$f)] | length' <<<"$out" 2>/dev/null || echo 0)
    ((hit >= 1)) || fail "verify: no $code problem for $file: $out"
}

R=$T/old
luks_overlay_chain "$R" 1
check_eq "old create's chain: the files validate" "" "$(validate_all "$R" sp)"
# The oracle: QEMU refuses the overlay with the config's options, and
# without them the guest would see the LUKS header.
rc=0
qemu-io "${SECRET[@]}" --image-opts -r -c 'read 0 512' "$(opts "$R" vdc)" >"$T/q" 2>&1 || rc=$?
((rc != 0)) && grep -q "No encryption in image header" "$T/q" ||
    fail "oracle: qemu-io opened the unencrypted overlay with LUKS options: $(cat "$T/q")"
check_eq "oracle: through the overlay alone the guest sees the LUKS header" "4c554b53babe" \
    "$(qemu-img convert -U -O raw "$(chain_spec "$R" "$IMG/vdc.s1" qcow2)" "$T/guest.raw" && head -c 6 "$T/guest.raw" | xxd -p)"
verify_code "$R" encryption-mismatch "$IMG/vdc.s1"
cp -a "$R" "$T/old-data"
# Its overlay holds nothing (QEMU could not open it): deleting the snapshot
# above the LUKS image puts the config back on it, <encryption> and all.
x delete sp s1 -q || fail "delete of the snapshot over the LUKS image (empty overlay)"
check_eq "delete: vdc is described as before the snapshot" "$VDC0" "$(disk_xml "$R$SNAP_CFG/sp.xml" vdc)"
reads "$R" vdc 0xc1 0 || fail "delete: QEMU does not read vdc's data with the config's options"
check_eq "delete: the LUKS file is untouched" "$(sha256sum <"$T/old-data$IMG/vdc.luks")" \
    "$(sha256sum <"$R$IMG/vdc.luks")"
[[ ! -e $R$IMG/vdc.s1 ]] || fail "delete: the empty overlay is still there"
check_rc "delete: verify is clean" 0 x verify sp -q
check_eq "delete: files validate" "" "$(validate_all "$R" sp)"
# With data in the overlay, the merge would write it into the LUKS container.
R=$T/old-data
qemu-io -c 'write -P 0xee 0 64k' \
    "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$R$IMG/vdc.s1\"},\"backing\":null}" >/dev/null
refused "delete merging data into the LUKS image" \
    "cannot delete snapshot s1: disk vdc: the merge would write $IMG/vdc.s1's data into $IMG/vdc.luks, which has LUKS encryption" \
    x delete sp s1

R=$T/libvirt
luks_overlay_chain "$R" 0
verify_code "$R" encrypted-backing "$IMG/vdc.s1"
# A libvirt-style config (the overlay without <encryption>): putting it back
# on the LUKS image would describe that image without its encryption.
refused "delete into the LUKS image, config without <encryption>" \
    "the two descriptions differ" x delete sp s1

# A slice left on a qcow2 overlay (old create).
R=$T/slice
rm -rf "$R"
sp_make "$R"
qemu-img create -q -f qcow2 -F raw -u -b "$IMG/vdd.raw" "$R$IMG/vdd.s1" 4M
python3 - "$R$SNAP_CFG/sp.xml" "$IMG" <<'PY'
import sys
p, img = sys.argv[1], sys.argv[2]
s = open(p).read()
old = "<driver name='qemu' type='raw'/>\n      <source file='%s/vdd.raw'>" % img
assert old in s
s = s.replace(old, "<driver name='qemu' type='qcow2'/>\n      <source file='%s/vdd.s1'>" % img)
open(p, "w").write(s)
PY
check_eq "sliced overlay config validates" "" "$(validate_all "$R" sp)"
verify_code "$R" slice-on-overlay "$IMG/vdd.s1"

# --- list: columns stay aligned for every state ------------------------------------
R=$T/r
x create sp s5 --disk vda -q || fail "create s5"
x create sp s6-with-a-long-name --disk vda -q || fail "create s6"
sed -i 's|<state>shutoff</state>|<state>disk-snapshot</state>|' "$R$SNAP_DIR/sp/s5.xml"
x list sp >"$T/list" || fail "list"
check_eq "list: files with disk-snapshot validate" "" "$(validate_all "$R" sp)"
awk '
    NR == 1 { split("Name|Creation Time|State|Parent|Current|Disks", h, "|")
              for (k = 1; k <= 6; k++) col[k] = index($0, h[k]); next }
    NR == 2 { next }
    {
        # Creation Time, State and Parent values start in their columns
        for (k = 2; k <= 4; k++) {
            c = col[k]
            if (substr($0, c - 1, 1) != " " || substr($0, c, 1) == " ")
                printf "row %d: column %d (at %d) misaligned: [%s]\n", NR, k, c, $0
        }
    }' "$T/list" >"$T/misaligned"
check_eq "list: Creation Time, State, Parent columns aligned" "" "$(cat "$T/misaligned")"
grep -q " disk-snapshot   s" "$T/list" || fail "list: the disk-snapshot row: $(cat "$T/list")"

# --- disks: a vhostvdpa disk's source ------------------------------------------------
R=$T/vdpa
sp_make "$R"
python3 - "$R$SNAP_CFG/sp.xml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
vdpa = """    <disk type='vhostvdpa' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='threads'/>
      <source dev='/dev/vhost-vdpa-0'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
"""
i = s.index("    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw' cache='none'/>")
open(p, "w").write(s[:i] + vdpa + s[i:])
PY
x disks sp >"$T/disks" || fail "disks with a vhostvdpa disk"
grep -Eq '^ vhostvdpa +disk +vdb +/dev/vhost-vdpa-0$' "$T/disks" || fail "disks: vdb's source: $(cat "$T/disks")"
check_eq "disks --output=json: vdb's source" "/dev/vhost-vdpa-0" \
    "$(x disks sp --output=json | jq -r '.disks[] | select(.target=="vdb") | .source')"
x create sp v1 --disk vda -q || fail "create with a vhostvdpa disk in the domain"
check_eq "the vhostvdpa disk is left as it was" \
    "$(printf '%s' "<disk type=\"vhostvdpa\" device=\"disk\">")" \
    "$(disk_xml "$R$SNAP_CFG/sp.xml" vdb | head -1 | tr "'" '"')"

# --- <backingStore> as libvirt 9.0 writes it ----------------------------------------
R=$T/bs
rm -rf "$R"
mkdir -p "$R$IMG"
qemu-img create -q -f qcow2 "$R$IMG/vda-base.qcow2" 4M
qemu-io -f qcow2 -c 'write -P 0xb1 0 64k' "$R$IMG/vda-base.qcow2" >/dev/null
qemu-img create -q -f raw "$R$IMG/vdd.raw" 4M
luks_create "$R$IMG/vdc.luks"
qemu-img create -q -f qcow2 -F qcow2 -u -b "$IMG/vda-base.qcow2" "$R$IMG/vda.qcow2" 4M
BS="
      <backingStore type='file'>
        <format type='qcow2'/>
        <source file='$IMG/vda-base.qcow2'/>
        <backingStore/>
      </backingStore>"
sp_config "$R" "$BS"
check_eq "backingStore: the config validates" "" "$(validate_all "$R" sp)"
x create sp b1 --disk vda -q || fail "create over an explicit backingStore"
want="<disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' discard='unmap'/>
      <source file='$IMG/vda.b1'/>
      <backingStore type='file'>
        <format type='qcow2'/>
        <source file='$IMG/vda.qcow2'/>
        <backingStore type='file'>
          <format type='qcow2'/>
          <source file='$IMG/vda-base.qcow2'/>
          <backingStore/>
        </backingStore>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>"
got=$(sed -n "/<source file='$(sed 's|/|\\/|g' <<<"$IMG")\/vda.b1'\/>/,/<\/disk>/p" "$R$SNAP_CFG/sp.xml")
check_eq "backingStore: the old image and its chain move below the overlay" \
    "$(sed -n '3,$p' <<<"$want")" "$got"
check_eq "backingStore: the new config validates" "" "$(validate_all "$R" sp)"
# The chain the config describes is the chain in the headers.
check_eq "backingStore: the headers' chain" "$IMG/vda.b1 $IMG/vda.qcow2 $IMG/vda-base.qcow2" \
    "$(echo "$IMG/vda.b1" "$(qemu-img info -U --output=json "$R$IMG/vda.b1" | jq -r '."backing-filename"')" \
        "$(qemu-img info -U --output=json "$R$IMG/vda.qcow2" | jq -r '."backing-filename"')")"
# <backingStore/> (no backing) would be false on an overlay: it goes away.
rm -rf "$R"
sp_make "$R"
sp_config "$R" "
      <backingStore/>"
x create sp b2 --disk vda -q || fail "create over <backingStore/>"
check_eq "backingStore: an empty one goes away" "0" \
    "$(xmllint --xpath "count(//devices/disk[target/@dev='vda']/backingStore)" "$R$SNAP_CFG/sp.xml")"
check_eq "backingStore: files validate" "" "$(validate_all "$R" sp)"

finish
