#!/usr/bin/env bash
# extsnap img info against qemu-img info (the oracle): JSON field by field
# and the human text line by line, for single images and --backing-chain,
# over images made by qemu-img/qemu-io with every feature info reports.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img qemu-io jq

# Fields qemu-img may print that extsnap does not produce (deleted from
# qemu-img's output before comparing). Everything else must match exactly,
# both ways: a field only one side prints is a failure.
QEMU_ONLY_FIELDS='
  del(.. | objects | ."encrypted"?) |
  del(.. | objects | ."children"?) |
  del(.. | objects | ."backing-image"?) |
  del(.. | objects | select(.type? == "qcow2") | .data."data-file"?) |
  del(.. | objects | select(.type? == "qcow2") | .data."data-file-raw"?) |
  del(.. | objects | select(.type? == "qcow2") | .data."encrypt"?)'

# "path = value" lines for every scalar (and empty container) in a JSON document.
flatten() {
    jq -r 'paths(scalars, (arrays, objects | select(length == 0))) as $p
           | "\($p | map(tostring) | join(".")) = \(getpath($p) | tojson)"' | LC_ALL=C sort
}

# compare_json WHAT EXTSNAP_JSON_FILE QEMU_JSON_FILE
compare_json() {
    local what=$1 ours=$2 theirs=$3 d
    ES_CHECKS=$((ES_CHECKS + 1))
    if ! jq -e . "$ours" >/dev/null 2>&1; then
        fail "$what: extsnap printed invalid JSON: $(head -c 300 "$ours")"
        return
    fi
    if ! d=$(diff <(flatten <"$ours") <(jq "$QEMU_ONLY_FIELDS" "$theirs" | flatten)); then
        fail "$what: JSON differs from qemu-img (< extsnap, > qemu-img):"$'\n'"$d"
    fi
}

# check_info WHAT IMAGE [--backing-chain]: JSON and human output vs qemu-img.
check_info() {
    local what=$1 img=$2
    shift 2
    local rc_q=0 rc_e=0
    qemu-img info "$@" --output=json "$img" >"$T/q.json" 2>"$T/q.err" || rc_q=$?
    "$EXTSNAP" img info "$@" --output=json "$img" >"$T/e.json" 2>"$T/e.err" || rc_e=$?
    if [[ $rc_q -ne 0 ]]; then
        fail "$what: qemu-img info $* failed (test setup): $(cat "$T/q.err")"
        return
    fi
    if [[ $rc_e -ne 0 ]]; then
        fail "$what: extsnap img info $* exited $rc_e: $(cat "$T/e.err")"
        return
    fi
    compare_json "$what (json $*)" "$T/e.json" "$T/q.json"
    local d
    ES_CHECKS=$((ES_CHECKS + 1))
    if ! d=$(diff <("$EXTSNAP" img info "$@" "$img" 2>&1) <(qemu-img info "$@" "$img" 2>&1)); then
        fail "$what: human output differs (< extsnap, > qemu-img) $*:"$'\n'"$d"
    fi
}

check_both() {
    check_info "$1" "$2"
    check_info "$1" "$2" --backing-chain
}

cd "$T"

# --- cluster sizes, v2/v3, features ---------------------------------------
for cs in 512 4k 64k 2M; do
    qemu-img create -q -f qcow2 -o cluster_size=$cs cs$cs.qcow2 8M
    qemu-io -c 'write -P 0x11 0 100k' -c 'write -z 1M 64k' -c 'write -P 0x22 3M 4k' cs$cs.qcow2 >/dev/null
    check_both "cluster_size=$cs" cs$cs.qcow2
done
qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 16M
qemu-io -c 'write -P 1 0 64k' v2.qcow2 >/dev/null
check_both "v2 image" v2.qcow2
qemu-img create -q -f qcow2 -o extended_l2=on xl2.qcow2 16M
qemu-io -c 'write -P 1 4k 4k' -c 'write -z 1M 8k' xl2.qcow2 >/dev/null
check_both "extended_l2" xl2.qcow2
qemu-img create -q -f qcow2 -o compression_type=zstd zstd.qcow2 16M
check_both "zstd compression type" zstd.qcow2
for rb in 1 64; do
    qemu-img create -q -f qcow2 -o refcount_bits=$rb rb$rb.qcow2 16M
    qemu-io -c 'write -P 3 0 128k' rb$rb.qcow2 >/dev/null
    check_both "refcount_bits=$rb" rb$rb.qcow2
done
qemu-img create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 16M
check_both "lazy refcounts" lazy.qcow2
qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 16M
(qemu-io -c 'write 0 64k' -c abort dirty.qcow2 >/dev/null 2>&1 || true) 2>/dev/null
ok_eq "dirty image setup: dirty-flag" true "$(qemu-img info --output=json dirty.qcow2 | jq '."dirty-flag"')"
check_both "dirty image (lazy refcounts + abort)" dirty.qcow2

# Corrupt bit (QEMU sets it when it detects bad metadata): shown, not refused.
cp cs64k.qcow2 corrupt.qcow2
printf '\x02' | dd of=corrupt.qcow2 bs=1 seek=79 conv=notrunc status=none
ok_eq "corrupt image setup: corrupt" true \
    "$(qemu-img info --output=json corrupt.qcow2 | jq '."format-specific".data.corrupt')"
check_both "corrupt bit" corrupt.qcow2

