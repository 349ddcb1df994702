#!/usr/bin/env bash
# extsnap img rebase -u: the header gets the new backing name and format,
# everything else in it survives byte for byte, the guest sees the same data
# when the new backing has the same content, refusals leave the file
# untouched, and an I/O error leaves either the old or the new header.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img qemu-io jq cmp sha256sum xxd od

X=$EXTSNAP
cd "$T"

be32() { echo $((16#$(od -An -tx1 -j "$2" -N4 "$1" | tr -d ' \n'))); }
be64() { echo $((16#$(od -An -tx1 -j "$2" -N8 "$1" | tr -d ' \n'))); }

# Print the header extensions of a qcow2 file, one per line: TYPE LEN DATA
# (hex), in file order, END excluded. The last line is "END <offset>".
list_exts() {
    local f=$1 off type len
    if (($(be32 "$f" 4) == 2)); then off=72; else off=$(be32 "$f" 100); fi
    while ((off < 65536)); do
        type=$(od -An -tx1 -j "$off" -N4 "$f" | tr -d ' \n')
        len=$(be32 "$f" $((off + 4)))
        if [[ $type == 00000000 ]]; then
            echo "END $off"
            return
        fi
        echo "$type $len $(od -An -tx1 -v -j $((off + 8)) -N "$len" "$f" | tr -d ' \n')"
        off=$((off + 8 + (len + 7) / 8 * 8))
    done
    echo "END not found"
}
ext_line() { list_exts "$1" | grep "^$2 " || echo "absent"; }

# Insert an extension (TYPE hex, DATA hex) just before END, moving the
# backing name behind it, as a future QEMU might write one.
inject_ext() {
    local f=$1 type=$2 data=$3 end bfo bfs name len pad
    end=$(list_exts "$f" | awk '/^END/ {print $2}')
    bfo=$(be64 "$f" 8)
    bfs=$(be32 "$f" 16)
    name=$(od -An -tx1 -v -j "$bfo" -N "$bfs" "$f" | tr -d ' \n')
    len=$((${#data} / 2))
    pad=$(printf '%*s' $((((len + 7) / 8 * 8 - len) * 2)) '' | tr ' ' 0)
    printf '%s%08x%s%s%016x%s' "$type" "$len" "$data" "$pad" 0 "$name" | xxd -r -p |
        dd of="$f" bs=1 seek="$end" conv=notrunc status=none
    printf '%016x' $((end + 8 + (len + 7) / 8 * 8 + 8)) | xxd -r -p |
        dd of="$f" bs=1 seek=8 conv=notrunc status=none
}

# qemu-img check of the image alone (its backing may not exist).
check_alone() {
    qemu-img check -q \
        "json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":{\"driver\":\"file\",\"filename\":\"$1\"}}"
}
info() { qemu-img info --output=json "$1" | jq -r ".\"$2\" // \"none\""; }

# rebase_ok LABEL IMAGE NEWNAME FMT: run, then check the result.
rebase_ok() {
    local label=$1 img=$2 name=$3 fmt=$4
    if [[ -n $name ]]; then
        ok_rc "$label" 0 "$X" img rebase -u -b "$name" -F "$fmt" "$img" || return 0
        ok_eq "$label: backing-filename" "$name" "$(info "$img" backing-filename)"
        ok_eq "$label: backing-filename-format" "$fmt" "$(info "$img" backing-filename-format)"
    else
        ok_rc "$label" 0 "$X" img rebase -u -b "" "$img" || return 0
        ok_eq "$label: backing-filename" "none" "$(info "$img" backing-filename)"
        ok_eq "$label: no backing format extension" "absent" "$(ext_line "$img" e2792aca)"
    fi
    ok_rc "$label: qemu-img check" 0 check_alone "$img"
}

# --- a chain whose base has a twin with the same content ------------------
qemu-img create -q -f qcow2 base.qcow2 4M
qemu-io -c 'write -P 0x11 0 1M' -c 'write -P 0x22 2M 512k' base.qcow2 >/dev/null
cp base.qcow2 twin.qcow2
mkdir -p "deep/er/and/deeper/directory/names/to/make/a/longer/path"
longdir="deep/er/and/deeper/directory/names/to/make/a/longer/path"
cp base.qcow2 "$longdir/twin-with-a-much-longer-file-name.qcow2"
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
qemu-io -c 'write -P 0x33 512k 1M' top.qcow2 >/dev/null
qemu-img convert -O raw top.qcow2 guest.raw # what the guest sees

cp top.qcow2 q.qcow2
rebase_ok "rebase to twin" top.qcow2 twin.qcow2 qcow2
qemu-img rebase -u -b twin.qcow2 -F qcow2 q.qcow2
ok_rc "same bytes as qemu-img rebase -u" 0 cmp top.qcow2 q.qcow2
ok_rc "guest content unchanged" 0 qemu-img compare -q guest.raw top.qcow2

rebase_ok "growing name" top.qcow2 "$longdir/twin-with-a-much-longer-file-name.qcow2" qcow2
ok_rc "guest content unchanged (long name)" 0 qemu-img compare -q guest.raw top.qcow2
rebase_ok "absolute name" top.qcow2 "$T/twin.qcow2" qcow2
ok_rc "guest content unchanged (absolute)" 0 qemu-img compare -q guest.raw top.qcow2
rebase_ok "shrinking name" top.qcow2 base.qcow2 qcow2
ok_rc "guest content unchanged (short name)" 0 qemu-img compare -q guest.raw top.qcow2
ok_eq "backing format extension holds qcow2" "e2792aca 5 $(printf qcow2 | xxd -p)" \
    "$(ext_line top.qcow2 e2792aca)"

# raw backing
qemu-img convert -O raw base.qcow2 base.raw
rebase_ok "raw backing" top.qcow2 base.raw raw
ok_rc "guest content unchanged (raw backing)" 0 qemu-img compare -q guest.raw top.qcow2

# remove the backing file
cp top.qcow2 alone.qcow2
cp top.qcow2 q.qcow2
rebase_ok "-b \"\"" alone.qcow2 "" ""
qemu-img rebase -u -b "" q.qcow2
ok_rc "-b \"\": same bytes as qemu-img" 0 cmp alone.qcow2 q.qcow2
ok_eq "-b \"\": offset and size zero" "0 0" "$(be64 alone.qcow2 8) $(be32 alone.qcow2 16)"
ok_rc "-b \"\": back again" 0 "$X" img rebase -u -b base.qcow2 -F qcow2 alone.qcow2
ok_rc "-b \"\": back again, guest content" 0 qemu-img compare -q guest.raw alone.qcow2

# the longest name QEMU accepts
name1023=$(head -c 1023 /dev/zero | tr '\0' n)
cp top.qcow2 n1023.qcow2
rebase_ok "1023-byte name" n1023.qcow2 "$name1023" qcow2
before=$(sha256sum <n1023.qcow2)
ok_rc "1024-byte name refused" 1 "$X" img rebase -u -b "${name1023}n" -F qcow2 n1023.qcow2 2>/dev/null
ok_eq "1024-byte name: unchanged" "$before" "$(sha256sum <n1023.qcow2)"

# --- extensions survive byte for byte ------------------------------------
cp top.qcow2 ext.qcow2
inject_ext ext.qcow2 7e57e7e7 "$(printf '%s' 'opaque extension payload!' | xxd -p | tr -d '\n')"
ok_rc "injected extension: qemu-img accepts it" 0 qemu-img check -q ext.qcow2
unknown_before=$(ext_line ext.qcow2 7e57e7e7)
payload='opaque extension payload!' # 25 bytes: padded to 32
ok_eq "injected extension present" "7e57e7e7 ${#payload} $(printf '%s' "$payload" | xxd -p | tr -d '\n')" \
    "$unknown_before"
cp ext.qcow2 q.qcow2
rebase_ok "unknown extension" ext.qcow2 "$longdir/twin-with-a-much-longer-file-name.qcow2" qcow2
ok_eq "unknown extension kept" "$unknown_before" "$(ext_line ext.qcow2 7e57e7e7)"
ok_eq "feature table kept" "$(ext_line top.qcow2 6803f857)" "$(ext_line ext.qcow2 6803f857)"
qemu-img rebase -u -b "$longdir/twin-with-a-much-longer-file-name.qcow2" -F qcow2 q.qcow2
ok_rc "unknown extension: same bytes as qemu-img" 0 cmp ext.qcow2 q.qcow2
rebase_ok "unknown extension, -b \"\"" ext.qcow2 "" ""
ok_eq "unknown extension kept after -b \"\"" "$unknown_before" "$(ext_line ext.qcow2 7e57e7e7)"

cp top.qcow2 bm.qcow2
qemu-img bitmap --add bm.qcow2 bm0
qemu-img bitmap --add -g 128k bm.qcow2 bm1
bitmaps_before=$(ext_line bm.qcow2 23852875)
autoclear_before=$(be64 bm.qcow2 88)
ES_CHECKS=$((ES_CHECKS + 1))
[[ $bitmaps_before != absent ]] || fail "qemu-img bitmap --add made no bitmaps extension"
rebase_ok "bitmaps extension" bm.qcow2 twin.qcow2 qcow2
ok_eq "bitmaps extension kept" "$bitmaps_before" "$(ext_line bm.qcow2 23852875)"
ok_eq "bitmaps autoclear bit kept" "$autoclear_before" "$(be64 bm.qcow2 88)"
ok_eq "bitmaps still listed" "bm0 bm1" \
    "$(qemu-img info --output=json bm.qcow2 | jq -r '[."format-specific".data.bitmaps[].name] | join(" ")')"
ok_rc "bitmaps: guest content unchanged" 0 qemu-img compare -q guest.raw bm.qcow2

# --- v2 images get no feature table --------------------------------------
qemu-img create -q -f qcow2 -o compat=0.10 -b base.qcow2 -F qcow2 v2.qcow2
qemu-io -c 'write -P 0x33 512k 1M' v2.qcow2 >/dev/null
cp v2.qcow2 q.qcow2
rebase_ok "v2" v2.qcow2 "$longdir/twin-with-a-much-longer-file-name.qcow2" qcow2
ok_eq "v2: only the backing format extension" "e2792aca" "$(list_exts v2.qcow2 | awk '!/^END/ {print $1}' | tr '\n' ' ' | sed 's/ $//')"
ok_eq "v2: still version 2" 2 "$(be32 v2.qcow2 4)"
qemu-img rebase -u -b "$longdir/twin-with-a-much-longer-file-name.qcow2" -F qcow2 q.qcow2
ok_rc "v2: same bytes as qemu-img" 0 cmp v2.qcow2 q.qcow2
ok_rc "v2: guest content unchanged" 0 qemu-img compare -q guest.raw v2.qcow2

# --- refusals: exit status, one error line, file unchanged ----------------
hash_of() { if [[ -e $1 ]]; then sha256sum <"$1"; else echo absent; fi; }
refuse() { # refuse LABEL RC FILE ARGS...
    local label=$1 rc=$2 file=$3 before
    shift 3
    before=$(hash_of "$file")
    ok_rc "$label" "$rc" "$X" img rebase "$@" 2>refuse.err || cat refuse.err >&2
    ok_eq "$label: unchanged" "$before" "$(hash_of "$file")"
    if ((rc == 1)); then
        # (a usage error adds its "Try 'extsnap img rebase --help'." line)
        ok_eq "$label: one error line" 1 "$(grep -vc "^Try 'extsnap img rebase --help'.$" refuse.err)"
    fi
}
qemu-img create -q -f qcow2 -o cluster_size=512 -b base.qcow2 -F qcow2 small.qcow2
refuse "name does not fit in a 512-byte cluster 0" 1 small.qcow2 -u -b "$(head -c 400 /dev/zero | tr '\0' s)" -F qcow2 small.qcow2
ok_rc "512-byte clusters: a name that fits" 0 "$X" img rebase -u -b twin.qcow2 -F qcow2 small.qcow2
ok_rc "512-byte clusters: check" 0 qemu-img check -q small.qcow2
refuse "-c with -u (nothing to compress)" 1 top.qcow2 -c -u -b twin.qcow2 -F qcow2 top.qcow2
refuse "-b without -F" 1 top.qcow2 -u -b twin.qcow2 top.qcow2
refuse "-F with -b \"\"" 1 top.qcow2 -u -b "" -F qcow2 top.qcow2
refuse "no -b" 1 top.qcow2 -u top.qcow2
refuse "unsupported backing format" 1 top.qcow2 -u -b x.vmdk -F vmdk top.qcow2
refuse "unknown option" 1 top.qcow2 -u --frobnicate -b twin.qcow2 -F qcow2 top.qcow2
refuse "raw image" 1 base.raw -u -b twin.qcow2 -F qcow2 base.raw
refuse "missing image" 1 missing.qcow2 -u -b twin.qcow2 -F qcow2 missing.qcow2
qemu-img create -q -f qcow2 corrupt.qcow2 1M
printf '\x02' | dd of=corrupt.qcow2 bs=1 seek=79 conv=notrunc status=none # incompatible bit 1
refuse "image marked corrupt" 1 corrupt.qcow2 -u -b twin.qcow2 -F qcow2 corrupt.qcow2

# --- an image a running QEMU uses is refused (QEMU's OFD locks) -----------
if ! command -v qemu-system-x86_64 >/dev/null; then
    skip_part "qemu-system-x86_64 is not installed: the image-in-use refusal did not run"
else
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 busy.qcow2
    qemu-system-x86_64 -machine none -display none -nodefaults -S \
        -blockdev "driver=qcow2,node-name=top,file.driver=file,file.filename=$T/busy.qcow2" 2>qemu.err &
    qpid=$!
    for _ in $(seq 1 100); do # until QEMU holds its locks
        qemu-img info busy.qcow2 >/dev/null 2>&1 || break
        sleep 0.1
    done
    refuse "image in use by QEMU" 1 busy.qcow2 -u -b twin.qcow2 -F qcow2 busy.qcow2
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -q "$qpid" refuse.err || fail "lock conflict message does not name QEMU's pid $qpid: $(cat refuse.err)"
    kill "$qpid"
    wait "$qpid" 2>/dev/null || true
    ok_rc "image free again" 0 "$X" img rebase -u -b twin.qcow2 -F qcow2 busy.qcow2
fi

# --- fault injection: old or new header, never a broken one ---------------
cp top.qcow2 expected_new.qcow2
"$X" img rebase -u -b twin.qcow2 -F qcow2 expected_new.qcow2
for fault in write:1:eio write:1:enospc flush:1:eio; do
    cp top.qcow2 f.qcow2
    old=$(sha256sum <f.qcow2)
    new=$(sha256sum <expected_new.qcow2)
    ok_rc "fault $fault: fails" 1 env EXTSNAP_FAULT=$fault "$X" img rebase -u -b twin.qcow2 -F qcow2 f.qcow2 2>/dev/null
    got=$(sha256sum <f.qcow2)
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $got == "$old" || $got == "$new" ]] || fail "fault $fault: file is neither the old nor the new image"
    ok_rc "fault $fault: qemu-img check" 0 qemu-img check -q f.qcow2
    ok_rc "fault $fault: guest content" 0 qemu-img compare -q guest.raw f.qcow2
done
cp top.qcow2 f.qcow2
ok_rc "fault write:1:eio leaves the old header" 0 bash -c \
    "EXTSNAP_FAULT=write:1:eio '$X' img rebase -u -b twin.qcow2 -F qcow2 f.qcow2 2>/dev/null; cmp -s top.qcow2 f.qcow2"

# --help names every option
help=$("$X" img rebase --help)
for opt in -u -b -F -f; do
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -q -- "$opt" <<<"$help" || fail "--help does not mention $opt"
done

finish
