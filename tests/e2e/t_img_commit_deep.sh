#!/usr/bin/env bash
# extsnap img commit of a deep chain (issue 19) against qemu-img commit of a
# copy. A 30-layer chain over an 8 MiB BASE full of data; every layer holds
# random qemu-io writes, write -z, write -z -u and discards (512-aligned,
# often not cluster aligned, up to 3 clusters long), so layers hide each
# other and BASE at random. Layers mix 64, 16 and 4 KiB clusters, every
# fifth has extended L2 entries (subclusters), one is compressed, and one (l8) is
# shorter than the others: past its end it reads as zeroes over BASE.
# Cases: -b base.qcow2 (the whole chain), and -b l8.qcow2 (BASE is the
# shorter layer and grows: where base.qcow2 below it would show, zeroes).
# After each: `qemu-img compare` of extsnap's and qemu-img's BASE says
# identical, BASE reads what TOP read before (independent of qemu-img), and
# `qemu-img check` of extsnap's BASE exits 0 (no leak either).
# SEED=n picks another random chain.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_tool qemu-img qemu-io

SIZE=$((8 << 20))
DEPTH=30

. "$(dirname "${BASH_SOURCE[0]}")/lib/random_io.sh"

# build DIR: base.qcow2 <- l1 <- ... <- l29 <- top.qcow2
build() {
  local d=$1 i below=base.qcow2 name size cs opts
  RANDOM=${SEED:-19}
  qemu-img create -q -f qcow2 "$d/base.qcow2" "$SIZE"
  qemu-io -c "write -P 9 0 $SIZE" "$d/base.qcow2" >/dev/null
  for ((i = 1; i <= DEPTH; i++)); do
    name=l$i.qcow2
    ((i == DEPTH)) && name=top.qcow2
    size=$SIZE cs=65536
    ((i == 8)) && size=$((SIZE * 3 / 4 + 1536))
    ((i % 7 == 3)) && cs=4096
    ((i % 10 == 0)) && cs=16384
    opts="cluster_size=$cs"
    ((i % 5 == 0)) && opts+=",extended_l2=on"
    rnd 6; local n=$((4 + R))
    if ((i == 17)); then
      # Compressed: written to a scratch image, converted, put on top of
      # the one below without changing its contents.
      qemu-img create -q -f qcow2 "$d/scratch.qcow2" "$size"
      random_ops "$size" "$cs" "$n"
      qemu-io "${RANDOM_OPS[@]}" "$d/scratch.qcow2" >/dev/null
      qemu-img convert -c -O qcow2 "$d/scratch.qcow2" "$d/$name"
      rm -f "$d/scratch.qcow2"
      (cd "$d" && qemu-img rebase -u -b "$below" -F qcow2 "$name")
    else
      (cd "$d" && qemu-img create -q -f qcow2 -o "$opts" -b "$below" -F qcow2 "$name" "$size")
      random_ops "$size" "$cs" "$n"
      qemu-io "${RANDOM_OPS[@]}" "$d/$name" >/dev/null
    fi
    below=$name
  done
}

mkdir "$T/orig"
build "$T/orig"
qemu-img convert -O raw "$T/orig/top.qcow2" "$T/view.raw"

for target in base.qcow2 l8.qcow2; do
  rm -rf "$T/x" "$T/q"
  cp -a "$T/orig" "$T/x"
  cp -a "$T/orig" "$T/q"
  oracle bash -c 'cd "$1" && qemu-img commit -q -b "$2" top.qcow2' _ "$T/q" "$target"
  ok_rc "extsnap img commit -b $target of $DEPTH layers" 0 \
    bash -c 'cd "$1" && "$2" img commit -q -b "$3" top.qcow2' _ "$T/x" "$EXTSNAP" "$target"
  ok_rc "qemu-img check of extsnap's $target (clean)" 0 qemu-img check -q "$T/x/$target"
  ok_rc "extsnap's and qemu-img's $target identical" 0 \
    qemu-img compare -q "$T/x/$target" "$T/q/$target"
  ok_rc "extsnap's $target reads what TOP read before" 0 \
    qemu-img compare -q -f raw "$T/view.raw" "$T/x/$target"
  ok_eq "virtual size of $target" \
    "$(qemu-img info --output=json "$T/q/$target" | grep -m1 '"virtual-size"')" \
    "$(qemu-img info --output=json "$T/x/$target" | grep -m1 '"virtual-size"')"
done

finish
