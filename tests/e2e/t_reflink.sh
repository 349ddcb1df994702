#!/usr/bin/env bash
# Merges at the speed of metadata (issue 17): on a loop-mounted XFS with
# reflink=1, `extsnap img commit` of a 256 MiB overlay shares TOP's whole
# clusters into BASE (FICLONERANGE, util/fileio.c) instead of copying them:
# fewer than 5 % of the merged bytes reach the device (its sectors-written
# counter, /sys/block/loopN/stat, before and after, synced), the result reads
# as qemu-img's commit of the same chain (qemu-img compare) and checks clean.
# Then the crash side: the commit is stopped at each of its flushes and the
# file system shut down without flushing its log (xfs_io shutdown, what a
# power cut leaves), mounted again (log recovery): the chain must still read
# as before and BASE check without corruption, and a re-run must finish with
# the same result. A shared extent is durable only through the same
# fdatasync as a copied one; this is where that is checked.
# Skipped (77) only when the machine cannot: not root, no loop devices, no
# mkfs.xfs (scripts/deps.sh installs xfsprogs; CI runs as root).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/loopfs.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_tool qemu-img qemu-io
why=$(loopfs_why xfs)
[[ -z $why ]] || skip_test "no loop-mounted XFS here: $why"
need_tool xfs_io
BIND=""
trap '[[ -z $BIND ]] || umount "$BIND"; loopfs_cleanup; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP PIPE # the EXIT trap still detaches the loop device
loopfs_make xfs "$T" 1024 || skip_test "cannot make and mount a loop XFS"
M=$LOOPFS_MNT DEV=$LOOPFS_DEV
MERGED=$((256 << 20))

# build DIR VSIZE_MIB BASE_MIB CLUSTERS [view]: DIR/base.qcow2 (BASE_MIB
# written at 0) and DIR/top.qcow2 over it with CLUSTERS distinct random
# 64 KiB clusters in random order, some over BASE's data; with "view",
# $T/NAME.raw is what the chain shows.
build() {
  local d=$1 vsize=$2 bmib=$3 want=$4
  mkdir "$d"
  qemu-img create -q -f qcow2 "$d/base.qcow2" "${vsize}M"
  qemu-io -t writeback -c "write -P 0x11 0 ${bmib}M" "$d/base.qcow2" >/dev/null
  qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/top.qcow2"
  awk -v n=$((vsize * 16)) -v want="$want" 'BEGIN { srand(17)
    for (i = 0; i < n; i++) p[i] = i
    for (i = 0; i < want; i++) { j = i + int(rand() * (n - i)); t = p[i]; p[i] = p[j]; p[j] = t
      printf "write -P %d %.0f 64k\n", 1 + (p[i] % 250), p[i] * 65536 } }' >"$T/cmds"
  # writeback: qemu-io's default flushes after every write (40 s here)
  (echo flush) >>"$T/cmds"
  qemu-io -t writeback "$d/top.qcow2" <"$T/cmds" >/dev/null
  [[ -z ${5:-} ]] || qemu-img convert -O raw "$d/top.qcow2" "$T/$(basename "$d").raw"
}
build "$M/orig" 1024 64 $((MERGED >> 16))
# The oracle: qemu-img's commit of a copy, outside the loop file system.
cp -a --sparse=always "$M/orig" "$T/q"
qemu-img commit -q "$T/q/top.qcow2"

fresh() { # fresh copy of chain $1 in $M/$2 (shared: costs nothing here)
  rm -rf "${M:?}/$2"
  cp -a --reflink=always "$M/$1" "$M/$2"
}

# --- device bytes ------------------------------------------------------------
fresh orig x
sync -f "$M"
before=$(loopfs_written "$DEV")
: >"$T/trace"
ok_rc "extsnap img commit on XFS" 0 env EXTSNAP_FAULT_TRACE="$T/trace" "$EXTSNAP" img commit -q "$M/x/top.qcow2"
sync -f "$M"
after=$(loopfs_written "$DEV")
written=$((after - before))
echo "commit of $((MERGED >> 20)) MiB: $((written >> 10)) KiB written to $DEV ($((written * 1000 / MERGED))/1000 of the merged bytes)"
ES_CHECKS=$((ES_CHECKS + 1))
((written * 20 < MERGED)) ||
  fail "the commit wrote $written bytes to the device, not under 5 % of the $MERGED merged (extents not shared?)"
