#!/usr/bin/env bash
# Benchmark: extsnap img commit vs qemu-img commit vs a plain sequential
# write (dd), on the same file system. See bench/README.md.
#
# BASE: 8 GiB qcow2 with 2 GiB allocated (4 x 512 MiB); TOP: 16384 random
# 64 KiB clusters (1 GiB) scattered over it (seeded). Each run commits a
# fresh copy; page caches are dropped before every timed step when allowed.
#
# usage: bench/commit.sh [EXTSNAP_BINARY]
#   env: BENCH_DIR   where the images go (default: a new dir under /var/tmp)
#        RUNS        runs per method (default 3)
#        SEED        random seed for TOP's offsets (default 42)
#        KEEP=1      keep the images
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

. "$here/lib.sh"
bench_init "$@"

echo "== building images in $dir (seed $SEED)"
build_chain orig "$SEED"
qemu-img info orig/top.qcow2 | grep -E "disk size" | sed 's/^/  top /'
qemu-img info orig/base.qcow2 | grep -E "disk size" | sed 's/^/  base /'

fresh() { # fresh copy of the chain in $1
  rm -rf "$1"
  # a real copy, not extents shared with orig (cp shares by default on XFS
  # and btrfs): BASE must start as it would in use
  cp -a --sparse=always --reflink=never orig "$1"
}

rm -f ./*.times
for ((r = 1; r <= RUNS; r++)); do
  echo "== run $r/$RUNS"
  fresh x
  (cd x && timed ../extsnap "$EXTSNAP" img commit -q top.qcow2)
  fresh q
  (cd q && timed ../qemu qemu-img commit -q top.qcow2)
  rm -f dd.out
  timed dd dd if=/dev/zero of=dd.out bs=1M count=1024 conv=fsync status=none
  # Freeing 1 GiB (what emptying TOP costs both commits; the file system
  # may discard the blocks synchronously).
  timed free truncate -s 0 dd.out
  rm -f dd.out
  for m in extsnap qemu dd free; do
    printf '  %-8s %6ss  peak RSS %6s KiB  written %s (process) %s (device)\n' "$m" $(tail -1 "$m.times")
  done
done

echo "== checking the results"
qemu-img compare -q x/base.qcow2 q/base.qcow2 && echo "  extsnap's BASE and qemu-img's BASE are identical" ||
  { echo "  RESULTS DIFFER"; exit 1; }
qemu-img check -q x/base.qcow2 && echo "  extsnap's BASE checks clean"
qemu-img compare -q x/top.qcow2 q/top.qcow2 && echo "  emptied TOPs read the same ($(stat -c %s x/top.qcow2) / $(stat -c %s q/top.qcow2) bytes)"

med_x=$(cut -d' ' -f1 extsnap.times | median)
med_q=$(cut -d' ' -f1 qemu.times | median)
med_d=$(cut -d' ' -f1 dd.times | median)
med_f=$(cut -d' ' -f1 free.times | median)
rss_x=$(cut -d' ' -f2 extsnap.times | sort -n | tail -1)
rss_q=$(cut -d' ' -f2 qemu.times | sort -n | tail -1)
# Bytes written: the device's count when the benchmark has a device of its
# own (bench/fs.sh), else what the process sent to storage.
read -r wr_x wr_from < <(written extsnap)
read -r wr_q _ < <(written qemu)
echo "== results ($RUNS runs each, medians$( ((can_drop)) && echo ", caches dropped before each step" || echo "; page caches could NOT be dropped (not root?): warm-cache numbers"))"
printf '  extsnap img commit   %6.2f s   peak RSS %6d KiB\n' "$med_x" "$rss_x"
printf '  qemu-img commit      %6.2f s   peak RSS %6d KiB\n' "$med_q" "$rss_q"
printf '  bytes written (%s): extsnap %d MiB, qemu-img %d MiB, of 1024 MiB merged\n' "$wr_from" \
  $((wr_x >> 20)) $((wr_q >> 20))
printf '  dd 1 GiB conv=fsync  %6.2f s\n' "$med_d"
printf '  freeing 1 GiB        %6.2f s   (truncate -s 0 of that file)\n' "$med_f"
awk -v x="$med_x" -v q="$med_q" -v d="$med_d" -v f="$med_f" 'BEGIN {
  printf "  extsnap / qemu-img = %.2f   (target <= 0.5)\n", x / q
  printf "  extsnap / dd       = %.2f   (target <= 1.5)\n", x / d
  # TOP may only be freed once BASE is durable, so no commit that empties
  # TOP can beat writing 1 GiB durably and then freeing 1 GiB.
  printf "  floor (dd + freeing) = %.2f s = %.2f x qemu-img\n", d + f, (d + f) / q
  printf "  extsnap / floor    = %.2f\n", x / (d + f) }'
summary bench=commit extsnap="$med_x" qemu="$med_q" floor="$(awk -v d="$med_d" -v f="$med_f" 'BEGIN { print d + f }')" \
  rss_x="$rss_x" rss_q="$rss_q" wr_x="$wr_x" wr_q="$wr_q" wr_from="$wr_from" merged=$((1 << 30)) runs="$RUNS"
