#!/usr/bin/env bash
# extsnap img commit into a BASE on a nearly full file system (a small
# tmpfs mounted by the test; exit 77 (skipped) when mounting is not allowed here):
#  1. the free-space pre-check refuses with a clear error (need and free, in
#     human units and bytes) and changes nothing (sha256 of BASE and TOP);
#  2. with the pre-check bypassed (EXTSNAP_SKIP_SPACE_CHECK=1) the commit
#     hits a real ENOSPC in the middle: a clear error, exit 1, BASE checks
#     without corruption (leaks allowed), TOP unchanged, and the message
#     names the failed write of BASE (not a read of TOP);
#  3. once space is freed, running the commit again completes it and BASE
#     reads what TOP read before.
# Also a raw BASE (pre-check and real ENOSPC).
set -euo pipefail
EXTSNAP=${EXTSNAP:?path to the extsnap binary}
for c in qemu-img qemu-io fallocate; do # the oracles: without them, skipped (exit 77), never passed
  command -v "$c" >/dev/null || { echo "SKIP: $c is not installed (run scripts/deps.sh)" >&2; exit 77; }
done
tmp=$(mktemp -d "${ES_TEST_TMP:-/tmp}/t_commit_enospc.XXXXXX")
mnt=$tmp/mnt
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=40M tmpfs "$mnt" 2>"$tmp/mount.log"; then
  echo "SKIP: cannot mount a tmpfs here ($(cat "$tmp/mount.log")); the ENOSPC test needs a small file system" >&2
  exit 77
fi
fails=0
fail() { echo "FAIL [$case]: $*"; fails=$((fails + 1)); }
sum() { sha256sum "$1" | cut -d' ' -f1; }

# Fill the file system but for about $1 MiB.
fill_to_free() {
  rm -f "$mnt/filler"
  local avail
  avail=$(df -B1 --output=avail "$mnt" | tail -1)
  fallocate -l $((avail - $1 * 1048576)) "$mnt/filler"
}

check_no_corruption() {
  local rc=0
  qemu-img check "$1" >"$tmp/check.log" 2>&1 || rc=$?
  ((rc == 0 || rc == 3)) || fail "qemu-img check $(basename "$1") exits $rc: $(head -3 "$tmp/check.log")"
}

run_case() {
  local fmt=$1 base=$mnt/base.$1
  case=$fmt
  rm -f "$mnt"/base.* "$mnt/filler"
  if [[ $fmt == raw ]]; then
    qemu-img create -q -f raw "$base" 32M
    qemu-io -f raw -c 'write -P 1 0 1M' "$base" >/dev/null
  else
    qemu-img create -q -f qcow2 "$base" 32M
    qemu-io -c 'write -P 1 0 1M' "$base" >/dev/null
  fi
  qemu-img create -q -f qcow2 -b "$base" -F "$fmt" "$tmp/top.qcow2"
  qemu-io -c 'write -P 2 2M 12M' -c 'write -P 3 20M 4M' "$tmp/top.qcow2" >/dev/null
  qemu-img convert -O raw "$tmp/top.qcow2" "$tmp/view.raw"
  fill_to_free 6

  # 1. The pre-check refuses; nothing changes.
  local b0 t0 rc=0
  b0=$(sum "$base") t0=$(sum "$tmp/top.qcow2")
  "$EXTSNAP" img commit "$tmp/top.qcow2" >"$tmp/out.log" 2>&1 || rc=$?
  ((rc == 1)) || fail "pre-check: exit $rc, expected 1"
  grep -Eq "not enough free space.*[0-9.]+ MiB \([0-9]+ bytes\).*[0-9.]+ MiB \([0-9]+ bytes\) free" "$tmp/out.log" ||
    fail "pre-check: unclear message: $(cat "$tmp/out.log")"
  [[ $(sum "$base") == "$b0" ]] || fail "pre-check: BASE changed"
  [[ $(sum "$tmp/top.qcow2") == "$t0" ]] || fail "pre-check: TOP changed"
  [[ $fmt == raw ]] || { rc=0; qemu-img check -q "$base" || rc=$?; ((rc == 0)) || fail "pre-check: BASE check exits $rc"; }

  # 2. A real ENOSPC half way.
  rc=0
  EXTSNAP_SKIP_SPACE_CHECK=1 "$EXTSNAP" img commit "$tmp/top.qcow2" >"$tmp/out.log" 2>&1 || rc=$?
  ((rc == 1)) || fail "real ENOSPC: exit $rc, expected 1: $(cat "$tmp/out.log")"
  grep -q "No space left on device" "$tmp/out.log" || fail "real ENOSPC: unclear message: $(cat "$tmp/out.log")"
  # The failed write is reported against the file written (BASE), not as a
  # read of TOP (the copy fallback used to lose the write-error flag).
  grep -qF "$base: " "$tmp/out.log" && grep -q "write" "$tmp/out.log" ||
    fail "real ENOSPC: the message does not name the write of BASE: $(cat "$tmp/out.log")"
  ! grep -q "read .*failed" "$tmp/out.log" || fail "real ENOSPC: reported as a failed read: $(cat "$tmp/out.log")"
  [[ $fmt == raw ]] || check_no_corruption "$base"
  [[ $(sum "$tmp/top.qcow2") == "$t0" ]] || fail "real ENOSPC: TOP changed"

  # 3. With room again, the commit completes.
  rm -f "$mnt/filler"
  rc=0
  "$EXTSNAP" img commit -q "$tmp/top.qcow2" >"$tmp/out.log" 2>&1 || rc=$?
  ((rc == 0)) || fail "re-run with room: exit $rc: $(cat "$tmp/out.log")"
  [[ $fmt == raw ]] || check_no_corruption "$base"
  qemu-img compare -q -f raw "$tmp/view.raw" "$base" || fail "after the re-run BASE does not read as TOP did"
  rm -f "$tmp/top.qcow2" "$tmp/view.raw"
  echo "$fmt BASE: pre-check, real ENOSPC and re-run checked"
}

run_case qcow2
run_case raw

if ((fails)); then
  echo "$fails assertion(s) failed"
  exit 1
fi
echo "all passed"
