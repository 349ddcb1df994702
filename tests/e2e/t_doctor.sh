#!/usr/bin/env bash
# extsnap img doctor (issue 14 part 3): chains built with qemu-img, then
# broken (a backing file moved and renamed, two equal copies of it, decoys
# of another virtual size and one whose chain contains the child, a backing
# format removed from the header, a raw backing without format, a wrong
# format), diagnosed (findings and plan, JSON read by python3), repaired
# with --fix, and checked with qemu-img as oracle: info --backing-chain
# resolves, check is clean, compare against a copy of the chain made before
# it was broken finds the guest's content identical. Refusals change no
# file (sha256 before/after). The same under --root. Content evidence:
# candidates equal on their headers, told apart by the overlay's copied-up
# data (qemu-io partial-cluster writes): the real file chosen; identical
# copies and zero-only evidence refused; the sample's bound in the JSON.
# A backing name written from the rescue shell (the root's path in it):
# flagged, repaired to the host's name.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_tool qemu-img qemu-io python3 sha256sum
X=$EXTSNAP
cd "$T"
eq() { ok_eq "$@" || true; }
rc_is() { ok_rc "$@" || true; }
has() {
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $3 == *"$2"* ]] || fail "$1: [$2] not in [$3]"
}

# q FILE EXPR: evaluate a python expression on the JSON document in FILE (d).
q() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# Remove the backing format extension from a qcow2 header, as images made
# by old qemu-img versions lack it (qemu-img 7.2 no longer writes one
# without it: rebase -u without -F is refused).
strip_backing_format() {
    python3 - "$1" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
h = f.read(4096)
version = struct.unpack(">I", h[4:8])[0]
off = struct.unpack(">I", h[100:104])[0] if version >= 3 else 72
exts, found = [], False
while True:
    t, n = struct.unpack(">II", h[off:off + 8])
    if t == 0:
        break
    data = h[off + 8:off + 8 + n]
    if t == 0xE2792ACA:
        found = True
    else:
        exts.append(struct.pack(">II", t, n) + data + b"\0" * ((-n) % 8))
    off += 8 + n + (-n) % 8
assert found, "no backing format extension"
start = struct.unpack(">I", h[100:104])[0] if version >= 3 else 72
blob = b"".join(exts) + b"\0" * 8
f.seek(start)
f.write(blob)
PY
}

sums() { sha256sum "$@"; }

# mkchain DIR: base <- mid <- top, relative names, guest data in each layer;
# DIR/orig is a copy made before anything is broken (the oracle's).
mkchain() {
    mkdir -p "$1"
    (
        cd "$1"
        qemu-img create -q -f qcow2 base.qcow2 4M
        qemu-io -c 'write -P 0x11 0 1M' -c 'write -P 0x12 3M 64k' base.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
        qemu-io -c 'write -P 0x22 512k 1M' mid.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
        qemu-io -c 'write -P 0x33 2M 256k' top.qcow2 >/dev/null
        mkdir orig
        cp base.qcow2 mid.qcow2 top.qcow2 orig/
    )
}

# oracles DIR TOP: the repaired chain resolves, checks clean and shows the
# guest what the original chain showed.
oracles() {
    local what=$1 top=$2 orig=$3
    rc_is "$what: qemu-img info --backing-chain resolves" 0 \
        qemu-img info --backing-chain "$top" >/dev/null
    rc_is "$what: qemu-img check" 0 qemu-img check -q "$top"
    rc_is "$what: qemu-img compare with the original chain" 0 qemu-img compare -q "$top" "$orig"
}

# ---------------------------------------------------------------- healthy
mkchain ok
rc_is "healthy chain: exit 0" 0 "$X" img doctor --output=json ok/top.qcow2 >ok.json
eq "healthy chain: no error" 0 "$(q ok.json 'd["errors"]')"
eq "healthy chain: only relative-name warnings" "relative-backing-name relative-backing-name" \
    "$(q ok.json '" ".join(f["kind"] for f in d["findings"])')"
eq "healthy chain: empty plan" 0 "$(q ok.json 'len(d["plan"])')"
out=$("$X" img doctor ok/top.qcow2) || true
has "healthy chain: text summary" "0 errors, 2 warnings" "$out"
# Absolute names: nothing at all to report.
qemu-img create -q -f qcow2 abs-base.qcow2 1M
qemu-img create -q -f qcow2 -b "$T/abs-base.qcow2" -F qcow2 abs-top.qcow2
out=$("$X" img doctor abs-top.qcow2) || true
has "absolute chain: healthy" "chain of 2 images is healthy" "$out"

