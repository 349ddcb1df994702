#!/usr/bin/env bash
# extsnap img commit never writes through a corrupt BASE (issue #10 §2):
# BASE's L2 entry for guest cluster 0 is patched to point into BASE's own
# metadata (its L1 table, the L2 table itself, the refcount table, a
# refcount block), or an L1 entry names the refcount table as an L2 table.
# TOP writes guest cluster 0. Wanted, for `img commit` (TOP emptied) and
# `img commit -b`: exit 1 with "Preventing invalid write on metadata"
# (QEMU's words) or "metadata structures overlap", BASE and TOP
# byte-identical to before (sha256); and qemu-img agrees the image is bad
# (its check reports corruption, its commit refuses the same write).
set -euo pipefail
EXTSNAP=${EXTSNAP:?path to the extsnap binary}
for c in qemu-img qemu-io od sha256sum; do
  command -v "$c" >/dev/null || { echo "SKIP: $c is not installed"; exit 77; }
done
tmp=$(mktemp -d "${ES_TEST_TMP:-/tmp}/t_img_commit_overlap.XXXXXX")
trap '[[ -n ${KEEP:-} ]] || rm -rf "$tmp"' EXIT
fails=0 checks=0
fail() { echo "FAIL [$case]: $*"; fails=$((fails + 1)); }

be64() { echo $((16#$(od -An -tx1 -j "$2" -N 8 "$1" | tr -d ' \n'))); }
put_be64() {
  local f=$1 off=$2 v=$3 esc="" i
  for ((i = 56; i >= 0; i -= 8)); do esc+=$(printf '\\x%02x' $(((v >> i) & 255))); done
  printf '%b' "$esc" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}
MASK=$((0x00fffffffffffe00))
COPIED=$((1 << 63))

# build DIR: v3 BASE (64 KiB clusters) with 1 MiB of data from guest 0,
# TOP writing all of guest cluster 0 and a bit further on.
build() {
  mkdir -p "$1"
  qemu-img create -q -f qcow2 "$1/base.qcow2" 64M
  qemu-io -c 'write -P 1 0 1M' "$1/base.qcow2" >/dev/null
  qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$1/top.qcow2" 64M
  qemu-io -c 'write -P 2 0 64k' -c 'write -P 3 4M 64k' "$1/top.qcow2" >/dev/null
}

# corrupt DIR TARGET: point BASE's metadata at one of its own structures.
corrupt() {
  local b=$1/base.qcow2 l1 rt l2 rb
  l1=$(be64 "$b" 40)
  rt=$(be64 "$b" 48)
  l2=$(($(be64 "$b" "$l1") & MASK))
  rb=$(($(be64 "$b" "$rt") & MASK))
  case $2 in
    l1) put_be64 "$b" "$l2" $((COPIED | l1)) ;;
    l2) put_be64 "$b" "$l2" $((COPIED | l2)) ;;
    reftable) put_be64 "$b" "$l2" $((COPIED | rt)) ;;
    refblock) put_be64 "$b" "$l2" $((COPIED | rb)) ;;
    l1-names-reftable) put_be64 "$b" "$l1" $((COPIED | rt)) ;;
  esac
}

for target in l1 l2 reftable refblock l1-names-reftable; do
  for mode in empty keep; do
    case=$target/$mode
    d=$tmp/$target.$mode
    build "$d"
    corrupt "$d" "$target"
    args=()
    [[ $mode == keep ]] && args=(-b base.qcow2)
    before=$(cd "$d" && sha256sum base.qcow2 top.qcow2)
    rc=0
    (cd "$d" && "$EXTSNAP" img commit -q "${args[@]}" top.qcow2) >"$d/out" 2>&1 || rc=$?
    checks=$((checks + 3))
    ((rc == 1)) || fail "img commit exits $rc, expected 1: $(cat "$d/out")"
    grep -Eq "extsnap: img commit: .*(Preventing invalid write on metadata \(overlaps with|metadata structures overlap)" "$d/out" ||
      fail "no overlap message: $(cat "$d/out")"
    [[ $(cd "$d" && sha256sum base.qcow2 top.qcow2) == "$before" ]] ||
      fail "BASE or TOP changed although the commit was refused"
    # The oracle: qemu-img sees a corrupt image, and refuses the write.
    qrc=0
    qemu-img check "$d/base.qcow2" >/dev/null 2>&1 || qrc=$?
    checks=$((checks + 1))
    ((qrc == 2)) || fail "qemu-img check exits $qrc on the crafted BASE, expected 2 (corruption)"
    if [[ $mode == keep ]]; then
      cp "$d/base.qcow2" "$d/q.base.qcow2"
      qemu-img create -q -f qcow2 -b q.base.qcow2 -F qcow2 "$d/q.top.qcow2" 64M
      qemu-io -c 'write -P 2 0 64k' "$d/q.top.qcow2" >/dev/null
      qrc=0
      (cd "$d" && qemu-img commit -q q.top.qcow2) >"$d/qout" 2>&1 || qrc=$?
      checks=$((checks + 1))
      ((qrc != 0)) || fail "qemu-img commit accepted the crafted BASE (oracle disagrees)"
    fi
  done
