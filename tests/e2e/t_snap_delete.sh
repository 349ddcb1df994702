#!/usr/bin/env bash
# extsnap delete, offline, on a domain with two qcow2 disks, a raw disk and a
# readonly cdrom (lib/snap.sh's tvm), and on libvirt's own snapshots:
#  A. the issue's lifecycle: s1, writes, s2, writes, s3, writes; delete s2
#     (non-leaf in the active chain: merge), commit s1 s3, refresh; the
#     guest content at each remaining snapshot and the live content are
#     what they were (qemu-img convert of each disk taken before);
#  B. delete the current leaf, a non-current leaf (nothing merged, its
#     files deleted), a current root, a non-leaf outside the active chain;
#  C. refusals: the frozen image has a second branch (a revert with
#     children, two children, a stray overlay, another domain's disk),
#     unknown names: refused with the reason and the file, and every file
#     under the root unchanged (sha256);
#  D. --metadata and --dry-run;
#  E. libvirt 9.0's snapshots (fixtures 02-05, images made to match, under
#     --root) deleted by extsnap, also below libvirt's --no-metadata s4;
#  F. the current snapshot under a --no-metadata overlay;
#  G. a parent that loses a child (issue #4): revert s1 (s1 has a child
#     s2), create s3, then delete s2 and s3 in both orders, with refresh in
#     between, after a revert to s2, with two children and <revertDisks>, a
#     child merged away; after every step the parent's <disks> name its
#     remaining children's frozen images, the current snapshot's live
#     images are its <revertDisks> (children) or <disks> (leaf), every file
#     they name exists, and the content at every snapshot and live is kept;
#     --dry-run lists the parent's rewrite; a --no-metadata overlay below a
#     deleted leaf's frozen image goes with it; --metadata of the current
#     snapshot derives the parent's lists from the config left as it is.
# After every step: virt-xml-validate accepts the config and every snapshot
# file, qemu-img check passes on every image, 'extsnap verify' exits 0.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap_ops.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap_parent.sh"
need_cmd qemu-img qemu-io virt-xml-validate xmllint jq
export TZ=UTC

# --- A: the lifecycle --------------------------------------------------------
R=$T/a
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
declare -A AT
AT[s1]=$(all_guest_sums "$R" tvm)
x create tvm s1 -q
guest_write "$R" tvm vda 0x11 0 64k
guest_write "$R" tvm vdb 0x12 2M 64k
guest_write "$R" tvm vdc 0x13 1M 4k
AT[s2]=$(all_guest_sums "$R" tvm)
x create tvm s2 -q
guest_write "$R" tvm vda 0x21 64k 64k
guest_write "$R" tvm vdb 0x22 0 4k
guest_write "$R" tvm vdc 0x23 3M 64k
AT[s3]=$(all_guest_sums "$R" tvm)
x create tvm s3 -q
guest_write "$R" tvm vda 0x31 3M 64k
guest_write "$R" tvm vdb 0x32 1M 4k
guest_write "$R" tvm vdc 0x33 0 64k
LIVE=$(all_guest_sums "$R" tvm)
full_check "A: three snapshots" tvm 1
check_eq "A: s3's saved images hold s3's state" "${AT[s3]}" "$(saved_sums "$R" tvm s3)"

check_rc "A: delete s2 (non-leaf in the active chain)" 0 x delete tvm s2 -q
full_check "A: delete s2" tvm 1
check_eq "A: delete s2: live content unchanged" "$LIVE" "$(all_guest_sums "$R" tvm)"
check_eq "A: delete s2: content at s3 unchanged" "${AT[s3]}" "$(saved_sums "$R" tvm s3)"
check_eq "A: delete s2: content at s1 unchanged" "${AT[s1]}" "$(saved_sums "$R" tvm s1)"
check_eq "A: delete s2: s2.xml gone" "" "$(ls "$R$SNAP_DIR/tvm" | grep '^s2' || true)"
check_eq "A: delete s2: s2's overlays gone" "" "$(ls "$IMG" | grep '\.s2$' || true)"
check_eq "A: delete s2: s3's parent is s1" s1 "$(snap_parent "$R" tvm s3)"
check_eq "A: delete s2: s3 froze s1's overlay (vda)" "$SNAP_IMG/vda.s1" "$(saved_source "$R" tvm s3 vda)"
check_eq "A: delete s2: vda.s3 backed by vda.s1 (absolute)" "$SNAP_IMG/vda.s1" "$(backing_of "$IMG/vda.s3")"
check_eq "A: delete s2: vdc.s3 backing format kept" "qcow2" \
    "$(qemu-img info -U --output=json "$IMG/vdc.s3" | jq -r '."backing-filename-format"')"
