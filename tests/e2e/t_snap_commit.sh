#!/usr/bin/env bash
# extsnap commit DOMAIN BASE TOP, offline, on lib/snap.sh's tvm (two qcow2
# disks, a raw disk, a readonly cdrom):
#  A. a range of two snapshots (s2, s3) with a child (s4) after it: merged
#     into s1's overlays in one pass per disk; content at s1, at s4 and live
#     unchanged; s4 re-parented; the files of s2 and s3 gone;
#  B. 'base' up to the current snapshot: everything into the original
#     images (raw included), no snapshot left;
#  C. snapshots that froze only some disks (create --disk);
#  D. refusals (TOP a non-current leaf, BASE not above TOP, a revert branch
#     inside the range, BASE = TOP, unknown names): every file unchanged;
#  E. --dry-run and its JSON plan;
#  F. BASE with a second branch (issue #4): s1 -> s2 -> s3, revert s1, s4;
#     commit s1 up to the current snapshot, or a TOP with a child, then the
#     other branch goes: after every step BASE's <disks> name its remaining
#     children's frozen images, the current snapshot's live images are its
#     <revertDisks> (children) or <disks> (leaf), every file they name
#     exists, and the content at every snapshot and live is kept.
# After every step: virt-xml-validate, qemu-img check of every image,
# 'extsnap verify' exits 0.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap_ops.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap_parent.sh"
need_cmd qemu-img qemu-io virt-xml-validate xmllint jq
export TZ=UTC

# chain4 R: s1..s4 with different writes to every disk after each.
chain4() {
    R=$1
    snap_make_tvm "$R"
    local i
    for i in 1 2 3 4; do
        x create tvm s$i -q
        guest_write "$R" tvm vda 0x${i}1 $((i * 64))k 64k
        guest_write "$R" tvm vdb 0x${i}2 $((i * 512))k 4k
        guest_write "$R" tvm vdc 0x${i}3 $((i * 128))k 64k
    done
}

refused() {
    local what=$1 regex=$2 before err rc=0
    shift 2
    before=$(root_sums "$R")
    err=$(x "$@" 2>&1) || rc=$?
    check_eq "$what: exit status" 1 "$rc"
    grep -Eq "$regex" <<<"$err" || fail "$what: the refusal does not say /$regex/: $err"
    check_eq "$what: every file under the root unchanged" "$before" "$(root_sums "$R")"
}

# --- A: s2..s3 into s1's image, s4 after them ----------------------------------
chain4 "$T/a"
IMG=$R$SNAP_IMG
LIVE=$(all_guest_sums "$R" tvm)
S1=$(saved_sums "$R" tvm s1)
S4=$(saved_sums "$R" tvm s4)
full_check "A: s1..s4" tvm 1
check_rc "A: commit s1 s3" 0 x commit tvm s1 s3 -q
full_check "A: commit s1 s3" tvm 1
check_eq "A: live content unchanged" "$LIVE" "$(all_guest_sums "$R" tvm)"
check_eq "A: content at s1 unchanged" "$S1" "$(saved_sums "$R" tvm s1)"
check_eq "A: content at s4 unchanged" "$S4" "$(saved_sums "$R" tvm s4)"
check_eq "A: s4's parent is s1" s1 "$(snap_parent "$R" tvm s4)"
check_eq "A: s4 froze s1's overlay" "$SNAP_IMG/vda.s1 $SNAP_IMG/vdc.s1" \
    "$(saved_source "$R" tvm s4 vda) $(saved_source "$R" tvm s4 vdc)"
check_eq "A: vda.s4 backed by vda.s1" "$SNAP_IMG/vda.s1" "$(backing_of "$IMG/vda.s4")"
check_eq "A: s2's and s3's files gone" "" "$(ls "$IMG" "$R$SNAP_DIR/tvm" | grep -E 's[23]' || true)"
check_eq "A: s4 still current" s4 "$(current_snapshot "$R" tvm)"
check_eq "A: snapshots left" "s1.xml s4.xml" "$(ls "$R$SNAP_DIR/tvm" | tr '\n' ' ' | sed 's/ $//')"