ES_CHECKS=$((ES_CHECKS + 1))
grep -q '^write [0-9]* clone ' "$T/trace" || fail "the commit never tried to share (no 'clone' in the fault trace)"
oracle qemu-img compare -q "$T/q/base.qcow2" "$M/x/base.qcow2" || fail "BASE differs from qemu-img's commit"
oracle qemu-img check -q "$M/x/base.qcow2" || fail "BASE does not check clean"
oracle qemu-img compare -q "$T/q/top.qcow2" "$M/x/top.qcow2" || fail "emptied TOP differs from qemu-img's"

# --- the safe rebase: top2 over TOP over BASE, rebased onto BASE, so TOP's
# 256 MiB are copied into top2 (shared) --------------------------------------
fresh orig r
qemu-img create -q -f qcow2 -b top.qcow2 -F qcow2 "$M/r/top2.qcow2"
qemu-io -t writeback -c 'write -P 0x77 1M 64k' -c 'write -P 0x78 300M 128k' "$M/r/top2.qcow2" >/dev/null
cp -a --sparse=always "$M/r" "$T/qr"
qemu-img rebase -q -b base.qcow2 -F qcow2 "$T/qr/top2.qcow2"
sync -f "$M"
before=$(loopfs_written "$DEV")
ok_rc "extsnap img rebase on XFS" 0 "$EXTSNAP" img rebase -b base.qcow2 -F qcow2 "$M/r/top2.qcow2"
sync -f "$M"
written=$(($(loopfs_written "$DEV") - before))
echo "safe rebase copying $((MERGED >> 20)) MiB: $((written >> 10)) KiB written to $DEV"
ES_CHECKS=$((ES_CHECKS + 1))
((written * 20 < MERGED)) ||
  fail "the rebase wrote $written bytes to the device, not under 5 % of the $MERGED copied"
oracle qemu-img compare -q "$T/qr/top2.qcow2" "$M/r/top2.qcow2" || fail "the rebased image differs from qemu-img's"
oracle qemu-img check -q "$M/r/top2.qcow2" || fail "the rebased image does not check clean"
rm -rf "${M:?}/r" "$T/qr"

# --- setup within one file system: the hard link is refused (the target
# directory is another mount of the same XFS), so the images are copied,
# and the copy shares their extents -------------------------------------------
R=$M/s
snap_make_tvm "$R"
qemu-io -f qcow2 -t writeback -c 'write -P 0xa1 0 4M' "$R$SNAP_IMG/vda.qcow2" >/dev/null
GUEST=$(all_guest_sums "$R" tvm)
mkdir -p "$M/fast" "$R/srv/fast"
mount --bind "$M/fast" "$R/srv/fast" && BIND=$R/srv/fast
: >"$T/trace"
sync -f "$M"
before=$(loopfs_written "$DEV")
ok_rc "setup onto another mount of the same XFS" 0 \
  env EXTSNAP_FAULT_TRACE="$T/trace" "$EXTSNAP" setup tvm /srv/fast -q --root "$R"
sync -f "$M"
written=$(($(loopfs_written "$DEV") - before))
echo "setup copying vda's 4 MiB of data (and two small images): $((written >> 10)) KiB written to $DEV"
ok_eq "setup: guest content unchanged" "$GUEST" "$(all_guest_sums "$R" tvm)"
ES_CHECKS=$((ES_CHECKS + 1))
grep -q '^write [0-9]* clone .*tvm-vda' "$T/trace" || fail "setup did not try to share vda's extents"
ES_CHECKS=$((ES_CHECKS + 1))
((written < (2 << 20))) || fail "setup wrote $written bytes to the device: vda's 4 MiB were copied, not shared"
umount "$BIND" && BIND=""
rm -rf "${M:?}/s" "$M/fast"

