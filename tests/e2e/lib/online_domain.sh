# The domain "ovm" of the online domain tests (t_online_domain.sh,
# t_online_faults.sh): its files under $T, its "VM" (qemu-system-x86_64
# -machine none: vda attached with -drive, vdb with -blockdev and a read-only NBD
# export as its user; the QMP socket named in the config's
# <qemu:commandline>), guest writes mirrored into expected raw images, and
# comparisons with what the same operation gives offline. Source after
# lib/common.sh and lib/qemu_vm.sh.

eq() { ok_eq "$@" || true; }
rc_is() { ok_rc "$@" || true; }
has() {
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $3 == *"$2"* ]] || fail "$1: [$2] not in [$3]"
}

CFG=$T/etc
SNAPS=$T/snap
RUN=$T/run
IMG=$T/img
SOCK=$T/ovm.qmp
mkdir -p "$CFG" "$SNAPS" "$RUN" "$IMG"
# extsnap must not see this host's /run: a libvirtd running here (its
# /run/libvirtd.pid) would make every command refuse. Each run gets an empty
# /run of its own in a mount namespace (the test's files are all under $T);
# exec keeps the pid, so $! of a background run is extsnap's.
OWN_RUN=(unshare -m sh -c 'mount -t tmpfs -o size=1m es-run /run && exec "$@"' own-run)
"${OWN_RUN[@]}" true 2>"$T/err" ||
    skip_test "cannot give extsnap a /run of its own (unshare -m, mount): $(cat "$T/err")"
X() { "${OWN_RUN[@]}" "$EXTSNAP" "$@" --config-dir="$CFG" --snapshot-dir="$SNAPS" --run-dir="$RUN"; }

write_config() { # NAME DISKS...
    local name=$1 d
    shift
    {
        echo "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
        echo "  <name>$name</name>"
        echo "  <memory unit='KiB'>131072</memory>"
        echo "  <os>"
        echo "    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>"
        echo "  </os>"
        echo "  <devices>"
        for d in "$@"; do
            echo "    <disk type='file' device='disk'>"
            echo "      <driver name='qemu' type='qcow2'/>"
            echo "      <source file='$IMG/$name-$d.qcow2'/>"
            echo "      <target dev='$d' bus='virtio'/>"
            echo "    </disk>"
        done
        echo "  </devices>"
        echo "  <qemu:commandline>"
        echo "    <qemu:arg value='-qmp'/>"
        echo "    <qemu:arg value='unix:$SOCK,server=on,wait=off'/>"
        echo "  </qemu:commandline>"
        echo "</domain>"
    } >"$CFG/$name.xml"
}

# The disks' current images, from the config.
src() { sed -n "s|.*<source file='\\([^']*$1[^']*\\)'/>.*|\\1|p" "$CFG/$2.xml" | head -n1; }

# Start the domain's "VM": vda as -drive (device drive-vda), vdb as a
# -blockdev node exported over NBD (its user), with its pid file.
start_vm() {
    local args=(-drive "if=none,id=drive-vda,file=$(src -vda ovm),format=qcow2")
    args+=(-blockdev "driver=qcow2,node-name=vdb-top,file.driver=file,file.filename=$(src -vdb ovm)")
    vm_start "$SOCK" "${args[@]}"
    vm_qmp nbd-server-start "{\"addr\": {\"type\": \"unix\", \"data\": {\"path\": \"$T/nbd.sock\"}}}" >/dev/null
    vm_qmp block-export-add '{"type": "nbd", "id": "vdb", "node-name": "vdb-top", "writable": false}' >/dev/null
    echo "$QEMU_PID" >"$RUN/ovm.pid"
}
stop_vm() { vm_quit; rm -f "$RUN/ovm.pid"; }
# (Never two vm_qmp at once: they share one channel.)
vdb_node() { vm_qmp query-block-exports | jq -r '.[] | select(.id == "vdb") | ."node-name"'; }
vdb_file() {
    local n
    n=$(vdb_node)
    vm_qmp query-named-block-nodes | jq -r --arg n "$n" '.[] | select(."node-name" == $n) | .file'
}

