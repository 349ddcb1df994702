#!/usr/bin/env bash
# extsnap against a live libvirt 9.0 daemon (Debian's libvirtd, session
# mode): the files extsnap writes are loaded by libvirtd and read as extsnap
# means them, and the snapshots libvirtd makes are read and handled by
# extsnap. The daemon runs as an unprivileged user (nobody, when this runs as
# root) with HOME and the XDG directories under $T, so the host's libvirt
# (/etc/libvirt, /var/lib/libvirt, /run/libvirt, the system daemon) is never
# touched; its files are then $XDG_CONFIG_HOME/libvirt/qemu/DOM.xml and
# .../qemu/snapshot/DOM/NAME.xml, which extsnap is pointed at with
# --config-dir/--snapshot-dir/--run-dir. extsnap runs as the same user, as a
# session user would. libvirtd is stopped while extsnap changes files (extsnap
# refuses otherwise: checked) and started again to load them.
#  1. extsnap create s1, s2, s3 (VM state: the NVRAM is copied, recorded in
#     <domain><metadata><extsnap:vmstate>): libvirt's view (snapshot-list
#     --tree, snapshot-current, snapshot-info, snapshot-parent,
#     snapshot-dumpxml, dumpxml, domblklist) agrees with extsnap's (list
#     --output=json, show --output=json, show --xml, disks) and with the files
#     (canonical XML), libvirt keeps the vmstate record, and its log has no
#     error or warning about the domain or a snapshot.
#  2. The same after describe, revert, refresh, create on a branch, delete,
#     commit, and current (a lost marker put back).
#  3. libvirt's own external disk-only snapshots of the shut-off domain
#     (snapshot-create-as --disk-only; over extsnap's current one, whose file
#     libvirt rewrites) are listed, shown, reverted and deleted by extsnap
#     (chains as qemu-img info --backing-chain sees them, guest content by
#     qemu-img compare and checksums); libvirt deletes snapshots extsnap made
#     (9.0 merges an external one through a paused QEMU, and of a shut-off
#     domain only the current one: others are refused, no file changed; it
#     cannot revert external snapshots); the agreement holds after each step.
# The domain has <os><nvram> but no vTPM: libvirt 9.0 refuses a <tpm> emulator
# without swtpm installed (a session domain's vTPM state, in
# $XDG_CONFIG_HOME/libvirt/qemu/swtpm, is t_snap_vmstate's, with --swtpm-dir).
# libvirt 9.0 ignores <revertDisks> (libvirt 9.7's): checked apart, and left
# out of the comparisons of files with snapshot-dumpxml.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img qemu-io qemu-system-x86_64 virsh xmllint jq setpriv timeout
LIBVIRTD=/usr/sbin/libvirtd
[[ -x $LIBVIRTD ]] || skip_test "$LIBVIRTD is not installed (libvirt-daemon; run scripts/deps.sh)"
# Assertions that record a failure and go on.
check_eq() { ok_eq "$@" || true; }
check_rc() { ok_rc "$@" || true; }

# The daemon's user: nobody when root runs this (no user is created), else us.
AS=()
if ((EUID == 0)); then AS=(setpriv --reuid=65534 --regid=65534 --clear-groups); fi
as() { "${AS[@]}" "$@"; }

chmod 711 "$T"
LV=$T/lv                 # everything the daemon and the domain own
IMG=$LV/img
mkdir -p "$LV/home" "$LV/cfg" "$LV/cache" "$LV/run" "$IMG"
chmod 700 "$LV/run"
CFG=$LV/cfg/libvirt/qemu
SD=$CFG/snapshot
RUN=$LV/run/libvirt/qemu/run
SOCK=$LV/run/libvirt/libvirt-sock
LVLOG=$T/libvirtd.log
: >"$LVLOG"
LVPID=""

# --- the daemon ----------------------------------------------------------------
# (virsh too as the daemon's user, in its environment: it reads no host
# client config; LIBVIRT_AUTOSTART=0, or a virsh run before the socket is
# there would start a session daemon of its own.)
lv_env() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C HOME="$LV/home" XDG_CONFIG_HOME="$LV/cfg" \
        XDG_CACHE_HOME="$LV/cache" XDG_RUNTIME_DIR="$LV/run" LIBVIRT_AUTOSTART=0 "$@"
}
v() { lv_env "${AS[@]}" virsh -q -c "qemu+unix:///session?socket=$SOCK" "$@"; }

