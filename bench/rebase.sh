#!/usr/bin/env bash
# Benchmark: the safe rebase, extsnap img rebase against qemu-img rebase
# (without -u), on fresh copies, page caches dropped before every timed step
# when allowed. See bench/README.md (issue 14).
#
# base.qcow2: VSIZE_GIB GiB qcow2 (64 KiB clusters) with BASE_ALLOC_MIB MiB
# allocated (four equal runs at 0, 1/4, 1/2 and 3/4 of the disk); mid.qcow2
# over it and top.qcow2 over mid, with MID_CLUSTERS and TOP_CLUSTERS
# distinct random 64 KiB clusters each (seeded, random order). Arms:
#   drop-mid  rebase top onto base (what mid held and top does not is copied)
#   flatten   rebase top onto nothing (-b "": everything the chain shows)
#   flatten-c the same with -c (compressed writes; not in the default ARMS).
#             qemu-img rebase has -c from 8.2 on; an older one (Debian 12's
#             7.2) runs without it, and the line says so. The sizes of both
#             results are printed, and their ratio.
# Each result is compared with qemu-img's (qemu-img compare) and checked.
#
# usage: bench/rebase.sh [EXTSNAP_BINARY]
#   env: VSIZE_GIB       virtual size (default 64: a sparse VM disk)
#        BASE_ALLOC_MIB  allocated in base (default 512)
#        MID_CLUSTERS    64 KiB clusters in mid (default 4096 = 256 MiB)
#        TOP_CLUSTERS    64 KiB clusters in top (default 1024 = 64 MiB)
#        ARMS            default "drop-mid flatten"; add flatten-c for -c
#        BENCH_DIR, RUNS (default 3), SEED (default 42), KEEP=1: as commit.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

. "$here/lib.sh"
bench_init "$@"

VSIZE_GIB=${VSIZE_GIB:-64}
BASE_ALLOC_MIB=${BASE_ALLOC_MIB:-512}
MID_CLUSTERS=${MID_CLUSTERS:-4096}
TOP_CLUSTERS=${TOP_CLUSTERS:-1024}
ARMS=${ARMS:-drop-mid flatten}

# random_layer IMG COUNT SEED: COUNT distinct random 64 KiB clusters.
random_layer() {
  awk -v seed="$3" -v want="$2" -v n=$((VSIZE_GIB * 16384)) 'BEGIN {
      srand(seed)
      for (i = 0; i < want; i++) {
        do { c = int(rand() * n) } while (c in used)
        used[c] = 1
        printf "write -P %d %.0f 64k\n", 1 + (c % 250), c * 65536 }
    }' >"$1.cmds"
  qemu-io "$1" <"$1.cmds" >/dev/null
  rm -f "$1.cmds"
}

build() {
  local d=$1 i quarter=$((VSIZE_GIB * 1024 / 4)) run=$((BASE_ALLOC_MIB / 4))
  [[ -f $d/top.qcow2 ]] && return 0
  mkdir -p "$d"
  qemu-img create -q -f qcow2 "$d/base.qcow2" "${VSIZE_GIB}G"
  for i in 0 1 2 3; do
    qemu-io -c "write -P $((0x10 + i)) $((i * quarter))M ${run}M" "$d/base.qcow2" >/dev/null
  done
  qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/mid.qcow2"
  random_layer "$d/mid.qcow2" "$MID_CLUSTERS" "$SEED"
  qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top.qcow2"
  random_layer "$d/top.qcow2" "$TOP_CLUSTERS" $((SEED + 1))
}

fresh() { # fresh copy of the chain in $1
  rm -rf "$1"
  # a real copy, not extents shared with orig (cp shares by default on XFS
  # and btrfs): BASE must start as it would in use
  cp -a --sparse=always --reflink=never orig "$1"
}

echo "== building images in $dir (seed $SEED, ${VSIZE_GIB} GiB, base ${BASE_ALLOC_MIB} MiB, mid $MID_CLUSTERS, top $TOP_CLUSTERS clusters)"
build orig
for f in base mid top; do qemu-img info orig/$f.qcow2 | grep -E "disk size" | sed "s/^/  $f /"; done