# --- internal snapshots, bitmaps, compressed clusters ----------------------
qemu-img create -q -f qcow2 snaps.qcow2 16M
qemu-io -c 'write -P 1 0 64k' snaps.qcow2 >/dev/null
qemu-img snapshot -c first snaps.qcow2
qemu-io -c 'write -P 2 0 64k' snaps.qcow2 >/dev/null
qemu-img snapshot -c 'second snapshot, with a longer name' snaps.qcow2
check_both "internal snapshots" snaps.qcow2
qemu-img snapshot -d first snaps.qcow2
check_both "internal snapshot after deleting another" snaps.qcow2
# A snapshot with VM state and a VM clock (savevm in a machine-less QEMU):
# 64-bit vm-state-size from the extra data, no icount.
need_cmd qemu-system-x86_64 timeout
qemu-img create -q -f qcow2 vmstate.qcow2 16M
printf 'savevm withstate\nquit\n' |
    timeout 60 qemu-system-x86_64 -machine none -m 16 -nodefaults -display none \
        -drive file=vmstate.qcow2,if=none,id=d0 -monitor stdio >/dev/null 2>&1 || true
ok_eq "test setup: savevm wrote VM state" true \
    "$(qemu-img info --output=json vmstate.qcow2 | jq '.snapshots[0]."vm-state-size" > 0')"
check_both "snapshot with VM state" vmstate.qcow2
qemu-img create -q -f qcow2 bitmaps.qcow2 16M
qemu-img bitmap --add bitmaps.qcow2 bm0
qemu-img bitmap --add -g 1M --disable bitmaps.qcow2 second
check_both "persistent bitmaps" bitmaps.qcow2
qemu-img create -q -f qcow2 src.qcow2 4M
qemu-io -c 'write -P 0x41 0 1M' -c 'write -P 0x42 2M 64k' src.qcow2 >/dev/null
qemu-img convert -c -O qcow2 src.qcow2 compressed.qcow2
check_both "compressed clusters" compressed.qcow2
qemu-img convert -c -O qcow2 -o compression_type=zstd src.qcow2 compressed-zstd.qcow2
check_both "zstd compressed clusters" compressed-zstd.qcow2

# --- raw images -------------------------------------------------------------
qemu-img create -q -f raw disk.raw 10M
qemu-io -f raw -c 'write -P 9 1M 64k' disk.raw >/dev/null
check_both "raw image" disk.raw
qemu-img create -q -f qcow2 -b disk.raw -F raw over-raw.qcow2
check_both "qcow2 over raw" over-raw.qcow2
head -c 1000 /dev/urandom >odd.raw # virtual size rounded up to 1024, as QEMU does
check_both "raw image of 1000 bytes" odd.raw

# --- backing chains and names -------------------------------------------
qemu-img create -q -f qcow2 chain-base.qcow2 32M
qemu-img create -q -f qcow2 -b chain-base.qcow2 -F qcow2 chain-mid.qcow2
qemu-img create -q -f qcow2 -b chain-mid.qcow2 -F qcow2 chain-top.qcow2 64M
check_both "3-image chain" chain-top.qcow2
check_both "3-image chain, absolute path" "$T/chain-top.qcow2"
check_both "3-image chain, ./ path" ./chain-top.qcow2

mkdir -p other sub/dir vm
qemu-img create -q -f qcow2 other/base.qcow2 16M
qemu-img create -q -f qcow2 -b ../other/base.qcow2 -F qcow2 vm/top.qcow2
check_both "backing ../other/base.qcow2" vm/top.qcow2
check_both "backing ../other/base.qcow2 (./ path)" ./vm/top.qcow2
check_both "backing ../other/base.qcow2 (absolute path)" "$T/vm/top.qcow2"
(cd vm && check_both "backing ../other/base.qcow2 (from its directory)" top.qcow2)
qemu-img create -q -f qcow2 sub/dir/base 16M
qemu-img create -q -f qcow2 -b sub/dir/base -F qcow2 subtop.qcow2
check_both "backing sub/dir/base" subtop.qcow2
qemu-img create -q -f qcow2 -b "$T/other/base.qcow2" -F qcow2 abs.qcow2
check_both "absolute backing name" abs.qcow2

# A backing name of exactly 1023 bytes (the maximum): a long relative path.
c250=$(printf 'd%.0s' {1..250})
long="$c250/$c250/$c250/$c250/"
rest=$((1023 - ${#long}))
name=$(printf 'b%.0s' $(seq 1 $((rest - 6)))).qcow2
long="$long$name"
ok_eq "test setup: long backing name length" 1023 "${#long}"
mkdir -p "$(dirname "$long")"
qemu-img create -q -f qcow2 "$long" 16M
qemu-img create -q -f qcow2 -b "$long" -F qcow2 longname.qcow2
check_both "1023-byte backing name" longname.qcow2

# Missing backing file: qemu-img info shows the image; --backing-chain fails.
qemu-img create -q -f qcow2 -u -b missing.qcow2 -F qcow2 orphan.qcow2 16M
check_info "missing backing file (single image)" orphan.qcow2
ok_rc "missing backing file with --backing-chain" 1 "$EXTSNAP" img info --backing-chain orphan.qcow2 2>"$T/err"
grep -q '^extsnap: img info: .*missing.qcow2' "$T/err" ||
    fail "missing backing: error does not name missing.qcow2: $(cat "$T/err")"

# Protocol backing names are shown as written (never followed).
qemu-img create -q -f qcow2 -u -b 'nbd://localhost/x' -F raw nbd.qcow2 16M
check_info "protocol backing name (single image)" nbd.qcow2

# --- usage -----------------------------------------------------------------
ok_rc "no image" 1 "$EXTSNAP" img info 2>/dev/null
ok_rc "bad --output" 1 "$EXTSNAP" img info --output=xml cs64k.qcow2 2>/dev/null
ok_rc "unknown option" 1 "$EXTSNAP" img info --bogus cs64k.qcow2 2>/dev/null
ok_rc "nonexistent image" 1 "$EXTSNAP" img info nonexistent.qcow2 2>/dev/null

finish
