#!/usr/bin/env bash
# extsnap img commit against qemu-img commit, on random chains.
#
# Each case builds a 3- or 4-layer chain with qemu-io (data writes of random
# sizes and offsets, write -z, write -z -u, discard), sometimes a compressed
# layer (qemu-img convert -c), at cluster sizes 4 KiB, 64 KiB and 2 MiB, with
# a v2, v3, raw, compressed, shorter or snapshotted base, extended L2 layers,
# and commits with and without -b/-d. One copy is committed by qemu-img, one
# by extsnap; then:
#   - extsnap succeeds, and `qemu-img check` of every image it wrote exits 0;
#   - BASE (read with its own backing) shows what TOP showed before the
#     commit (oracle independent of qemu-img);
#   - where qemu-img succeeded too: `qemu-img compare` of the two BASEs (and
#     TOPs, when emptied) says identical, virtual sizes and TOP file sizes
#     are equal.
# SEED=n reruns one case; CASES=n sets how many (default 64), FIRST=n the first seed.
set -euo pipefail
EXTSNAP=${EXTSNAP:?path to the extsnap binary}
for c in qemu-img qemu-io timeout; do # the oracles: without them, skipped (exit 77), never passed
  command -v "$c" >/dev/null || { echo "SKIP: $c is not installed (run scripts/deps.sh)" >&2; exit 77; }
done
tmp=$(mktemp -d "${ES_TEST_TMP:-/tmp}/t_img_commit.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL [seed $seed]: $*"; fails=$((fails + 1)); }

. "$(dirname "${BASH_SOURCE[0]}")/lib/random_io.sh"