check_eq "A: delete s2: s3 still current" s3 "$(current_snapshot "$R" tvm)"

check_rc "A: commit s1 s3" 0 x commit tvm s1 s3 -q
full_check "A: commit s1 s3" tvm 1
check_eq "A: commit s1 s3: live content unchanged" "$LIVE" "$(all_guest_sums "$R" tvm)"
check_eq "A: commit s1 s3: content at s1 unchanged" "${AT[s1]}" "$(saved_sums "$R" tvm s1)"
check_eq "A: commit s1 s3: s1 current" s1 "$(current_snapshot "$R" tvm)"
check_eq "A: commit s1 s3: config on s1's overlays" "$SNAP_IMG/vda.s1 $SNAP_IMG/vdc.s1" \
    "$(cfg_source "$R" tvm vda) $(cfg_source "$R" tvm vdc)"
check_eq "A: commit s1 s3: s3's files gone" "" "$(ls "$IMG" "$R$SNAP_DIR/tvm" | grep 's3' || true)"

check_rc "A: refresh" 0 x refresh tvm -q
full_check "A: refresh" tvm 1
check_eq "A: refresh: content is s1's" "${AT[s1]}" "$(all_guest_sums "$R" tvm)"

# --- B: current leaf, non-current leaf, current root, non-leaf off the chain --
R=$T/b
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
AT[s1]=$(all_guest_sums "$R" tvm)
x create tvm s1 -q
guest_write "$R" tvm vda 0x41 0 64k
AT[s2]=$(all_guest_sums "$R" tvm)
x create tvm s2 -q
guest_write "$R" tvm vdb 0x42 0 64k
AT[s3]=$(all_guest_sums "$R" tvm)
x create tvm s3 -q
guest_write "$R" tvm vdc 0x43 0 64k
LIVE=$(all_guest_sums "$R" tvm)

check_rc "B: delete the current leaf s3" 0 x delete tvm s3 -q
full_check "B: delete current s3" tvm 1
check_eq "B: delete s3: live content unchanged" "$LIVE" "$(all_guest_sums "$R" tvm)"
check_eq "B: delete s3: s2 current" s2 "$(current_snapshot "$R" tvm)"
check_eq "B: delete s3: config back on s2's overlays (the older files survive)" \
    "$SNAP_IMG/vda.s2 $SNAP_IMG/vdb.s2 $SNAP_IMG/vdc.s2" \
    "$(cfg_source "$R" tvm vda) $(cfg_source "$R" tvm vdb) $(cfg_source "$R" tvm vdc)"