done

# A cluster in the active tables twice (an L2 entry pointing at its own L2
# table), refcount 2, no internal snapshot: both checks call the repaired
# image clean, yet copying the "shared" table on write would leave the other
# reference inconsistent (qemu-img commit does, and its check then reports
# OFLAG_COPIED errors). The fuzz finding's two images, split as the harness
# splits them.
case=used-twice
d=$tmp/twice
mkdir -p "$d"
python3 - "${ES_SRC:-$(dirname "$0")/../..}/tests/fuzz/corpus/qcow2_write/finding-7b500a06154355f55ae6d79f12c1b3ef8098c40c" "$d" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<I", data[:4])[0]
open(sys.argv[2] + "/top.img", "wb").write(data[4:4 + n])
open(sys.argv[2] + "/base.img", "wb").write(data[4 + n:])
PY
(cd "$d" && "$EXTSNAP" img check -q -r all base.img && "$EXTSNAP" img check -q -r all top.img) >/dev/null 2>&1 || true
checks=$((checks + 1))
qemu-img check "$d/base.img" >/dev/null 2>&1 || fail "qemu-img check does not call the repaired BASE clean"
before=$(cd "$d" && sha256sum base.img top.img)
rc=0
(cd "$d" && "$EXTSNAP" img commit top.img) >"$d/out" 2>&1 || rc=$?
checks=$((checks + 3))
((rc == 1)) || fail "img commit over a cluster used twice exits $rc, expected 1: $(cat "$d/out")"
grep -q "has refcount 2 but the image has no internal snapshot to share it" "$d/out" ||
  fail "no refusal message for a cluster used twice: $(cat "$d/out")"
[[ $(cd "$d" && sha256sum base.img top.img) == "$before" ]] ||
  fail "BASE or TOP changed although the commit was refused"

# A TOP that is emptied entry by entry (compat 0.10 cannot be rebuilt from
# scratch) with a damage check -r all cannot repair: an L2 entry past the
# guest's end naming a cluster past the end of the file. The commit does
# not read it, but emptying TOP would drop its refcount below zero half-way,
# after BASE was written: refused before the first write, both files kept.
case=top-damaged
d=$tmp/topdamaged
mkdir -p "$d"
(
  cd "$d"
  qemu-img create -q -f qcow2 -o compat=0.10 base.img 1M
  qemu-img create -q -f qcow2 -o compat=0.10 -b base.img -F qcow2 top.img 1M
  qemu-io -c 'write -P 5 0 128k' top.img >/dev/null
  # L2 table at 0x40000 (64 KiB clusters: header, reftable, refblock, L1);
  # entry 100 is guest offset 6.25 MiB, past the 1 MiB disk.
  printf '\x80\x00\x00\x00\x00\x10\x00\x00' | dd of=top.img bs=1 seek=$((0x40000 + 8 * 100)) conv=notrunc status=none
  "$EXTSNAP" img check -q -r all top.img >/dev/null 2>&1 || true
)
checks=$((checks + 1))
qemu-img check "$d/top.img" >/dev/null 2>&1 && fail "test setup: qemu-img check calls the damaged TOP clean"
before=$(cd "$d" && sha256sum base.img top.img)
rc=0
(cd "$d" && "$EXTSNAP" img commit top.img) >"$d/out" 2>&1 || rc=$?
checks=$((checks + 4))
((rc == 1)) || fail "img commit of a damaged TOP exits $rc, expected 1: $(cat "$d/out")"
[[ $(wc -l <"$d/out") == 1 ]] || fail "more than one error line: $(cat "$d/out")"
grep -q "top.img: 1 corruption(s) in the image's metadata" "$d/out" ||
  fail "no refusal naming TOP's damage: $(cat "$d/out")"
[[ $(cd "$d" && sha256sum base.img top.img) == "$before" ]] ||
  fail "BASE or TOP changed although the commit was refused"
# Keeping TOP (-d) does not write it: that commit goes through.
rc=0
(cd "$d" && "$EXTSNAP" img commit -d top.img) >"$d/out" 2>&1 || rc=$?
checks=$((checks + 1))
((rc == 0)) || fail "img commit -d of a damaged TOP exits $rc: $(cat "$d/out")"

echo "$checks checks"
if ((fails)); then
  echo "$fails assertion(s) failed"
  exit 1
fi
echo "all passed"
