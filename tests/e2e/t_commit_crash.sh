#!/usr/bin/env bash
# Crash safety of extsnap img commit (reference §5), with the fault hook of
# src/util/fileio.c: the commit of a small chain is traced to enumerate its
# write, flush and mutating operations, then stopped (a simulated crash:
# nothing after that point reaches the files) at EVERY one of them. After
# each stop TOP must still read exactly what it read before and BASE must
# check without corruption (exit 0, or 3 for leaked clusters), and running
# the commit again must complete and leave BASE and TOP reading exactly
# what TOP read before. The same with an I/O error at
# every point: a clear error, exit 1, BASE without corruption, and a re-run
# completes. After every re-run no cluster is leaked (`qemu-img check` exits
# 0, for BASE and for an emptied TOP): the re-run takes back what the
# interrupted run left, also the refcounts it raised past the end of the
# file (invisible to the check until a later write grows the file over
# them), and BASE is no larger than the larger of an uninterrupted run's
# BASE and what the interrupted run had left.
#
# Scenarios: (a) v3, 4 KiB clusters: BASE with an internal snapshot (shared
# L2 tables and clusters: copies, then releases), zeroes over data (releases),
# ~10 MiB of data (a new refcount block), TOP of 2 GiB over a 1 MiB BASE (a
# new, larger L1 table and a new size); TOP emptied by rebuilding it.
# (b) v2 BASE and TOP, 64 KiB clusters, a compressed middle layer; TOP
# emptied the slow way (entries cleared, clusters released).
# (c) a deep chain: 24 layers (64 KiB clusters, every fourth with extended
# L2 entries) of random writes, zero writes and discards over a full BASE,
# committed with -b base.qcow2 (the layers between must stay untouched).
# (d) persistent dirty bitmaps in BASE (enabled b1, 4 KiB g4k, disabled
# dis), MID and TOP (b1): after a stop or error every cluster of BASE that
# no longer reads as before is dirty in BASE's b1 and g4k (read through
# qemu-nbd -B and qemu-img map x-dirty-bitmap: never a missed change), and
# after the re-run BASE's bitmaps are those of an uninterrupted run. TOP
# also has nb, which BASE lacks: BASE gets it (libvirt's bitmap-add and
# merge after block-commit), and has it after every re-run.
# (e) TOP with bitmaps (enabled nb, disabled off) emptied after the default
# commit into BASE (TOP's tables walked, its clusters released, its bitmaps
# kept); BASE without any bitmap (nb is added: the bitmaps header
# extension too, BASE's backing name moved out of its way), over a root
# image. After each stop or error: TOP's and BASE's nb together cover every
# 4 KiB block the guest changed since nb was added (never a missed change),
# BASE and TOP check clean or with leaks only; after the re-run both check
# clean, read as after `qemu-img commit` of a copy, and BASE's nb alone
# covers every change since nb was added.
set -euo pipefail
EXTSNAP=${EXTSNAP:?path to the extsnap binary}
for c in qemu-img qemu-io qemu-nbd jq; do # the oracles: without them, skipped (exit 77), never passed
  command -v "$c" >/dev/null || { echo "SKIP: $c is not installed (run scripts/deps.sh)" >&2; exit 77; }
done
tmp=$(mktemp -d "${ES_TEST_TMP:-/tmp}/t_commit_crash.XXXXXX")
BM_TMP=$tmp
. "$(dirname "${BASH_SOURCE[0]}")/lib/bitmaps.sh"
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL [$scenario $fault]: $*"; fails=$((fails + 1)); }

build_a() {
  local d=$1
  qemu-img create -q -f qcow2 -o cluster_size=4k "$d/base.qcow2" 1M
  qemu-io -c 'write -P 1 0 512k' -c 'write -P 2 800k 100k' "$d/base.qcow2" >/dev/null
  qemu-img snapshot -c s1 "$d/base.qcow2"
  qemu-io -c 'write -P 3 256k 16k' "$d/base.qcow2" >/dev/null
  qemu-img create -q -f qcow2 -o cluster_size=4k -b base.qcow2 -F qcow2 "$d/mid.qcow2" 2G
  qemu-io -c 'write -P 4 100k 300k' -c 'write -z 600k 64k' -c 'write -P 5 1500M 64k' "$d/mid.qcow2" >/dev/null
  qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top.qcow2" 2G
  qemu-io -c 'write -P 6 0 4k' -c 'write -P 7 4M 10M' -c 'write -z 810k 20k' \
    -c 'write -z -u 200k 64k' -c 'write -P 8 2047M 64k' "$d/top.qcow2" >/dev/null
  args=(-b base.qcow2)
  # -b keeps TOP: also crash in the emptying with a default commit of mid.
}

