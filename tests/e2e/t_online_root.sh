#!/usr/bin/env bash
# --root with a running VM: the domain's files live under a root directory
# R (as a host's root mounted elsewhere); libvirt's files and the images'
# backing names say /srv/es-rvm/..., which on this system is R/srv/es-rvm/.
# Decided: create, delete and commit work through QMP whenever QEMU's names
# for the images reach the same files, either on this system or under R,
# and are refused (with the reason, nothing changed) when they do not.
#   1. QEMU sees libvirt's paths (it runs in a mount namespace where R/srv
#      is /srv, as a VM in a container or chroot would): online create
#      (QEMU is given the new overlays by libvirt's names), delete of the
#      current snapshot (active commits), delete of a snapshot with a child
#      (intermediate commits: QEMU writes libvirt's absolute backing name);
#   2. QEMU sees this system's paths (R/srv/...; the chains are given to it
#      explicitly, as the headers name /srv/...): create and delete;
#   3. QEMU runs the VM from other files: refused.
# After each: config and metadata equal the offline result (with --root),
# merged files gone, headers name libvirt's paths, and once QEMU quit the
# guest content is what it wrote (qemu-img with the chains mapped under R).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
need_cmd qemu-img qemu-io qemu-system-x86_64 jq tar unshare mount
trap 'vm_kill; rm -rf "$T"' EXIT
eq() { ok_eq "$@" || true; }
rc_is() { ok_rc "$@" || true; }
has() {
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $3 == *"$2"* ]] || fail "$1: [$2] not in [$3]"
}

R=$T/root
L=/srv/es-rvm # the images, as libvirt's files name them
CFG=/etc/libvirt/qemu
SNAPS=/var/lib/libvirt/qemu/snapshot
RUN=/run/libvirt/qemu
SOCK=/srv/es-rvm.qmp # in the config: QEMU's view = libvirt's
mkdir -p "$R$CFG" "$R$SNAPS" "$R$RUN" "$R$L"
[[ ! -e $L ]] || { echo "ERROR: $L exists on this system; the test needs it absent" >&2; exit 1; }
X() { "$EXTSNAP" "$@" --root="$R"; }

cat >"$R$CFG/rvm.xml" <<EOF
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>rvm</name>
  <memory unit='KiB'>131072</memory>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$L/rvm-vda.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$L/rvm-vdb.qcow2'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-qmp'/>
    <qemu:arg value='unix:$SOCK,server=on,wait=off'/>
  </qemu:commandline>
</domain>
EOF