# Guest writes while the VM runs, mirrored into the expected raw content.
vm_write() { # DISK PATTERN OFFSET LEN
    local dev=drive-vda
    [[ $1 == vdb ]] && dev=$(vdb_node)
    vm_hmp "qemu-io $dev \"write -P $2 $3 $4\"" >/dev/null || fail "qemu-io $1 write failed"
    qemu-io -f raw -c "write -q -P $2 $3 $4" "$T/expect-$1.raw" >/dev/null
}
off_write() { # DISK PATTERN OFFSET LEN: offline, into the current image
    qemu-io -f qcow2 -c "write -q -P $2 $3 $4" "$(src "-$1" ovm)" >/dev/null
    qemu-io -f raw -c "write -q -P $2 $3 $4" "$T/expect-$1.raw" >/dev/null
}
check_guest() { # WHAT
    local d out
    for d in vda vdb; do
        ES_CHECKS=$((ES_CHECKS + 1))
        out=$(qemu-img compare -U -f raw "$T/expect-$d.raw" "$(src "-$d" ovm)" 2>&1) ||
            fail "$1: guest content of $d: $out"
    done
}
check_images() { # WHAT: every image left passes qemu-img check
    local f out
    for f in "$IMG"/*.qcow2 "$IMG"/*.s[0-9]*; do
        [[ -f $f ]] || continue
        ES_CHECKS=$((ES_CHECKS + 1))
        out=$(qemu-img check -q -U "$f" 2>&1) || fail "$1: qemu-img check $f: $out"
    done
}

# The libvirt files, for comparing the online result with the offline one
# (creation times aside).
xml_state() {
    local f
    for f in "$CFG"/*.xml "$SNAPS"/*/*.xml; do
        [[ -f $f && $f != *.extsnap-pending/* ]] || continue
        echo "== ${f#"$T"/}"
        sed -e 's|<creationTime>[0-9]*</creationTime>|<creationTime/>|' "$f"
    done
}
# sha256 of files, one "sum name" per line.
file_sums() { sha256sum "$@" | sed "s|$T/||"; }
# What a chain shows the guest, per image given (qemu-img convert, -U: QEMU
# may hold them).
guest_sums() {
    local f
    for f in "$@"; do
        qemu-img convert -U -O raw "$f" "$T/guest.raw"
        echo "$(sha256sum <"$T/guest.raw" | cut -c1-64) ${f#"$T"/}"
    done
    rm -f "$T/guest.raw"
}
# The images of snapshot NAME's saved state (its <domain>'s disk sources).
saved_images() {
    sed -n "/<domain /,/<\/domain>/s|.*<source file='\([^']*\)'.*|\1|p" "$SNAPS/ovm/$1.xml"
}
# QEMU's caches written out, so that files compare byte for byte.
flush_vm() {
    vm_hmp "qemu-io drive-vda flush" >/dev/null || fail "flush vda"
    vm_hmp "qemu-io $(vdb_node) flush" >/dev/null || fail "flush vdb"
}
save_state() { tar -C "$T" -cSf "$T/state.tar" etc snap img; }
restore_state() { rm -rf "$CFG" "$SNAPS" "$IMG" && tar -C "$T" -xSf "$T/state.tar"; }

# offline_reference OP ARGS...: run the operation with the VM off on a copy
# of the state, keep the XML result, put the state back.
offline_reference() {
    save_state
    X "$@" -q || fail "offline reference: $*"
    xml_state >"$T/offline.xml"
    rm -rf "$T/offref" && mkdir -p "$T/offref" && cp -r "$CFG" "$SNAPS" "$T/offref/"
    restore_state
}
same_as_offline() {
    xml_state >"$T/online.xml"
    ES_CHECKS=$((ES_CHECKS + 1))
    if ! diff -u "$T/offline.xml" "$T/online.xml" >"$T/xml.diff"; then
        fail "$1: libvirt files differ from the offline result: $(head -n 40 "$T/xml.diff")"
    fi
}
gone() { # WHAT FILES...
    local what=$1 f
    shift
    for f in "$@"; do
        ES_CHECKS=$((ES_CHECKS + 1))
        [[ ! -e $f ]] || fail "$what: $f still exists"
    done
}