# ------------------------------- moved and renamed, with decoys around it
mkchain mv
mkdir mv/store
mv mv/base.qcow2 mv/store/golden.qcow2
qemu-img create -q -f qcow2 mv/store/bigger.qcow2 8M                        # another size
qemu-img create -q -u -f qcow2 -b ../mid.qcow2 -F qcow2 mv/store/overlay-of-mid.qcow2 4M # contains mid
echo "not an image" >mv/store/notes.txt
before=$(sums mv/*.qcow2 mv/store/*)
rc_is "moved base: exit 2 (problems, not fixed)" 2 \
    "$X" img doctor --search mv/store --output=json mv/top.qcow2 >mv.json 2>mv.err
eq "moved base: no file changed without --fix" "$before" "$(sums mv/*.qcow2 mv/store/*)"
eq "moved base: one error" 1 "$(q mv.json 'd["errors"]')"
miss='[f for f in d["findings"] if f["kind"]=="missing-backing"][0]'
eq "moved base: the missing link is mid's" "mv/mid.qcow2" "$(q mv.json "$miss[\"image\"]")"
eq "moved base: candidates listed" \
    "mv/store/bigger.qcow2 mv/store/golden.qcow2 mv/store/overlay-of-mid.qcow2" \
    "$(q mv.json "' '.join(c['filename'] for c in $miss['candidates'])")"
eq "moved base: golden is chosen" "mv/store/golden.qcow2" \
    "$(q mv.json "[c['filename'] for c in $miss['candidates'] if c['chosen']][0]")"
has "moved base: the bigger decoy is ruled out by its size" "virtual size 8388608" \
    "$(q mv.json "[c['rejected'] for c in $miss['candidates'] if 'bigger' in c['filename']][0]")"
has "moved base: the overlay of mid is ruled out (loop)" "loop" \
    "$(q mv.json "[c['rejected'] for c in $miss['candidates'] if 'overlay' in c['filename']][0]")"
eq "moved base: one plan step" 1 "$(q mv.json 'len(d["plan"])')"
eq "moved base: plan rebases mid to the absolute name of golden" \
    "mv/mid.qcow2 $T/mv/store/golden.qcow2 qcow2" \
    "$(q mv.json '" ".join(d["plan"][0][k] for k in ("image","backing-filename","backing-filename-format"))')"
eq "moved base: the finding points at the step" 0 "$(q mv.json "$miss['plan-step']")"
# Without --search: only mid's directory and the missing name's: nothing found.
rc_is "moved base, default search: exit 2" 2 "$X" img doctor --output=json mv/top.qcow2 \
    >mv-default.json 2>/dev/null
eq "moved base, default search: nothing planned" 0 "$(q mv-default.json 'len(d["plan"])')"
# Repair.
rc_is "moved base: --fix exits 0" 0 "$X" img doctor --search mv/store --fix mv/top.qcow2 >mv-fix.out
has "moved base: --fix reports no error after" "mv/top.qcow2: 0 errors, 1 warning" "$(cat mv-fix.out)"
eq "moved base: header names golden" "$T/mv/store/golden.qcow2" \
    "$(qemu-img info --output=json mv/mid.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["backing-filename"])')"
oracles "moved base" mv/top.qcow2 mv/orig/top.qcow2
rc_is "moved base: doctor after --fix exits 0" 0 "$X" img doctor mv/top.qcow2 >/dev/null

# ------------------------------------------- two equal candidates: refused
mkchain tie
mkdir tie/store
mv tie/base.qcow2 tie/store/copy-a.qcow2
cp tie/store/copy-a.qcow2 tie/store/copy-b.qcow2
before=$(sums tie/*.qcow2 tie/store/*)
rc_is "two equal candidates: exit 2" 2 \
    "$X" img doctor --search tie/store --output=json tie/top.qcow2 >tie.json 2>tie.err
eq "two equal candidates: empty plan" 0 "$(q tie.json 'len(d["plan"])')"
eq "two equal candidates: both listed, none chosen" "2 0" \
    "$(q tie.json "str(len($miss['candidates'])) + ' ' + str(sum(c['chosen'] for c in $miss['candidates']))")"
has "two equal candidates: says it does not choose" "not choosing" "$(q tie.json "$miss['message']")"
has "two equal candidates: a clear line on stderr" "without a safe automatic repair" "$(cat tie.err)"
rc_is "two equal candidates: --fix exits 2" 2 "$X" img doctor --search tie/store --fix tie/top.qcow2 \
    >/dev/null 2>&1
eq "two equal candidates: no file changed by --fix" "$before" "$(sums tie/*.qcow2 tie/store/*)"
# The missing name's own file name is evidence: a third copy named base.qcow2 wins.
mkdir tie/store2
cp tie/store/copy-a.qcow2 tie/store2/base.qcow2
rc_is "equal copies, one with the missing name: exit 2 before the fix" 2 \
    "$X" img doctor --search tie/store --search tie/store2 --output=json tie/top.qcow2 >tie2.json 2>/dev/null
eq "equal copies, one with the missing name: it is chosen" "tie/store2/base.qcow2" \
    "$(q tie2.json "[c['filename'] for c in $miss['candidates'] if c['chosen']][0]")"

# ------------------ equal metadata, different content: the content decides
# base and a decoy of the same size and cluster size, neither with the
# missing name: their headers tie. The overlay got one 4k write in each of
# its 128 clusters, so QEMU copied the other 60k of each cluster up from
# base (copy-on-write): that is the evidence. 128 clusters with data, more
# than the sample's bound (64).
mkcontent() {
    mkdir -p "$1/store"
    (
        cd "$1"
        qemu-img create -q -f qcow2 base.qcow2 8M
        if [[ $2 == data ]]; then
            qemu-io -c 'write -P 0x41 0 4M' -c 'write -P 0x42 4M 4M' base.qcow2 >/dev/null
        fi
        qemu-img create -q -f qcow2 store/decoy.qcow2 8M
        qemu-io -c 'write -P 0x51 0 8M' store/decoy.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
        local args=() i
        for ((i = 0; i < 128; i++)); do args+=(-c "write -P 0x77 $((i * 65536 + 4096)) 4k"); done
        qemu-io "${args[@]}" top.qcow2 >/dev/null
        mkdir orig
        cp base.qcow2 top.qcow2 orig/
        mv base.qcow2 store/real.qcow2
    )
}
mkcontent ct data
cand='{c["filename"].split("/")[-1]: c for c in '"$miss"'["candidates"]}'
rc_is "content evidence: exit 2 before the fix" 2 \
    "$X" img doctor --search ct/store --output=json ct/top.qcow2 >ct.json 2>/dev/null
eq "content evidence: equal header evidence" "1 1" \
    "$(q ct.json "' '.join(str($cand[k]['score']) for k in ('decoy.qcow2', 'real.qcow2'))")"
eq "content evidence: the real backing file is chosen" "ct/store/real.qcow2" \
    "$(q ct.json "[c['filename'] for c in $miss['candidates'] if c['chosen']][0]")"
eq "content evidence: the sample is bounded (128 clusters with data, 64 compared)" "128 64 64 512" \
    "$(q ct.json "' '.join(str($cand['real.qcow2']['content'][k]) for k in ('allocated-clusters', 'max-sampled-clusters', 'sampled-clusters', 'sector-size'))")"
# Each sampled cluster: 128 sectors, 8 written by the guest, 120 copied up.
eq "content evidence: real: the copied-up sectors match" "7680 8192 64" \
    "$(q ct.json "' '.join(str($cand['real.qcow2']['content'][k]) for k in ('matching-sectors', 'compared-sectors', 'matching-clusters'))")"
eq "content evidence: decoy: nothing matches" "0 0" \
    "$(q ct.json "' '.join(str($cand['decoy.qcow2']['content'][k]) for k in ('matching-sectors', 'matching-clusters'))")"
has "content evidence: the text says it" "content: 7680 of 8192 non-zero sectors equal" \
    "$("$X" img doctor --search ct/store ct/top.qcow2 2>/dev/null || true)"
rc_is "content evidence: --fix exits 0" 0 "$X" img doctor --search ct/store --fix ct/top.qcow2 >/dev/null
eq "content evidence: header names the real file" "$T/ct/store/real.qcow2" \
    "$(qemu-img info --output=json ct/top.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["backing-filename"])')"
oracles "content evidence" ct/top.qcow2 ct/orig/top.qcow2
# Two identical copies of the real file: the content ties too: refused.
mkcontent cp data
cp cp/store/real.qcow2 cp/store/real-copy.qcow2
rm cp/store/decoy.qcow2
before=$(sums cp/*.qcow2 cp/store/*)
rc_is "identical copies: exit 2" 2 "$X" img doctor --search cp/store --fix --output=json cp/top.qcow2 \
    >cp.json 2>/dev/null
eq "identical copies: both measured alike, none chosen, nothing planned" "7680 7680 0 0" \
    "$(q cp.json "' '.join(str(x) for x in ([c['content']['matching-sectors'] for c in $miss['candidates']] + [sum(c['chosen'] for c in $miss['candidates']), len(d['plan'])]))")"
has "identical copies: says the content does not tell them apart" "content does not clearly tell them apart" \
    "$(q cp.json "$miss['message']")"
eq "identical copies: no file changed" "$before" "$(sums cp/*.qcow2 cp/store/*)"
# An empty base: what was copied up is zeroes, no evidence; the decoy's
# data matches nothing. Refused, though only the decoy disagrees.
mkcontent zero empty
before=$(sums zero/*.qcow2 zero/store/*)
rc_is "zero-only evidence: exit 2" 2 "$X" img doctor --search zero/store --fix --output=json zero/top.qcow2 \
    >zero.json 2>/dev/null
eq "zero-only evidence: no match either side, none chosen" "0 0 0" \
    "$(q zero.json "' '.join(str(x) for x in ([c['content']['matching-sectors'] for c in $miss['candidates']] + [sum(c['chosen'] for c in $miss['candidates'])]))")"
eq "zero-only evidence: no file changed" "$before" "$(sums zero/*.qcow2 zero/store/*)"
# No tie, no content read: the field is null.
eq "no tie: no content evidence" "None" "$(q mv.json "[c['content'] for c in $miss['candidates'] if c['chosen']][0]")"

# ---------------------------------------- a missing backing format: added
mkchain nofmt
strip_backing_format nofmt/top.qcow2
eq "stripped: qemu-img sees no backing format" "None" \
    "$(qemu-img info --output=json nofmt/top.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin).get("backing-filename-format"))')"
rc_is "no backing format: exit 2" 2 "$X" img doctor --output=json nofmt/top.qcow2 >nofmt.json 2>/dev/null
nf='[f for f in d["findings"] if f["kind"]=="missing-backing-format"][0]'
eq "no backing format: found on top" "nofmt/top.qcow2" "$(q nofmt.json "$nf['image']")"
eq "no backing format: plan keeps the name, adds qcow2" "nofmt/top.qcow2 mid.qcow2 qcow2 None" \
    "$(q nofmt.json '" ".join(str(d["plan"][0][k]) for k in ("image","backing-filename","backing-filename-format","old-backing-filename-format"))')"
rc_is "no backing format: --fix exits 0" 0 "$X" img doctor --fix nofmt/top.qcow2 >/dev/null
eq "no backing format: qemu-img sees qcow2" "qcow2" \
    "$(qemu-img info --output=json nofmt/top.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin).get("backing-filename-format"))')"
oracles "no backing format" nofmt/top.qcow2 nofmt/orig/top.qcow2

# ------------------- missing file and missing format: only qcow2 candidates
mkchain both
strip_backing_format both/mid.qcow2
mkdir both/store
mv both/base.qcow2 both/store/base.qcow2
head -c 4M /dev/zero >both/store/same-size.raw # any file opens as raw: no evidence
rc_is "missing file and format: exit 2" 2 \
    "$X" img doctor --search both/store --output=json both/top.qcow2 >both.json 2>/dev/null
eq "missing file and format: the raw file is not a candidate" "both/store/base.qcow2" \
    "$(q both.json "' '.join(c['filename'] for c in $miss['candidates'])")"
eq "missing file and format: plan names the file and qcow2" "$T/both/store/base.qcow2 qcow2" \
    "$(q both.json '" ".join(d["plan"][0][k] for k in ("backing-filename","backing-filename-format"))')"
rc_is "missing file and format: --fix exits 0" 0 "$X" img doctor --search both/store --fix both/top.qcow2 >/dev/null
oracles "missing file and format" both/top.qcow2 both/orig/top.qcow2

# ------------------------------- a raw backing without format: not guessed
mkdir raw
qemu-img create -q -f raw raw/base.raw 4M
qemu-io -f raw -c 'write -P 0x44 0 64k' raw/base.raw >/dev/null
qemu-img create -q -f qcow2 -b base.raw -F raw raw/top.qcow2
strip_backing_format raw/top.qcow2
before=$(sums raw/*)
rc_is "raw backing without format: exit 2" 2 "$X" img doctor --output=json raw/top.qcow2 >raw.json 2>raw.err
eq "raw backing without format: finding, nothing planned" "missing-backing-format None 0" \
    "$(q raw.json "' '.join(str(x) for x in ($nf['kind'], $nf['plan-step'], len(d['plan'])))")"
has "raw backing without format: says it does not guess" "not guessing" "$(q raw.json "$nf['message']")"
rc_is "raw backing without format: --fix exits 2" 2 "$X" img doctor --fix raw/top.qcow2 >/dev/null 2>&1
eq "raw backing without format: no file changed" "$before" "$(sums raw/*)"
# A raw backing named raw that moved: raw files of the child's size are candidates then.
mkdir raw/store
qemu-img create -q -f qcow2 -b base.raw -F raw raw/top2.qcow2
mv raw/base.raw raw/store/base.raw
rc_is "moved raw backing named raw: exit 2" 2 \
    "$X" img doctor --search raw/store --output=json raw/top2.qcow2 >raw2.json 2>/dev/null
eq "moved raw backing named raw: planned as raw" "$T/raw/store/base.raw raw" \
    "$(q raw2.json '" ".join(d["plan"][0][k] for k in ("backing-filename","backing-filename-format"))')"

# ------------------------------------------ a wrong format: reported, kept
mkdir wrong
qemu-img create -q -f qcow2 wrong/base.qcow2 1M
qemu-img create -q -f qcow2 -b base.qcow2 -F raw wrong/top.qcow2 1M
before=$(sums wrong/*)
rc_is "wrong backing format: exit 2" 2 "$X" img doctor --fix --output=json wrong/top.qcow2 >wrong.json 2>/dev/null
eq "wrong backing format: kind, nothing planned" "wrong-backing-format 0" \
    "$(q wrong.json "d['findings'][-1]['kind'] + ' ' + str(len(d['plan']))")"
eq "wrong backing format: no file changed" "$before" "$(sums wrong/*)"

# ------------------------------------------------------------------ --root
R=$T/root
D=/var/lib/libvirt/images
mkdir -p "$R$D/old"
qemu-img create -q -f qcow2 "$R$D/base.qcow2" 2M
qemu-io -c 'write -P 0x55 0 128k' "$R$D/base.qcow2" >/dev/null
cp "$R$D/base.qcow2" "$T/root-orig-base.qcow2"
# The host's absolute name, which only resolves under the root.
qemu-img create -q -f qcow2 -b "$R$D/base.qcow2" -F qcow2 "$R$D/vm.qcow2"
qemu-io -c 'write -P 0x66 64k 64k' "$R$D/vm.qcow2" >/dev/null
qemu-img rebase -u -b "$D/base.qcow2" -F qcow2 "$R$D/vm.qcow2"
mkdir "$R/orig"
cp "$R$D/base.qcow2" "$R$D/vm.qcow2" "$R/orig/"
qemu-img rebase -u -b /orig/base.qcow2 -F qcow2 "$R/orig/vm.qcow2"
mv "$R$D/base.qcow2" "$R$D/old/base.qcow2"
rc_is "--root: exit 2" 2 "$X" img doctor --root "$R" --search "$D/old" --output=json "$D/vm.qcow2" \
    >root.json 2>/dev/null
eq "--root: plan with the host's names" "$D/vm.qcow2 $D/old/base.qcow2 qcow2" \
    "$(q root.json '" ".join(d["plan"][0][k] for k in ("image","backing-filename","backing-filename-format"))')"
rc_is "--root: --fix exits 0" 0 "$X" img doctor --root "$R" --search "$D/old" --fix "$D/vm.qcow2" >/dev/null
rc_is "--root: the chain opens under the root" 0 "$X" img info --root "$R" --backing-chain "$D/vm.qcow2" >/dev/null
rc_is "--root: guest content kept" 0 "$X" img compare --root "$R" "$D/vm.qcow2" /orig/vm.qcow2 >/dev/null
rc_is "--root: base unchanged" 0 cmp -s "$R$D/old/base.qcow2" "$T/root-orig-base.qcow2"

# A backing name written from the rescue shell (qemu-img run there names
# the file with the root's mount point in it): it opens in the rescue
# system, on the host it names nothing. Flagged, repaired to the host name.
qemu-img create -q -f qcow2 -b "$R$D/old/base.qcow2" -F qcow2 "$R$D/rescue.qcow2"
qemu-io -c 'write -P 0x67 96k 8k' "$R$D/rescue.qcow2" >/dev/null
cp "$R$D/rescue.qcow2" "$R/orig/rescue.qcow2"
qemu-img rebase -u -b /orig/base.qcow2 -F qcow2 "$R/orig/rescue.qcow2"
qemu-img create -q -f qcow2 -b "$R$D/old/base.qcow2" -F qcow2 "$R$D/rescue-nofmt.qcow2"
strip_backing_format "$R$D/rescue-nofmt.qcow2"
rc_is "--root, rescue name: qemu-img opens it in the rescue system" 0 \
    qemu-img info --backing-chain "$R$D/rescue.qcow2" >/dev/null
rc_is "--root, rescue name: the host's view does not" 1 \
    "$X" img info --root "$R" --backing-chain "$D/rescue.qcow2" >/dev/null 2>&1
before=$(sums "$R$D"/*.qcow2 "$R$D"/old/*)
rc_is "--root, rescue name: exit 2" 2 "$X" img doctor --root "$R" --output=json "$D/rescue.qcow2" \
    >rescue.json 2>/dev/null
eq "--root, rescue name: no file changed without --fix" "$before" "$(sums "$R$D"/*.qcow2 "$R$D"/old/*)"
eq "--root, rescue name: flagged as an error" "error root-prefixed-backing-name" \
    "$(q rescue.json "' '.join((d['findings'][0]['severity'], d['findings'][0]['kind']))")"
has "--root, rescue name: the message names the host file" "the file is $D/old/base.qcow2" \
    "$(q rescue.json "d['findings'][0]['message']")"
eq "--root, rescue name: plan: the host's name, format kept" "$D/rescue.qcow2 $D/old/base.qcow2 qcow2" \
    "$(q rescue.json '" ".join(d["plan"][0][k] for k in ("image","backing-filename","backing-filename-format"))')"
eq "--root, rescue name: the rest of the chain is walked" "2 1" \
    "$(q rescue.json "str(len(d['findings']) + 1) + ' ' + str(d['errors'])")"
rc_is "--root, rescue name: --fix exits 0" 0 "$X" img doctor --root "$R" --fix "$D/rescue.qcow2" >/dev/null
eq "--root, rescue name: qemu-img reads the host's name in the header" "$D/old/base.qcow2 qcow2" \
    "$(qemu-img info --output=json "$R$D/rescue.qcow2" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["backing-filename"], j["backing-filename-format"])')"
rc_is "--root, rescue name: the chain opens in the host's view" 0 \
    "$X" img info --root "$R" --backing-chain "$D/rescue.qcow2" >/dev/null
# (check opens the backing file, which is the host's name now: not here)
rc_is "--root, rescue name: qemu-img check of the image alone" 0 \
    qemu-img check -q "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$R$D/rescue.qcow2\"},\"backing\":null}"
rc_is "--root, rescue name: guest content kept" 0 \
    "$X" img compare --root "$R" "$D/rescue.qcow2" /orig/rescue.qcow2 >/dev/null
# The same without a backing format: qcow2 added in the same rewrite.
rc_is "--root, rescue name, no format: exit 2" 2 "$X" img doctor --root "$R" --output=json \
    "$D/rescue-nofmt.qcow2" >rescue2.json 2>/dev/null
eq "--root, rescue name, no format: one finding, one step adding qcow2" "root-prefixed-backing-name 1 $D/old/base.qcow2 qcow2" \
    "$(q rescue2.json "' '.join([f['kind'] for f in d['findings']] + [str(len(d['plan'])), d['plan'][0]['backing-filename'], d['plan'][0]['backing-filename-format']])")"
rc_is "--root, rescue name, no format: --fix exits 0" 0 "$X" img doctor --root "$R" --fix "$D/rescue-nofmt.qcow2" >/dev/null
eq "--root, rescue name, no format: header repaired" "$D/old/base.qcow2 qcow2" \
    "$(qemu-img info --output=json "$R$D/rescue-nofmt.qcow2" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["backing-filename"], j.get("backing-filename-format"))')"

# ------------------------------------------------------------ usage, errors
rc_is "no IMAGE: usage error" 1 "$X" img doctor 2>/dev/null
rc_is "empty --search: usage error" 1 "$X" img doctor --search "" ok/top.qcow2 2>/dev/null
rc_is "an IMAGE that does not exist: exit 1" 1 "$X" img doctor nowhere.qcow2 2>/dev/null

finish
