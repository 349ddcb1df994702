#!/usr/bin/env bash
# Install what building and testing extsnap needs, from Debian packages,
# only when something is missing. Run as root on Debian 12.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libxml2-dev zlib1g-dev libzstd-dev libjson-c-dev check
      qemu-utils qemu-system-x86 libvirt-clients xxd jq time
      libvirt-daemon libvirt-daemon-driver-qemu  # t_snap_libvirtd: its own libvirtd (session mode, as nobody, in its temp dir)
      xfsprogs btrfs-progs  # t_reflink and bench/fs.sh: loop-mounted XFS (reflink=1) and btrfs
      dpkg-dev file man-db groff-base bsdextrautils bash-completion  # the .deb, man pages (col), completion
      ansible-core git  # t_ansible: the collection's playbooks, ansible-doc, ansible-test
      clang libclang-rt-dev llvm) # the fuzz stage: libFuzzer, its sanitizers, symbolized reports
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
