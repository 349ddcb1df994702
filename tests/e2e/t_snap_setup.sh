#!/usr/bin/env bash
# extsnap setup DOMAIN PATH on lib/snap.sh's tvm (vda, vdb qcow2, vdc raw,
# readonly cdrom sda):
#  A. same file system: each writable disk's image becomes
#     PATH/disks/tvm-<target>.base by a hard link (same inode, no copy), the
#     config names it, the old names are gone, the cdrom stays; snapshots
#     then land beside it; setup is refused once snapshots exist;
#  B. across file systems (a tmpfs, when this machine lets us mount one):
#     sparse copy (du), byte-compared before the original is removed (the
#     trace shows the copy read back before its rename and before the
#     original's unlink; a read error there aborts with nothing changed),
#     a stop at any copy step followed by setup again completes;
#  C. refusals (an image with a backing file, an image another domain uses,
#     a new name taken by other content, PATH not a directory): every file
#     under the root unchanged;
#  D. --dry-run and its JSON plan.
# Guest content is compared with what qemu-img convert read before.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap_ops.sh"
need_cmd qemu-img qemu-io virt-xml-validate xmllint jq

# (the per-domain lock file may be created: it is not part of the domain)
refused() {
    local what=$1 regex=$2 before err rc=0
    shift 2
    before=$(root_sums "$R")
    err=$(x "$@" 2>&1) || rc=$?
    check_eq "$what: exit status" 1 "$rc"
    grep -Eq "$regex" <<<"$err" || fail "$what: the refusal does not say /$regex/: $err"
    check_eq "$what: every file under the root unchanged" "$before" \
        "$(root_sums "$R")"
}

# --- A: same file system ---------------------------------------------------------
R=$T/a
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
mkdir -p "$R/srv/vm"
GUEST=$(all_guest_sums "$R" tvm)
ino_vda=$(stat -c %i "$IMG/vda.qcow2")
check_rc "A: setup tvm /srv/vm" 0 x setup tvm /srv/vm -q
full_check "A: setup" tvm 0
check_eq "A: guest content unchanged" "$GUEST" "$(all_guest_sums "$R" tvm)"
check_eq "A: config names the new images (formats kept)" \
    "/srv/vm/disks/tvm-vda.base qcow2 /srv/vm/disks/tvm-vdb.base /srv/vm/disks/tvm-vdc.base raw" \
    "$(cfg_source "$R" tvm vda) $(cfg_format "$R" tvm vda) $(cfg_source "$R" tvm vdb) $(cfg_source "$R" tvm vdc) $(cfg_format "$R" tvm vdc)"
check_eq "A: the cdrom stays" "$SNAP_IMG/cd.iso" "$(cfg_source "$R" tvm sda)"
check_eq "A: old names gone, cdrom kept" "cd.iso" "$(ls "$IMG")"
check_eq "A: a hard link, not a copy (same inode)" "$ino_vda" "$(stat -c %i "$R/srv/vm/disks/tvm-vda.base")"
check_eq "A: mode kept" 640 "$(stat -c %a "$R/srv/vm/disks/tvm-vda.base")"
check_rc "A: create s1 after setup" 0 x create tvm s1 -q
check_eq "A: the overlay lands beside the base" "/srv/vm/disks/tvm-vda.base" \
    "$(backing_of "$R/srv/vm/disks/tvm-vda.s1")"
full_check "A: create s1" tvm 1
refused "A: setup with snapshots" "already has snapshots" setup tvm /srv/vm