build_b() {
  local d=$1
  qemu-img create -q -f qcow2 -o compat=0.10 "$d/base.qcow2" 8M
  qemu-io -c 'write -P 1 0 2M' "$d/base.qcow2" >/dev/null
  qemu-img create -q -f qcow2 "$d/c.src" 8M
  qemu-io -c 'write -P 2 1M 1M' -c 'write -P 3 5M 64k' "$d/c.src" >/dev/null
  qemu-img convert -c -O qcow2 -o compat=0.10 "$d/c.src" "$d/mid.qcow2"
  rm -f "$d/c.src"
  qemu-img rebase -u -b base.qcow2 -F qcow2 "$d/mid.qcow2"
  qemu-img create -q -f qcow2 -o compat=0.10 -b mid.qcow2 -F qcow2 "$d/top.qcow2"
  qemu-io -c 'write -z 0 64k' -c 'write -P 4 1536k 1M' -c 'write -P 5 7M 100k' "$d/top.qcow2" >/dev/null
  args=(-b base.qcow2)
}

build_d() {
  local d=$1
  qemu-img create -q -f qcow2 "$d/base.qcow2" 8M
  qemu-io -c 'write -P 1 0 1M' "$d/base.qcow2" >/dev/null
  qemu-img bitmap --add "$d/base.qcow2" b1
  qemu-img bitmap --add -g 4k "$d/base.qcow2" g4k
  qemu-img bitmap --add -g 1M --disable "$d/base.qcow2" dis
  qemu-io -c 'write -P 2 2M 64k' "$d/base.qcow2" >/dev/null
  qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/mid.qcow2"
  qemu-img bitmap --add -g 128k "$d/mid.qcow2" b1
  qemu-io -c 'write -P 3 512k 64k' -c 'write -z 3M 64k' "$d/mid.qcow2" >/dev/null
  qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top.qcow2"
  qemu-img bitmap --add "$d/top.qcow2" b1
  qemu-io -c 'write -P 4 5M 128k' -c 'write -P 5 100k 4k' "$d/top.qcow2" >/dev/null
  qemu-img bitmap --add "$d/top.qcow2" nb
  qemu-io -c 'write -P 6 6M 64k' "$d/top.qcow2" >/dev/null
  args=(-b base.qcow2)
}

build_e() {
  local d=$1
  qemu-img create -q -f qcow2 "$d/root.qcow2" 8M
  qemu-io -c 'write -P 1 0 2M' "$d/root.qcow2" >/dev/null
  qemu-img create -q -f qcow2 -b root.qcow2 -F qcow2 "$d/base.qcow2"
  qemu-io -c 'write -P 2 1M 512k' "$d/base.qcow2" >/dev/null
  # 4 KiB clusters: TOP's data spans all four of its L2 tables.
  qemu-img create -q -f qcow2 -o cluster_size=4k -b base.qcow2 -F qcow2 "$d/top.qcow2"
  qemu-io -c 'write -P 3 3M 128k' -c 'write -z 1M 64k' "$d/top.qcow2" >/dev/null
  qemu-img bitmap --add "$d/top.qcow2" nb
  qemu-img bitmap --add -g 4k --disable "$d/top.qcow2" off
  qemu-img convert -O raw "$d/top.qcow2" "$tmp/e.nb0.raw" # what nb starts from
  qemu-io -c 'write -P 4 5M 192k' -c 'write -P 5 100k 4k' -c 'write -z 1536k 64k' \
    -c 'write -P 6 3M 4k' "$d/top.qcow2" >/dev/null
  # The reference: qemu-img commit of a copy.
  mkdir -p "$tmp/e.ref"
  cp -a "$d"/. "$tmp/e.ref"
  qemu-img commit -q "$tmp/e.ref/top.qcow2"
  args=()
}

has_bitmap() { qemu-img info -U --output=json "$1" | jq -e --arg n "$2" '."format-specific".data.bitmaps // [] | any(.name == $n)' >/dev/null; }

# nb_covers WHAT VIEW IMAGES...: every 4 KiB block where VIEW differs from
# the guest's view when nb was added is dirty in the nb of one of IMAGES.
nb_covers() {
  local what=$1 view=$2 f missed
  shift 2
  local -a ranges=()
  for f in "$@"; do
    has_bitmap "$f" nb && mapfile -t -O "${#ranges[@]}" ranges < <(bitmap_dirty "$f" nb)
  done
  missed=$(bitmap_missed "$tmp/e.nb0.raw" "$view" "${ranges[@]}")
  [[ -z $missed ]] || fail "$what: 4 KiB blocks changed since nb was added but dirty in no nb: $missed"
}

# e's checks right after a stop or error: TOP still reads as before (run_points).
e_after_fault() {
  check_ok "$w/top.qcow2" "TOP after the $action"
  nb_covers "after the $action" "$tmp/e.view" "$w/top.qcow2" "$w/base.qcow2"
}