# write_layer IMAGE FORMAT SIZE CS NOPS: random_ops written into IMAGE.
write_layer() {
  random_ops "$3" "$4" "$5"
  ((${#RANDOM_OPS[@]})) || return 0
  qemu-io -f "$2" "${RANDOM_OPS[@]}" "$1" >/dev/null
}

# A compressed layer: data written into a scratch image, converted with -c,
# then put on top of BELOW without changing its contents (rebase -u).
compressed_layer() {
  local out=$1 below=$2 below_fmt=$3 size=$4 cs=$5 n=$6
  qemu-img create -q -f qcow2 -o cluster_size="$cs" "$out.src" "$size"
  write_layer "$out.src" qcow2 "$size" "$cs" "$n"
  qemu-img convert -c -O qcow2 -o cluster_size="$cs" "$out.src" "$out"
  rm -f "$out.src"
  if [[ -n $below ]]; then qemu-img rebase -u -b "$below" -F "$below_fmt" "$out"; fi
}

# Build the case's chain in directory $1; sets base, base_fmt, mid, top,
# commit_args for the current seed.
build_case() {
  local d=$1
  RANDOM=$seed
  local variant=$((seed % 8)) cs_list=(4096 65536 2097152)
  local cs=${cs_list[$(( (seed / 8) % 3 ))]}
  # Every variant meets every mode: 0 default, 1 -d, 2 -b base, 3 -b mid1.
  local mode=$(( (seed % 8 + seed / 8) % 4 ))
  (( variant == 2 && mode < 2 )) && mode=$((mode + 2)) # only the bottom can be raw
  rnd 2; local depth=$((3 + R))
  # Small images so that the layers' writes overlap a lot.
  local size=$(( cs == 2097152 ? 64 << 20 : (cs == 4096 ? 1 << 20 : 8 << 20) ))
  rnd 12; local nops=$((4 + R))
  local ext=off base_opts="cluster_size=$cs" base_size=$size
  (( variant == 3 && cs >= 16384 )) && ext=on
  rnd 8; (( variant == 6 )) && base_size=$(( size - R * 512 ))
  rnd 2; local v2_all=$(( variant == 1 || (variant == 6 && R == 1) ))
  (( v2_all )) && base_opts+=",compat=0.10"
  base=$d/base.qcow2 base_fmt=qcow2
  case $variant in
  2)
    base=$d/base.raw base_fmt=raw
    qemu-img create -q -f raw "$base" "$base_size"
    write_layer "$base" raw "$base_size" "$cs" "$nops"
    ;;
  5)
    compressed_layer "$base" "" "" "$base_size" "$cs" "$nops"
    ;;
  *)
    [[ $ext == on ]] && base_opts+=",extended_l2=on"
    qemu-img create -q -f qcow2 -o "$base_opts" "$base" "$base_size"
    # Shorter layers on a full base: growing them must hide its data.
    (( variant == 6 )) && qemu-io -c "write -P 51 0 $base_size" "$base" >/dev/null
    write_layer "$base" qcow2 "$base_size" "$cs" "$nops"
    if (( variant == 4 )); then
      qemu-img snapshot -c s1 "$base"
      write_layer "$base" qcow2 "$base_size" "$cs" "$nops"
    fi
    ;;
  esac
  local below=$base below_fmt=$base_fmt layer layers=()
  for ((i = 1; i < depth; i++)); do
    if ((i == depth - 1)); then layer=$d/top.qcow2; else layer=$d/mid$i.qcow2; fi
    local lcs=$cs lopts lsize=$size
    rnd 3; (( variant == 7 )) && lcs=${cs_list[$R]}
    lopts="cluster_size=$lcs"
    (( v2_all )) && lopts+=",compat=0.10"
    rnd 2; if [[ $ext == on ]] && ((R == 1)); then lopts+=",extended_l2=on"; fi
    # Shorter layers below TOP, so that BASE grows over a range its own
    # (longer) backing file would otherwise show.
    if (( variant == 6 && i < depth - 1 )); then rnd 3; lsize=$(( size / 4 * (1 + R) + 512 * R )); fi
    rnd 6
    if (( variant == 5 && i == depth - 2 )) || ((R == 0)); then
      compressed_layer "$layer" "$(basename "$below")" "$below_fmt" "$lsize" "$lcs" "$nops"
    else
      qemu-img create -q -f qcow2 -o "$lopts" -b "$(basename "$below")" -F "$below_fmt" "$layer" "$lsize"
      write_layer "$layer" qcow2 "$lsize" "$lcs" "$nops"
    fi
    if (( variant == 4 && i < depth - 1 )); then
      qemu-img snapshot -c s1 "$layer"
      write_layer "$layer" qcow2 "$lsize" "$lcs" "$nops"
    fi
    layers+=("$layer")
    below=$layer below_fmt=qcow2
  done
  top=$d/top.qcow2
  mid=${layers[0]}
  commit_args=()
  # Default BASE: TOP's backing file.
  if ((depth == 3)); then target=$mid; else target=$d/mid2.qcow2; fi
  case $mode in
  1) commit_args=(-d) ;;
  2) commit_args=(-b "$(basename "$base")"); target=$base ;;
  3) if ((depth == 4)); then commit_args=(-b "$(basename "$mid")"); target=$mid
     else commit_args=(-b "$(basename "$base")"); target=$base; fi ;;
  esac
  snap=$(( variant == 4 ))
  desc="variant=$variant cs=$cs depth=$depth mode=$mode ext=$ext args=${commit_args[*]:-}"
}