check_eq "B: delete s3: s2's <disks> are the live images" "$SNAP_IMG/vdc.s2" \
    "$(xmllint --xpath "string(//disks/disk[@name='vdc']/source/@file)" "$R$SNAP_DIR/tvm/s2.xml")"

# A non-current leaf: revert to s1 leaves s2 behind.
check_rc "B: revert s1" 0 x revert tvm s1 -q
guest_write "$R" tvm vda 0x44 2M 64k
LIVE=$(all_guest_sums "$R" tvm)
s2_frozen=$(saved_source "$R" tvm s2 vda)
check_rc "B: delete the non-current leaf s2" 0 x delete tvm s2 -q
full_check "B: delete non-current s2" tvm 1
check_eq "B: delete s2: live content unchanged" "$LIVE" "$(all_guest_sums "$R" tvm)"
check_eq "B: delete s2: content at s1 unchanged" "${AT[s1]}" "$(saved_sums "$R" tvm s1)"
[[ ! -e $R$s2_frozen ]] || fail "B: delete s2: its frozen image $s2_frozen (held only its state) was kept"
check_eq "B: delete s2: s1 left childless gets its <revertDisks> as <disks>" \
    "0 $(cfg_source "$R" tvm vda)" \
    "$(grep -c '<revertDisks>' "$R$SNAP_DIR/tvm/s1.xml" || true) $(xmllint --xpath "string(//disks/disk[@name='vda']/source/@file)" "$R$SNAP_DIR/tvm/s1.xml")"
for f in vda.qcow2 vdb.qcow2 vdc.raw cd.iso; do
    [[ -e $IMG/$f ]] || fail "B: delete s2: base image $f is gone"
done

check_rc "B: delete the current root s1" 0 x delete tvm s1 -q
full_check "B: delete root s1" tvm 0
check_eq "B: delete s1: live content unchanged" "$LIVE" "$(all_guest_sums "$R" tvm)"
check_eq "B: delete s1: config on the base images" "$SNAP_IMG/vda.qcow2 $SNAP_IMG/vdc.raw raw" \
    "$(cfg_source "$R" tvm vda) $(cfg_source "$R" tvm vdc) $(cfg_format "$R" tvm vdc)"
check_eq "B: delete s1: only the base images are left" "cd.iso vda.qcow2 vdb.qcow2 vdc.raw" \
    "$(ls "$IMG" | tr '\n' ' ' | sed 's/ $//')"

# A non-leaf outside the active chain (libvirt refuses it): s0 -> p -> q -> q2,
# then the domain went back to s0 and took r there.
x create tvm s0 -q
guest_write "$R" tvm vda 0x50 0 4k
x create tvm p -q
guest_write "$R" tvm vda 0x51 0 64k
x create tvm q -q
guest_write "$R" tvm vda 0x52 64k 64k
x create tvm q2 -q
guest_write "$R" tvm vdb 0x53 0 64k
x revert tvm s0 -q
x create tvm r -q
guest_write "$R" tvm vdc 0x54 0 64k
LIVE=$(all_guest_sums "$R" tvm)
AT[q]=$(saved_sums "$R" tvm q)
AT[q2]=$(saved_sums "$R" tvm q2)
check_rc "B: delete p (non-leaf, not in the active chain)" 0 x delete tvm p -q
full_check "B: delete p" tvm 1
check_eq "B: delete p: live content unchanged" "$LIVE" "$(all_guest_sums "$R" tvm)"
check_eq "B: delete p: content at q unchanged" "${AT[q]}" "$(saved_sums "$R" tvm q)"
check_eq "B: delete p: content at q2 unchanged" "${AT[q2]}" "$(saved_sums "$R" tvm q2)"
check_eq "B: delete p: q's parent is s0" s0 "$(snap_parent "$R" tvm q)"
check_eq "B: delete p: r still current" r "$(current_snapshot "$R" tvm)"
check_eq "B: delete p: q froze s0's overlay" "$SNAP_IMG/vda.s0" "$(saved_source "$R" tvm q vda)"

# --- C: refusals ---------------------------------------------------------------
R=$T/c
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
x create tvm s1 -q
guest_write "$R" tvm vda 0x61 0 64k
x create tvm s2 -q
guest_write "$R" tvm vda 0x62 0 64k
x revert tvm s1 -q                     # s1 current, its <revertDisks> a second branch
guest_write "$R" tvm vda 0x63 0 64k

# refused CMD... : exit 1, the message names REGEX, nothing under R changed.
refused() {
    local what=$1 regex=$2 before err rc=0
    shift 2
    before=$(root_sums "$R")
    err=$(x "$@" 2>&1) || rc=$?
    check_eq "$what: exit status" 1 "$rc"
    grep -Eq "$regex" <<<"$err" || fail "$what: the refusal does not say /$regex/: $err"
    check_eq "$what: every file under the root unchanged" "$before" "$(root_sums "$R")"
}
branch=$(cfg_source "$R" tvm vda)
refused "C: delete s1 (current, revert branch in <revertDisks>)" \
    "backing file of 2 images.*${branch//./\\.}.*overlay made by reverting to snapshot s1" \
    delete tvm s1
x create tvm s3 -q                     # s1 has two children now: s2 and s3
refused "C: delete s1 (two children)" "snapshot s2's frozen image.*snapshot s3's frozen image|snapshot s3's frozen image.*snapshot s2's frozen image" \
    delete tvm s1
refused "C: unknown snapshot" "no snapshot named 'nope'" delete tvm nope
# The core's preconditions: a running VM, a running libvirtd.
sleep 60 &
vm_pid=$!
echo "$vm_pid" >"$R/run/libvirt/qemu/tvm.pid"
refused "C: delete while the VM runs" "running|runs" delete tvm s2
refused "C: commit while the VM runs" "running|runs" commit tvm s1 s2
rm "$R/run/libvirt/qemu/tvm.pid"
kill "$vm_pid" 2>/dev/null || true
cp "$(command -v sleep)" "$T/libvirtd"
"$T/libvirtd" 60 &
lv_pid=$!
echo "$lv_pid" >"$R/run/libvirtd.pid"
refused "C: delete while libvirtd runs" "libvirtd" delete tvm s2
rm "$R/run/libvirtd.pid"
kill "$lv_pid" 2>/dev/null || true
wait 2>/dev/null || true
full_check "C: after the refusals" tvm 1

# A stray overlay (no libvirt file names it) over s3's frozen image.
R=$T/c2
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
x create tvm s1 -q
guest_write "$R" tvm vda 0x71 0 64k
x create tvm s2 -q
qemu-img create -q -f qcow2 -F qcow2 -b "$SNAP_IMG/vda.s1" -u "$IMG/stray.qcow2" 4M
refused "C: delete s2 (a stray overlay uses its frozen image)" \
    "stray\.qcow2 \(not named by any libvirt file\)" delete tvm s2
# Another domain's disk is an overlay of tvm's base image.
rm -f "$IMG/stray.qcow2"
mkdir -p "$R/var/lib/libvirt/images/other"
qemu-img create -q -f qcow2 -F qcow2 -b "$SNAP_IMG/vda.qcow2" -u "$R/var/lib/libvirt/images/other/o.qcow2" 4M
mkdir -p "$T/tmpl$SNAP_CFG"
snap_write_tvm "$T/tmpl"
sed -e 's/<name>tvm</<name>other</' -e 's/6b1f7f4e-2f0c-4c43-9a55-3c1d2f6b9a10/6b1f7f4e-2f0c-4c43-9a55-3c1d2f6b9a11/' \
    -e "s|$SNAP_IMG/vda.qcow2|/var/lib/libvirt/images/other/o.qcow2|" \
    -e "/vdb.qcow2\|vdc.raw\|cd.iso/d" "$T/tmpl$SNAP_CFG/tvm.xml" >"$R$SNAP_CFG/other.xml"
refused "C: commit base s2 into a base image another domain uses" "used by domain other" commit tvm base s2
check_rc "C: delete s2 (merge into vda.s1, which only tvm uses)" 0 x delete tvm s2 -q
full_check "C: delete s2 beside another domain" tvm 1

# --- D: --metadata, --dry-run --------------------------------------------------
R=$T/d
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
x create tvm s1 -q
guest_write "$R" tvm vda 0x81 0 64k
x create tvm s2 -q
guest_write "$R" tvm vda 0x82 0 64k
x create tvm s3 -q
before=$(root_sums "$R")
check_rc "D: delete --dry-run" 0 x delete tvm s2 --dry-run >/dev/null
plan=$(x delete tvm s2 --dry-run --output=json)
check_eq "D: dry-run json: flagged, 3 merges, 3 rebases" "true 3 3" \
    "$(jq -r '[."dry-run", (.merges|length), (.rebases|length)] | map(tostring) | join(" ")' <<<"$plan")"
check_eq "D: dry-run json: merge of vda" "$SNAP_IMG/vda.s2 -> $SNAP_IMG/vda.s1" \
    "$(jq -r '.merges[] | select(.disk=="vda") | .top + " -> " + .base' <<<"$plan")"
check_eq "D: dry-run changes nothing" "$before" "$(root_sums "$R")"
isums=$(images_sums "$R")
check_rc "D: delete s2 --metadata" 0 x delete tvm s2 --metadata -q
check_eq "D: --metadata: images untouched" "$isums" "$(images_sums "$R")"
check_eq "D: --metadata: s3 re-parented to s1" s1 "$(snap_parent "$R" tvm s3)"
check_eq "D: --metadata: s2.xml gone" "" "$(ls "$R$SNAP_DIR/tvm" | grep '^s2' || true)"
check_eq "D: --metadata: validates" "" "$(validate_all "$R" tvm)"
check_rc "D: delete s3 --metadata (current)" 0 x delete tvm s3 --metadata -q
check_eq "D: --metadata of the current: parent current" s1 "$(current_snapshot "$R" tvm)"
check_eq "D: --metadata: config untouched" "$SNAP_IMG/vda.s3" "$(cfg_source "$R" tvm vda)"

# --- E: libvirt's own snapshots -------------------------------------------------
L=/var/lib/libvirt/images/lvtest
LC=/var/lib/libvirt/images/lvtest-custom
ov() {
    local size
    size=$(qemu-img info -U -f "$4" --output=json "$1$3" | jq -r '."virtual-size"')
    qemu-img create -q -f qcow2 -u -b "$3" -F "$4" "$1$2" "$size"
}
# lv_setup R [s4]: libvirt's state after s3 (fixture 04), or after the
# --no-metadata s4 (fixture 05: overlays over s3's live images, no metadata).
lv_setup() {
    R=$1
    snap_root_new "$R"
    mkdir -p "$R$L" "$R$LC" "$R/dev" "$R$SNAP_DIR/lvtest"
    qemu-img create -q -f qcow2 "$R$L/vda.qcow2" 4M
    qemu-img create -q -f qcow2 "$R$L/sdb.qcow2" 4M
    qemu-img create -q -f raw "$R$L/vdc.raw" 2M
    qemu-img create -q -f raw "$R$L/cd.iso" 1M
    qemu-img create -q -f raw "$R/dev/loop0" 2M
    qemu-io -f qcow2 -c 'write -P 0x01 0 64k' "$R$L/vda.qcow2" >/dev/null
    ov "$R" $L/vda.s1 $L/vda.qcow2 qcow2
    ov "$R" $L/vdc.s1 $L/vdc.raw raw
    ov "$R" $L/vdd-s1.qcow2 /dev/loop0 raw
    ov "$R" $L/sdb.s1 $L/sdb.qcow2 qcow2
    qemu-io -c 'write -P 0x11 64k 64k' "$(chain_spec "$R" $L/vda.s1 qcow2)" >/dev/null
    qemu-io -c 'write -P 0x13 64k 64k' "$(chain_spec "$R" $L/vdd-s1.qcow2 qcow2)" >/dev/null
    ov "$R" $L/vda.s2 $L/vda.s1 qcow2
    ov "$R" $L/vdc.s2 $L/vdc.s1 qcow2
    ov "$R" $L/vdd-s1.s2 $L/vdd-s1.qcow2 qcow2
    ov "$R" $L/sdb.s2 $L/sdb.s1 qcow2
    qemu-io -c 'write -P 0x21 128k 64k' "$(chain_spec "$R" $L/vda.s2 qcow2)" >/dev/null
    qemu-io -c 'write -P 0x22 0 64k' "$(chain_spec "$R" $L/vdc.s2 qcow2)" >/dev/null
    ov "$R" $LC/vda-custom.qcow2 $L/vda.s2 qcow2
    ov "$R" $L/vdd-s1.s3 $L/vdd-s1.s2 qcow2
    ov "$R" $L/sdb.s3 $L/sdb.s2 qcow2
    qemu-io -c 'write -P 0x31 0 64k' "$(chain_spec "$R" $LC/vda-custom.qcow2 qcow2)" >/dev/null
    qemu-io -c 'write -P 0x32 1M 64k' "$(chain_spec "$R" $L/vdc.s2 qcow2)" >/dev/null
    install -m 600 "$(fixture 04-domain-after-s3.xml)" "$R$SNAP_CFG/lvtest.xml"
    install -m 600 "$(fixture 03-snapshot-s1-after-s2.xml)" "$R$SNAP_DIR/lvtest/s1.xml"
    install -m 600 "$(fixture 04-snapshot-s2-after-s3.xml)" "$R$SNAP_DIR/lvtest/s2.xml"
    install -m 600 "$(fixture 04-snapshot-s3.xml)" "$R$SNAP_DIR/lvtest/s3.xml"
    if [[ ${2:-} == s4 ]]; then
        ov "$R" $LC/vda-custom.s4 $LC/vda-custom.qcow2 qcow2
        ov "$R" $L/vdc.s4 $L/vdc.s2 qcow2
        ov "$R" $L/vdd-s1.s4 $L/vdd-s1.s3 qcow2
        ov "$R" $L/sdb.s4 $L/sdb.s3 qcow2
        qemu-io -c 'write -P 0x41 192k 64k' "$(chain_spec "$R" $LC/vda-custom.s4 qcow2)" >/dev/null
        qemu-io -c 'write -P 0x42 0 4k' "$(chain_spec "$R" $L/sdb.s4 qcow2)" >/dev/null
        install -m 600 "$(fixture 05-domain-after-s4-nometadata.xml)" "$R$SNAP_CFG/lvtest.xml"
    fi
}
lv_setup "$T/e"
DISKS="vda vdc vdd sdb"
lv_live() {
    local t out=""
    for t in $DISKS; do out+="$t=$(guest_sum "$R" lvtest $t) "; done
    echo "${out% }"
}
full_check "E: libvirt's s1..s3" lvtest 1
LIVE=$(lv_live)
S3=$(saved_sums "$R" lvtest s3 "vda vdc sdb")
check_rc "E: delete libvirt's s2 (non-leaf in the active chain)" 0 x delete lvtest s2 -q
full_check "E: delete s2" lvtest 1
check_eq "E: delete s2: live content unchanged" "$LIVE" "$(lv_live)"
check_eq "E: delete s2: content at s3 unchanged" "$S3" "$(saved_sums "$R" lvtest s3 "vda vdc sdb")"
check_eq "E: delete s2: vdc (not in s3) back on vdc.s1" "$L/vdc.s1" "$(cfg_source "$R" lvtest vdc)"
check_eq "E: delete s2: vda-custom.qcow2 backed by vda.s1" "$L/vda.s1" "$(backing_of "$R$LC/vda-custom.qcow2")"
check_rc "E: delete libvirt's s3 (current leaf)" 0 x delete lvtest s3 -q
full_check "E: delete s3" lvtest 1
check_eq "E: delete s3: live content unchanged" "$LIVE" "$(lv_live)"
check_eq "E: delete s3: s1 current" s1 "$(current_snapshot "$R" lvtest)"
refused "E: delete s1 (vdd's image below it is a block device)" "block device /dev/loop0" \
    delete lvtest s1

# After libvirt's --no-metadata s4 (fixture 05): its overlays sit on s3's.
lv_setup "$T/e2" s4
full_check "E2: libvirt's s1..s3 + --no-metadata s4" lvtest 1
LIVE=$(lv_live)
check_rc "E2: delete s3 (current; s4's overlays above its overlays)" 0 x delete lvtest s3 -q
full_check "E2: delete s3" lvtest 1
check_eq "E2: delete s3: live content unchanged" "$LIVE" "$(lv_live)"
check_eq "E2: delete s3: the --no-metadata overlays stay live" "$LC/vda-custom.s4 $L/sdb.s4" \
    "$(cfg_source "$R" lvtest vda) $(cfg_source "$R" lvtest sdb)"
check_eq "E2: delete s3: rebased onto s3's frozen images" "$L/vda.s2 $L/sdb.s2" \
    "$(backing_of "$R$LC/vda-custom.s4") $(backing_of "$R$L/sdb.s4")"
check_rc "E2: delete s2 (now current)" 0 x delete lvtest s2 -q
full_check "E2: delete s2" lvtest 1
check_eq "E2: delete s2: live content unchanged" "$LIVE" "$(lv_live)"
check_eq "E2: delete s2: vdc.s4 rebased onto vdc.s1" "$L/vdc.s1" "$(backing_of "$R$L/vdc.s4")"

# --- F: a --no-metadata overlay on top of the current snapshot -------------------
R=$T/f
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
x create tvm s1 -q
guest_write "$R" tvm vda 0x91 0 64k
x create tvm s2 -q
guest_write "$R" tvm vda 0x92 64k 64k
x create tvm n --no-metadata -q
guest_write "$R" tvm vda 0x93 128k 64k
guest_write "$R" tvm vdc 0x94 0 64k
LIVE=$(all_guest_sums "$R" tvm)
full_check "F: s1, s2, --no-metadata n" tvm 1
check_rc "F: delete s2 (current, under the --no-metadata overlays)" 0 x delete tvm s2 -q
full_check "F: delete s2" tvm 1
check_eq "F: live content unchanged" "$LIVE" "$(all_guest_sums "$R" tvm)"
check_eq "F: vda.n stays live, rebased onto vda.s1" "$SNAP_IMG/vda.n $SNAP_IMG/vda.s1" \
    "$(cfg_source "$R" tvm vda) $(backing_of "$IMG/vda.n")"
check_eq "F: s1 current" s1 "$(current_snapshot "$R" tvm)"

# --- G: a parent that loses a child (issue #4) -----------------------------------
# The branch: s1 -> s2, revert s1, s3: s1 has the children s2 and s3, and its
# <disks> name s2's frozen images (libvirt clears <revertDisks> at create).
pt_new g
pt_step create s1
pt_write
pt_step create s2
pt_write
pt_step revert s1
pt_write
pt_step create s3
pt_write
check_eq "g: s1's <disks> name s2's frozen image" "$(saved_source "$R" tvm s2 vda)" \
    "$(pt_list s1 disks vda)"
pt_save branch

# G1, the issue's demo: the non-current leaf s2 first (its files are deleted,
# s1's <disks> named them), then the current s3.
pt_load branch g1
plan=$(x delete tvm s2 --dry-run --output=json)
s1w=$(jq -c '."xml-files"[] | select(.snapshot=="s1")' <<<"$plan")
check_eq "g1: dry run: s1.xml is rewritten, its <disks> on s3's frozen image" "update 1" \
    "$(jq -r .action <<<"$s1w") $(jq -r .summary <<<"$s1w" |
        grep -cF "vda -> $(saved_source "$R" tvm s3 vda) (used by child s3)")"
pt_step delete s2
check_eq "g1: delete s2: s1's <disks> name s3's frozen image" "$(saved_source "$R" tvm s3 vda)" \
    "$(pt_list s1 disks vda)"
pt_step delete s3
check_eq "g1: delete s3: s1 current, <disks> on the live image" "s1 $(cfg_source "$R" tvm vdc)" \
    "$(current_snapshot "$R" tvm) $(pt_list s1 disks vdc)"

# G2: the current s3 first (merged into the revert's overlay: s1 current with
# a child, so the live images go into <revertDisks>), then s2.
pt_load branch g2
pt_step delete s3
check_eq "g2: delete s3: s1's <revertDisks> hold the live image, <disks> still s2's" \
    "$(cfg_source "$R" tvm vda) $(saved_source "$R" tvm s2 vda)" \
    "$(pt_list s1 revertDisks vda) $(pt_list s1 disks vda)"
pt_write
pt_step delete s2
check_eq "g2: delete s2: no <revertDisks> left" 0 "$(grep -c '<revertDisks>' "$R$SNAP_DIR/tvm/s1.xml" || true)"

# G3: refresh between the deletes.
pt_load branch g3
pt_step refresh
pt_write
pt_step delete s2
pt_write
pt_step refresh
pt_step delete s3

# G4: back to s2 (a leaf: its <disks> replaced), then s3 and s1 go.
pt_load branch g4
pt_step revert s2
pt_write
pt_step delete s3
pt_step delete s1
check_eq "g4: delete s1: s2 is a current root" "s2 " "$(current_snapshot "$R" tvm) $(snap_parent "$R" tvm s2)"

# G5: s1 current with two children and <revertDisks>.
pt_load branch g5
pt_step revert s1
pt_write
pt_step delete s2
check_eq "g5: delete s2: <disks> on s3's frozen image, <revertDisks> live" \
    "$(saved_source "$R" tvm s3 vdb) $(cfg_source "$R" tvm vdb)" \
    "$(pt_list s1 disks vdb) $(pt_list s1 revertDisks vdb)"
pt_write
pt_step delete s3

# G6: a child merged away (s3 -> s4: s3 not current, with a child) after the
# branch s1's <disks> named went; then a new branch at s1.
pt_load branch g6
pt_step create s4
pt_write
pt_step delete s2
pt_step delete s3
check_eq "g6: delete s3: s4 froze s3's image, which s1's <disks> name" \
    "s1 $(pt_list s1 disks vda)" "$(snap_parent "$R" tvm s4) $(saved_source "$R" tvm s4 vda)"
pt_step revert s1
pt_write
pt_step create s5
pt_step delete s4

# G7: s2 froze a --no-metadata overlay above s1's: once s2 is gone nothing
# names either (s1's <disks> move to s3's), so both go, and verify --strict
# finds no unreferenced image.
pt_new g7
pt_step create s1
pt_write
check_rc "g7: create --no-metadata n" 0 x create tvm n --no-metadata -q
pt_write
pt_step create s2
pt_write
pt_step revert s1
pt_write
pt_step create s3
pt_step delete s2
check_eq "g7: delete s2: s1's overlays and the --no-metadata ones are gone" "" \
    "$(ls "$IMG" | grep -E '\.(s1|n)$' || true)"
check_rc "g7: verify --strict (no unreferenced image)" 0 x verify tvm --strict -q
pt_step delete s3

# G8: delete --metadata of the current s3 (the config stays on s3's overlays,
# above s3's frozen image E): s1 becomes current with the child s2, so E goes
# into its <revertDisks>; no image changes; then s2 goes and E is s1's <disks>.
pt_load branch g8
e3=$(saved_source "$R" tvm s3 vda)
isums=$(images_sums "$R")
check_rc "g8: delete s3 --metadata" 0 x delete tvm s3 --metadata -q
full_check "g8: delete s3 --metadata" tvm 1
check_eq "g8: --metadata: images untouched" "$isums" "$(images_sums "$R")"
check_eq "g8: s1 current, <disks> s2's, <revertDisks> the image below the config's" \
    "s1 $(saved_source "$R" tvm s2 vda) $e3 $SNAP_IMG/vda.s3" \
    "$(current_snapshot "$R" tvm) $(pt_list s1 disks vda) $(pt_list s1 revertDisks vda) $(cfg_source "$R" tvm vda)"
check_rc "g8: delete s2" 0 x delete tvm s2 -q
full_check "g8: delete s2" tvm 1
check_eq "g8: delete s2: s1's <disks> on E, no <revertDisks>" "$e3 0" \
    "$(pt_list s1 disks vda) $(grep -c '<revertDisks>' "$R$SNAP_DIR/tvm/s1.xml" || true)"
check_eq "g8: live content unchanged" "$PT_LIVE" "$(all_guest_sums "$R" tvm "$PT_TARGETS")"

finish