# --- crashes: stop at each flush, then cut the power of the file system -------
# remount: what a power cut leaves, the log not flushed, then recovery.
remount() {
  xfs_io -x -c shutdown "$M" # without -f: the in-memory log is lost
  loopfs_umount "$M" || { fail "cannot unmount $M after the shutdown"; finish; }
  mount "$DEV" "$M"
}
# A smaller chain (16 MiB in TOP), so that each round stays short.
build "$M/small" 128 8 256 view
: >"$T/trace"
fresh small w
EXTSNAP_FAULT_TRACE="$T/trace" "$EXTSNAP" img commit -q "$M/w/top.qcow2"
nflush=$(grep -c '^flush ' "$T/trace" || true)
ES_CHECKS=$((ES_CHECKS + 1))
((nflush >= 3)) || fail "only $nflush flushes traced"
for ((i = 1; i <= nflush; i++)); do
  fresh small w
  sync -f "$M" # the copy itself is not what is being tested
  rc=0
  EXTSNAP_FAULT=flush:$i:stop "$EXTSNAP" img commit -q "$M/w/top.qcow2" >"$T/out" 2>&1 || rc=$?
  ok_eq "flush $i: the simulated crash" 86 "$rc" || continue
  remount
  qrc=0
  qemu-img check "$M/w/base.qcow2" >"$T/check" 2>&1 || qrc=$?
  ((qrc == 0 || qrc == 3)) ||
    fail "flush $i, after the power cut: BASE check exits $qrc: $(oracle_err "$T/check")"
  qemu-img compare -q "$T/small.raw" "$M/w/top.qcow2" ||
    fail "flush $i, after the power cut: the chain does not read as before"
  rc=0
  "$EXTSNAP" img commit -q "$M/w/top.qcow2" >"$T/out" 2>&1 || rc=$?
  ok_eq "flush $i: the re-run after the power cut ($(oracle_err "$T/out"))" 0 "$rc" || continue
  oracle qemu-img compare -q "$T/small.raw" "$M/w/base.qcow2" ||
    fail "flush $i: after the re-run BASE does not read as the chain did"
  oracle qemu-img check -q "$M/w/base.qcow2" || fail "flush $i: BASE not clean after the re-run"
done
echo "power cut after each of $nflush flush points"

# An I/O error at each sharing call (the fault hook counts a clone as a
# read and a write of the copied range): a clear error, BASE not
# corrupted, and a re-run completes with the same result.
nclone=0
for n in $(awk '$1 == "write" && $3 == "clone" && $4 ~ /base.qcow2$/ { print $2 }' "$T/trace"); do
  nclone=$((nclone + 1))
  fresh small w
  rc=0
  EXTSNAP_FAULT=write:$n:eio "$EXTSNAP" img commit -q "$M/w/top.qcow2" >"$T/out" 2>&1 || rc=$?
  ok_eq "clone (write $n): exit status on the I/O error" 1 "$rc"
  ES_CHECKS=$((ES_CHECKS + 1))
  grep -q "Input/output error" "$T/out" || fail "clone (write $n): no clear error: $(oracle_err "$T/out")"
  qrc=0
  qemu-img check "$M/w/base.qcow2" >"$T/check" 2>&1 || qrc=$?
  ((qrc == 0 || qrc == 3)) || fail "clone (write $n): BASE check exits $qrc: $(oracle_err "$T/check")"
  ok_rc "clone (write $n): the re-run" 0 "$EXTSNAP" img commit -q "$M/w/top.qcow2"
  oracle qemu-img compare -q "$T/small.raw" "$M/w/base.qcow2" ||
    fail "clone (write $n): after the re-run BASE does not read as the chain did"
done
ES_CHECKS=$((ES_CHECKS + 1))
((nclone > 0)) || fail "no sharing call in the small commit's trace"
echo "I/O error at each of $nclone sharing calls"
finish