e_after_rerun() {
  check_ok "$w/top.qcow2" "TOP after the re-run" clean
  qemu-img compare -q "$tmp/e.ref/base.qcow2" "$w/base.qcow2" ||
    fail "after the re-run BASE does not read as after qemu-img commit"
  qemu-img compare -q "$tmp/e.ref/top.qcow2" "$w/top.qcow2" ||
    fail "after the re-run TOP does not read as after qemu-img commit"
  has_bitmap "$w/base.qcow2" nb || fail "after the re-run BASE has no bitmap nb"
  ! has_bitmap "$w/base.qcow2" off || fail "after the re-run BASE has TOP's disabled bitmap"
  qemu-img convert -O raw "$w/base.qcow2" "$tmp/e.base.raw"
  nb_covers "after the re-run, BASE alone" "$tmp/e.base.raw" "$w/base.qcow2"
}

all_dirty() { local n; for n in b1 g4k dis; do echo "$n: $(bitmap_dirty "$1" $n | tr '\n' ' ')"; done; }

# no_missed_change WHAT: every 4 KiB block of BASE (alone) that differs from
# the original BASE is dirty in BASE's b1 and g4k.
no_missed_change() {
  local n missed
  local -a ranges
  qemu-img convert -O raw "$(bitmap_alone "$w/base.qcow2")" "$tmp/cbase.raw1"
  for n in b1 g4k; do
    mapfile -t ranges < <(bitmap_dirty "$w/base.qcow2" $n)
    missed=$(bitmap_missed "$tmp/cbase.raw0" "$tmp/cbase.raw1" "${ranges[@]}")
    [[ -z $missed ]] || fail "$1: 4 KiB blocks of BASE changed but not dirty in $n: $missed"
  done
}

# check_ok IMG WHAT [clean]: qemu-img check exit 0 or 3 (leaks) only; with
# "clean", exit 0 only (no leaked cluster either).
check_ok() {
  local img=$1 what=$2 rc=0
  qemu-img check "$img" >"$tmp/check.log" 2>&1 || rc=$?
  if ((rc != 0 && rc != 3)) || [[ ${3:-} == clean && $rc != 0 ]]; then
    fail "$what: qemu-img check $(basename "$img") exits $rc: $(grep -m3 -E 'ERROR|error|[Ll]eak' "$tmp/check.log" | tr '\n' ' ')"
  fi
}

