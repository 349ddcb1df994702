#!/usr/bin/env bash
# extsnap and libvirt's own files (tests/fixtures/domxml/libvirt-9.0, written
# by libvirt 9.0 on domain lvtest):
#  A. From libvirt's state after s1, 'extsnap create lvtest s2 --description
#     "second snap"' writes what libvirt wrote for the same command: the same
#     config and s1.xml byte for byte, the same s2.xml but for the creation
#     time and the order of two <controller>s in the embedded <domain>
#     (libvirt reorders them when it formats; extsnap embeds the config as it
#     is), and overlays like libvirt's (qemu-img info of the fixtures).
#  B. Snapshots libvirt made (s1, s2, s3) are listed and reverted by extsnap.
# Images are made with qemu-img to match the fixtures' chains; their paths
# are the fixtures' own (/var/lib/libvirt/images/lvtest/...), under --root.
# vdd is the block device /dev/loop0 in the fixtures: under --root it is a
# regular raw file at <root>/dev/loop0 (images only need a backing file
# there). libvirt would refuse to revert to s1, whose saved vdd is a block
# device, and so does extsnap (checked); after changing that disk to a file
# in s1.xml, revert to s1 works too.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io virt-xml-validate xmllint jq

L=/var/lib/libvirt/images/lvtest
LC=/var/lib/libvirt/images/lvtest-custom

# ov R PATH BACKING FMT: an overlay as libvirt makes it (absolute backing).
ov() {
    local size
    size=$(qemu-img info -U -f "$4" --output=json "$1$3" | jq -r '."virtual-size"')
    qemu-img create -q -f qcow2 -u -b "$3" -F "$4" "$1$2" "$size"
}

# base_images R: the images before s1 (small sizes; libvirt's were larger).
base_images() {
    local r=$1
    snap_root_new "$r"
    mkdir -p "$r$L" "$r$LC" "$r/dev"
    qemu-img create -q -f qcow2 "$r$L/vda.qcow2" 4M
    qemu-img create -q -f qcow2 "$r$L/sdb.qcow2" 4M
    qemu-img create -q -f raw "$r$L/vdc.raw" 2M
    qemu-img create -q -f raw "$r$L/cd.iso" 1M
    qemu-img create -q -f raw "$r/dev/loop0" 2M
    qemu-io -f qcow2 -c 'write -P 0x01 0 64k' "$r$L/vda.qcow2" >/dev/null
    qemu-io -f raw -c 'write -P 0x02 0 64k' "$r/dev/loop0" >/dev/null
}

s1_images() {
    local r=$1
    ov "$r" $L/vda.s1 $L/vda.qcow2 qcow2
    ov "$r" $L/vdc.s1 $L/vdc.raw raw
    ov "$r" $L/vdd-s1.qcow2 /dev/loop0 raw
    ov "$r" $L/sdb.s1 $L/sdb.qcow2 qcow2
}

put() { install -m 600 "$(fixture "$1")" "$2"; }

# --- A: create s2 as libvirt did -------------------------------------------
R=$T/a
base_images "$R"
s1_images "$R"
put 02-domain-after-s1.xml "$R$SNAP_CFG/lvtest.xml"
mkdir -p "$R$SNAP_DIR/lvtest"
put 02-snapshot-s1.xml "$R$SNAP_DIR/lvtest/s1.xml"
check_rc "A: create s2 over libvirt's s1" 0 x create lvtest s2 --description "second snap" -q
check_eq "A: config = libvirt's after s2" "" \
    "$(diff "$(fixture 03-domain-after-s2.xml)" "$R$SNAP_CFG/lvtest.xml" || true)"
check_eq "A: s1.xml = libvirt's rewritten s1" "" \
    "$(diff "$(fixture 03-snapshot-s1-after-s2.xml)" "$R$SNAP_DIR/lvtest/s1.xml" || true)"
S2=$R$SNAP_DIR/lvtest/s2.xml
outside() { sed -e '/^  <domain /,/^  <\/domain>/d' -e 's/<creationTime>[0-9]*</<creationTime>T</' "$1"; }
inside() { sed -n '/^  <domain /,/^  <\/domain>/p' "$1" | sort; }
check_eq "A: s2.xml = libvirt's outside <domain> (creation time aside)" "" \
    "$(diff <(outside "$(fixture 03-snapshot-s2.xml)") <(outside "$S2") || true)"
