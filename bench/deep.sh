#!/usr/bin/env bash
# Benchmark: a merge of a deep chain, extsnap img commit -b against
# qemu-img commit -b, at several depths; and the cost of one extra empty
# layer on top. See bench/README.md (issue 19).
#
# c0.qcow2: BASE_GIB GiB qcow2 (64 KiB clusters) with BASE_ALLOC_MIB MiB
# allocated (four equal runs at 0, 1/4, 1/2 and 3/4 of the disk); c1 .. cN:
# one overlay each over the one below, with LAYER_CLUSTERS distinct random
# 64 KiB clusters written in random order (seeded; layers overlap each other
# and BASE at random, so upper layers hide lower ones). One chain of the
# deepest depth is built; the run for depth N commits cN into c0 on a fresh
# copy of c0 .. cN, page caches dropped before every timed step. The domain
# arm builds, per depth N, a fake host root with a shut-off domain whose
# disk is a copy of c0 with N+1 external snapshots, layer i written into the
# overlay snapshot s_i made, and times 'extsnap commit deep base sN+1' (the
# same N layers merged into the same c0, plus the snapshot metadata).
#
# usage: bench/deep.sh [EXTSNAP_BINARY]
#   env: DEPTHS          chain depths to measure (default "10 50 200")
#        LAYER_CLUSTERS  64 KiB clusters written per layer (default 32 = 2 MiB;
#                        the issue's size is 128 = 8 MiB)
#        BASE_GIB        virtual size of every image (default 4)
#        BASE_ALLOC_MIB  allocated in c0 (default 256)
#        EMPTY=0         skip the extra-empty-layer arm
#        DOMAIN=0        skip the domain arm: 'extsnap commit DOMAIN base sN+1'
#                        of a shut-off domain whose disk holds the same N
#                        layers as snapshot overlays (a fake host root)
#        BENCH_DIR, RUNS (default 3), SEED (default 42), KEEP=1: as commit.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

. "$here/lib.sh"
bench_init "$@"

DEPTHS=${DEPTHS:-10 50 200}
LAYER_CLUSTERS=${LAYER_CLUSTERS:-32}
BASE_GIB=${BASE_GIB:-4}
BASE_ALLOC_MIB=${BASE_ALLOC_MIB:-256}
EMPTY=${EMPTY:-1}
DOMAIN=${DOMAIN:-1}
max_depth=$(printf '%s\n' $DEPTHS | sort -n | tail -1)

# build_deep DIR DEPTH SEED: DIR/c0.qcow2 .. DIR/cDEPTH.qcow2 and the
# qemu-io commands of each layer, DIR/cmdsI (kept when DIR already holds
# them).
build_deep() {
  local d=$1 depth=$2 seed=$3 i
  mkdir -p "$d"
  # Per layer, LAYER_CLUSTERS distinct clusters of the disk, in random order.
  [[ -f $d/cmds$depth ]] || awk -v seed="$seed" -v depth="$depth" -v want="$LAYER_CLUSTERS" -v n="$((BASE_GIB * 16384))" -v d="$d" 'BEGIN {
      srand(seed)
      for (l = 1; l <= depth; l++) {
        delete used
        f = d "/cmds" l
        for (k = 0; k < want; k++) {
          do c = int(rand() * n); while (c in used)
          used[c] = 1
          printf "write -P %d %.0f 64k\n", 1 + (l * 7 + k) % 250, c * 65536 >f
        }
        close(f)
      }
    }'
  [[ -f $d/c$depth.qcow2 ]] && return 0
  qemu-img create -q -f qcow2 "$d/c0.qcow2" "${BASE_GIB}G"
  local quarter=$((BASE_GIB * 1024 / 4)) piece=$((BASE_ALLOC_MIB / 4))
  for i in 0 1 2 3; do
    qemu-io -c "write -P $((0x10 + i)) $((i * quarter))M ${piece}M" "$d/c0.qcow2" >/dev/null
  done
  for ((i = 1; i <= depth; i++)); do
    (cd "$d" && qemu-img create -q -f qcow2 -b "c$((i - 1)).qcow2" -F qcow2 "c$i.qcow2")
    qemu-io "$d/c$i.qcow2" <"$d/cmds$i" >/dev/null
  done
}

# build_domain ROOT DEPTH: a fake host root (the layout of
# tests/e2e/lib/snap.sh) with a shut-off domain "deep" whose one disk starts
# as a copy of c0; snapshots s1 .. s(DEPTH+1), layer i's writes going to the
# overlay s_i made, so that 'commit deep base s(DEPTH+1)' merges the same
# DEPTH layers into the disk's original image as img commit merges into c0.
DOM_IMG=/var/lib/libvirt/images/deep
DOM_CFG=/etc/libvirt/qemu/deep.xml
build_domain() {
  local r=$1 depth=$2 i live
  [[ -f $r/done ]] && return 0
  rm -rf "$r"
  mkdir -p "$r/etc/libvirt/qemu" "$r/var/lib/libvirt/qemu/snapshot" "$r/run/libvirt/qemu" "$r$DOM_IMG"
  cp -a --sparse=always orig/c0.qcow2 "$r$DOM_IMG/vda.qcow2"
  cat >"$r$DOM_CFG" <<XML
<domain type='qemu'>
  <name>deep</name>
  <uuid>0c1d2e3f-4a5b-4c6d-8e7f-190000000019</uuid>
  <memory unit='KiB'>131072</memory>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$DOM_IMG/vda.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
XML
  for ((i = 1; i <= depth + 1; i++)); do
    "$EXTSNAP" create -q --root "$r" deep "s$i"
    ((i <= depth)) || break
    # The overlay names its backing file by its path on the host, not under
    # the root: written without it (whole clusters need nothing below).
    live=$r$(xmllint --xpath "string(//devices/disk/source/@file)" "$r$DOM_CFG")
    qemu-io "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$live\"},\"backing\":null}" \
      <"orig/cmds$i" >/dev/null
  done
  touch "$r/done"
}

