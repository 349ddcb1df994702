#!/usr/bin/env bash
# Snapshot lifecycle on a domain with two qcow2 disks, a raw disk and a
# readonly cdrom: create s1..s3 with guest writes between them, then revert
# (twice to the same snapshot), refresh, branch, revert to base. After every
# step: the config and every snapshot file validate as they are, every image
# passes qemu-img check, snapshot files have libvirt's layout (fixtures), and
# the guest content of every disk is what it was at the snapshot (qemu-img
# convert of each disk, saved at each step, is the reference).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io virt-xml-validate xmllint jq
export TZ=UTC

R=$T/root
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
SD=$R$SNAP_DIR/tvm

# The checks made after every step.
after_step() {
    local what=$1 bad f
    bad=$(validate_all "$R" tvm)
    check_eq "$what: config and snapshot files validate" "" "$bad"
    bad=$(check_images "$R")
    check_eq "$what: qemu-img check of every image" "" "$bad"
    for f in "$SD"/*.xml; do
        [[ -e $f ]] || continue
        check_eq "$what: $(basename "$f") mode" 600 "$(stat -c %a "$f")"
        # The layout of a libvirt file with the same optional parts.
        local ref=03-snapshot-s2.xml
        grep -q '<active>1' "$f" || ref=03-snapshot-s1-after-s2.xml
        local mine theirs
        mine=$(snap_layout "$f" | grep -v -e '<description>' -e '<parent>' -e '</parent>' \
            -e '^    <name>' -e 'revertDisks' -e '^    <disk')
        theirs=$(snap_layout "$(fixture $ref)" | grep -v -e '<description>' -e '<parent>' \
            -e '</parent>' -e '^    <name>' -e '^    <disk')
        check_eq "$what: $(basename "$f") has libvirt's layout" "$theirs" "$mine"
    done
    check_eq "$what: exactly one current snapshot (or none after base)" "${2:-1}" \
        "$(current_snapshot "$R" tvm | wc -l)"
    check_eq "$what: no journal left" "" "$(ls "$R$SNAP_DIR" | grep journal || true)"
}

# Frozen images must never change: their sha256 now, to compare later.
frozen_sums() {
    local f
    for f in "$@"; do echo "$(basename "$f") $(sha256sum <"$f" | cut -d' ' -f1)"; done
}

declare -A AT
AT[s1]=$(all_guest_sums "$R" tvm)
check_rc "create s1" 0 x create tvm s1 -q
check_eq "create s1: guest content unchanged" "${AT[s1]}" "$(all_guest_sums "$R" tvm)"
check_eq "create s1: vda overlay" "$SNAP_IMG/vda.s1" "$(cfg_source "$R" tvm vda)"
check_eq "create s1: raw vdc gets a qcow2 overlay" "qcow2 $SNAP_IMG/vdc.s1" \
    "$(cfg_format "$R" tvm vdc) $(cfg_source "$R" tvm vdc)"
check_eq "create s1: cdrom untouched" "$SNAP_IMG/cd.iso" "$(cfg_source "$R" tvm sda)"
info=$(qemu-img info -U --output=json "$IMG/vdc.s1")
check_eq "create s1: overlay backing name (absolute, as in the config)" "$SNAP_IMG/vdc.raw raw" \
    "$(jq -r '."backing-filename" + " " + ."backing-filename-format"' <<<"$info")"
check_eq "create s1: overlay size = backing size" 4194304 "$(jq -r '."virtual-size"' <<<"$info")"
check_eq "create s1: overlay mode copied from the image below" 640 "$(stat -c %a "$IMG/vda.s1")"
check_eq "create s1: s1 current" s1 "$(current_snapshot "$R" tvm)"
after_step "create s1"

guest_write "$R" tvm vda 0x11 0 64k
guest_write "$R" tvm vdb 0x12 2M 64k
guest_write "$R" tvm vdc 0x13 1M 4k
AT[s2]=$(all_guest_sums "$R" tvm)
EXTSNAP_FAULT_TRACE=$T/create-s2.trace check_rc "create s2" 0 x create tvm s2 --description "second snap" -q
# Looking whether the VM runs and then writing happen under one domain lock:
# no window for another extsnap in between.
check_eq "create s2: the domain lock is taken once" 1 \
    "$(grep -c 'create .*/tvm\.extsnap\.lock$' "$T/create-s2.trace")"
after_step "create s2"
check_eq "create s2: parent" s1 "$(xmllint --xpath 'string(//parent/name)' "$SD/s2.xml")"
check_eq "create s2: s1 no longer current" 0 "$(xmllint --xpath 'string(//active)' "$SD/s1.xml")"
check_eq "create s2: <domain> holds the config before s2" "$SNAP_IMG/vda.s1" \
    "$(xmllint --xpath "string(//domain/devices/disk[target/@dev='vda']/source/@file)" "$SD/s2.xml")"

guest_write "$R" tvm vda 0x21 64k 64k
guest_write "$R" tvm vdb 0x22 0 4k
guest_write "$R" tvm vdc 0x23 3M 64k
AT[s3]=$(all_guest_sums "$R" tvm)
check_rc "create s3" 0 x create tvm s3 -q
after_step "create s3"
guest_write "$R" tvm vda 0x31 3M 64k
guest_write "$R" tvm vdb 0x32 1M 4k
LIVE3=$(all_guest_sums "$R" tvm)
[[ $LIVE3 != "${AT[s3]}" ]] || fail "the writes after s3 changed nothing?"

FROZEN=("$IMG/vda.qcow2" "$IMG/vdb.qcow2" "$IMG/vdc.raw" "$IMG/cd.iso" "$IMG"/*.s1 "$IMG"/*.s2)
FROZEN_SUMS=$(frozen_sums "${FROZEN[@]}")

check_rc "revert s1" 0 x revert tvm s1 -q
check_eq "revert s1: guest content is s1's" "${AT[s1]}" "$(all_guest_sums "$R" tvm)"
after_step "revert s1"
check_eq "revert s1: s3's live overlays discarded" "" "$(ls "$IMG" | grep '\.s3$' || true)"
check_eq "revert s1: new overlays recorded in s1's <revertDisks> (s1 has children)" 3 \
    "$(xmllint --xpath 'count(//revertDisks/disk[@snapshot="external"])' "$SD/s1.xml")"
check_eq "revert s1: s1's <disks> kept (they back s2)" "$SNAP_IMG/vda.s1" \
    "$(xmllint --xpath "string(//disks/disk[@name='vda']/source/@file)" "$SD/s1.xml")"
src=$(cfg_source "$R" tvm vda)
[[ $src =~ ^$SNAP_IMG/vda\.[0-9]{10}$ ]] || fail "revert s1: overlay name $src is not vda.<epoch>"
check_eq "revert s1: config names its overlays as <revertDisks>" "$src" \
    "$(xmllint --xpath "string(//revertDisks/disk[@name='vda']/source/@file)" "$SD/s1.xml")"
check_eq "revert s1: frozen images unchanged" "$FROZEN_SUMS" "$(frozen_sums "${FROZEN[@]}")"

guest_write "$R" tvm vda 0x41 0 128k
guest_write "$R" tvm vdc 0x42 0 128k
first=$(cfg_source "$R" tvm vda)
check_rc "revert s1 again" 0 x revert tvm s1 -q
check_eq "revert s1 again: guest content is s1's" "${AT[s1]}" "$(all_guest_sums "$R" tvm)"
after_step "revert s1 again"
[[ ! -e $R$first ]] || fail "revert s1 again: the previous revert's overlay $first was kept"
check_eq "revert s1 again: frozen images unchanged" "$FROZEN_SUMS" "$(frozen_sums "${FROZEN[@]}")"
check_eq "revert s1 again: one overlay per writable disk" 3 "$(ls "$IMG" | grep -c '\.[0-9]\{10\}$')"

check_rc "revert s3" 0 x revert tvm s3 -q
check_eq "revert s3: guest content is s3's" "${AT[s3]}" "$(all_guest_sums "$R" tvm)"
after_step "revert s3"
check_eq "revert s3: s1's <revertDisks> dropped" 0 "$(grep -c '<revertDisks>' "$SD/s1.xml" || true)"
check_eq "revert s3: leaf s3's <disks> are the new overlays" "$(cfg_source "$R" tvm vdb)" \
    "$(xmllint --xpath "string(//disks/disk[@name='vdb']/source/@file)" "$SD/s3.xml")"
check_eq "revert s3: s1's revert overlays discarded" 3 "$(ls "$IMG" | grep -c '\.[0-9]\{10\}$')"

guest_write "$R" tvm vdb 0x51 512k 64k
check_rc "refresh" 0 x refresh tvm -q
check_eq "refresh: guest content is s3's again" "${AT[s3]}" "$(all_guest_sums "$R" tvm)"
after_step "refresh"

check_rc "revert s2" 0 x revert tvm s2 -q
check_eq "revert s2: guest content is s2's" "${AT[s2]}" "$(all_guest_sums "$R" tvm)"
after_step "revert s2"
check_eq "revert s3's live overlays gone after revert s2" 3 "$(ls "$IMG" | grep -c '\.[0-9]\{10\}$')"

# A branch: s4 taken after going back to s2.
guest_write "$R" tvm vda 0x61 2M 64k
AT[s4]=$(all_guest_sums "$R" tvm)
check_rc "create s4 (branch from s2)" 0 x create tvm s4 -q
after_step "create s4"
check_eq "create s4: parent s2" s2 "$(xmllint --xpath 'string(//parent/name)' "$SD/s4.xml")"
check_eq "create s4: s2's <revertDisks> cleared" 0 "$(grep -c '<revertDisks>' "$SD/s2.xml" || true)"
check_eq "create s4: s4's <domain> names s2's revert overlays" "$(xmllint --xpath \
    "string(//domain/devices/disk[target/@dev='vda']/source/@file)" "$SD/s4.xml")" \
    "$(qemu-img info -U --output=json "$IMG/vda.s4" | jq -r '."backing-filename"')"
tree=$(x list tvm --tree)
# (as virsh prints it: one "|" line above the children, none between them)
expected_tree=$'s1\n  |\n  +- s2\n      |\n      +- s3\n      +- s4 (current)'
check_eq "list --tree shows the branch" "$expected_tree" "$(sed '/^ *$/d' <<<"$tree")"
check_rc "revert s3 from the other branch" 0 x revert tvm s3 -q
check_eq "revert s3 (branch): guest content is s3's" "${AT[s3]}" "$(all_guest_sums "$R" tvm)"
after_step "revert s3 from s4's branch"
check_rc "revert s4" 0 x revert tvm s4 -q
check_eq "revert s4: guest content is s4's" "${AT[s4]}" "$(all_guest_sums "$R" tvm)"
after_step "revert s4"

# base: the images below s1.
check_rc "revert base" 0 x revert tvm base -q
check_eq "revert base: guest content is the original" "${AT[s1]}" "$(all_guest_sums "$R" tvm)"
after_step "revert base" 0
check_eq "revert base: vda over the original image" "$SNAP_IMG/vda.qcow2" \
    "$(qemu-img info -U --output=json "$R$(cfg_source "$R" tvm vda)" | jq -r '."backing-filename"')"
check_rc "refresh without a current snapshot is refused" 1 x refresh tvm -q
check_rc "create s5 after base" 0 x create tvm s5 -q
after_step "create s5"

json=$(x list tvm --output=json)
check_eq "list json: current" s5 "$(jq -r .current <<<"$json")"
check_eq "list json: names" "s1 s2 s3 s4 s5" "$(jq -r '[.snapshots[].name] | join(" ")' <<<"$json")"
check_eq "list json: s5 is a root" null "$(jq -r '.snapshots[] | select(.name=="s5") | .parent' <<<"$json")"
check_eq "list json: s2's children" "s3 s4" \
    "$(jq -r '.snapshots[] | select(.name=="s2") | .children | join(" ")' <<<"$json")"
check_eq "list json: s2's description" "second snap" \
    "$(jq -r '.snapshots[] | select(.name=="s2") | .description' <<<"$json")"
check_eq "list json: sda not snapshotted" no \
    "$(jq -r '.snapshots[0].disks[] | select(.name=="sda") | .snapshot' <<<"$json")"

# disks --chain against qemu-img's view of each chain.
json=$(x disks tvm --chain --output=json)
for t in vda vdb vdc; do
    top=$(cfg_source "$R" tvm $t)
    check_eq "disks: $t source" "$top" "$(jq -r ".disks[] | select(.target==\"$t\") | .source" <<<"$json")"
    # Walk the chain with qemu-img info, one link at a time.
    want="" p=$top fmt=qcow2
    while [[ -n $p ]]; do
        vs=$(qemu-img info -U -f "$fmt" --output=json "$R$p")
        want+="$p $fmt $(jq -r '."virtual-size"' <<<"$vs");"
        np=$(jq -r '."backing-filename" // empty' <<<"$vs")
        fmt=$(jq -r '."backing-filename-format" // empty' <<<"$vs")
        p=$np
    done
    got=$(jq -r ".disks[] | select(.target==\"$t\") | .chain[] | \"\\(.filename) \\(.format) \\(.\"virtual-size\");\"" <<<"$json" | tr -d '\n')
    check_eq "disks --chain: $t chain as qemu-img sees it" "$want" "$got"
done
human=$(x disks tvm)
check_eq "disks: domblklist-style header" " Type   Device   Target   Source" "$(head -1 <<<"$human")"
grep -q "^ file   cdrom    sda      $SNAP_IMG/cd.iso$" <<<"$human" || fail "disks: cdrom row: $human"

# --dry-run changes nothing under the root.
before=$(root_sums "$R")
check_rc "dry-run create" 0 x create tvm s6 --dry-run
check_rc "dry-run revert" 0 x revert tvm s2 --dry-run --output=json
check_rc "dry-run refresh" 0 x refresh tvm --dry-run
check_rc "dry-run recover" 0 x recover tvm --dry-run
check_eq "dry-run: every file under the root unchanged" "$before" "$(root_sums "$R")"
plan=$(x revert tvm s2 --dry-run --output=json)
check_eq "dry-run json: flagged" true "$(jq -r '."dry-run"' <<<"$plan")"
check_eq "dry-run json: three overlays" 3 "$(jq -r '.overlays | length' <<<"$plan")"
check_eq "dry-run json: discards s5's overlays" "$(ls "$IMG" | grep -c '\.s5$')" \
    "$(jq -r '[.deletes[].filename | select(test("\\.s5$"))] | length' <<<"$plan")"
check_eq "recover with nothing to do" "Nothing to recover for domain tvm." "$(x recover tvm)"

finish
