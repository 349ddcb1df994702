#!/usr/bin/env bash
# Benchmark: extsnap img compare vs qemu-img compare, the check a CI
# pipeline runs after a merge: the chain before (TOP over BASE, see
# bench/commit.sh) against the merged image after (BASE once qemu-img
# commit is done), identical content laid out differently. Cold (page
# cache dropped) and warm runs. See bench/README.md.
#
# usage: bench/compare.sh [EXTSNAP_BINARY]
#   env: BENCH_DIR (default: a new dir under /var/tmp; bench/commit.sh's
#        KEEP=1 directory is reused), RUNS (default 3), SEED (42), KEEP=1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_init "$@"

echo "== building images in $dir (seed $SEED)"
build_chain orig "$SEED"
if [[ ! -f merged/base.qcow2 ]]; then
  rm -rf merged && cp -a --sparse=always orig merged
  qemu-img commit -q merged/top.qcow2
fi

# The result must be right before it is timed.
"$EXTSNAP" img compare -q orig/top.qcow2 merged/base.qcow2 ||
  { echo "extsnap img compare says the images differ (exit $?)"; exit 1; }
qemu-img compare -q orig/top.qcow2 merged/base.qcow2

rm -f ./*.times
for ((r = 1; r <= RUNS; r++)); do
  echo "== run $r/$RUNS"
  timed x-cold "$EXTSNAP" img compare -q orig/top.qcow2 merged/base.qcow2
  timed q-cold qemu-img compare -q orig/top.qcow2 merged/base.qcow2
  WARM=1 timed x-warm "$EXTSNAP" img compare -q orig/top.qcow2 merged/base.qcow2
  WARM=1 timed q-warm qemu-img compare -q orig/top.qcow2 merged/base.qcow2
  for m in x-cold q-cold x-warm q-warm; do printf '  %-7s %6ss  peak RSS %6s KiB\n' "$m" $(tail -1 "$m.times" | cut -d" " -f1,2); done
done

med() { cut -d' ' -f1 "$1.times" | median; }
echo "== results ($RUNS runs each, medians$( ((can_drop)) || echo "; page caches could NOT be dropped: cold runs are warm"))"
for t in cold warm; do
  x=$(med x-$t) q=$(med q-$t)
  awk -v t="$t" -v x="$x" -v q="$q" 'BEGIN {
    printf "  %s: extsnap %5.2f s  qemu-img %5.2f s  extsnap/qemu-img = %.2f\n", t, x, q, x / q }'
  summary bench=compare-$t extsnap="$x" qemu="$q" rss_x="$(cut -d' ' -f2 x-$t.times | sort -n | tail -1)" \
    rss_q="$(cut -d' ' -f2 q-$t.times | sort -n | tail -1)" runs="$RUNS"
done