# --- B: base up to the current snapshot -----------------------------------------
chain4 "$T/b"
IMG=$R$SNAP_IMG
LIVE=$(all_guest_sums "$R" tvm)
check_rc "B: commit base s4" 0 x commit tvm base s4 -q
full_check "B: commit base s4" tvm 0
check_eq "B: live content unchanged" "$LIVE" "$(all_guest_sums "$R" tvm)"
check_eq "B: config on the original images, formats back" \
    "$SNAP_IMG/vda.qcow2 qcow2 $SNAP_IMG/vdc.raw raw" \
    "$(cfg_source "$R" tvm vda) $(cfg_format "$R" tvm vda) $(cfg_source "$R" tvm vdc) $(cfg_format "$R" tvm vdc)"
check_eq "B: only the original images left" "cd.iso vda.qcow2 vdb.qcow2 vdc.raw" \
    "$(ls "$IMG" | tr '\n' ' ' | sed 's/ $//')"
check_eq "B: no snapshot left" "" "$(ls "$R$SNAP_DIR/tvm")"
# The raw image holds the guest's data itself now.
tmp=$T/vdc.ref
qemu-img convert -U -O raw "$(chain_spec "$R" "$SNAP_IMG/vdc.raw" raw)" "$tmp"
check_rc "B: vdc.raw equals what the guest saw" 0 qemu-img compare -q -f raw -F raw "$IMG/vdc.raw" "$tmp"
rm -f "$tmp"

# --- C: snapshots of some disks only -----------------------------------------------
R=$T/c
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
x create tvm s1 -q
guest_write "$R" tvm vda 0x61 0 64k
guest_write "$R" tvm vdb 0x62 0 64k
x create tvm s2 --disk vda -q
guest_write "$R" tvm vda 0x63 64k 64k
guest_write "$R" tvm vdb 0x64 64k 64k
x create tvm s3 --disk vdb -q
guest_write "$R" tvm vda 0x65 128k 64k
guest_write "$R" tvm vdb 0x66 128k 64k
x create tvm s4 -q
guest_write "$R" tvm vdc 0x67 0 64k
LIVE=$(all_guest_sums "$R" tvm)
S4=$(saved_sums "$R" tvm s4)
S1=$(saved_sums "$R" tvm s1)
full_check "C: partial snapshots" tvm 1
check_rc "C: commit s1 s3 (s2 froze only vda, s3 only vdb)" 0 x commit tvm s1 s3 -q
full_check "C: commit s1 s3" tvm 1
check_eq "C: live content unchanged" "$LIVE" "$(all_guest_sums "$R" tvm)"
check_eq "C: content at s4 unchanged" "$S4" "$(saved_sums "$R" tvm s4)"
check_eq "C: content at s1 unchanged" "$S1" "$(saved_sums "$R" tvm s1)"
check_eq "C: s4 froze s1's overlays" "$SNAP_IMG/vda.s1 $SNAP_IMG/vdb.s1 $SNAP_IMG/vdc.s1" \
    "$(saved_source "$R" tvm s4 vda) $(saved_source "$R" tvm s4 vdb) $(saved_source "$R" tvm s4 vdc)"
check_eq "C: vdc (in neither s2 nor s3) untouched: vdc.s4 over vdc.s1" "$SNAP_IMG/vdc.s1" \
    "$(backing_of "$IMG/vdc.s4")"

# --- D: refusals -------------------------------------------------------------------
chain4 "$T/d"
IMG=$R$SNAP_IMG
x revert tvm s2 -q                     # s2 current, its <revertDisks> a branch inside s1..s3
guest_write "$R" tvm vda 0x71 0 64k
refused "D: commit s1 s3 across a revert branch" "backing file of 2 images.*reverting to snapshot s2" \
    commit tvm s1 s3