# Does this qemu-img's rebase take -c (8.2 and later)?
qemu_c=()
qemu-img --help 2>&1 | grep -qE '^ *rebase .*\[-c\]' && qemu_c=(-c)

rm -f ./*.times
for arm in $ARMS; do
  qargs=()
  case $arm in
  drop-mid) args=(-b base.qcow2 -F qcow2) ;;
  flatten) args=(-b "") ;;
  flatten-c) args=(-c -b "") qargs=("${qemu_c[@]}" -b "") ;;
  *) echo "unknown arm $arm" >&2; exit 2 ;;
  esac
  ((${#qargs[@]})) || qargs=("${args[@]}")
  for ((r = 1; r <= RUNS; r++)); do
    echo "== $arm run $r/$RUNS"
    fresh x
    (cd x && timed "../$arm.extsnap" "$EXTSNAP" img rebase "${args[@]}" top.qcow2)
    fresh q
    (cd q && timed "../$arm.qemu" qemu-img rebase -q "${qargs[@]}" top.qcow2)
    for m in extsnap qemu; do printf '  %-8s %6ss  peak RSS %6s KiB\n' "$m" $(tail -1 "$arm.$m.times" | cut -d" " -f1,2); done
  done
  qemu-img compare -q x/top.qcow2 q/top.qcow2 && echo "  $arm: extsnap's and qemu-img's results are identical" ||
    { echo "  $arm: RESULTS DIFFER"; exit 1; }
  qemu-img check -q x/top.qcow2 && echo "  $arm: extsnap's result checks clean"
  if [[ $arm == flatten-c ]]; then
    ((${#qemu_c[@]})) || echo "  $arm: this qemu-img rebase has no -c: it ran without (uncompressed result)"
    sx=$(stat -c %s x/top.qcow2) sq=$(stat -c %s q/top.qcow2)
    nx=$(qemu-img check --output=json x/top.qcow2 | jq '."compressed-clusters" // 0')
    awk -v x="$sx" -v q="$sq" -v a="$arm" -v n="$nx" 'BEGIN {
      printf "  %-9s sizes: extsnap %d bytes (%d compressed clusters), qemu-img %d bytes: ratio %.2f\n", a, x, n, q, (q > 0 ? x / q : 0) }'
  fi
done

echo "== results ($RUNS runs each, medians$( ((can_drop)) && echo ", caches dropped before each step" || echo "; page caches could NOT be dropped (not root?): warm-cache numbers"))"
for arm in $ARMS; do
  med_x=$(cut -d' ' -f1 "$arm.extsnap.times" | median)
  med_q=$(cut -d' ' -f1 "$arm.qemu.times" | median)
  rss_x=$(cut -d' ' -f2 "$arm.extsnap.times" | sort -n | tail -1)
  rss_q=$(cut -d' ' -f2 "$arm.qemu.times" | sort -n | tail -1)
  printf '  %-9s extsnap img rebase %6.2f s (peak RSS %6d KiB)   qemu-img rebase %6.2f s (peak RSS %6d KiB)\n' \
    "$arm" "$med_x" "$rss_x" "$med_q" "$rss_q"
  note="(target <= 0.5)"
  [[ $arm == flatten-c && ${#qemu_c[@]} == 0 ]] && note="(qemu-img without -c: it compresses nothing)"
  awk -v x="$med_x" -v q="$med_q" -v a="$arm" -v note="$note" 'BEGIN {
    printf "  %-9s extsnap / qemu-img = %.2f   %s\n", a, (q > 0 ? x / q : 0), note }'
  read -r wr_x wr_from < <(written "$arm.extsnap")
  read -r wr_q _ < <(written "$arm.qemu")
  summary bench=rebase-$arm extsnap="$med_x" qemu="$med_q" rss_x="$rss_x" rss_q="$rss_q" \
    wr_x="$wr_x" wr_q="$wr_q" wr_from="$wr_from" runs="$RUNS"
done