# run_points KINDS TARGET ARGS...: every fault point of the listed kinds of
# `extsnap img commit ARGS top.qcow2`, TARGET being the image committed into.
# (mutate points are the write, flush and truncate points together.)
run_points() {
  local kinds=$1 target=$2
  shift 2
  local cargs=("$@")
  local orig=$tmp/$scenario.orig w=$tmp/$scenario.w
  # What TOP shows before: BASE must show it afterwards, and TOP too.
  qemu-img convert -O raw "$orig/top.qcow2" "$tmp/$scenario.view"
  rm -rf "$w" && cp -a "$orig" "$w"
  : >"$tmp/trace"
  (cd "$w" && EXTSNAP_FAULT_TRACE="$tmp/trace" "$EXTSNAP" img commit -q "${cargs[@]}" top.qcow2) ||
    { fault=trace; fail "traced commit failed"; return; }
  local ref_size ref_dirty=""
  ref_size=$(stat -c %s "$w/$target")
  if [[ $scenario == d && $target == base.qcow2 ]]; then
    ref_dirty=$(all_dirty "$w/base.qcow2")
    qemu-img convert -O raw "$(bitmap_alone "$orig/base.qcow2")" "$tmp/cbase.raw0"
  fi
  local kind n total=0 m
  for kind in $kinds; do
    n=$(grep -c "^$kind " "$tmp/trace" || true)
    echo "$scenario (${cargs[*]:-default}): $n $kind points"
    for ((i = 1; i <= n; i++)); do
      for action in stop eio; do
        [[ $action == eio && $kind != mutate ]] && continue # mutate covers them all
        fault=$kind:$i:$action
        rm -rf "$w" && cp -a "$orig" "$w"
        local rc=0
        (cd "$w" && EXTSNAP_FAULT=$fault "$EXTSNAP" img commit -q "${cargs[@]}" top.qcow2) \
          >"$tmp/out.log" 2>&1 || rc=$?
        if [[ $action == stop ]]; then
          ((rc == 86)) || fail "expected the simulated crash (exit 86), got exit $rc: $(cat "$tmp/out.log")"
        else
          ((rc == 1)) || fail "expected exit 1 on the I/O error, got $rc"
          grep -q "extsnap: img commit: .*Input/output error" "$tmp/out.log" ||
            fail "no clear error message: $(cat "$tmp/out.log")"
        fi
        check_ok "$w/$target" "after the $action"
        [[ -z $ref_dirty ]] || no_missed_change "after the $action"
        [[ $scenario != e ]] || e_after_fault
        local stop_size
        stop_size=$(stat -c %s "$w/$target")
        # Nothing lost in between: TOP's chain reads as before, right after
        # the stop (someone may boot the VM instead of re-running).
        qemu-img compare -q "$tmp/$scenario.view" "$w/top.qcow2" ||
          fail "right after the $action TOP does not read as before"
        # Running the commit again finishes it, with the same result.
        rc=0
        (cd "$w" && "$EXTSNAP" img commit -q "${cargs[@]}" top.qcow2) >"$tmp/out.log" 2>&1 || rc=$?
        ((rc == 0)) || { fail "re-run exits $rc: $(cat "$tmp/out.log")"; continue; }
        check_ok "$w/$target" "after the re-run" clean
        [[ -z $ref_dirty || $(all_dirty "$w/base.qcow2") == "$ref_dirty" ]] ||
          fail "after the re-run BASE's bitmaps differ from an uninterrupted run's"
        [[ -z $ref_dirty ]] || has_bitmap "$w/base.qcow2" nb || fail "after the re-run BASE has no bitmap nb"
        [[ $scenario != e ]] || e_after_rerun
        [[ $target == base.qcow2 ]] || check_ok "$w/top.qcow2" "TOP after the re-run" clean
        local size bound=$ref_size
        size=$(stat -c %s "$w/$target")
        ((stop_size > bound)) && bound=$stop_size
        # (d, e: a re-run after BASE got nb marks in it what the images
        # above still hold, as in every enabled bitmap of BASE: nb's new
        # data cluster, table and directory may grow BASE.)
        [[ $scenario == d || $scenario == e ]] && bound=$((bound + 3 * 65536))
        ((size <= bound)) ||
          fail "after the re-run $target has $size bytes; an uninterrupted run leaves $ref_size, the stop left $stop_size"
        qemu-img compare -q "$tmp/$scenario.view" "$w/$target" ||
          fail "after the re-run $target does not read as TOP did"
        qemu-img compare -q "$tmp/$scenario.view" "$w/top.qcow2" ||
          fail "after the re-run TOP does not read as before"
        if [[ $target == base.qcow2 ]]; then
          for m in "$orig"/mid.qcow2 "$orig"/l*.qcow2; do
            [[ -f $m ]] || continue
            cmp -s "$m" "$w/${m##*/}" || fail "the middle image ${m##*/} was written"
          done
        fi
        total=$((total + 1))
      done
    done
  done
  echo "$scenario (${cargs[*]:-default}): $total fault runs"
}

build_c() {
  local d=$1 i below=base.qcow2 name opts args_io off len op
  RANDOM=19
  qemu-img create -q -f qcow2 "$d/base.qcow2" 4M
  qemu-io -c 'write -P 1 0 4M' "$d/base.qcow2" >/dev/null
  for ((i = 1; i <= 24; i++)); do
    name=l$i.qcow2
    ((i == 24)) && name=top.qcow2
    opts=cluster_size=64k
    ((i % 4 == 0)) && opts+=,extended_l2=on
    (cd "$d" && qemu-img create -q -f qcow2 -o "$opts" -b "$below" -F qcow2 "$name" 4M)
    args_io=()
    for op in data data zero discard; do
      off=$((RANDOM % 8192 * 512)) len=$(((1 + RANDOM % 256) * 512))
      ((off + len > 4 << 20)) && len=$(((4 << 20) - off))
      case $op in
      data) args_io+=(-c "write -P $((2 + i)) $off $len") ;;
      zero) args_io+=(-c "write -z $off $len") ;;
      discard) args_io+=(-c "discard $off $len") ;;
      esac
    done
    qemu-io "${args_io[@]}" "$d/$name" >/dev/null
    below=$name
  done
  args=(-b base.qcow2)
}

for scenario in ${ES_COMMIT_CRASH_SCENARIOS:-a b c d e}; do # (a subset: while working on one)
  mkdir -p "$tmp/$scenario.orig"
  "build_$scenario" "$tmp/$scenario.orig"
  fault=none
  # c, d and e: the mutate points only (every write, flush and truncate): a
  # deep chain has many, d's and e's oracles are slower.
  if [[ $scenario == c || $scenario == d || $scenario == e ]]; then
    run_points mutate base.qcow2 "${args[@]}"
    continue
  fi
  run_points "write flush mutate" base.qcow2 "${args[@]}"
  # A default commit (into mid, TOP emptied afterwards) crashes in the
  # emptying too.
  run_points mutate mid.qcow2
done

if ((fails)); then
  echo "$fails assertion(s) failed"
  exit 1
fi
echo "all passed"