fresh() { # fresh copy of c0 .. c$2 in $1
  local i
  rm -rf "$1"
  mkdir "$1"
  for ((i = 0; i <= $2; i++)); do cp -a --sparse=always "orig/c$i.qcow2" "$1/"; done
}

echo "== building a $max_depth-layer chain in $dir (seed $SEED, $LAYER_CLUSTERS clusters per layer, c0 ${BASE_GIB} GiB with ${BASE_ALLOC_MIB} MiB)"
build_deep orig "$max_depth" "$SEED"
du -sh orig | sed 's/^/  all layers: /'
if ((DOMAIN)); then
  command -v xmllint >/dev/null || { echo "the domain arm needs xmllint (DOMAIN=0 skips it)" >&2; exit 2; }
  for n in $DEPTHS; do
    echo "== a domain with $((n + 1)) snapshots, layers 1 .. $n in their overlays"
    build_domain "orig/dom$n" "$n"
  done
fi

rm -f ./*.times
for n in $DEPTHS; do
  for ((r = 1; r <= RUNS; r++)); do
    echo "== depth $n, run $r/$RUNS"
    fresh x "$n"
    (cd x && timed "../ext$n" "$EXTSNAP" img commit -q -b c0.qcow2 "c$n.qcow2")
    fresh q "$n"
    (cd q && timed "../qemu$n" qemu-img commit -q -b c0.qcow2 "c$n.qcow2")
    printf '  %-8s %6ss  peak RSS %6s KiB\n' extsnap $(tail -1 "ext$n.times") qemu-img $(tail -1 "qemu$n.times")
    if ((DOMAIN)); then
      rm -rf d && cp -a --sparse=always "orig/dom$n" d
      timed "dom$n" "$EXTSNAP" commit -q --root d deep base "s$((n + 1))"
      printf '  %-8s %6ss  peak RSS %6s KiB\n' domain $(tail -1 "dom$n.times")
    fi
    if ((EMPTY)); then
      # The same commit through one more, empty, layer on top.
      fresh e "$n"
      (cd e && qemu-img create -q -f qcow2 -b "c$n.qcow2" -F qcow2 empty.qcow2)
      (cd e && timed "../empty$n" "$EXTSNAP" img commit -q -b c0.qcow2 empty.qcow2)
      printf '  %-8s %6ss  peak RSS %6s KiB\n' "+empty" $(tail -1 "empty$n.times")
    fi
  done
  qemu-img compare -q x/c0.qcow2 q/c0.qcow2 && echo "  depth $n: extsnap's c0 and qemu-img's c0 are identical" ||
    { echo "  depth $n: RESULTS DIFFER"; exit 1; }
  qemu-img check -q x/c0.qcow2 && echo "  depth $n: extsnap's c0 checks clean"
  if ((DOMAIN)); then
    qemu-img compare -q "d$DOM_IMG/vda.qcow2" q/c0.qcow2 && echo "  depth $n: the domain's disk too" ||
      { echo "  depth $n: RESULTS DIFFER after the domain commit"; exit 1; }
  fi
  if ((EMPTY)); then
    qemu-img compare -q e/c0.qcow2 q/c0.qcow2 && echo "  depth $n: through the empty layer too" ||
      { echo "  depth $n: RESULTS DIFFER through the empty layer"; exit 1; }
  fi
done

echo "== results ($RUNS runs each, medians$( ((can_drop)) && echo ", caches dropped before each step" || echo "; page caches could NOT be dropped (not root?): warm-cache numbers"))"
printf '  %6s  %10s  %10s  %8s  %12s  %12s' depth extsnap qemu-img ratio "RSS extsnap" "RSS qemu-img"
((EMPTY)) && printf '  %12s' "+empty layer"
((DOMAIN)) && printf '  %14s' "domain commit"
echo
for n in $DEPTHS; do
  mx=$(cut -d' ' -f1 "ext$n.times" | median)
  mq=$(cut -d' ' -f1 "qemu$n.times" | median)
  rx=$(cut -d' ' -f2 "ext$n.times" | sort -n | tail -1)
  rq=$(cut -d' ' -f2 "qemu$n.times" | sort -n | tail -1)
  printf '  %6s  %9.2fs  %9.2fs  %8s  %8d KiB  %8d KiB' "$n" "$mx" "$mq" \
    "$(awk -v x="$mx" -v q="$mq" 'BEGIN { printf "%.2f", x / q }')" "$rx" "$rq"
  if ((EMPTY)); then
    me=$(cut -d' ' -f1 "empty$n.times" | median)
    printf '  %+10.0fms' "$(awk -v e="$me" -v x="$mx" 'BEGIN { print (e - x) * 1000 }')"
  fi
  ((DOMAIN)) && printf '  %13.2fs' "$(cut -d' ' -f1 "dom$n.times" | median)"
  echo
done
echo "  (target: ratio <= 0.5 at 50 and 200 layers; an extra empty layer < 1 ms, which"
echo "   differences of cold medians cannot resolve: see bench/README.md for its syscall count)"
