# Helpers for the snapshot-manager end-to-end scripts (t_snap_*.sh): a fake
# host root with a libvirt domain in it, and oracles that look at it.
# Source after lib/common.sh. Paths named "logical" are as libvirt's files
# name them (/var/lib/libvirt/images/...); on this machine they live under
# the root directory R.
#
# qemu-img and qemu-io resolve absolute backing names on this machine, not
# under R, so they are given each image's chain explicitly as a json:
# filename built from qemu-img info of each link (chain_spec).

SNAP_IMG=/var/lib/libvirt/images/tvm
SNAP_CFG=/etc/libvirt/qemu
SNAP_DIR=/var/lib/libvirt/qemu/snapshot

# snap_root_new R: the directories libvirt has on a host.
snap_root_new() {
    local r=$1
    mkdir -p "$r$SNAP_CFG" "$r$SNAP_DIR" "$r/run/libvirt/qemu" "$r$SNAP_IMG"
}

# snap_write_tvm R: domain "tvm": vda, vdb qcow2; vdc raw; sda readonly cdrom.
snap_write_tvm() {
    local r=$1
    cat >"$r$SNAP_CFG/tvm.xml" <<XML
<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh edit tvm
or other application using the libvirt API.
-->

<domain type='qemu'>
  <name>tvm</name>
  <uuid>6b1f7f4e-2f0c-4c43-9a55-3c1d2f6b9a10</uuid>
  <memory unit='KiB'>131072</memory>
  <currentMemory unit='KiB'>131072</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$SNAP_IMG/vda.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$SNAP_IMG/vdb.qcow2'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$SNAP_IMG/vdc.raw'/>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='$SNAP_IMG/cd.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <controller type='sata' index='0'/>
    <controller type='pci' index='0' model='pci-root'/>
  </devices>
</domain>
XML
    chmod 600 "$r$SNAP_CFG/tvm.xml"
}

# snap_make_tvm R: root + config + images (4 MiB disks, some data in each).
snap_make_tvm() {
    local r=$1
    snap_root_new "$r"
    snap_write_tvm "$r"
    qemu-img create -q -f qcow2 "$r$SNAP_IMG/vda.qcow2" 4M
    qemu-img create -q -f qcow2 "$r$SNAP_IMG/vdb.qcow2" 4M
    qemu-img create -q -f raw "$r$SNAP_IMG/vdc.raw" 4M
    qemu-img create -q -f raw "$r$SNAP_IMG/cd.iso" 1M
    qemu-io -f qcow2 -c 'write -P 0xa0 0 256k' "$r$SNAP_IMG/vda.qcow2" >/dev/null
    qemu-io -f qcow2 -c 'write -P 0xb0 1M 128k' "$r$SNAP_IMG/vdb.qcow2" >/dev/null
    qemu-io -f raw -c 'write -P 0xc0 512k 64k' "$r$SNAP_IMG/vdc.raw" >/dev/null
    chmod 640 "$r$SNAP_IMG/vda.qcow2"
}

# x ARGS...: extsnap with --root (R must be set by the caller).
x() { "$EXTSNAP" "$@" --root "$R"; }

# cfg_source R DOMAIN TARGET: the disk's source in the config.
cfg_source() {
    xmllint --xpath "string(//devices/disk[target/@dev='$3']/source/@file)" "$1$SNAP_CFG/$2.xml"
}
cfg_format() {
    xmllint --xpath "string(//devices/disk[target/@dev='$3']/driver/@type)" "$1$SNAP_CFG/$2.xml"
}