lv_start() {
    local t0 i
    t0=$(date +%s%N)
    # (env, not lv_env: a function would run in a subshell, whose pid
    # would be LVPID and not the daemon's)
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C HOME="$LV/home" XDG_CONFIG_HOME="$LV/cfg" \
        XDG_CACHE_HOME="$LV/cache" XDG_RUNTIME_DIR="$LV/run" \
        timeout 300 "${AS[@]}" "$LIBVIRTD" >>"$LVLOG" 2>&1 &
    LVPID=$!
    for ((i = 0; i < 600; i++)); do
        v uri >/dev/null 2>&1 && break
        kill -0 "$LVPID" 2>/dev/null || break
        sleep 0.05
    done
    v uri >/dev/null 2>&1 || { fail "libvirtd did not start: $(tail -5 "$LVLOG" | tr '\n' ' ')"; finish; }
    LV_START_MS=$((($(date +%s%N) - t0) / 1000000))
    echo "libvirtd started in $LV_START_MS ms"
}

lv_stop() {
    [[ -n $LVPID ]] || return 0
    local d
    d=$(cat "$LV/run/libvirt/libvirtd.pid" 2>/dev/null || true)
    kill "$LVPID" 2>/dev/null || true
    wait "$LVPID" 2>/dev/null || true
    LVPID=""
    if [[ -n $d && $(cat "/proc/$d/comm" 2>/dev/null) == libvirtd ]]; then
        fail "libvirtd (pid $d) outlived its timeout process"
        kill "$d" || true
    fi
}

# The daemon, and the virtlogd it spawned when it ran QEMU, by their pids.
lv_cleanup() {
    lv_stop
    local p
    p=$(cat "$LV/run/libvirt/virtlogd.pid" 2>/dev/null || true)
    if [[ -n $p && $(cat "/proc/$p/comm" 2>/dev/null) == virtlogd ]]; then kill "$p" || true; fi
}
trap 'lv_cleanup; rm -rf "$T"' EXIT

# x ARGS...: extsnap as the daemon's user, on the daemon's files.
x() { as "$EXTSNAP" "$@" --config-dir "$CFG" --snapshot-dir "$SD" --run-dir "$RUN"; }

# --- the domain --------------------------------------------------------------
qemu-img create -q -f qcow2 "$IMG/vda.qcow2" 4M
qemu-img create -q -f raw "$IMG/vdc.raw" 4M
qemu-img create -q -f raw "$IMG/cd.iso" 1M
qemu-io -f qcow2 -c 'write -P 0xa0 0 256k' "$IMG/vda.qcow2" >/dev/null
qemu-io -f raw -c 'write -P 0xc0 512k 64k' "$IMG/vdc.raw" >/dev/null
head -c 1M /dev/zero >"$IMG/OVMF_CODE.fd"   # never executed: QEMU only starts paused
head -c 128K /dev/zero | tr '\0' '\001' >"$IMG/tvm_VARS.fd"
cat >"$LV/define.xml" <<XML
<domain type='qemu'>
  <name>tvm</name>
  <uuid>6b1f7f4e-2f0c-4c43-9a55-3c1d2f6b9a10</uuid>
  <memory unit='KiB'>131072</memory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' type='pflash'>$IMG/OVMF_CODE.fd</loader>
    <nvram>$IMG/tvm_VARS.fd</nvram>
    <boot dev='hd'/>
  </os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$IMG/vda.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$IMG/vdc.raw'/>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='$IMG/cd.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
  </devices>
</domain>
XML
# QEMU's output to a file, not through virtlogd: the daemon spawns no
# virtlogd when it starts QEMU (for a delete) that would outlive it.
mkdir -p "$LV/cfg/libvirt"
echo 'stdio_handler = "file"' >"$LV/cfg/libvirt/qemu.conf"
if ((EUID == 0)); then chown -R 65534:65534 "$LV"; fi
as test -w "$IMG" || { fail "the daemon's user cannot reach $IMG (a parent directory of $T is not searchable)"; finish; }