check_eq "A: s2.xml's <domain> = libvirt's, line order aside" "" \
    "$(diff <(inside "$(fixture 03-snapshot-s2.xml)") <(inside "$S2") || true)"
ct=$(xmllint --xpath 'string(//creationTime)' "$S2")
now=$(date +%s)
((ct <= now && ct > now - 600)) || fail "A: creationTime $ct is not now ($now)"
check_eq "A: s2.xml mode" 600 "$(stat -c %a "$S2")"
# What qemu-img info showed of libvirt's overlays (shared fixtures
# 03-qemu-img-info-*.json, not copied into the repo): qcow2, 64 KiB
# clusters, compat 1.1, backing name = the config's absolute path.
LV_SPECIFIC='{"type":"qcow2","data":{"compat":"1.1","compression-type":"zlib","lazy-refcounts":false,"refcount-bits":16,"corrupt":false,"extended-l2":false}}'
for pair in vda.s2:$L/vda.s1:qcow2 vdc.s2:$L/vdc.s1:qcow2 vdd-s1.s2:$L/vdd-s1.qcow2:qcow2 \
    sdb.s2:$L/sdb.s1:qcow2; do
    IFS=: read -r img back bfmt <<<"$pair"
    mine=$(qemu-img info -U --output=json "$R$L/$img")
    check_eq "A: $img as libvirt's" "qcow2 $back $bfmt 65536 false" \
        "$(jq -r '[.format, ."backing-filename", ."backing-filename-format", ."cluster-size", ."dirty-flag"] | map(tostring) | join(" ")' <<<"$mine")"
    check_eq "A: $img format-specific as libvirt's" "$LV_SPECIFIC" "$(jq -c '."format-specific"' <<<"$mine")"
    check_eq "A: $img size = its backing's" \
        "$(qemu-img info -U --output=json "$R$back" | jq '."virtual-size"')" "$(jq '."virtual-size"' <<<"$mine")"
done
check_eq "A: validates" "" "$(validate_all "$R" lvtest)"

# --- B: list and revert libvirt's s1, s2, s3 ---------------------------------
R=$T/b
base_images "$R"
s1_images "$R"
qemu-io -c 'write -P 0x11 64k 64k' "$(chain_spec "$R" $L/vda.s1 qcow2)" >/dev/null
qemu-io -c 'write -P 0x12 0 64k' "$(chain_spec "$R" $L/vdc.s1 qcow2)" >/dev/null
qemu-io -c 'write -P 0x13 64k 64k' "$(chain_spec "$R" $L/vdd-s1.qcow2 qcow2)" >/dev/null
qemu-io -c 'write -P 0x14 0 64k' "$(chain_spec "$R" $L/sdb.s1 qcow2)" >/dev/null
ov "$R" $L/vda.s2 $L/vda.s1 qcow2
ov "$R" $L/vdc.s2 $L/vdc.s1 qcow2
ov "$R" $L/vdd-s1.s2 $L/vdd-s1.qcow2 qcow2
ov "$R" $L/sdb.s2 $L/sdb.s1 qcow2
qemu-io -c 'write -P 0x21 128k 64k' "$(chain_spec "$R" $L/vda.s2 qcow2)" >/dev/null
qemu-io -c 'write -P 0x23 128k 64k' "$(chain_spec "$R" $L/vdd-s1.s2 qcow2)" >/dev/null
ov "$R" $LC/vda-custom.qcow2 $L/vda.s2 qcow2
ov "$R" $L/vdd-s1.s3 $L/vdd-s1.s2 qcow2
ov "$R" $L/sdb.s3 $L/sdb.s2 qcow2
qemu-io -c 'write -P 0x31 0 64k' "$(chain_spec "$R" $LC/vda-custom.qcow2 qcow2)" >/dev/null
qemu-io -c 'write -P 0x32 1M 64k' "$(chain_spec "$R" $L/vdc.s2 qcow2)" >/dev/null
put 04-domain-after-s3.xml "$R$SNAP_CFG/lvtest.xml"
mkdir -p "$R$SNAP_DIR/lvtest"
put 03-snapshot-s1-after-s2.xml "$R$SNAP_DIR/lvtest/s1.xml"
put 04-snapshot-s2-after-s3.xml "$R$SNAP_DIR/lvtest/s2.xml"
put 04-snapshot-s3.xml "$R$SNAP_DIR/lvtest/s3.xml"
check_eq "B: setup validates" "" "$(validate_all "$R" lvtest)"