vsize() { qemu-img info --output=json "$1" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p'; }

run_case() {
  local d=$tmp/case$seed
  [[ -n ${KEEP:-} ]] || rm -rf "$d"
  mkdir -p "$d/orig"
  build_case "$d/orig"
  cp -a "$d/orig" "$d/q"
  cp -a "$d/orig" "$d/x"
  local rel_top=top.qcow2 rel_target=${target#"$d/orig/"}
  local q_ok=1
  (cd "$d/q" && qemu-img commit -q "${commit_args[@]}" "$rel_top") >"$d/q.log" 2>&1 || q_ok=0
  if ! (cd "$d/x" && "$EXTSNAP" img commit -q "${commit_args[@]}" "$rel_top") >"$d/x.log" 2>&1; then
    fail "$desc: extsnap img commit failed: $(cat "$d/x.log")"
    return
  fi
  local rc=0
  [[ $rel_target == *.raw ]] || qemu-img check "$d/x/$rel_target" >"$d/check.log" 2>&1 || rc=$?
  ((rc == 0)) || fail "$desc: qemu-img check $rel_target exits $rc: $(head -5 "$d/check.log")"
  local kept=0
  [[ ${commit_args[*]:-} == *-d* || ${commit_args[*]:-} == *-b* ]] && kept=1
  if ((kept == 0)); then
    rc=0
    qemu-img check "$d/x/top.qcow2" >"$d/check.log" 2>&1 || rc=$?
    ((rc == 0)) || fail "$desc: qemu-img check top.qcow2 exits $rc: $(head -5 "$d/check.log")"
  else
    cmp -s "$d/orig/top.qcow2" "$d/x/top.qcow2" || fail "$desc: TOP changed although kept"
  fi
  # Internal snapshots of BASE keep their data; images other than BASE and
  # TOP are not touched.
  if ((snap)) && [[ $rel_target != *.raw ]]; then
    qemu-img convert -O raw -l snapshot.name=s1 "$d/orig/$rel_target" "$d/snap.orig" &&
      qemu-img convert -O raw -l snapshot.name=s1 "$d/x/$rel_target" "$d/snap.x" &&
      cmp -s "$d/snap.orig" "$d/snap.x" || fail "$desc: internal snapshot s1 of $rel_target changed"
    rm -f "$d/snap.orig" "$d/snap.x"
  fi
  local f
  for f in "$d"/orig/*; do
    f=${f##*/}
    [[ $f == "$rel_target" || $f == top.qcow2 ]] && continue
    cmp -s "$d/orig/$f" "$d/x/$f" || fail "$desc: $f changed although it is neither BASE nor TOP"
  done
  # BASE now shows what TOP showed.
  if ! qemu-img compare -q "$d/orig/top.qcow2" "$d/x/$rel_target" 2>"$d/cmp.log"; then
    fail "$desc: $rel_target after the commit differs from TOP before: $(cat "$d/cmp.log")"
  fi
  if ((kept == 0)) && ! qemu-img compare -q "$d/orig/top.qcow2" "$d/x/top.qcow2" 2>"$d/cmp.log"; then
    fail "$desc: emptied TOP does not read as before: $(cat "$d/cmp.log")"
  fi
  if ((q_ok)); then
    qemu-img compare -q "$d/q/$rel_target" "$d/x/$rel_target" ||
      fail "$desc: $rel_target differs from qemu-img's result"
    [[ $(vsize "$d/q/$rel_target") == $(vsize "$d/x/$rel_target") ]] ||
      fail "$desc: virtual size $(vsize "$d/x/$rel_target") != qemu-img's $(vsize "$d/q/$rel_target")"
    if ((kept == 0)); then
      qemu-img compare -q "$d/q/top.qcow2" "$d/x/top.qcow2" || fail "$desc: TOP differs from qemu-img's"
      local qs xs
      qs=$(stat -c %s "$d/q/top.qcow2") xs=$(stat -c %s "$d/x/top.qcow2")
      [[ $qs == "$xs" ]] || fail "$desc: emptied TOP is $xs bytes, qemu-img leaves $qs"
    fi
  else
    qskips=$((qskips + 1))
  fi
  [[ -n ${KEEP:-} ]] || rm -rf "$d"
}

qskips=0
start=$(date +%s)
if [[ -n ${SEED:-} ]]; then
  seed=$SEED
  run_case
  echo "seed $seed: $desc"
else
  for ((seed = ${FIRST:-1}; seed < ${FIRST:-1} + ${CASES:-64}; seed++)); do
    run_case
  done
fi
echo "random cases done in $(( $(date +%s) - start ))s (qemu-img itself failed on $qskips; checked against the pre-commit view only)"

# One allocated cluster over a 16 TiB TOP: work follows allocation, not size.
seed=big
d=$tmp/big
mkdir -p "$d"
qemu-img create -q -f qcow2 "$d/base.qcow2" 16T
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/top.qcow2"
qemu-io -c "write -P 0x5a 12T 64k" "$d/top.qcow2" >/dev/null
t0=$(date +%s%N)
if timeout 60 "$EXTSNAP" img commit -q "$d/top.qcow2"; then
  t1=$(date +%s%N)
  echo "16 TiB TOP with one cluster committed in $(( (t1 - t0) / 1000000 )) ms"
  qemu-io -c "read -P 0x5a 12T 64k" -c "read -P 0 0 64k" "$d/base.qcow2" | grep -q "Pattern verification failed" &&
    fail "16 TiB: committed cluster has the wrong content"
  qemu-img check -q "$d/base.qcow2" || fail "16 TiB: BASE does not check clean"
  qemu-img check -q "$d/top.qcow2" || fail "16 TiB: TOP does not check clean"
else
  fail "16 TiB: extsnap img commit failed or took over 60 s"
fi

if ((fails)); then
  echo "$fails assertion(s) failed"
  exit 1
fi
echo "all passed"