# --- oracles -------------------------------------------------------------------
cfg_src() { xmllint --xpath "string(//devices/disk[target/@dev='$1']/source/@file)" "$CFG/tvm.xml"; }
cfg_fmt() { xmllint --xpath "string(//devices/disk[target/@dev='$1']/driver/@type)" "$CFG/tvm.xml"; }

# sums: what the guest sees on vda and vdc, and the NVRAM.
sums() {
    local t out="" tmp=$T/guest.raw
    for t in vda vdc; do
        qemu-img convert -U -O raw "$(cfg_src $t)" "$tmp"
        out+="$t=$(sha256sum <"$tmp" | cut -c1-16) "
    done
    rm -f "$tmp"
    echo "${out}nvram=$(sha256sum <"$IMG/tvm_VARS.fd" | cut -c1-16)"
}
declare -A REF   # snapshot name -> sums when it was taken

# guest_write PATTERN: the guest writes to both disks and its NVRAM changes.
guest_write() {
    qemu-io -f "$(cfg_fmt vda)" -c "write -P $1 $((($1 % 16) * 64))k 64k" "$(cfg_src vda)" >/dev/null
    qemu-io -f "$(cfg_fmt vdc)" -c "write -P $1 1M 64k" "$(cfg_src vdc)" >/dev/null
    printf '%b' "\\x$(printf %02x "$1")" | dd of="$IMG/tvm_VARS.fd" bs=1 seek=4096 conv=notrunc status=none
}

# norm: an XML document in canonical form, without libvirt's warning comment
# and the <active> line (in the file, not in snapshot-dumpxml), and without
# <revertDisks>, which libvirt 9.0 does not know (checked apart).
norm() {
    sed -e '/^<!--$/,/^-->$/d' -e '/^  <active>[01]<\/active>$/d' \
        -e '/^  <revertDisks>$/,/^  <\/revertDisks>$/d' | xmllint --c14n - | xmllint --format -
}

# files_sums: every file of the domain's, with its content.
files_sums() { (cd "$LV" && find cfg/libvirt/qemu img -type f -print0 | sort -z | xargs -0 sha256sum); }

# libvirt_refuses_delete NAME: libvirt 9.0 refuses to delete snapshot NAME
# of the shut-off domain, and changes no file.
libvirt_refuses_delete() {
    local files err
    files=$(files_sums)
    err=$(v snapshot-delete tvm "$1" 2>&1) && fail "3: libvirt 9.0 deleted $1, which is not current"
    check_eq "3: libvirt's refusal to delete $1" "could not find base disk source in disk source chain" \
        "$(grep -o 'could not find base disk source in disk source chain' <<<"$err")"
    check_eq "3: libvirt's refusal to delete $1 changed no file" "$files" "$(files_sums)"
}

