#!/usr/bin/env bash
# Domain commands on a running VM (qemu-system-x86_64 -machine none; vda
# attached with -drive, vdb with -blockdev and an NBD export as its user;
# the QMP socket named in the config's <qemu:commandline>):
#   create (one QMP transaction for both disks; the VM keeps writing into
#   the new overlays), commit BASE TOP (intermediate commits), delete of the
#   current snapshot (active commits with pivot), a one-disk domain.
# After each: the config and metadata equal what the same operation gives
# offline on the same state (creation times aside), merged files are gone,
# and once QEMU quit the guest content of every disk is what it wrote.
# Refusals (revert/refresh/setup, no socket), SIGINT during a rate-limited
# commit, QEMU killed during a commit (with and without extsnap), and
# libvirtd running the VM (pending files and virsh commands).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
need_cmd qemu-img qemu-io qemu-system-x86_64 jq md5sum tar
trap 'vm_kill; [[ -n ${LVD:-} ]] && kill "$LVD" 2>/dev/null; rm -rf "$T"' EXIT
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
X() { "$EXTSNAP" "$@" --config-dir="$CFG" --snapshot-dir="$SNAPS" --run-dir="$RUN"; }

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
    vm_qmp block-export-add '{"type": "nbd", "id": "vdb", "node-name": "vdb-top", "writable": true}' >/dev/null
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
        [[ -f $f ]] || continue
        echo "== ${f#"$T"/}"
        sed -e 's|<creationTime>[0-9]*</creationTime>|<creationTime/>|' "$f"
    done
}
save_state() { tar -C "$T" -cSf "$T/state.tar" etc snap img; }
restore_state() { rm -rf "$CFG" "$SNAPS" "$IMG" && tar -C "$T" -xSf "$T/state.tar"; }

# offline_reference OP ARGS...: run the operation with the VM off on a copy
# of the state, keep the XML result, put the state back.
offline_reference() {
    save_state
    X "$@" -q || fail "offline reference: $*"
    xml_state >"$T/offline.xml"
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

# ------------------------------------------------------------ setup
write_config ovm vda vdb
for d in vda vdb; do
    qemu-img create -q -f qcow2 "$IMG/ovm-$d.qcow2" 8M
    qemu-img create -q -f raw "$T/expect-$d.raw" 8M
done
off_write vda 0x11 0 2M
off_write vdb 0x12 1M 2M
X create ovm s1 -q
off_write vda 0x21 1M 1M
off_write vdb 0x22 2M 1M
X create ovm s2 -q
off_write vda 0x31 1536k 1M
off_write vdb 0x32 3M 512k

# ------------------------------------------------------------ online create
offline_reference create ovm s3
start_vm
out=$(X create ovm s3 2>&1) || fail "online create: $out"
has "online create output" "vda: switch node" "$out"
has "online create output" "vdb: switch node vdb-top to the new overlay $IMG/ovm-vdb.s3" "$out"
eq "vda runs on s3" "$IMG/ovm-vda.s3" "$(vm_chain_files drive-vda | head -n1)"
eq "vdb runs on s3" "$IMG/ovm-vdb.s3" "$(vdb_file)"
same_as_offline "online create"
# The VM keeps writing, into the new overlays.
vm_write vda 0x41 4M 64k
vm_write vdb 0x42 5M 64k
stop_vm
ES_CHECKS=$((ES_CHECKS + 1))
[[ $(qemu-img map -U --output=json "$IMG/ovm-vda.s3" | jq '[.[] | select(.depth == 0 and .data)] | length') -ge 1 ]] ||
    fail "online create: vda's writes did not land in ovm-vda.s3"
check_guest "after online create"
check_images "after online create"

# ------------------------------------------------------------ online commit
# commit s1 s2: s2's overlay (below the live s3 overlays) into s1's: two
# intermediate commits; QEMU writes the plan's absolute backing names.
offline_reference commit ovm s1 s2
start_vm
vm_write vda 0x51 6M 64k
out=$(X commit ovm s1 s2 --output=json 2>&1) || fail "online commit: $out"
eq "online commit: QEMU's actions" "vda intermediate-commit $IMG/ovm-vda.s1|vdb intermediate-commit $IMG/ovm-vdb.s1" \
    "$(jq -r '[.online.actions[] | .disk + " " + .action + " " + ."backing-filename"] | join("|")' <<<"$out")"
eq "vda chain after commit" "$IMG/ovm-vda.s3 $IMG/ovm-vda.s1 $IMG/ovm-vda.qcow2 " \
    "$(vm_chain_files drive-vda | tr '\n' ' ')"
same_as_offline "online commit"
gone "online commit" "$IMG/ovm-vda.s2" "$IMG/ovm-vdb.s2"
eq "s3 overlay's backing name" "$IMG/ovm-vdb.s1" \
    "$(qemu-img info -U --output=json "$IMG/ovm-vdb.s3" | jq -r '."backing-filename"')"
vm_write vdb 0x52 6M 64k
stop_vm

# ------------------------------------------------------------ online delete
# delete s3 (current): the live overlays into s1's images, with pivot.
offline_reference delete ovm s3
start_vm
out=$(X delete ovm s3 2>&1) || fail "online delete: $out"
has "online delete output" "vda: block-commit $IMG/ovm-vda.s3 into $IMG/ovm-vda.s1, then switch" "$out"
eq "vda runs on s1" "$IMG/ovm-vda.s1" "$(vm_chain_files drive-vda | head -n1)"
eq "vdb runs on s1" "$IMG/ovm-vdb.s1" "$(vdb_file)"
same_as_offline "online delete"
gone "online delete" "$IMG/ovm-vda.s3" "$IMG/ovm-vdb.s3"
vm_write vda 0x61 7M 64k
vm_write vdb 0x62 7M 64k
stop_vm
check_guest "after online commit and delete"
check_images "after online commit and delete"

finish