# --- B: across file systems --------------------------------------------------------
make_sparse_tvm() {
    R=$1
    snap_make_tvm "$R"
    IMG=$R$SNAP_IMG
    rm "$IMG/vdc.raw"
    qemu-img create -q -f raw "$IMG/vdc.raw" 64M
    qemu-io -f raw -c 'write -P 0x5a 1M 256k' -c 'write -P 0x5b 40M 64k' "$IMG/vdc.raw" >/dev/null
    mkdir -p "$R/srv/fast"
}
MNT=""
cleanup() {
    [[ -z $MNT ]] || umount "$MNT" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
make_sparse_tvm "$T/b"
if mount -t tmpfs -o size=256m tmpfs "$R/srv/fast" 2>/dev/null; then
    MNT=$R/srv/fast
    GUEST=$(all_guest_sums "$R" tvm)
    sum_vdc=$(sha256sum <"$IMG/vdc.raw" | cut -d' ' -f1)
    [[ $(stat -f -c %T "$R/srv/fast") != "$(stat -f -c %T "$IMG")" ||
        $(stat -c %d "$R/srv/fast") != "$(stat -c %d "$IMG")" ]] || fail "B: tmpfs is not another file system"
    rm -f "$T/trace"
    check_rc "B: setup tvm /srv/fast (another file system)" 0 \
        env EXTSNAP_FAULT_TRACE="$T/trace" "$EXTSNAP" setup tvm /srv/fast -q --root "$R"
    full_check "B: setup across file systems" tvm 0
    check_eq "B: guest content unchanged" "$GUEST" "$(all_guest_sums "$R" tvm)"
    NEW=$R/srv/fast/disks
    check_eq "B: raw image copied byte for byte" "$sum_vdc" "$(sha256sum <"$NEW/tvm-vdc.base" | cut -d' ' -f1)"
    check_eq "B: apparent size kept" 67108864 "$(stat -c %s "$NEW/tvm-vdc.base")"
    used=$(du -k "$NEW/tvm-vdc.base" | cut -f1)
    ((used <= 1024)) || fail "B: the copy of a 64 MiB image with 320 KiB of data uses $used KiB: holes were filled"
    check_eq "B: originals removed" "cd.iso" "$(ls "$IMG")"
    check_eq "B: nothing temporary left" "" "$(ls -A "$NEW" | grep -v '\.base$' || true)"
    # Order in the trace: the copy is read back (compared) before it is
    # renamed into place, and the original is unlinked only after that.
    tmpname=".tvm-vdc.base.extsnap-copy"
    read_back=$(grep -n "^read .*$tmpname" "$T/trace" | tail -1 | cut -d: -f1)
    renamed=$(grep -n "^mutate .* rename .*/tvm-vdc.base$" "$T/trace" | head -1 | cut -d: -f1)
    unlinked=$(grep -n "^mutate .* unlink .*/vdc.raw$" "$T/trace" | head -1 | cut -d: -f1)
    if [[ -z $read_back || -z $renamed || -z $unlinked ]] || ((read_back > renamed || renamed > unlinked)); then
        fail "B: compare ($read_back) / rename ($renamed) / unlink ($unlinked) not in that order"
    fi
    ES_CHECKS=$((ES_CHECKS + 1))

    # A read error while comparing: nothing changed, nothing left behind.
    umount "$MNT"; MNT=""
    make_sparse_tvm "$T/b2"
    mount -t tmpfs -o size=256m tmpfs "$R/srv/fast" && MNT=$R/srv/fast
    nread=$(grep -c "^read .*$tmpname" "$T/trace")
    first=$(grep "^read .*$tmpname" "$T/trace" | head -1 | awk '{print $2}')
    before=$(root_sums "$R")
    rc=0
    EXTSNAP_FAULT=read:$first:eio x setup tvm /srv/fast -q 2>"$T/err" || rc=$?
    check_eq "B: read error during the compare: exit 1" 1 "$rc"
    grep -q "nothing was changed" "$T/err" || fail "B: read error: message: $(cat "$T/err")"
    check_eq "B: read error: every file under the root unchanged (lock file aside)" "$before" \
        "$(root_sums "$R")"
    ((nread > 0)) || fail "B: the copy was never read back"

    # Stopped at every file-system change of the copy and once past the last
    # (the run completes), then setup again completes.
    npts=$(grep -c '^mutate' "$T/trace")
    for ((n = 1; n <= npts + 1; n++)); do
        umount "$MNT"; MNT=""
        make_sparse_tvm "$T/b3"
        mount -t tmpfs -o size=256m tmpfs "$R/srv/fast" && MNT=$R/srv/fast
        rc=0
        EXTSNAP_FAULT=mutate:$n:stop x setup tvm /srv/fast -q >/dev/null 2>&1 || rc=$?
        want=86
        ((n <= npts)) || want=0
        ((rc == want)) || fail "B: mutate:$n:stop: exit $rc, not $want"
        out=$(x setup tvm /srv/fast -q 2>&1) || true
        src=$(cfg_source "$R" tvm vdc)
        check_eq "B: stop at $n, setup again: config on the new images ($out)" "/srv/fast/disks/tvm-vdc.base" "$src"
        check_eq "B: stop at $n: vdc content" "$sum_vdc" "$(sha256sum <"$R$src" | cut -d' ' -f1)"
        check_eq "B: stop at $n: originals removed" "cd.iso" "$(ls "$IMG")"
        check_rc "B: stop at $n: verify" 0 x verify tvm -q
    done
else
    skip_part "B: cannot mount a tmpfs here (needs root and mount rights): the cross-file-system setup did not run"
fi

# --- C: refusals ------------------------------------------------------------------
R=$T/c
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
mkdir -p "$R/srv/vm"
qemu-img create -q -f qcow2 -F qcow2 -b "$SNAP_IMG/vda.qcow2" -u "$IMG/vda-top.qcow2" 4M
sed -i "s|$SNAP_IMG/vda.qcow2|$SNAP_IMG/vda-top.qcow2|" "$R$SNAP_CFG/tvm.xml"
refused "C: an image with a backing file" "has a backing file" setup tvm /srv/vm
sed -i "s|$SNAP_IMG/vda-top.qcow2|$SNAP_IMG/vda.qcow2|" "$R$SNAP_CFG/tvm.xml"
refused "C: another image uses vda.qcow2 as backing file" "backing file of .*vda-top.qcow2" setup tvm /srv/vm
rm "$IMG/vda-top.qcow2"
sed -e 's/<name>tvm</<name>other</' -e 's/9a10</9a11</' "$R$SNAP_CFG/tvm.xml" >"$R$SNAP_CFG/other.xml"
refused "C: an image another domain uses" "used by domain other" setup tvm /srv/vm
rm "$R$SNAP_CFG/other.xml"
mkdir -p "$R/srv/vm/disks"
echo "someone else's" >"$R/srv/vm/disks/tvm-vdb.base"
refused "C: new name taken by other content" "tvm-vdb.base.*taken" setup tvm /srv/vm
rm "$R/srv/vm/disks/tvm-vdb.base"
refused "C: PATH not a directory" "existing directory" setup tvm /srv/none
check_rc "C: usage" 1 x setup tvm 2>/dev/null

# --- D: dry run ---------------------------------------------------------------------
before=$(root_sums "$R")
plan=$(x setup tvm /srv/vm --dry-run --output=json)
check_eq "D: dry run changes nothing" "$before" "$(root_sums "$R")"
check_eq "D: json: originals deleted after the switch" \
    "$SNAP_IMG/vda.qcow2 $SNAP_IMG/vdb.qcow2 $SNAP_IMG/vdc.raw" \
    "$(jq -r '[.deletes[].filename] | sort | join(" ")' <<<"$plan")"
check_eq "D: json: the config updated" "config update" \
    "$(jq -r '."xml-files"[] | .kind + " " + .action' <<<"$plan")"
check_rc "D: setup for real" 0 x setup tvm /srv/vm -q
full_check "D: setup" tvm 0

finish
