# Loop-mounted file systems of a given type, for the tests and benchmarks
# that need one (extent sharing on XFS and btrfs, issue 17). Source it; it
# defines:
#   loopfs_why TYPE          why this machine cannot make one (empty: it can):
#                            root, /dev/loop-control, mkfs.TYPE (xfsprogs,
#                            btrfs-progs, e2fsprogs from Debian)
#   loopfs_make TYPE DIR MiB make DIR/TYPE.img (sparse), a TYPE file system in
#                            it (xfs: -m reflink=1), attach it to a free loop
#                            device and mount it on DIR/TYPE.mnt; sets
#                            LOOPFS_DEV (/dev/loopN) and LOOPFS_MNT
#   loopfs_umount MNT        unmount, retried for a few seconds while busy
#   loopfs_cleanup           unmount and detach every one made here (call it
#                            from the caller's EXIT trap)
#   loopfs_written DEV       bytes written to DEV so far (its sectors written,
#                            /sys/block/NAME/stat): call `sync -f MNT` first
# Only devices this shell attached are ever touched.
LOOPFS_MADE=()

loopfs_why() {
    local t=$1
    PATH=$PATH:/usr/sbin:/sbin
    ((EUID == 0)) || { echo "not root (loop mounts need it)"; return; }
    [[ -e /dev/loop-control ]] || { echo "no /dev/loop-control"; return; }
    command -v losetup >/dev/null || { echo "no losetup"; return; }
    command -v "mkfs.$t" >/dev/null || { echo "no mkfs.$t (scripts/deps.sh installs it)"; return; }
    grep -qw "$t" /proc/filesystems 2>/dev/null || modprobe "$t" 2>/dev/null ||
        { echo "the kernel has no $t"; return; }
}

loopfs_make() {
    local t=$1 dir=$2 mib=$3 img dev mnt
    PATH=$PATH:/usr/sbin:/sbin
    img=$dir/$t.img mnt=$dir/$t.mnt
    mkdir -p "$mnt"
    truncate -s "${mib}M" "$img"
    case $t in
    xfs) mkfs.xfs -q -f -m reflink=1 "$img" ;;
    btrfs) mkfs.btrfs -q -f "$img" >/dev/null ;;
    ext4) mkfs.ext4 -q -F "$img" ;;
    *) mkfs."$t" "$img" >/dev/null ;;
    esac || return 1
    dev=$(losetup -f --show "$img") || return 1
    LOOPFS_MADE+=("$dev $mnt")
    mount "$dev" "$mnt" || return 1
    LOOPFS_DEV=$dev LOOPFS_MNT=$mnt
}

loopfs_umount() {
    local k
    for ((k = 0; k < 20; k++)); do
        umount "$1" 2>/dev/null && return 0
        sleep 0.25
    done
    umount "$1"
}

loopfs_cleanup() {
    local x dev mnt
    for x in "${LOOPFS_MADE[@]}"; do
        dev=${x%% *} mnt=${x#* }
        if mountpoint -q "$mnt"; then
            loopfs_umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
        fi
        losetup -d "$dev" 2>/dev/null || true
    done
    LOOPFS_MADE=()
}

loopfs_written() {
    local f
    read -ra f <"/sys/block/$(basename "$1")/stat"
    echo $((f[6] * 512))
}