# chain_spec R LOGICAL FMT: a json: filename opening the image and its whole
# chain with every link mapped under R.
chain_spec() {
    local r=$1 path=$2 fmt=$3 depth=${4:-0}
    ((depth < 64)) || { echo "chain too deep at $path" >&2; return 1; }
    local info bf bfmt back=null
    if [[ $fmt == qcow2 ]]; then
        info=$(qemu-img info -U -f qcow2 --output=json "$r$path") || return 1
        # (bash regexes, not jq: this runs for every link of every disk)
        bf="" bfmt=""
        [[ $info =~ \"backing-filename\":\ \"([^\"]*)\" ]] && bf=${BASH_REMATCH[1]}
        [[ $info =~ \"backing-filename-format\":\ \"([^\"]*)\" ]] && bfmt=${BASH_REMATCH[1]}
        if [[ -n $bf ]]; then
            [[ $bf == /* ]] || bf="$(dirname "$path")/$bf"
            back=$(chain_spec "$r" "$bf" "${bfmt:-raw}" $((depth + 1))) || return 1
            back=${back#json:}
        fi
        printf 'json:{"driver":"qcow2","file":{"driver":"file","filename":"%s"},"backing":%s}' \
            "$r$path" "$back"
    else
        printf 'json:{"driver":"raw","file":{"driver":"file","filename":"%s"}}' "$r$path"
    fi
}

# guest_sum R DOMAIN TARGET: sha256 of what the guest sees on that disk now;
# else "no-chain(...)" / "unreadable(...)" with the oracle's error, which so
# ends up in the failure message.
guest_sum() {
    local r=$1 d=$2 t=$3 src fmt spec tmp
    src=$(cfg_source "$r" "$d" "$t")
    fmt=$(cfg_format "$r" "$d" "$t")
    tmp=$(mktemp "$T/guest.XXXXXX")
    if ! spec=$(chain_spec "$r" "$src" "$fmt" 2>"$tmp.err"); then
        echo "no-chain($src: $(oracle_err "$tmp.err"))"
    elif qemu-img convert -U -O raw "$spec" "$tmp" 2>"$tmp.err"; then
        sha256sum <"$tmp" | cut -d' ' -f1
    else
        echo "unreadable($src: $(oracle_err "$tmp.err"))"
    fi
    rm -f "$tmp" "$tmp.err"
}

# guest_write R DOMAIN TARGET PATTERN OFFSET LEN: qemu-io write into the disk.
guest_write() {
    local r=$1 src fmt spec
    src=$(cfg_source "$r" "$2" "$3")
    fmt=$(cfg_format "$r" "$2" "$3")
    spec=$(chain_spec "$r" "$src" "$fmt")
    qemu-io -c "write -P $4 $5 $6" "$spec" >/dev/null
}

# all_guest_sums R DOMAIN [TARGETS]: "vda=SUM vdb=SUM vdc=SUM sda=SUM"
all_guest_sums() {
    local t out=""
    for t in ${3:-vda vdb vdc sda}; do out+="$t=$(guest_sum "$1" "$2" $t) "; done
    echo "${out% }"
}

# check_image FILE: qemu-img check of one qcow2 file's metadata (its
# backing chain is not opened); prints a line when it is not clean.
check_image() {
    local f=$1 rc=0
    qemu-img check -U -q "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$f\"},\"backing\":null}" \
        >/dev/null 2>&1 || rc=$?
    ((rc == 0)) || echo "qemu-img check $f: exit $rc: $(qemu-img check -U "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$f\"},\"backing\":null}" 2>&1 | oracle_err /dev/stdin)"
}

# check_images R: check_image on every qcow2 file under R.
check_images() {
    local r=$1 f
    while IFS= read -r -d '' f; do
        [[ $(head -c 4 "$f" | xxd -p) == 514649fb ]] || continue
        check_image "$f"
    done < <(find "$r" -type f -print0)
}

# The 9.0 schema with newer libvirt's <revertDisks> (same content as
# <disks>), for files that record a branch the way libvirt >= 9.7 does.
snap_schema_dir() {
    local d=$T/schemas
    if [[ ! -d $d ]]; then
        mkdir -p "$d"
        cp /usr/share/libvirt/schemas/*.rng "$d/"
        python3 - "$d/domainsnapshot.rng" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
anchor = "<element name='disks'>"
if anchor not in s:
    anchor = '<element name="disks">'
i = s.index(anchor)
start = s.rindex("<optional>", 0, i)
end = s.index("</optional>", i) + len("</optional>")
block = s[start:end].replace("name='disks'", "name='revertDisks'").replace('name="disks"', 'name="revertDisks"')
s = s[:end] + "\n        " + block + s[end:]
open(p, "w").write(s)
PY
    fi
    echo "$d"
}

# validate_all R DOMAIN: the config and every snapshot file, as they are.
# Prints one line per file that does not validate.
validate_all() {
    local r=$1 d=$2 f
    virt-xml-validate "$r$SNAP_CFG/$d.xml" domain >/dev/null 2>&1 ||
        echo "config $d.xml does not validate: $(virt-xml-validate "$r$SNAP_CFG/$d.xml" domain 2>&1 | tail -2)"
    [[ -d $r$SNAP_DIR/$d ]] || return 0
    for f in "$r$SNAP_DIR/$d"/*; do
        [[ -e $f ]] || continue
        if grep -q '<revertDisks>' "$f"; then
            xmllint --noout --relaxng "$(snap_schema_dir)/domainsnapshot.rng" "$f" >/dev/null 2>&1 ||
                echo "snapshot $f does not validate (9.0 schema + revertDisks)"
        else
            virt-xml-validate "$f" domainsnapshot >/dev/null 2>&1 ||
                echo "snapshot $f does not validate: $(virt-xml-validate "$f" domainsnapshot 2>&1 | tail -2)"
        fi
    done
}

# root_sums R: sha256 of every file under R, with its mode, sorted.
root_sums() {
    (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum; \
        find . -printf '%p %m %s\n' | sort)
}

# current_snapshot R DOMAIN: the name in the file with <active>1</active>.
current_snapshot() {
    local f
    for f in "$1$SNAP_DIR/$2"/*.xml; do
        [[ -e $f ]] || continue
        if grep -q '<active>1</active>' "$f"; then
            echo "$(xmllint --xpath 'string(/domainsnapshot/name)' "$f")"
        fi
    done
}

# snap_layout FILE: a snapshot file reduced to its layout, to compare with
# libvirt's (fixtures) whatever the names, paths, times and disks: the
# <domain> body is dropped, each <disks>/<revertDisks> list becomes the
# sorted kinds of its entries, names/times/descriptions become placeholders.
snap_layout() {
    awk '
        /^  <domain / { print "  <domain .../>"; indom = 1; next }
        indom { if ($0 ~ /^  <\/domain>/) indom = 0; next }
        /^  <(disks|revertDisks)>$/ { print; inlist = 1; delete kinds; next }
        inlist && /^  <\/(disks|revertDisks)>$/ {
            fflush(); for (k in kinds) print "    " k | "sort"; close("sort")
            print; inlist = 0; next
        }
        inlist {
            if ($0 ~ /^    <disk .*snapshot=.no.\/>/) kinds["<disk snapshot=no/>"] = 1
            else if ($0 ~ /^    <disk .*snapshot=.external. type=.file.>/) kinds["<disk snapshot=external type=file><driver type=qcow2/><source file=PATH/></disk>"] = 1
            else if ($0 ~ /^    <disk /) kinds["OTHER: " $0] = 1
            else if ($0 !~ /^      <(driver type=.qcow2.\/|source file=.\/[^ ]*.\/)>$/ && $0 !~ /^    <\/disk>$/) kinds["OTHER: " $0] = 1
            next
        }
        {
            gsub(/<name>[^<]*<\/name>/, "<name>NAME</name>")
            gsub(/<creationTime>[0-9]+<\/creationTime>/, "<creationTime>TIME</creationTime>")
            gsub(/<description>[^<]*<\/description>/, "<description>TEXT</description>")
            print
        }' "$1"
}

# fixture FILE: path of a libvirt 9.0 fixture.
fixture() { echo "$ES_SRC/tests/fixtures/domxml/libvirt-9.0/$1"; }

# ok_eq / ok_rc that record a failure and go on (under set -e a failed
# assertion would otherwise end the script and hide the checks after it).
check_eq() { ok_eq "$@" || true; }
check_rc() { ok_rc "$@" || true; }

# --- crash tests (t_snap_crash_*.sh) -----------------------------------------

# crash_base B: domain tvm with s1, s2 and guest writes after each.
crash_base() {
    local B=$1 R=$1
    snap_make_tvm "$B"
    x create tvm s1 -q
    guest_write "$B" tvm vda 0x11 0 64k
    guest_write "$B" tvm vdc 0x12 1M 64k
    x create tvm s2 -q
    guest_write "$B" tvm vdb 0x21 0 64k
    guest_write "$B" tvm vda 0x22 2M 4k
}

# bitmap_mark_in_use FILE: set the in-use flag of every persistent bitmap of
# a qcow2 image, as a QEMU killed while it had the image open leaves it.
bitmap_mark_in_use() {
    python3 - "$1" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
h = f.read(4096)
pos = struct.unpack(">I", h[100:104])[0]
while True:
    t, n = struct.unpack(">II", h[pos:pos + 8])
    if t == 0:
        sys.exit("no bitmaps extension")
    if t == 0x23852875:
        count, _, size, off = struct.unpack(">IIQQ", h[pos + 8:pos + 32])
        break
    pos += 8 + (n + 7) // 8 * 8
f.seek(off)
d = bytearray(f.read(size))
p = 0
for _ in range(count):
    flags = struct.unpack(">I", d[p + 12:p + 16])[0]
    d[p + 12:p + 16] = struct.pack(">I", flags | 1)
    name, extra = struct.unpack(">HI", d[p + 18:p + 24])
    p += (24 + name + extra + 7) // 8 * 8
f.seek(off)
f.write(d)
PY
}
