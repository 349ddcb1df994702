#!/usr/bin/env bash
# The benchmarks on every file system this machine can make (issue 17): the
# working directory's (/var/tmp), plus a loop-mounted XFS (reflink=1) and
# btrfs when allowed (root, loop devices, xfsprogs / btrfs-progs), one
# table at the end. On a loop file system the bytes written are the loop
# device's own count (sectors written, synced before and after each timed
# command, metadata included); on the working directory's, where others
# write too, what the process sent to storage. See bench/README.md.
#
# usage: bench/fs.sh [EXTSNAP_BINARY]
#   env: FS       default "cwd xfs btrfs"
#        BENCHES  default "commit compare rebase"
#        LOOP_GIB size of each loop file system (sparse; default 24)
#        RUNS, SEED and each benchmark's own settings pass through.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
EXTSNAP=${1:-${EXTSNAP:-$here/../build/extsnap}}
[[ -x $EXTSNAP ]] || { echo "no extsnap binary at $EXTSNAP (build first, or pass its path)" >&2; exit 2; }
EXTSNAP=$(cd "$(dirname "$EXTSNAP")" && pwd)/$(basename "$EXTSNAP")
FS=${FS:-cwd xfs btrfs}
BENCHES=${BENCHES:-commit compare rebase}
LOOP_GIB=${LOOP_GIB:-24}
SEED=${SEED:-42}
work=$(mktemp -d /var/tmp/extsnap-fsbench.XXXXXX)
trap 'cd /; loopfs_cleanup; rm -rf "$work"' EXIT
trap 'exit 1' INT TERM HUP

# commit.sh's and compare.sh's chain, built once and copied to each.
if [[ " $BENCHES " == *" commit "* || " $BENCHES " == *" compare "* ]]; then
  echo "== building the chain of bench/commit.sh (seed $SEED)"
  build_chain "$work/orig" "$SEED"
fi

for fs in $FS; do
  dev= dir=$work/$fs.dir name=$fs
  if [[ $fs == cwd ]]; then
    name="$(findmnt -n -o FSTYPE -T "$work") (/var/tmp)"
    mkdir -p "$dir"
  else
    why=$(loopfs_why "$fs")
    [[ -z $why ]] || { echo "== $fs: skipped: $why"; continue; }
    loopfs_make "$fs" "$work" $((LOOP_GIB * 1024)) || { echo "== $fs: cannot make it"; loopfs_cleanup; continue; }
    dir=$LOOPFS_MNT dev=$LOOPFS_DEV name="$fs (loop)"
  fi
  echo "$name" >"$work/$fs.name"
  for b in $BENCHES; do
    echo "== $name: bench/$b.sh"
    mkdir -p "$dir/$b"
    [[ $b == rebase ]] || cp -a --sparse=always --reflink=never "$work/orig" "$dir/$b/orig"
    BENCH_DIR=$dir/$b BENCH_DEV=$dev BENCH_SUMMARY=$work/$fs.sum bash "$here/$b.sh" "$EXTSNAP" 2>&1 |
      sed 's/^/  /'
    rm -rf "${dir:?}/$b"
  done
  [[ $fs == cwd ]] || { loopfs_cleanup; rm -f "$work/$fs.img"; }
done

echo "== results (medians; written: extsnap / qemu-img, device = the loop device's count, process = /proc/PID/io write_bytes)"
printf '| %-16s | %-16s | %8s | %8s | %6s | %7s | %6s | %6s | %9s | %9s | %-30s |\n' "file system" bench \
  extsnap qemu-img ratio floor x/floor q/floor "RSS x MiB" "RSS q MiB" "written MiB (x / q)"
printf '|%s|\n' "------------------|------------------|---------:|---------:|-------:|--------:|-------:|-------:|----------:|----------:|--------------------------------"
for fs in $FS; do
  [[ -f $work/$fs.sum ]] || continue
  while read -r line; do
    declare -A v=()
    for kv in $line; do v[${kv%%=*}]=${kv#*=}; done
    awk -v fs="$(cat "$work/$fs.name")" -v b="${v[bench]}" -v x="${v[extsnap]}" -v q="${v[qemu]}" \
      -v f="${v[floor]:-}" -v rx="${v[rss_x]}" -v rq="${v[rss_q]}" -v wx="${v[wr_x]:-}" -v wq="${v[wr_q]:-}" \
      -v wf="${v[wr_from]:-}" -v m="${v[merged]:-}" 'BEGIN {
        fl = f == "" ? "" : sprintf("%.2f s", f)
        xf = f == "" ? "" : sprintf("%.2f", x / f); qf = f == "" ? "" : sprintf("%.2f", f / q)
        w = wx == "" ? "" : sprintf("%d / %d %s", wx / 1048576, wq / 1048576, wf)
        if (m != "" && wx != "") w = w sprintf(" (%.1f%%)", 100 * wx / m)
        printf "| %-16s | %-16s | %6.2f s | %6.2f s | %6.2f | %7s | %6s | %6s | %9d | %9d | %-30s |\n",
          fs, b, x, q, (q > 0 ? x / q : 0), fl, xf, qf, rx / 1024, rq / 1024, w }'
    unset v
  done <"$work/$fs.sum"
done
