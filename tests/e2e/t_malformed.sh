#!/usr/bin/env bash
# A corpus of malformed images, made at test time by patching fresh qemu-img
# images: every command that must read the broken structure gives ONE clear
# error line on stderr ("extsnap: CMD: ..."), exits 1 (img compare: 2), never
# crashes or hangs, and leaves every file unchanged. Commands that do not read
# the broken part (img info does not read L2 tables) must still work.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img qemu-io xxd sha256sum timeout

cd "$T"
mkdir corpus
cd corpus

# poke FILE OFFSET HEX: overwrite bytes in place.
poke() {
    printf "$(sed 's/../\\x&/g' <<<"$3")" | dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none
}
# peek FILE OFFSET LEN: bytes as one hex number.
peek() {
    echo $((16#$(xxd -s $(($2)) -l "$3" -p "$1" | tr -d '\n')))
}
u64() { printf '%016x' "$1"; }
# Offset of a header extension's data (searched in cluster 0, 8-aligned).
ext_data_off() {
    local hex i
    hex=$(xxd -p -l 65536 "$1" | tr -d '\n')
    for ((i = 144; i < ${#hex}; i += 16)); do # 72 bytes = 144 hex digits
        [[ ${hex:i:8} == "$2" ]] && { echo $((i / 2 + 8)); return; }
    done
    echo "ext_data_off: extension $2 not found in $1" >&2
    exit 1
}
new() { qemu-img create -q -f qcow2 "$@"; }

# A healthy image to build from and to compare against: 64 KiB clusters,
# header 0x0, reftable 0x10000, refblock 0x20000, L1 0x30000, L2 0x40000,
# data from 0x50000.
new good.qcow2 4M
qemu-io -c 'write -P 1 0 128k' good.qcow2 >/dev/null
ok_eq "test setup: L1 entry 0 of good.qcow2" $((0x8000000000040000)) "$(peek good.qcow2 0x30000 8)"

# --- the corpus: name | commands that must fail | commands that must work |
#     pattern the error line must contain --------------------------------
CASES=()
case_add() { CASES+=("$1|$2|$3|$4"); }
ALL="info chain json map maph compare compare2"

cp good.qcow2 trunc-header.qcow2 && truncate -s 50 trunc-header.qcow2
case_add trunc-header "$ALL" "" "truncated qcow2 header"
cp good.qcow2 trunc-header-v3.qcow2 && truncate -s 90 trunc-header-v3.qcow2
case_add trunc-header-v3 "$ALL" "" "truncated qcow2 v3 header"
cp good.qcow2 cluster-bits.qcow2 && poke cluster-bits.qcow2 20 0000001e
case_add cluster-bits "$ALL" "" "cluster size"
cp good.qcow2 refcount-order.qcow2 && poke refcount-order.qcow2 96 00000007
case_add refcount-order "$ALL" "" "refcount order"
cp good.qcow2 l1-past-eof.qcow2 && poke l1-past-eof.qcow2 40 "$(u64 0x100000000)"
case_add l1-past-eof "$ALL" "" "L1 table at 0x100000000 lies beyond end of file"
cp good.qcow2 l1-huge-size.qcow2 && poke l1-huge-size.qcow2 36 10000000
case_add l1-huge-size "$ALL" "" "L1 table too large"
cp good.qcow2 reftable-over-header.qcow2 && poke reftable-over-header.qcow2 48 "$(u64 0)"
case_add reftable-over-header "$ALL" "" "refcount table overlaps the header"
cp good.qcow2 unknown-incompat.qcow2 && poke unknown-incompat.qcow2 72 "$(u64 0x20)"
case_add unknown-incompat "$ALL" "" "incompatible feature bits 0x20"
cp good.qcow2 snapshot-table-past-eof.qcow2
poke snapshot-table-past-eof.qcow2 60 00000001
poke snapshot-table-past-eof.qcow2 64 "$(u64 0x10000000)"
case_add snapshot-table-past-eof "$ALL" "" "snapshot table at 0x10000000 lies beyond end of file"

# L1/L2 entries: only commands that read guest data see them.
cp good.qcow2 l2-unaligned.qcow2 && poke l2-unaligned.qcow2 0x30000 "$(u64 0x8000000000040200)"
case_add l2-unaligned "map maph compare compare2" "info chain" "L2 table offset 0x40200 is not cluster aligned"
cp good.qcow2 l1-reserved.qcow2 && poke l1-reserved.qcow2 0x30000 "$(u64 0x8000000000040100)"
case_add l1-reserved "map maph compare compare2" "info chain" "reserved bits"
cp good.qcow2 l2-past-eof.qcow2 && poke l2-past-eof.qcow2 0x30000 "$(u64 0x8000000100000000)"
case_add l2-past-eof "map maph compare compare2" "info chain" "L2 table at 0x100000000 lies beyond end of file"
cp good.qcow2 data-unaligned.qcow2 && poke data-unaligned.qcow2 0x40008 "$(u64 0x8000000000060200)"
case_add data-unaligned "map maph compare compare2" "info chain" "not cluster aligned"
# Truncated file: cut in the middle of the L2 table; the data clusters it
# names are gone.
cp good.qcow2 cut-mid-l2.qcow2 && truncate -s $((0x40000 + 100)) cut-mid-l2.qcow2
case_add cut-mid-l2 "map maph compare compare2" "info chain" "beyond end of file"
qemu-img convert -c -O qcow2 good.qcow2 compressed.qcow2
ok_eq "test setup: compressed L2 entry" $((0x4000000000050000)) "$(peek compressed.qcow2 0x40000 8)"
cp compressed.qcow2 compressed-past-eof.qcow2
poke compressed-past-eof.qcow2 0x40000 "$(u64 0x4000000010000000)"
case_add compressed-past-eof "map maph compare compare2" "info chain" "compressed cluster lies beyond end of file"
new -o extended_l2=on xl2.qcow2 4M
qemu-io -c 'write -P 1 0 4k' xl2.qcow2 >/dev/null
cp xl2.qcow2 xl2-bad-bitmap.qcow2
poke xl2-bad-bitmap.qcow2 $(($(peek xl2.qcow2 0x30000 8) & 0xfffffffffe00 | 8)) "$(u64 0x0000000300000003)"
case_add xl2-bad-bitmap "map maph compare compare2" "info chain" "subcluster bitmap"

# Backing files.
new -b good.qcow2 -F qcow2 backing-past-cluster0.qcow2
poke backing-past-cluster0.qcow2 8 "$(u64 0xfffc)"
case_add backing-past-cluster0 "$ALL" "" "backing file name at 0xfffc lies outside cluster 0"
new -u -b loop-b.qcow2 -F qcow2 loop-a.qcow2 4M
new -u -b loop-a.qcow2 -F qcow2 loop-b.qcow2 4M
case_add loop-a "chain map maph compare compare2" "info json" "loop"
new -u -b sel0.qcow2 -F qcow2 self.qcow2 4M # qemu-img refuses the name itself
poke self.qcow2 "$(peek self.qcow2 8 8)" "$(printf 'self.qcow2' | xxd -p)"
case_add self "chain map maph compare compare2" "info json" "loop"
new -u -b 'json:{"driver":"qcow2","file":{"driver":"file","filename":"good.qcow2"}}' -F qcow2 \
    protocol-json.qcow2 4M
case_add protocol-json "chain map maph compare compare2" "info json" "protocol"
new -u -b 'nbd://x' -F raw protocol-nbd.qcow2 4M
case_add protocol-nbd "chain map maph compare compare2" "info json" "protocol"
new -u -b 'http://example.invalid/x.qcow2' -F qcow2 protocol-http.qcow2 4M
case_add protocol-http "chain map maph compare compare2" "info json" "uses a protocol"
new -u -b 'ssh://example.invalid/x.qcow2' -F qcow2 protocol-ssh.qcow2 4M
case_add protocol-ssh "chain map maph compare compare2" "info json" "uses a protocol"
# A newline in the name: the error stays one line (the name escaped).
new -u -b $'good\n.qcow2' -F qcow2 backing-newline.qcow2 4M
case_add backing-newline "chain map maph compare compare2" "info json" 'good\n.qcow2'
mkdir backing-dir.d
new -u -b backing-dir.d -F qcow2 backing-dir.qcow2 4M
case_add backing-dir "chain map maph compare compare2" "info json" "Is a directory"
# A FIFO must not be opened for reading (that would block): refused.
mkfifo backing-fifo.p
new -u -b backing-fifo.p -F raw backing-fifo.qcow2 4M
case_add backing-fifo "chain map maph compare compare2" "info json" "backing file backing-fifo.p is a FIFO, not an image file"
new -u -b loop3-b.qcow2 -F qcow2 loop3-a.qcow2 4M
new -u -b loop3-c.qcow2 -F qcow2 loop3-b.qcow2 4M
new -u -b loop3-a.qcow2 -F qcow2 loop3-c.qcow2 4M
case_add loop3-a "chain map maph compare compare2" "info json" "loop"
# The backing format extension (0xe2792aca) naming no format.
new -b good.qcow2 -F qcow2 fmt-garbage.qcow2
poke fmt-garbage.qcow2 "$(ext_data_off fmt-garbage.qcow2 e2792aca)" "$(printf 'qcow9' | xxd -p)"
case_add fmt-garbage "chain map maph compare compare2" "" "qcow9"
new -u -b gone.qcow2 -F qcow2 missing-backing.qcow2 4M
case_add missing-backing "chain map maph compare compare2" "info json" "gone.qcow2"
# A chain deeper than extsnap follows (256): an error, not a hang.
# Copies of one overlay with the (fixed-width) backing name patched.
mkdir deep
new deep/d000.qcow2 1M
new -u -b d000.qcow2 -F qcow2 deep/template 1M
name_off=$(peek deep/template 8 8)
for ((i = 1; i <= 258; i++)); do
    cp deep/template deep/d$(printf %03d $i).qcow2
    poke deep/d$(printf %03d $i).qcow2 "$name_off" "$(printf 'd%03d' $((i - 1)) | xxd -p)"
done
rm deep/template
new -u -b deep/d258.qcow2 -F qcow2 deep-chain.qcow2 1M
case_add deep-chain "chain map maph compare compare2" "info json" "deeper than"

# Internal snapshot table and bitmap directory: read by img info only.
new snap.qcow2 4M
qemu-io -c 'write -P 1 0 64k' snap.qcow2 >/dev/null
qemu-img snapshot -c s1 snap.qcow2
so=$(peek snap.qcow2 64 8)
cp snap.qcow2 snapshot-extra-data.qcow2 && poke snapshot-extra-data.qcow2 $((so + 36)) ffffffff
case_add snapshot-extra-data "info chain json" "map" "extra data"
cp snap.qcow2 snapshot-l1-past-eof.qcow2 && poke snapshot-l1-past-eof.qcow2 "$so" "$(u64 0x100000000)"
case_add snapshot-l1-past-eof "info chain json" "map" "L1 table at 0x100000000"
cp snap.qcow2 snapshot-name-past-eof.qcow2 && poke snapshot-name-past-eof.qcow2 $((so + 14)) ffff
case_add snapshot-name-past-eof "info chain json" "map" "runs past end of file"
cp snap.qcow2 snapshot-count.qcow2 && poke snapshot-count.qcow2 60 0000ffff
case_add snapshot-count "info chain json" "map" "past end of file"
new bitmap.qcow2 4M
qemu-img bitmap --add bitmap.qcow2 bm0
bo=$(ext_data_off bitmap.qcow2 23852875)
cp bitmap.qcow2 bitmap-dir-past-eof.qcow2 && poke bitmap-dir-past-eof.qcow2 $((bo + 16)) "$(u64 0x10000000)"
case_add bitmap-dir-past-eof "info chain json" "map" "bitmap directory at 0x10000000"
cp bitmap.qcow2 bitmap-count.qcow2 && poke bitmap-count.qcow2 "$bo" 00010000
case_add bitmap-count "info chain json" "map" "bitmap count"

# --- run -----------------------------------------------------------------
# cmdline NAME IMAGE: the extsnap arguments for one command key.
cmdline() {
    case $1 in
    info) echo "img info $2" ;;
    chain) echo "img info --backing-chain $2" ;;
    json) echo "img info --output=json $2" ;;
    map) echo "img map --output=json $2" ;;
    maph) echo "img map $2" ;;
    compare) echo "img compare $2 good.qcow2" ;;
    compare2) echo "img compare good.qcow2 $2" ;;
    esac
}