json=$(x list lvtest --output=json)
check_eq "B: list names" "s1 s2 s3" "$(jq -r '[.snapshots[].name] | join(" ")' <<<"$json")"
check_eq "B: list current" s3 "$(jq -r .current <<<"$json")"
check_eq "B: s3 leaves vdc out" no "$(jq -r '.snapshots[2].disks[] | select(.name=="vdc") | .snapshot' <<<"$json")"
check_eq "B: tree" $'s1\n  |\n  +- s2\n      |\n      +- s3 (current)' "$(x list lvtest --tree | sed '/^ *$/d')"

DISKS="vda vdc vdd sdb"
# expected R SNAP: each disk's content in the snapshot's saved images, now.
expected() {
    local f=$R$SNAP_DIR/lvtest/$1.xml t src fmt out=""
    for t in $DISKS; do
        src=$(xmllint --xpath "string(//domain/devices/disk[target/@dev='$t']/source/@file | //domain/devices/disk[target/@dev='$t']/source/@dev)" "$f")
        fmt=$(xmllint --xpath "string(//domain/devices/disk[target/@dev='$t']/driver/@type)" "$f")
        local tmp=$T/exp.raw
        qemu-img convert -U -O raw "$(chain_spec "$R" "$src" "$fmt")" "$tmp"
        out+="$t=$(sha256sum <"$tmp" | cut -d' ' -f1) "
        rm -f "$tmp"
    done
    echo "${out% }"
}
actual() {
    local t out=""
    for t in $DISKS; do out+="$t=$(guest_sum "$R" lvtest $t) "; done
    echo "${out% }"
}
after() {
    check_eq "B: $1: validates" "" "$(validate_all "$R" lvtest)"
    check_eq "B: $1: images pass qemu-img check" "" "$(check_images "$R")"
    check_eq "B: $1: current" "$2" "$(current_snapshot "$R" lvtest)"
}

want=$(expected s2)
check_rc "B: revert libvirt's s2" 0 x revert lvtest s2 -q
check_eq "B: revert s2: content of s2's images" "$want" "$(actual)"
after "revert s2" s2
for f in $LC/vda-custom.qcow2 $L/vdd-s1.s3 $L/sdb.s3; do
    [[ ! -e $R$f ]] || fail "B: revert s2: s3's live overlay $f was kept"
done
[[ -e $R$L/vdc.s2 ]] || fail "B: revert s2: vdc.s2 (s3's saved vdc image) was deleted"

want=$(expected s3)
check_rc "B: revert libvirt's s3" 0 x revert lvtest s3 -q
check_eq "B: revert s3: content of s3's images" "$want" "$(actual)"
after "revert s3" s3
check_eq "B: revert s3: vdc (not in s3) gets an overlay over vdc.s2" "$L/vdc.s2" \
    "$(qemu-img info -U --output=json "$R$(cfg_source "$R" lvtest vdc)" | jq -r '."backing-filename"')"

before=$(root_sums "$R")
err=$(x revert lvtest s1 2>&1) && fail "B: revert s1 (saved vdd is a block device) was not refused"
grep -q "block device" <<<"$err" || fail "B: revert s1 refusal does not say why: $err"
check_eq "B: refused revert s1 changed nothing" "$before" "$(root_sums "$R")"

sed -i -e "s|<disk type='block' device='disk'>|<disk type='file' device='disk'>|" \
    -e "s|<source dev='/dev/loop0'/>|<source file='/dev/loop0'/>|" "$R$SNAP_DIR/lvtest/s1.xml"
want=$(expected s1)
check_rc "B: revert s1 (vdd a file)" 0 x revert lvtest s1 -q
check_eq "B: revert s1: content of s1's images" "$want" "$(actual)"
after "revert s1" s1
qemu-io -c 'write -P 0x55 0 1M' "$(chain_spec "$R" "$(cfg_source "$R" lvtest sdb)" qcow2)" >/dev/null
check_rc "B: refresh" 0 x refresh lvtest -q
check_eq "B: refresh: content of s1's images" "$want" "$(actual)"
after "refresh" s1
chain=$(x disks lvtest --chain --output=json | jq -r '.disks[] | select(.target=="vdd") | [.chain[].filename] | join(" ")')
check_eq "B: disks --chain of vdd" "$(cfg_source "$R" lvtest vdd) /dev/loop0" "$chain"

finish
