#!/usr/bin/env bash
# extsnap doctor DOMAIN (issue 14 part 3): the image doctor over a domain's
# chains under a root, plus the domain's own findings. A disk over a golden
# template its XML does not name; the template renamed in the images
# directory (found: the disks' current images and a stray of another size
# ruled out), repaired through the journal, verify clean after, the guest's
# content unchanged (img compare against a copy made before). A missing
# backing format added the same way. A missing file that snapshot metadata
# names is not rebased elsewhere (it must come back: refused, nothing
# changed). Orphans, another domain sharing an image, and a journal left by
# an interrupted create (recovered by --fix) are reported. Snapshot
# metadata as evidence (it picks the file it recorded over an identical
# copy); a backing name written from the rescue shell repaired through the
# journal (qemu-io reads the guest's data in the host's view after, a failed
# write is undone); a disk source written from the rescue shell reported
# (its file and chain not called orphans).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_tool qemu-img qemu-io python3 sha256sum
cd "$T"
eq() { ok_eq "$@" || true; }
rc_is() { ok_rc "$@" || true; }
has() {
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $3 == *"$2"* ]] || fail "$1: [$2] not in [$3]"
}
q() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# The header of the image at logical path $1 under R.
hdr() { qemu-img info -U --output=json "$R$1" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2'))"; }
strip_backing_format() { # the extension removed, as old qemu-img wrote images
    python3 - "$1" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
h = f.read(4096)
start = struct.unpack(">I", h[100:104])[0]
off, exts = start, []
while True:
    t, n = struct.unpack(">II", h[off:off + 8])
    if t == 0:
        break
    if t != 0xE2792ACA:
        exts.append(h[off:off + 8 + n + (-n) % 8])
    off += 8 + n + (-n) % 8
f.seek(start)
f.write(b"".join(exts) + b"\0" * 8)
PY
}
R=$T/root
I=$SNAP_IMG
snap_make_tvm "$R"
# vda over a golden template the XML never names; a copy of both in /orig.
qemu-img create -q -f qcow2 "$R$I/golden.qcow2" 4M
qemu-io -c 'write -P 0x71 0 512k' "$R$I/golden.qcow2" >/dev/null
rm "$R$I/vda.qcow2"
qemu-img create -q -f qcow2 -b "$R$I/golden.qcow2" -F qcow2 "$R$I/vda.qcow2"
qemu-io -c 'write -P 0xa0 256k 64k' "$R$I/vda.qcow2" >/dev/null
qemu-img rebase -u -b "$I/golden.qcow2" -F qcow2 "$R$I/vda.qcow2"
mkdir "$R/orig"
cp "$R$I/golden.qcow2" "$R$I/vda.qcow2" "$R/orig/"
qemu-img rebase -u -b /orig/golden.qcow2 -F qcow2 "$R/orig/vda.qcow2"
x() { "$EXTSNAP" "$@" --root "$R"; }

# ---------------------------------------------------------------- healthy
rc_is "healthy: exit 0" 0 x doctor tvm --output=json >ok.json
eq "healthy: result" "healthy 0" "$(q ok.json 'd[0]["result"] + " " + str(d[0]["errors"])')"
eq "healthy: a chain per disk" 4 "$(q ok.json 'len(d[0]["chains"])')"
qemu-img create -q -f qcow2 "$R$I/stray.qcow2" 1M
rc_is "an orphan: still exit 0" 0 x doctor tvm --output=json >orphan.json
eq "an orphan: reported" "unreferenced-image $I/stray.qcow2" \
    "$(q orphan.json '" ".join(f["kind"] + " " + f["file"] for f in d[0]["findings"])')"

# ------------------------------------- the template renamed: found, repaired
mv "$R$I/golden.qcow2" "$R$I/golden-2024.qcow2"
before=$(cd "$R" && find . -type f | sort | xargs sha256sum)
rc_is "template renamed: exit 2" 2 x doctor tvm --output=json >mv.json 2>/dev/null
ch='[c for c in d[0]["chains"] if c["image"].endswith("vda.qcow2")][0]'
miss="[f for f in $ch['findings'] if f['kind']=='missing-backing'][0]"
eq "template renamed: golden-2024 chosen" "$I/golden-2024.qcow2" \
    "$(q mv.json "[c['filename'] for c in $miss['candidates'] if c['chosen']][0]")"
has "template renamed: vdb's current image ruled out" "current image" \
    "$(q mv.json "[c['rejected'] for c in $miss['candidates'] if c['filename'].endswith('vdb.qcow2')][0]")"
has "template renamed: the stray ruled out by its size" "virtual size" \
    "$(q mv.json "[c['rejected'] for c in $miss['candidates'] if 'stray' in c['filename']][0]")"
eq "template renamed: plan (an absolute name stays absolute)" "$I/vda.qcow2 $I/golden-2024.qcow2 qcow2" \
    "$(q mv.json "' '.join($ch['plan'][0][k] for k in ('image','backing-filename','backing-filename-format'))")"
eq "template renamed: the file found is no orphan" "unreferenced-image $I/stray.qcow2" \
    "$(q mv.json '" ".join(f["kind"] + " " + f["file"] for f in d[0]["findings"])')"
rc_is "template renamed: --fix --dry-run exits 0 (the plan repairs every error)" 0 x doctor tvm --fix --dry-run >dry.out
has "template renamed: --dry-run prints the plan" "rebase" "$(cat dry.out)"
eq "template renamed: --dry-run changes nothing" "$before" "$(cd "$R" && find . -type f | sort | xargs sha256sum)"
rc_is "template renamed: --fix exits 0" 0 x doctor tvm --fix --output=json >fix.json
eq "template renamed: one step fixed, healthy after" "1 0 healthy" \
    "$(q fix.json 'str(d[0]["fixed"]) + " " + str(d[0]["after"]["errors"]) + " " + d[0]["result"]')"
eq "template renamed: header names the file found" "$I/golden-2024.qcow2" "$(hdr "$I/vda.qcow2" backing-filename)"
rc_is "template renamed: no journal left" 1 test -e "$R$SNAP_DIR/tvm.extsnap.journal"
rc_is "template renamed: verify is clean" 0 x verify tvm -q
rc_is "template renamed: guest content unchanged" 0 \
    "$EXTSNAP" img compare --root "$R" "$I/vda.qcow2" /orig/vda.qcow2 >/dev/null

# -------------- a disk source written from the rescue system: reported
# vda's current image, which only the config names (no snapshot yet): the
# file and the template beneath it are what the name means, no orphans.
cp "$R$SNAP_CFG/tvm.xml" tvm.xml.bak
sed -i -e "s|'$I/vda.qcow2'|'$R$I/vda.qcow2'|" -e "s|\"$I/vda.qcow2\"|\"$R$I/vda.qcow2\"|" "$R$SNAP_CFG/tvm.xml"
eq "rescue source: the config names the rescue path" "$R$I/vda.qcow2" "$(cfg_source "$R" tvm vda)"
before=$(cd "$R" && find . -type f | sort | xargs sha256sum)
rc_is "rescue source: exit 2" 2 x doctor tvm --fix --output=json >rs.json 2>/dev/null
eq "rescue source: one domain error" "root-prefixed-name:$R$I/vda.qcow2" \
    "$(q rs.json "' '.join(f['kind'] + ':' + f['file'] for f in d[0]['findings'] if f['severity'] == 'error')")"
eq "rescue source: the file and its backing file are not reported as unreferenced" "$I/stray.qcow2" \
    "$(q rs.json "' '.join(f['file'] for f in d[0]['findings'] if f['kind'] == 'unreferenced-image')")"
has "rescue source: names the host file" "the file is $I/vda.qcow2" \
    "$(q rs.json "[f['message'] for f in d[0]['findings'] if f['severity'] == 'error'][0]")"
eq "rescue source: nothing changed" "$before" "$(cd "$R" && find . -type f | sort | xargs sha256sum)"
cp tvm.xml.bak "$R$SNAP_CFG/tvm.xml"
rc_is "rescue source: config restored, healthy" 0 x doctor tvm -q

# ------------------------------------------ a missing backing format, added
x create tvm s1 -q
strip_backing_format "$R$I/vdb.s1"
eq "stripped: no backing format" "None" "$(hdr "$I/vdb.s1" backing-filename-format)"
rc_is "no backing format: exit 2" 2 x doctor tvm --output=json >nofmt.json 2>/dev/null
eq "no backing format: found on vdb.s1" "missing-backing-format $I/vdb.s1" \
    "$(q nofmt.json "' '.join(f['kind'] + ' ' + f['image'] for c in d[0]['chains'] for f in c['findings'] if f['severity']=='error')")"
# The header write fails: the journal undoes the plan (the header is
# written back as it was: same name, no format), nothing is left.
rc_is "no backing format: a failed header write: exit 1" 1 \
    env EXTSNAP_FAULT=write:2:eio "$EXTSNAP" doctor tvm --fix -q --root "$R" 2>/dev/null
eq "no backing format: after the failed write, the header is as it was" "$I/vdb.qcow2 None" \
    "$(hdr "$I/vdb.s1" backing-filename) $(hdr "$I/vdb.s1" backing-filename-format)"
rc_is "no backing format: after the failed write, no journal" 1 test -e "$R$SNAP_DIR/tvm.extsnap.journal"
# A crash after the header write: the journal stays; the next --fix recovers it first.
rc=0
EXTSNAP_FAULT=write:3:stop "$EXTSNAP" doctor tvm --fix -q --root "$R" >/dev/null 2>&1 || rc=$?
eq "no backing format: stopped after the header write" 86 "$rc"
rc_is "no backing format: the stopped repair is pending" 2 x doctor tvm -q >/dev/null 2>&1
rc_is "no backing format: --fix exits 0" 0 x doctor tvm --fix -q
eq "no backing format: qcow2 written" "qcow2" "$(hdr "$I/vdb.s1" backing-filename-format)"
rc_is "no backing format: verify is clean" 0 x verify tvm -q

# ------------- snapshot metadata as evidence: it names the file beneath
# vdb.s1's header names a file that is gone; an identical copy of vdb.qcow2
# ties with it on the headers and on content, but snapshot s1's metadata
# recorded vdb.qcow2 as vdb's image when it made vdb.s1.
cp "$R$I/vdb.qcow2" "$R$I/vdb-copy.qcow2"
qemu-img rebase -u -b "$I/vdb-old.qcow2" -F qcow2 "$R$I/vdb.s1"
rc_is "metadata evidence: exit 2" 2 x doctor tvm --output=json >rec.json 2>/dev/null
rec="[f for c in d[0]['chains'] for f in c['findings'] if f['kind']=='missing-backing'][0]"
eq "metadata evidence: the recorded file is chosen" "$I/vdb.qcow2" \
    "$(q rec.json "[c['filename'] for c in $rec['candidates'] if c['chosen']][0]")"
has "metadata evidence: says why" "snapshot s1 recorded it as disk vdb's image beneath $I/vdb.s1" \
    "$(q rec.json "[c['evidence'] for c in $rec['candidates'] if c['chosen']][0]")"
eq "metadata evidence: the copy scores the cluster size only" "1" \
    "$(q rec.json "[c['score'] for c in $rec['candidates'] if c['filename'].endswith('vdb-copy.qcow2')][0]")"
rc_is "metadata evidence: --fix exits 0" 0 x doctor tvm --fix -q
eq "metadata evidence: header names the recorded file" "$I/vdb.qcow2" "$(hdr "$I/vdb.s1" backing-filename)"
rc_is "metadata evidence: verify is clean" 0 x verify tvm -q
rm "$R$I/vdb-copy.qcow2"

# ----------------- a backing name written from the rescue system: repaired
# qemu-img run in the rescue shell writes the root's mount point into the
# name: it opens there, and names nothing on the host.
qemu-img rebase -u -b "$R$I/vdb.qcow2" -F qcow2 "$R$I/vdb.s1"
# (chain_spec maps each name in the headers under R: the host's view)
rc_is "rescue name: the guest's data does not read in the host's view" 1 \
    qemu-io -r -U -c 'read -P 0xb0 1M 128k' "$(chain_spec "$R" "$I/vdb.s1" qcow2)" >/dev/null 2>&1
rc_is "rescue name: exit 2" 2 x doctor tvm --output=json >rp.json 2>/dev/null
rp="[f for c in d[0]['chains'] for f in c['findings'] if f['severity']=='error'][0]"
eq "rescue name: flagged on vdb.s1" "root-prefixed-backing-name $I/vdb.s1" \
    "$(q rp.json "$rp['kind'] + ' ' + $rp['image']")"
eq "rescue name: plan: the host's name" "$I/vdb.s1 $I/vdb.qcow2 qcow2" \
    "$(q rp.json "' '.join(p[k] for c in d[0]['chains'] for p in c['plan'] for k in ('image','backing-filename','backing-filename-format'))")"
rc_is "rescue name: a failed header write: exit 1" 1 \
    env EXTSNAP_FAULT=write:2:eio "$EXTSNAP" doctor tvm --fix -q --root "$R" 2>/dev/null
eq "rescue name: after the failed write, the header is as it was" "$R$I/vdb.qcow2" "$(hdr "$I/vdb.s1" backing-filename)"
rc_is "rescue name: --fix exits 0" 0 x doctor tvm --fix -q
eq "rescue name: header names the host's file" "$I/vdb.qcow2 qcow2" \
    "$(hdr "$I/vdb.s1" backing-filename) $(hdr "$I/vdb.s1" backing-filename-format)"
rc_is "rescue name: qemu-io reads the guest's data in the host's view" 0 \
    qemu-io -r -U -c 'read -P 0xb0 1M 128k' "$(chain_spec "$R" "$I/vdb.s1" qcow2)" >/dev/null
rc_is "rescue name: no journal left" 1 test -e "$R$SNAP_DIR/tvm.extsnap.journal"
rc_is "rescue name: verify is clean" 0 x verify tvm -q

# ------------------ a missing file the snapshot metadata names: not rebased
mkdir "$R/srv"
mv "$R$I/vdb.qcow2" "$R/srv/vdb.qcow2"
before=$(cd "$R" && find . -type f | sort | xargs sha256sum)
rc_is "named file moved: exit 2" 2 x doctor tvm --search /srv --output=json >named.json 2>/dev/null
nm="[f for c in d[0]['chains'] for f in c['findings'] if f['kind']=='missing-backing'][0]"
eq "named file moved: nothing planned" "None 0" \
    "$(q named.json "str($nm['plan-step']) + ' ' + str(sum(len(c['plan']) for c in d[0]['chains']))")"
has "named file moved: says to move it back" "move /srv/vdb.qcow2 back to $I/vdb.qcow2" \
    "$(q named.json "$nm['repair']")"
rc_is "named file moved: --fix exits 2" 2 x doctor tvm --search /srv --fix >/dev/null 2>&1
eq "named file moved: nothing changed" "$before" "$(cd "$R" && find . -type f | sort | xargs sha256sum)"
mv "$R/srv/vdb.qcow2" "$R$I/vdb.qcow2"

# ------------------------------------------- another domain sharing an image
mkdir -p "$R/var/lib/libvirt/images/other"
qemu-img create -q -f qcow2 -u -b "$I/golden-2024.qcow2" -F qcow2 "$R/var/lib/libvirt/images/other/o.qcow2" 4M
sed -e 's|<name>tvm</name>|<name>other</name>|' -e 's|<uuid>.*</uuid>|<uuid>0b1f7f4e-2f0c-4c43-9a55-3c1d2f6b9a11</uuid>|' \
    -e "s|$I/vda.qcow2|/var/lib/libvirt/images/other/o.qcow2|" -e "/$(printf '%s' "$I" | sed 's|/|\\/|g')\\/vd[bc]/,+0d" \
    "$R$SNAP_CFG/tvm.xml" >"$R$SNAP_CFG/other.xml"
rc_is "shared template: exit 0 (a warning)" 0 x doctor tvm --output=json >shared.json
has "shared template: reported" "shared-image $I/golden-2024.qcow2" \
    "$(q shared.json '" ".join(f["kind"] + " " + f["file"] for f in d[0]["findings"])')"
rc_is "--all: both domains" 0 x doctor --all --output=json >all.json
eq "--all: both domains listed" "other tvm" "$(q all.json '" ".join(sorted(x["domain"] for x in d))')"

# ------------------------------ leftovers of interrupted creates: recovered
rc=0
EXTSNAP_FAULT=mutate:3:stop x create tvm s2 -q >/dev/null 2>&1 || rc=$?
eq "create stopped before its journal: stopped" 86 "$rc"
rc_is "journal being written: a warning, exit 0" 0 x doctor tvm --output=json >tmp.json
has "journal being written: reported" "leftover-journal-tmp" "$(q tmp.json '" ".join(f["kind"] for f in d[0]["findings"])')"
rc_is "journal being written: --fix removes it" 0 x doctor tvm --fix -q
rc_is "journal being written: gone" 1 test -e "$R$SNAP_DIR/.tvm.extsnap.journal.tmp"
rc=0
EXTSNAP_FAULT=mutate:9:stop x create tvm s2 -q >/dev/null 2>&1 || rc=$?
eq "interrupted create: stopped" 86 "$rc"
rc_is "pending journal: exit 2" 2 x doctor tvm --output=json >pend.json 2>/dev/null
has "pending journal: reported" "pending-journal" "$(q pend.json '" ".join(f["kind"] for f in d[0]["findings"])')"
rc_is "pending journal: --fix recovers it, exit 0" 0 x doctor tvm --fix -q
rc_is "pending journal: gone" 1 test -e "$R$SNAP_DIR/tvm.extsnap.journal"
rc_is "pending journal: verify is clean" 0 x verify tvm -q

# ----------- a revert: the reverted-from snapshot's overlays are rightly gone
# (snap/graph/required.h, the rule verify uses): no missing-image; a live
# image that is gone still is one.
rc_is "revert: create r1" 0 x create tvm r1 -q
rc_is "revert: create r2" 0 x create tvm r2 -q
rc_is "revert: to r1" 0 x revert tvm r1 -q
rc_is "after revert: verify clean" 0 x verify tvm -q
rc_is "after revert: doctor exit 0" 0 x doctor tvm --output=json >rev.json
eq "after revert: no missing-image" "" \
    "$(q rev.json '" ".join(f["file"] for f in d[0]["findings"] if f["kind"] == "missing-image")')"
live=$(x disks tvm --output=json | python3 -c 'import json,sys; print([d["source"] for d in json.load(sys.stdin)["disks"] if d["target"] == "vda"][0])')
mv "$R$live" "$T/live.keep"
rc_is "live image gone: doctor exit 2" 2 x doctor tvm --output=json >gone.json
eq "live image gone: missing-image names it" "$live" \
    "$(q gone.json '" ".join(f["file"] for f in d[0]["findings"] if f["kind"] == "missing-image")')"
mv "$T/live.keep" "$R$live"

rc_is "no DOMAIN: usage error" 1 x doctor 2>/dev/null
rc_is "a DOMAIN and --all: usage error" 1 x doctor tvm --all 2>/dev/null
rc_is "a relative --search: usage error" 1 x doctor tvm --search srv 2>/dev/null

finish
