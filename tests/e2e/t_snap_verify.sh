#!/usr/bin/env bash
# extsnap verify: a clean domain exits 0; each defect, made on a fresh copy
# of the domain, is found with its code and file (exit 2), and the JSON
# output parses. Defects: a missing image, a broken backing link (missing
# backing file, a protocol name), an overlay on the wrong backing file, a
# corrupt image and a leak (refcounts patched; qemu-img check is the oracle
# that they are a corruption and a leak), two current snapshots, a metadata
# file libvirt would reject, a leftover journal (a stopped delete), a config
# off the current snapshot, an unreferenced image in the directory (a
# warning: exit 0, 2 with --strict). Exit 1 when a domain cannot be checked.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap_ops.sh"
need_cmd qemu-img qemu-io xmllint jq xxd

B=$T/base
R=$B
snap_make_tvm "$B"
x create tvm s1 -q
guest_write "$B" tvm vda 0x11 0 64k
guest_write "$B" tvm vdc 0x12 64k 64k
x create tvm s2 -q
guest_write "$B" tvm vda 0x21 128k 64k

check_eq "no domain lock file left behind by create" "" \
    "$(ls "$B$SNAP_DIR" | grep extsnap.lock || true)"

fresh() { rm -rf "$T/w"; cp -a "$B" "$T/w"; R=$T/w; IMG=$R$SNAP_IMG; }

# verify_json: run verify --output=json; sets RC and J (the first domain's object).
verify_json() {
    RC=0
    local out
    out=$(x verify tvm --output=json "$@" 2>"$T/err") || RC=$?
    if ! J=$(jq -ce '.[0]' <<<"$out" 2>/dev/null); then
        fail "verify --output=json did not print a JSON array: $out"
        J='{}'
    fi
}

# expect WHAT RC CODE FILE: exit status, and a problem CODE about FILE.
expect() {
    local what=$1 rc=$2 code=$3 file=$4
    check_eq "$what: exit status" "$rc" "$RC"
    local hit
    hit=$(jq -r --arg c "$code" --arg f "$file" \
        '[.problems[] | select(.code==$c and .file==$f)] | length' <<<"$J")
    ((hit >= 1)) || fail "$what: no $code problem for $file in $J"
}