LOGPOS=0
xp() { xmllint --xpath "$1" "$T/dump.xml"; }
# agree WHAT: libvirt's view of domain tvm = extsnap's = the files.
agree() {
    local w=$1 json n sj info_v info_x tree_v tree_x vpar cur_v
    json=$(x list tvm --output=json)
    check_eq "$w: names" "$(jq -r '[.snapshots[].name] | sort | join(" ")' <<<"$json")" \
        "$(v snapshot-list tvm --name | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//')"
    cur_v=$(v snapshot-current tvm --name 2>/dev/null || true)
    check_eq "$w: current" "$(jq -r '.current // ""' <<<"$json")" "$cur_v"
    check_eq "$w: extsnap current" "$cur_v" "$(x current tvm)"
    # line for line, but for extsnap's "(current)" marker
    tree_v=$(v snapshot-list tvm --tree)
    tree_x=$(x list tvm --tree | sed 's/ (current)$//')
    check_eq "$w: tree" "$tree_v" "$tree_x"
    for n in $(jq -r '.snapshots[].name' <<<"$json"); do
        sj=$(x show tvm "$n" --output=json)
        info_v=$(v snapshot-info tvm "$n" |
            awk -F': +' '/^(Name|Current|State|Location|Parent|Children|Descendants|Metadata):/ {print $1 "=" $2}')
        info_x=$(jq -r '"Name=\(.name)", "Current=\(if .current then "yes" else "no" end)",
            "State=\(.state)", "Location=\(.location)", "Parent=\(.parent // "-")",
            "Children=\(.children | length)", "Descendants=\(.descendants | length)",
            "Metadata=\(if .metadata then "yes" else "no" end)"' <<<"$sj")
        check_eq "$w: snapshot-info $n" "$info_x" "$info_v"
        vpar=$(v snapshot-parent tvm --snapshotname "$n" 2>/dev/null || true)
        check_eq "$w: snapshot-parent $n" "$(jq -r '.parent // ""' <<<"$sj")" "$vpar"
        check_eq "$w: show --xml $n is the file" "$(cat "$SD/tvm/$n.xml")" "$(x show tvm "$n" --xml)"
        check_eq "$w: snapshot-dumpxml $n = the file" "" \
            "$(diff <(v snapshot-dumpxml tvm "$n" | norm) <(norm <"$SD/tvm/$n.xml") 2>&1 || true)"
        v snapshot-dumpxml tvm "$n" >"$T/dump.xml"
        check_eq "$w: $n creation time" "$(jq -r '."creation-time"' <<<"$sj")" \
            "$(xp 'string(/domainsnapshot/creationTime)')"
        check_eq "$w: $n description" "$(jq -r '.description // ""' <<<"$sj")" \
            "$(xp 'string(/domainsnapshot/description)')"
        check_eq "$w: $n disks" "$(jq -r '.disks[] | "\(.name) \(.snapshot) \(.source // "")"' <<<"$sj")" \
            "$(for d in $(xp '/domainsnapshot/disks/disk/@name' | sed 's/ name="\([^"]*\)"/\1 /g'); do
                echo "$d $(xp "string(//disks/disk[@name='$d']/@snapshot)") $(xp "string(//disks/disk[@name='$d']/source/@file)")"
            done)"
    done
    check_eq "$w: dumpxml = the config" "" \
        "$(diff <(v dumpxml tvm --inactive --security-info | norm) <(norm <"$CFG/tvm.xml") 2>&1 || true)"
    check_eq "$w: domblklist = extsnap disks" \
        "$(x disks tvm --output=json | jq -r '.disks[] | "\(.target) \(.source // "-")"')" \
        "$(v domblklist tvm --inactive | awk '{print $1, $2}')"
    check_eq "$w: libvirtd's log about our files" "" \
        "$(tail -c +$((LOGPOS + 1)) "$LVLOG" | grep -E ': (error|warning) : ' |
            grep -i -E 'snapshot|tvm|metadata|extsnap|xml|'"$LV" || true)"
    LOGPOS=$(stat -c %s "$LVLOG")
}

# chains WHAT: each disk's backing chain, qemu-img's = extsnap's.
chains() {
    local t
    for t in vda vdc; do
        check_eq "$1: $t chain" \
            "$(qemu-img info -U --backing-chain --output=json "$(cfg_src $t)" | jq -r '.[].filename')" \
            "$(x disks tvm --chain --output=json | jq -r ".disks[] | select(.target==\"$t\") | .chain[].filename")"
    done
}

# same_as_frozen WHAT SNAP: each live disk's content = SNAP's frozen image's.
same_as_frozen() {
    local t fz
    for t in vda vdc; do
        fz=$(x show tvm "$2" --output=json | jq -r ".disks[] | select(.name==\"$t\") | .\"frozen-image\"")
        ok_rc "$1: $t = $2's frozen image (qemu-img compare)" 0 qemu-img compare -U -q "$(cfg_src $t)" "$fz" || true
    done
}

# --- 1: create ---------------------------------------------------------------
lv_start
FIRST_START_MS=$LV_START_MS
t0=$(date +%s%N)
v define "$LV/define.xml" >/dev/null
DEFINE_MS=$((($(date +%s%N) - t0) / 1000000))
err=$(x create tvm s1 2>&1) && fail "create while libvirtd runs was not refused"
grep -q "libvirtd is running" <<<"$err" || fail "create while libvirtd runs: $err"
lv_stop

REF[s1]=$(sums)
check_rc "create s1" 0 x create tvm s1 -q
guest_write 0x11
REF[s2]=$(sums)
check_rc "create s2" 0 x create tvm s2 --description "second snap" -q
guest_write 0x22
REF[s3]=$(sums)
check_rc "create s3" 0 x create tvm s3 -q
guest_write 0x33
lv_start
agree "1 create"
check_eq "1: libvirt keeps s2's vmstate record" "s2 $IMG/tvm.s2.nvram" \
    "$(v snapshot-dumpxml tvm s2 | xmllint --xpath 'concat(//*[local-name()="vmstate"]/@snapshot, " ", //*[local-name()="vmstate"]/*[local-name()="nvram"]/@copy)' -)"
chains "1 create"

# --- 2: the other commands ------------------------------------------------------
lv_stop
check_rc "describe s1" 0 x describe tvm s1 --description "first <snap> & 'quoted'" -q
check_rc "describe s2 (remove)" 0 x describe tvm s2 --description "" -q
check_rc "revert s1" 0 x revert tvm s1 -q
check_eq "2: revert s1: guest and NVRAM as at s1" "${REF[s1]}" "$(sums)"
check_eq "2: revert s1 (it has children): the new overlays in its <revertDisks>" 1 \
    "$(grep -c '^  <revertDisks>$' "$SD/tvm/s1.xml")"
lv_start
agree "2 revert s1"
check_eq "2: libvirt 9.0 ignores <revertDisks> (libvirt 9.7's)" 0 \
    "$(v snapshot-dumpxml tvm s1 | grep -c revertDisks || true)"
# So when libvirt rewrites s1's file (here a redefine; 9.0 also does when it
# makes a snapshot over s1, as extsnap then does) the record is gone: extsnap
# says so, and refresh puts the disks back on s1.
v snapshot-dumpxml tvm s1 >"$T/s1.xml"
check_rc "virsh snapshot-create --redefine --current s1" 0 \
    v snapshot-create tvm "$T/s1.xml" --redefine --current >/dev/null
lv_stop
check_eq "2: verify after libvirt dropped <revertDisks>" "config-off-current config-off-current 2" \
    "$(x verify tvm 2>&1 | grep -o 'config-off-current' | tr '\n' ' '; x verify tvm >/dev/null 2>&1; echo $?)"
guest_write 0x44
check_rc "refresh" 0 x refresh tvm -q
check_eq "2: refresh: guest and NVRAM as at s1" "${REF[s1]}" "$(sums)"
check_rc "verify after refresh" 0 x verify tvm -q
guest_write 0x45
REF[s4]=$(sums)
check_rc "create s4 (a branch off s1)" 0 x create tvm s4 -q
guest_write 0x46
check_rc "delete s2" 0 x delete tvm s2 -q
lv_start
agree "2 describe revert refresh branch delete"
chains "2 delete"

lv_stop
REF[s5]=$(sums)
check_rc "create s5" 0 x create tvm s5 -q
guest_write 0x55
before=$(sums)
check_rc "commit s4 s5" 0 x commit tvm s4 s5 -q
check_eq "2: commit: guest unchanged" "$before" "$(sums)"
cur=$(x current tvm)
check_eq "2: commit: current" s4 "$cur"
[[ -f $SD/tvm/s4.xml ]] && sed -i 's|^  <active>1</active>$|  <active>0</active>|' "$SD/tvm/s4.xml"
lv_start
agree "2 commit, marker lost"
check_eq "2: no current after the marker was lost" "" "$(v snapshot-current tvm --name 2>/dev/null || true)"
lv_stop
check_rc "current s4 (repair)" 0 x current tvm s4 -q
lv_start
agree "2 current"
check_eq "2: current put back" s4 "$(v snapshot-current tvm --name 2>/dev/null || true)"
lv_stop
check_rc "revert s3" 0 x revert tvm s3 -q
check_eq "2: revert s3: guest and NVRAM as at s3 (s2 deleted)" "${REF[s3]}" "$(sums)"
same_as_frozen "2: revert s3" s3
guest_write 0x66

# --- 3: libvirt's snapshots -------------------------------------------------------
lv_start
REF[L1]=$(sums)
check_rc "virsh snapshot-create-as L1 --disk-only" 0 v snapshot-create-as tvm L1 --disk-only \
    --description "made by libvirt" >/dev/null
guest_write 0x71
REF[L2]=$(sums)
check_rc "virsh snapshot-create-as L2 --disk-only" 0 v snapshot-create-as tvm L2 --disk-only >/dev/null
guest_write 0x72
agree "3 libvirt's L1 L2"
chains "3 libvirt's L1 L2"
check_eq "3: L1 in extsnap: parent, disks" "s3 vda=$IMG/vda.L1 vdc=$IMG/vdc.L1" \
    "$(x show tvm L1 --output=json | jq -r '[.parent, (.disks[] | select(.snapshot=="external") | "\(.name)=\(.source)")] | join(" ")')"

lv_stop
check_rc "extsnap verify (libvirt's snapshots)" 0 x verify tvm -q
check_rc "revert L1 (libvirt's)" 0 x revert tvm L1 -q
check_eq "3: revert L1: guest as at L1 (NVRAM untouched: L1 has no copy)" \
    "${REF[L1]%nvram=*}" "$(sums | sed 's/nvram=.*//')"
same_as_frozen "3: revert L1" L1
check_rc "revert s3 (its file rewritten by libvirt)" 0 x revert tvm s3 -q
check_eq "3: revert s3: guest and NVRAM as at s3" "${REF[s3]}" "$(sums)"
check_rc "delete L1 (libvirt's)" 0 x delete tvm L1 -q
check_rc "revert L2 (libvirt's, after L1 merged)" 0 x revert tvm L2 -q
check_eq "3: revert L2: guest as at L2" "${REF[L2]%nvram=*}" "$(sums | sed 's/nvram=.*//')"
guest_write 0x73
REF[s6]=$(sums)
check_rc "create s6 over libvirt's L2" 0 x create tvm s6 -q
guest_write 0x74
lv_start
agree "3 extsnap on libvirt's"
chains "3 extsnap on libvirt's"

before=$(sums)
check_rc "virsh snapshot-delete s6 (extsnap's)" 0 v snapshot-delete tvm s6 >/dev/null
check_eq "3: libvirt's delete of s6: guest unchanged" "${before%nvram=*}" "$(sums | sed 's/nvram=.*//')"
agree "3 libvirt deleted s6"
chains "3 libvirt deleted s6"
# 9.0 deletes an external snapshot of a shut-off domain only when its
# overlays are the disks' tops (the current one; it looks for the others in
# a chain it has not loaded): libvirt's own A -> B, delete A, is refused the
# same way.
libvirt_refuses_delete s3
agree "3 libvirt refused s3"
chains "3 libvirt refused s3"
lv_stop
check_rc "extsnap verify after libvirt's delete" 0 x verify tvm -q
check_rc "revert s4" 0 x revert tvm s4 -q
check_eq "3: revert s4: guest and NVRAM as at s4" "${REF[s4]}" "$(sums)"
check_rc "revert L2" 0 x revert tvm L2 -q
check_eq "3: revert L2: guest as at L2" "${REF[L2]%nvram=*}" "$(sums | sed 's/nvram=.*//')"
same_as_frozen "3: revert L2" L2
# Siblings made in another order than their names' (virsh sorts by name).
check_rc "create Z9 over s4" 0 x create tvm Z9 -q
check_rc "revert s4 again" 0 x revert tvm s4 -q
check_rc "create a1 over s4" 0 x create tvm a1 -q
lv_start
agree "3 siblings"
libvirt_refuses_delete Z9   # a leaf, not current
agree "3 last"
lv_stop
check_rc "extsnap verify at the end" 0 x verify tvm -q
echo "libvirtd: first start $FIRST_START_MS ms, first define $DEFINE_MS ms (QEMU's capabilities probed), last start $LV_START_MS ms"
finish
