# Shared by the benchmarks (sourced with $here set to bench/).
. "$here/../tests/e2e/lib/loopfs.sh" # loopfs_written

# bench_init [EXTSNAP_BINARY]: the binary, RUNS, SEED, TIME, the working
# directory (BENCH_DIR or a new one, removed at exit unless KEEP=1; the
# shell moves into it) and can_drop (page caches can be dropped).
bench_init() {
  EXTSNAP=${1:-${EXTSNAP:-$here/../build/extsnap}}
  [[ -x $EXTSNAP ]] || { echo "no extsnap binary at $EXTSNAP (build first, or pass its path)" >&2; exit 2; }
  EXTSNAP=$(cd "$(dirname "$EXTSNAP")" && pwd)/$(basename "$EXTSNAP")
  RUNS=${RUNS:-3}
  SEED=${SEED:-42}
  TIME=/usr/bin/time
  [[ -x $TIME ]] || { echo "needs GNU time (/usr/bin/time, Debian package 'time')" >&2; exit 2; }
  dir=${BENCH_DIR:-$(mktemp -d /var/tmp/extsnap-bench.XXXXXX)}
  mkdir -p "$dir"
  [[ -n ${KEEP:-} ]] || trap 'rm -rf "$dir"' EXIT
  cd "$dir"
  if drop_caches; then can_drop=1; else can_drop=0; fi
}

drop_caches() {
  sync
  if echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then return 0; fi
  return 1
}

# build_chain DIR SEED: DIR/base.qcow2, an 8 GiB qcow2 (64 KiB clusters)
# with 2 GiB allocated (4 x 512 MiB), and DIR/top.qcow2 over it with 16384
# distinct 64 KiB clusters (1 GiB) at random offsets, written in random
# order. Kept when DIR already holds them.
build_chain() {
  local d=$1 seed=$2
  [[ -f $d/top.qcow2 ]] && return 0
  mkdir -p "$d"
  qemu-img create -q -f qcow2 "$d/base.qcow2" 8G
  for i in 0 1 2 3; do
    qemu-io -c "write -P $((0x10 + i)) $((i * 2))G 512M" "$d/base.qcow2" >/dev/null
  done
  qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/top.qcow2"
  # 16384 distinct random clusters of the 131072, in random order.
  awk -v seed="$seed" 'BEGIN {
      srand(seed); n = 131072; want = 16384
      for (i = 0; i < n; i++) p[i] = i
      for (i = 0; i < want; i++) { j = i + int(rand() * (n - i)); t = p[i]; p[i] = p[j]; p[j] = t
        printf "write -P %d %.0f 64k\n", 1 + (p[i] % 250), p[i] * 65536 }
    }' >"$d/cmds"
  qemu-io "$d/top.qcow2" <"$d/cmds" >/dev/null
}

# timed NAME CMD...: appends "seconds peak_rss_kib write_bytes dev_bytes"
# to $NAME.times (page cache dropped first when allowed; set WARM=1 to keep
# it). write_bytes: what the process sent to storage (getrusage's output
# blocks, i.e. /proc/PID/io write_bytes, x 512); extents shared instead of
# copied count nothing. dev_bytes: the sectors written to BENCH_DEV (a
# block device of the benchmark's own, see bench/fs.sh) from before the
# command to after a sync of the file system once it ended, metadata
# included; "-" without BENCH_DEV.
timed() {
  local name=$1 d0=0 d1 t m o
  shift
  ((can_drop)) && [[ -z ${WARM:-} ]] && drop_caches
  [[ -n ${BENCH_DEV:-} ]] && { sync -f .; d0=$(loopfs_written "$BENCH_DEV"); }
  $TIME -f "%e %M %O" -o "$name.one" "$@" >/dev/null
  if [[ -n ${BENCH_DEV:-} ]]; then sync -f .; d1=$(($(loopfs_written "$BENCH_DEV") - d0)); else d1=-; fi
  read -r t m o < <(tail -1 "$name.one")
  echo "$t $m $((o * 512)) $d1" >>"$name.times"
}

# written NAME: the median bytes written of NAME.times and what counted
# them: "N device" with BENCH_DEV, else "N process".
written() {
  local v
  v=$(cut -d' ' -f4 "$1.times" | median)
  if [[ $v == - ]]; then echo "$(cut -d' ' -f3 "$1.times" | median) process"; else echo "$v device"; fi
}

# summary KEY=VALUE...: one line of results for bench/fs.sh's table (to
# BENCH_SUMMARY, when set).
summary() { [[ -z ${BENCH_SUMMARY:-} ]] || echo "$*" >>"$BENCH_SUMMARY"; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