refused "D: TOP a non-current leaf" "s4 is a leaf that is not current" commit tvm s1 s4
refused "D: BASE not above TOP" "not a descendant of snapshot s3" commit tvm s3 s2
refused "D: BASE = TOP" "same snapshot" commit tvm s2 s2
refused "D: unknown TOP" "no snapshot named 'nope'" commit tvm s1 nope
refused "D: unknown BASE" "no snapshot named 'nope'" commit tvm nope s2
check_rc "D: usage error" 1 x commit tvm s1 2>/dev/null
full_check "D: after the refusals" tvm 1
# Once the domain leaves that branch (revert s4 discards it), the commit works.
x revert tvm s4 -q
LIVE=$(all_guest_sums "$R" tvm)
check_rc "D: commit s1 s4 (TOP current)" 0 x commit tvm s1 s4 -q
full_check "D: commit s1 s4" tvm 1
check_eq "D: commit s1 s4: live content unchanged" "$LIVE" "$(all_guest_sums "$R" tvm)"
check_eq "D: commit s1 s4: s1 current" s1 "$(current_snapshot "$R" tvm)"

# --- E: dry run ------------------------------------------------------------------
chain4 "$T/e"
before=$(root_sums "$R")
plan=$(x commit tvm s1 s3 --dry-run --output=json)
check_eq "E: dry run changes nothing" "$before" "$(root_sums "$R")"
check_eq "E: json: one merge per disk, top vda.s3 into vda.s1" \
    "3 $SNAP_IMG/vda.s3 $SNAP_IMG/vda.s1" \
    "$(jq -r '"\(.merges|length) " + (.merges[] | select(.disk=="vda") | .top + " " + .base)' <<<"$plan")"
check_eq "E: json: deletes vda.s2 and vda.s3" "$SNAP_IMG/vda.s2 $SNAP_IMG/vda.s3" \
    "$(jq -r '[.deletes[].filename | select(test("vda"))] | sort | join(" ")' <<<"$plan")"
check_eq "E: json: s2.xml and s3.xml removed" "s2 s3" \
    "$(jq -r '[."xml-files"[] | select(.action=="remove") | .snapshot] | join(" ")' <<<"$plan")"
human=$(x commit tvm s1 s3 --dry-run)
grep -q '^Plan (dry run, nothing changed): commit domain tvm' <<<"$human" || fail "E: human plan: $human"

# --- F: BASE with a second branch (issue #4) ----------------------------------------
pt_new f
pt_step create s1
pt_write
pt_step create s2
pt_write
pt_step create s3
pt_write
pt_step revert s1
pt_write
pt_step create s4
pt_write
pt_save branch

# F1: the range is the current s4: s1 current with the child s2.
pt_load branch f1
pt_step commit s1 s4
check_eq "f1: commit s1 s4: s1 current, <disks> s2's, <revertDisks> the live image" \
    "s1 $(saved_source "$R" tvm s2 vda) $(cfg_source "$R" tvm vda)" \
    "$(current_snapshot "$R" tvm) $(pt_list s1 disks vda) $(pt_list s1 revertDisks vda)"
pt_write
pt_step delete s3
pt_step delete s2
check_eq "f1: delete s2: s1 a leaf on the live image" "$(cfg_source "$R" tvm vdc) 0" \
    "$(pt_list s1 disks vdc) $(grep -c '<revertDisks>' "$R$SNAP_DIR/tvm/s1.xml" || true)"

# F2: a range of two (s4, s5), then the other branch goes.
pt_load branch f2
pt_step create s5
pt_write
pt_step commit s1 s5
pt_write
pt_step delete s3
pt_step delete s2

# F3: TOP s4 is not current and has a child s5 (current, with a child s6 and
# <revertDisks>): s5 moves to s1; the branch s1's <disks> named goes; then
# s5 is committed into s1's image.
pt_load branch f3
pt_step create s5
pt_write
pt_step create s6
pt_write
pt_step revert s5
pt_write
pt_step commit s1 s4
check_eq "f3: commit s1 s4: s5's parent is s1" s1 "$(snap_parent "$R" tvm s5)"
pt_step delete s3
pt_step delete s2
check_eq "f3: delete s2: s1's <disks> name s5's frozen image" "$(saved_source "$R" tvm s5 vdb)" \
    "$(pt_list s1 disks vdb)"
pt_step delete s6
pt_step commit s1 s5
check_eq "f3: commit s1 s5: s1 current leaf" "s1 $(cfg_source "$R" tvm vda)" \
    "$(current_snapshot "$R" tvm) $(pt_list s1 disks vda)"

finish