# be64 FILE OFFSET: a big-endian 64-bit header field.
be64() { echo $((16#$(xxd -p -s "$2" -l 8 "$1"))); }
# set_refcount FILE CLUSTER VALUE: patch a 16-bit refcount entry.
set_refcount() {
    local f=$1 idx=$2 val=$3 rt rb
    rt=$(be64 "$f" 48)
    rb=$(be64 "$f" "$rt")
    printf "$(printf '\\x%02x\\x%02x' $((val >> 8)) $((val & 255)))" |
        dd of="$f" bs=1 seek=$((rb + 2 * idx)) conv=notrunc status=none
}
qcheck_rc() {
    local rc=0
    qemu-img check -U -q "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$1\"},\"backing\":null}" \
        >/dev/null 2>&1 || rc=$?
    echo $rc
}

# --- clean ------------------------------------------------------------------
fresh
verify_json
check_eq "clean: exit status" 0 "$RC"
check_eq "clean: result, no problems, counts" "clean 0 2" \
    "$(jq -r '"\(.result) \(.problems|length) \(.snapshots)"' <<<"$J")"
((  $(jq -r '."images-checked"' <<<"$J") >= 7 )) || fail "clean: too few images checked: $J"
check_eq "clean: human output" "tvm: clean (2 snapshots, $(jq -r '."images-checked"' <<<"$J") images checked)" \
    "$(x verify tvm)"

# --- missing image ------------------------------------------------------------
fresh
rm "$IMG/vdb.s1"
verify_json
expect "missing vdb.s1 (s2's frozen image)" 2 missing-image "$SNAP_IMG/vdb.s1"
check_eq "missing: severity error" error \
    "$(jq -r '.problems[] | select(.code=="missing-image") | .severity' <<<"$J" | head -1)"

# --- broken backing links ------------------------------------------------------
fresh
qemu-img rebase -u -f qcow2 -F qcow2 -b "$SNAP_IMG/gone.qcow2" "$IMG/vda.s2"
verify_json
expect "vda.s2 backed by a missing file" 2 missing-image "$SNAP_IMG/gone.qcow2"
expect "vda.s2 backed by the wrong file" 2 wrong-backing "$SNAP_IMG/vda.s2"
fresh
qemu-img rebase -u -f qcow2 -F raw -b "nbd://localhost:1" "$IMG/vdb.s2"
verify_json
expect "vdb.s2 backed by a protocol" 2 broken-chain "$SNAP_IMG/vdb.s2"
fresh
qemu-img rebase -u -f qcow2 -F qcow2 -b "$SNAP_IMG/vda.qcow2" "$IMG/vda.s2"
verify_json
expect "vda.s2 backed by vda.qcow2 (skips s1's overlay)" 2 wrong-backing "$SNAP_IMG/vda.s2"

# --- corrupt image, leak (qemu-img check as the oracle) --------------------------
fresh
l1=$(be64 "$IMG/vda.s1" 40)
set_refcount "$IMG/vda.s1" $((l1 / 65536)) 0
check_eq "corrupt: qemu-img check sees a corruption" 2 "$(qcheck_rc "$IMG/vda.s1")"
verify_json
expect "corrupt vda.s1" 2 corrupt-image "$SNAP_IMG/vda.s1"
fresh
size=$(stat -c %s "$IMG/vdb.s2")
free_cluster=$(((size + 65535) / 65536))
truncate -s $(((free_cluster + 2) * 65536)) "$IMG/vdb.s2"   # a cluster nothing points at
set_refcount "$IMG/vdb.s2" "$free_cluster" 1
check_eq "leak: qemu-img check sees a leak" 3 "$(qcheck_rc "$IMG/vdb.s2")"
verify_json
expect "leak in vdb.s2 (a warning)" 0 leaked-clusters "$SNAP_IMG/vdb.s2"
verify_json --strict
expect "leak in vdb.s2 with --strict" 2 leaked-clusters "$SNAP_IMG/vdb.s2"

# --- metadata ---------------------------------------------------------------
fresh
sed -i 's|<active>0</active>|<active>1</active>|' "$R$SNAP_DIR/tvm/s1.xml"
verify_json
expect "two current snapshots" 2 multiple-current "$SNAP_DIR/tvm"
fresh
echo '<domainsnapshot><state>shutoff</state></domainsnapshot>' >"$R$SNAP_DIR/tvm/junk.xml"
verify_json
expect "a metadata file libvirt rejects" 2 bad-metadata "$SNAP_DIR/tvm/junk.xml"
fresh
sed -i "s|$SNAP_IMG/vda.s2|$SNAP_IMG/vda.s1|" "$R$SNAP_CFG/tvm.xml"
verify_json
expect "config on s1's (frozen) overlay" 2 config-off-current "$SNAP_IMG/vda.s1"
fresh
# The marker on s1, an ancestor: the config (on s2's overlay) is above s1's
# overlay, but that overlay is s2's frozen image.
sed -i 's|<active>1</active>|<active>0</active>|' "$R$SNAP_DIR/tvm/s2.xml"
sed -i 's|<active>0</active>|<active>1</active>|' "$R$SNAP_DIR/tvm/s1.xml"
verify_json
expect "the marker on the ancestor s1" 2 current-misplaced "$SNAP_IMG/vda.s2"

# --- leftover journal -------------------------------------------------------------
# Stop at the first change after the journal is in place (found by a traced
# run on a copy, so the test does not depend on how many changes come first).
fresh
EXTSNAP_FAULT_TRACE=$T/trace x delete tvm s2 -q
n=$(awk '$1 == "mutate" && $3 == "rename" && $4 ~ /tvm\.extsnap\.journal$/ { print $2 + 1; exit }' "$T/trace")
check_eq "journal: the traced delete renamed its journal into place" yes "${n:+yes}"
fresh
rc=0
EXTSNAP_FAULT=mutate:${n:-1}:stop x delete tvm s2 -q 2>/dev/null || rc=$?
check_eq "journal: delete stopped by the fault" 86 "$rc"
verify_json
expect "leftover journal" 2 pending-journal "$R$SNAP_DIR/tvm.extsnap.journal"
x recover tvm -q
verify_json
check_eq "journal: clean after recover" 0 "$RC"

# --- unreferenced image ---------------------------------------------------------
fresh
qemu-img create -q -f qcow2 "$IMG/stray.qcow2" 1M
verify_json
expect "unreferenced image (a warning)" 0 unreferenced-image "$SNAP_IMG/stray.qcow2"
check_eq "unreferenced: severity" warning \
    "$(jq -r '.problems[] | select(.code=="unreferenced-image") | .severity' <<<"$J")"
check_eq "unreferenced: still there" yes "$([[ -e $IMG/stray.qcow2 ]] && echo yes)"
verify_json --strict
expect "unreferenced image with --strict" 2 unreferenced-image "$SNAP_IMG/stray.qcow2"

# --- cannot check; --all -----------------------------------------------------------
fresh
check_rc "unknown domain: exit 1" 1 x verify nope -q 2>/dev/null
out=$(x verify nope --output=json 2>/dev/null) || true
check_eq "unknown domain: JSON result" failed "$(jq -r '.[0].result' <<<"$out")"
check_rc "usage: neither DOMAIN nor --all" 1 x verify 2>/dev/null
cp "$R$SNAP_CFG/tvm.xml" "$R$SNAP_CFG/broken.xml"
sed -i 's|<name>tvm</name>|<name>broken</name>|; s|<domain |<domain bogus |' "$R$SNAP_CFG/broken.xml"
echo '<domain' >>"$R$SNAP_CFG/broken.xml"
rc=0
out=$(x verify --all --output=json 2>/dev/null) || rc=$?
check_eq "--all with a config that does not parse: exit 1" 1 "$rc"
check_eq "--all: both domains, in name order" "broken:failed tvm:clean" \
    "$(jq -r '[.[] | "\(.domain):\(.result)"] | join(" ")' <<<"$out")"
rm "$R$SNAP_CFG/broken.xml"
check_rc "--all: clean" 0 x verify --all -q

finish