# The disk's current image, from the config (libvirt's name).
src() { sed -n "s|.*<source file='\\([^']*-$1[^']*\\)'/>.*|\\1|p" "$R$CFG/rvm.xml" | head -n1; }
# A json: filename opening libvirt's image LOGICAL with its whole chain under R.
spec() {
    local p=$1 bf back=null
    bf=$(qemu-img info -U -f qcow2 --output=json "$R$p" | jq -r '."backing-filename" // empty')
    if [[ -n $bf ]]; then
        [[ $bf == /* ]] || fail "$p names a relative backing file $bf"
        back=$(spec "$bf")
        back=${back#json:}
    fi
    printf 'json:{"driver":"qcow2","file":{"driver":"file","filename":"%s"},"backing":%s}' \
        "$R$p" "$back"
}
check_guest() { # WHAT
    local d out
    for d in vda vdb; do
        ES_CHECKS=$((ES_CHECKS + 1))
        out=$(qemu-img compare -U -f raw "$T/expect-$d.raw" "$(spec "$(src $d)")" 2>&1) ||
            fail "$1: guest content of $d: $out"
    done
}
check_images() { # WHAT
    local f out
    for f in "$R$L"/*; do
        ES_CHECKS=$((ES_CHECKS + 1))
        out=$(qemu-img check -q -U "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$f\"},\"backing\":null}" 2>&1) ||
            fail "$1: qemu-img check $f: $out"
    done
}
off_write() { # DISK PATTERN OFFSET LEN: offline, into the current image
    qemu-io -c "write -q -P $2 $3 $4" "$(spec "$(src "$1")")" >/dev/null
    qemu-io -f raw -c "write -q -P $2 $3 $4" "$T/expect-$1.raw" >/dev/null
}
vm_write() { # DISK PATTERN OFFSET LEN: the guest writes
    vm_hmp "qemu-io drive-$1 \"write -P $2 $3 $4\"" >/dev/null || fail "qemu-io $1 write failed"
    qemu-io -f raw -c "write -q -P $2 $3 $4" "$T/expect-$1.raw" >/dev/null
}
xml_state() {
    local f
    for f in "$R$CFG"/*.xml "$R$SNAPS"/*/*.xml; do
        [[ -f $f ]] || continue
        echo "== ${f#"$R"/}"
        sed -e 's|<creationTime>[0-9]*</creationTime>|<creationTime/>|' "$f"
    done
}
offline_reference() { # OP ARGS...: the libvirt files the VM-off path writes
    tar -C "$T" -cSf "$T/state.tar" root
    X "$@" -q || fail "offline reference: $*"
    xml_state >"$T/offline.xml"
    rm -rf "$R" && tar -C "$T" -xSf "$T/state.tar"
}
same_as_offline() {
    ES_CHECKS=$((ES_CHECKS + 1))
    diff -u "$T/offline.xml" <(xml_state) >"$T/xml.diff" ||
        fail "$1: libvirt files differ from the offline result: $(head -n 40 "$T/xml.diff")"
}
gone() {
    local what=$1 f
    shift
    for f in "$@"; do
        ES_CHECKS=$((ES_CHECKS + 1))
        [[ ! -e $R$f ]] || fail "$what: $R$f still exists"
    done
}
backing_of() { qemu-img info -U --output=json "$R$1" | jq -r '."backing-filename"'; }
chain() { vm_chain_files "drive-$1" | tr '\n' ' '; }

# start_vm_ns: QEMU in a mount namespace where R/srv is /srv: it opens the
# images (and their backing files) by libvirt's names.
start_vm_ns() {
    VM_PRE_EXEC=(unshare -m sh -c 'mount --bind "$0" /srv && exec "$@"' "$R/srv")
    vm_start "$R$SOCK" -drive "if=none,id=drive-vda,file=$(src vda),format=qcow2" \
        -drive "if=none,id=drive-vdb,file=$(src vdb),format=qcow2"
    VM_PRE_EXEC=()
    echo "$QEMU_PID" >"$R$RUN/rvm.pid"
}
stop_vm() { vm_quit; rm -f "$R$RUN/rvm.pid"; }

for d in vda vdb; do
    qemu-img create -q -f qcow2 "$R$L/rvm-$d.qcow2" 8M
    qemu-img create -q -f raw "$T/expect-$d.raw" 8M
done
off_write vda 0x11 0 2M
off_write vdb 0x12 1M 2M
X create rvm s1 -q
off_write vda 0x21 1M 1M
off_write vdb 0x22 2M 1M

# ------------------------------------------------------------ 1. QEMU sees libvirt's paths
if ! unshare -m sh -c 'mount --bind "$0" /srv' "$R/srv" 2>"$T/err"; then
    skip_test "cannot run QEMU in a mount namespace: $(cat "$T/err")"
fi
offline_reference create rvm s2
start_vm_ns
eq "ns: QEMU names libvirt's paths" "$L/rvm-vda.s1 $L/rvm-vda.qcow2 " "$(chain vda)"
out=$(X create rvm s2 2>&1) || fail "ns: online create: $out"
has "ns: QEMU gets libvirt's name of the overlay" "vda: switch node" "$out"
has "ns: QEMU gets libvirt's name of the overlay" "to the new overlay $L/rvm-vda.s2" "$out"
eq "ns: vda on s2" "$L/rvm-vda.s2 $L/rvm-vda.s1 $L/rvm-vda.qcow2 " "$(chain vda)"
eq "ns: vdb on s2" "$L/rvm-vdb.s2" "$(vm_chain_files drive-vdb | head -n1)"
same_as_offline "ns: online create"
eq "ns: s2's overlay names libvirt's path" "$L/rvm-vda.s1" "$(backing_of "$L/rvm-vda.s2")"
vm_write vda 0x31 3M 64k
vm_write vdb 0x32 3M 64k
stop_vm

# delete s2 (current): active commits, QEMU pivots to s1's overlays.
offline_reference delete rvm s2
start_vm_ns
out=$(X delete rvm s2 2>&1) || fail "ns: online delete (active): $out"
eq "ns: vda back on s1" "$L/rvm-vda.s1 $L/rvm-vda.qcow2 " "$(chain vda)"
same_as_offline "ns: online delete of the current snapshot"
gone "ns: online delete of the current snapshot" "$L/rvm-vda.s2" "$L/rvm-vdb.s2"
vm_write vda 0x41 4M 64k
# s3, s4 online; delete s3: intermediate commits, QEMU writes s4's backing.
X create rvm s3 -q || fail "ns: create s3"
vm_write vda 0x42 5M 64k
vm_write vdb 0x43 5M 64k
X create rvm s4 -q || fail "ns: create s4"
vm_write vdb 0x44 6M 64k
stop_vm
offline_reference delete rvm s3
start_vm_ns
out=$(X delete rvm s3 --output=json 2>&1) || fail "ns: online delete (intermediate): $out"
eq "ns: QEMU's actions" "vda intermediate-commit $L/rvm-vda.s1|vdb intermediate-commit $L/rvm-vdb.s1" \
    "$(jq -r '[.online.actions[] | .disk + " " + .action + " " + ."backing-filename"] | join("|")' <<<"$out")"
eq "ns: vda's chain" "$L/rvm-vda.s4 $L/rvm-vda.s1 $L/rvm-vda.qcow2 " "$(chain vda)"
same_as_offline "ns: online delete with a child"
gone "ns: online delete with a child" "$L/rvm-vda.s3" "$L/rvm-vdb.s3"
eq "ns: QEMU wrote libvirt's backing name" "$L/rvm-vdb.s1" "$(backing_of "$L/rvm-vdb.s4")"
vm_write vda 0x45 7M 64k
stop_vm
check_guest "QEMU seeing libvirt's paths"
check_images "QEMU seeing libvirt's paths"
rc_is "ns: verify" 0 X verify rvm -q

# ------------------------------------------------------------ 2. QEMU sees this system's paths
# The headers name /srv/..., which QEMU cannot open here: each chain is
# given to it (-drive with backing options), as this system's paths.
start_vm_host() {
    local d args=()
    for d in vda vdb; do
        args+=(-drive "if=none,id=drive-$d,driver=qcow2,file.filename=$R$(src $d),backing.driver=qcow2,backing.file.filename=$R$L/rvm-$d.s1,backing.backing.driver=qcow2,backing.backing.file.filename=$R$L/rvm-$d.qcow2")
    done
    vm_start "$R$SOCK" "${args[@]}"
    echo "$QEMU_PID" >"$R$RUN/rvm.pid"
}
offline_reference create rvm s5
start_vm_host
eq "host: QEMU names this system's paths" "$R$L/rvm-vda.s4 $R$L/rvm-vda.s1 $R$L/rvm-vda.qcow2 " "$(chain vda)"
out=$(X create rvm s5 2>&1) || fail "host: online create: $out"
has "host: QEMU gets this system's name of the overlay" "to the new overlay $R$L/rvm-vda.s5" "$out"
eq "host: vda on s5" "$R$L/rvm-vda.s5" "$(vm_chain_files drive-vda | head -n1)"
same_as_offline "host: online create"
eq "host: s5's overlay names libvirt's path" "$L/rvm-vda.s4" "$(backing_of "$L/rvm-vda.s5")"
vm_write vda 0x51 7M 64k
vm_write vdb 0x52 7M 64k
stop_vm
offline_reference delete rvm s5
# QEMU again, the chains one longer.
args=()
for d in vda vdb; do
    args+=(-drive "if=none,id=drive-$d,driver=qcow2,file.filename=$R$L/rvm-$d.s5,backing.driver=qcow2,backing.file.filename=$R$L/rvm-$d.s4,backing.backing.driver=qcow2,backing.backing.file.filename=$R$L/rvm-$d.s1,backing.backing.backing.driver=qcow2,backing.backing.backing.file.filename=$R$L/rvm-$d.qcow2")
done
vm_start "$R$SOCK" "${args[@]}"
echo "$QEMU_PID" >"$R$RUN/rvm.pid"
out=$(X delete rvm s5 2>&1) || fail "host: online delete: $out"
eq "host: vda back on s4's overlay" "$R$L/rvm-vda.s4" "$(vm_chain_files drive-vda | head -n1)"
same_as_offline "host: online delete"
gone "host: online delete" "$L/rvm-vda.s5" "$L/rvm-vdb.s5"
stop_vm
check_guest "QEMU seeing this system's paths"
check_images "QEMU seeing this system's paths"

# ------------------------------------------------------------ 3. other files: refused
mkdir -p "$T/other"
cp --sparse=always "$R$L"/* "$T/other/"
vm_start "$R$SOCK" -drive "if=none,id=drive-vda,driver=qcow2,file.filename=$T/other/rvm-vda.s4,backing.driver=qcow2,backing.file.filename=$T/other/rvm-vda.s1,backing.backing.driver=qcow2,backing.backing.file.filename=$T/other/rvm-vda.qcow2"
echo "$QEMU_PID" >"$R$RUN/rvm.pid"
before=$(xml_state; ls "$R$L")
rc_is "other files: create refused" 1 X create rvm s9 2>"$T/err"
has "other files: why" "disk vda: QEMU does not have this image open; the running VM's disks differ from its configuration" "$(cat "$T/err")"
rc_is "other files: delete refused" 1 X delete rvm s4 2>"$T/err"
has "other files: why" "disk vda: QEMU does not have this image open; the running VM's disks differ from its configuration" "$(cat "$T/err")"
eq "other files: nothing changed" "$before" "$(xml_state; ls "$R$L")"
stop_vm

finish