cmdname() {
    case $1 in
    info | chain | json) echo "img info" ;;
    map | maph) echo "img map" ;;
    compare*) echo "img compare" ;;
    esac
}

for entry in "${CASES[@]}"; do
    IFS='|' read -r name failing passing pattern <<<"$entry"
    img=$name.qcow2
    sha256sum $(find . -type f | sort) >"$T/before"
    for key in $failing; do
        want=1
        [[ $key == compare* ]] && want=2
        args=$(cmdline "$key" "$img")
        rc=0
        timeout -k 5 30 "$EXTSNAP" $args >"$T/out" 2>"$T/err" || rc=$?
        ES_CHECKS=$((ES_CHECKS + 1))
        if ((rc == 124 || rc == 137)); then
            fail "$name: extsnap $args hung (killed after 30 s)"
        elif ((rc > 128)); then
            fail "$name: extsnap $args died of signal $((rc - 128)): $(head -c 500 "$T/err")"
        elif ((rc != want)); then
            fail "$name: extsnap $args exited $rc, expected $want: $(head -c 500 "$T/err")"
        elif (($(wc -l <"$T/err") != 1)); then
            fail "$name: extsnap $args printed $(wc -l <"$T/err") lines on stderr, expected one:"$'\n'"$(cat "$T/err")"
        elif ! grep -q "^extsnap: $(cmdname "$key"): " "$T/err"; then
            fail "$name: extsnap $args: error line does not start with 'extsnap: $(cmdname "$key"): ': $(cat "$T/err")"
        elif ! grep -qF -- "$pattern" "$T/err"; then
            fail "$name: extsnap $args: error does not mention '$pattern': $(cat "$T/err")"
        fi
    done
    for key in $passing; do
        args=$(cmdline "$key" "$img")
        rc=0
        timeout -k 5 30 "$EXTSNAP" $args >/dev/null 2>"$T/err" || rc=$?
        ES_CHECKS=$((ES_CHECKS + 1))
        ((rc == 0)) || fail "$name: extsnap $args (does not read the damage) exited $rc: $(head -c 500 "$T/err")"
    done
    sha256sum $(find . -type f | sort) >"$T/after"
    ES_CHECKS=$((ES_CHECKS + 1))
    d=$(diff "$T/before" "$T/after") || fail "$name: files changed:"$'\n'"$d"
done

finish
