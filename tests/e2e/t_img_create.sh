#!/usr/bin/env bash
# extsnap img create against qemu-img create: byte-identical files for the
# same options, clean `qemu-img check`, the figures `qemu-img info` reports,
# and the refusals (existing files, bad backing, bad options).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img jq cmp sha256sum

X=$EXTSNAP

# Expected info figures for -o options: prints "key=value" lines.
expected_info() {
    local opts=$1 cs=65536 compat=1.1 rb=16 l2=false lazy=false ct=zlib kv
    IFS=, read -ra kvs <<<"$opts"
    for kv in "${kvs[@]}"; do
        case $kv in
        cluster_size=*) cs=${kv#*=} ;;
        compat=*) compat=${kv#*=} ;;
        refcount_bits=*) rb=${kv#*=} ;;
        extended_l2=on) l2=true ;;
        lazy_refcounts=on) lazy=true ;;
        compression_type=*) ct=${kv#*=} ;;
        esac
    done
    case $cs in *K) cs=$((${cs%K} * 1024)) ;; *M) cs=$((${cs%M} * 1048576)) ;; esac
    echo "cluster-size=$cs"
    echo "compat=$compat"
    echo "refcount-bits=$rb"
    echo "compression-type=$ct"
    if [[ $compat == 1.1 ]]; then
        echo "extended-l2=$l2"
        echo "lazy-refcounts=$lazy"
    fi
}

actual_info() {
    qemu-img info --output=json "$1" | jq -r '
        "cluster-size=\(."cluster-size")",
        "compat=\(."format-specific".data.compat)",
        "refcount-bits=\(."format-specific".data."refcount-bits")",
        "compression-type=\(."format-specific".data."compression-type")",
        (if ."format-specific".data.compat == "1.1" then
            "extended-l2=\(."format-specific".data."extended-l2")",
            "lazy-refcounts=\(."format-specific".data."lazy-refcounts")"
         else empty end)'
}

# The image alone, without opening its backing file (which -u may leave
# missing), for qemu-img check.
no_backing() {
    printf 'json:{"driver":"qcow2","backing":null,"file":{"driver":"file","filename":"%s"}}' "$1"
}

# bytes rounded up to 512, the way both tools treat SIZE
to_bytes() {
    local s=$1 n
    case $s in
    *K) n=$((${s%K} << 10)) ;; *M) n=$((${s%M} << 20)) ;; *G) n=$((${s%G} << 30)) ;;
    *T) n=$((${s%T} << 40)) ;; *) n=$s ;;
    esac
    echo $(((n + 511) / 512 * 512))
}

# compare_create LABEL OPTS SIZE [extra args (backing...)]: create with both
# tools in $T/cmp, compare, check, and verify info.
n=0
compare_create() {
    local label=$1 opts=$2 size=$3
    shift 3
    n=$((n + 1))
    local d=$T/cmp$n
    mkdir -p "$d"
    [[ -e $T/base.qcow2 ]] && cp -p "$T"/base.* "$d"/ 2>/dev/null || true
    local q=$d/q.qcow2 x=$d/x.qcow2
    local args=(-f qcow2 ${opts:+-o "$opts"} "$@")
    if ! qemu-img create -q "${args[@]}" "$q" $size >"$d/q.err" 2>&1; then
        fail "$label: qemu-img create failed: $(cat "$d/q.err")"
        return
    fi
    if ! "$X" img create "${args[@]}" "$x" $size 2>"$d/x.err"; then
        fail "$label: extsnap img create ${args[*]} $size failed: $(cat "$d/x.err")"
        return
    fi
    ES_CHECKS=$((ES_CHECKS + 1))
    if ! cmp -s "$q" "$x"; then
        fail "$label: differs from qemu-img: $(cmp "$q" "$x" 2>&1 | head -1) (sizes $(stat -c %s "$q") vs $(stat -c %s "$x"))"
    fi
    local rc=0 out
    out=$(qemu-img check --output=json "$(no_backing "$x")" 2>&1) || rc=$?
    ok_eq "$label: qemu-img check exit" 0 "$rc" || echo "$out" >&2
    ok_eq "$label: leaks/corruptions" "0 0" \
        "$(jq -r '"\(.leaks // 0) \(.corruptions // 0)"' <<<"$out" 2>/dev/null || echo unparsable)"
    ok_eq "$label: info" "$(expected_info "$opts")" "$(actual_info "$x")"
    if [[ -n $size ]]; then
        ok_eq "$label: virtual-size" "$(to_bytes "$size")" \
            "$(qemu-img info --output=json "$x" | jq -r '."virtual-size"')"
    fi
    rm -f "$q" "$x"
}

# --- without backing ---------------------------------------------------
for size in 0 1 511 512 1M 1G 16T; do
    compare_create "default size=$size" "" "$size"
done
for cs in 512 4096 64K 2M; do
    for size in 0 1 1G; do
        compare_create "cs=$cs size=$size" "cluster_size=$cs" "$size"
    done
done
compare_create "2M clusters 16T" "cluster_size=2M" 16T
compare_create "4K clusters 1T (L1 of 1024 clusters)" "cluster_size=4096" 1T
# L1 beyond the first refcount block: more refcount blocks
compare_create "512 B clusters 1G" "cluster_size=512" 1G
compare_create "512 B clusters 4G refcount64" "cluster_size=512,refcount_bits=64" 4G
# ... and beyond the first refcount table cluster: the table is moved
compare_create "512 B clusters 40G (reftable grows)" "cluster_size=512" 40G
compare_create "512 B clusters 17G refcount64 (reftable grows)" "cluster_size=512,refcount_bits=64" 17G
compare_create "512 B clusters 60G refcount1" "cluster_size=512,refcount_bits=1" 60G
compare_create "1K clusters 100G refcount32" "cluster_size=1024,refcount_bits=32" 100G
for rb in 1 2 4 8 16 32 64; do
    compare_create "refcount_bits=$rb" "refcount_bits=$rb" 1G
done
compare_create "extended_l2" "extended_l2=on" 1G
compare_create "extended_l2 16K 16T" "extended_l2=on,cluster_size=16K" 16T
compare_create "extended_l2 2M" "extended_l2=on,cluster_size=2M" 100G
compare_create "lazy refcounts" "lazy_refcounts=on" 1G
compare_create "zstd" "compression_type=zstd" 1G
compare_create "everything" "lazy_refcounts=on,compression_type=zstd,extended_l2=on,refcount_bits=1,cluster_size=32K" 3G
compare_create "compat=0.10" "compat=0.10" 1G
compare_create "compat=0.10 512 B" "compat=0.10,cluster_size=512" 2G
compare_create "compat=0.10 size 0" "compat=0.10" 0

# --- with backing ------------------------------------------------------
qemu-img create -q -f qcow2 "$T/base.qcow2" 1G
qemu-img create -q -f raw "$T/base.raw" 10M
compare_create "backing qcow2 (size from backing)" "" "" -b base.qcow2 -F qcow2
compare_create "backing qcow2 explicit size" "" 2G -b base.qcow2 -F qcow2
compare_create "backing raw" "" "" -b base.raw -F raw
compare_create "backing absolute" "" "" -b "$T/base.qcow2" -F qcow2
compare_create "backing, 512 B clusters (no feature table)" "cluster_size=512" "" -b base.qcow2 -F qcow2
compare_create "backing, 4K clusters" "cluster_size=4096" "" -b base.qcow2 -F qcow2
compare_create "backing, 8K clusters (feature table)" "cluster_size=8192" "" -b base.qcow2 -F qcow2
compare_create "backing, v2" "compat=0.10" "" -b base.qcow2 -F qcow2
compare_create "backing, -u missing file" "" 1M -u -b missing.qcow2 -F qcow2
long=$(printf 'd/%.0s' $(seq 1 400))x.qcow2 # 805 bytes
compare_create "backing, -u long name" "cluster_size=2048" 1M -u -b "$long" -F qcow2
name1023=$(head -c 1023 /dev/zero | tr '\0' n)
compare_create "backing, -u 1023-byte name" "" 1M -u -b "$name1023" -F qcow2

# Relative backing resolves against FILE's directory, not the cwd.
mkdir -p "$T/rel/sub"
qemu-img create -q -f qcow2 "$T/rel/sub/b.qcow2" 5M
ok_rc "relative backing from another cwd" 0 bash -c "cd '$T' && '$X' img create -f qcow2 -b b.qcow2 -F qcow2 rel/sub/o.qcow2"
ok_eq "relative backing: size from backing" 5242880 \
    "$(qemu-img info --output=json "$T/rel/sub/o.qcow2" | jq -r '."virtual-size"')"
ok_eq "relative backing: name as given" "b.qcow2" \
    "$(qemu-img info --output=json "$T/rel/sub/o.qcow2" | jq -r '."backing-filename"')"
ok_eq "relative backing: format" "qcow2" \
    "$(qemu-img info --output=json "$T/rel/sub/o.qcow2" | jq -r '."backing-filename-format"')"
ok_rc "relative backing: check" 0 qemu-img check -q "$T/rel/sub/o.qcow2"

# An existing empty file is used (libvirt pre-creates them).
: >"$T/empty.qcow2"
ok_rc "existing empty file" 0 "$X" img create -f qcow2 "$T/empty.qcow2" 1G
ok_rc "existing empty file: check" 0 qemu-img check -q "$T/empty.qcow2"

# raw
ok_rc "raw create" 0 "$X" img create -f raw "$T/r.img" 1000
ok_eq "raw size rounded to 512" 1024 "$(stat -c %s "$T/r.img")"
ok_eq "raw info" "raw" "$(qemu-img info --output=json "$T/r.img" | jq -r .format)"

# --- refusals ------------------------------------------------------------
cd "$T"
refuse() { # refuse LABEL RC FILE ARGS...: must exit RC and leave FILE as it was
    local label=$1 rc=$2 file=$3 before after
    shift 3
    before=$(sha256sum "$file" 2>/dev/null || echo absent)
    ok_rc "$label" "$rc" "$X" img create "$@" 2>"$T/refuse.err" || cat "$T/refuse.err" >&2
    after=$(sha256sum "$file" 2>/dev/null || echo absent)
    ok_eq "$label: file untouched" "$before" "$after"
    ES_CHECKS=$((ES_CHECKS + 1))
    local lines
    # (a usage error adds its "Try 'extsnap img create --help'." line)
    lines=$(grep -vc "^Try 'extsnap img create --help'.$" "$T/refuse.err")
    if [[ $rc == 1 && $lines != 1 ]]; then
        fail "$label: expected one error line, got $lines: $(cat "$T/refuse.err")"
    fi
}
qemu-img create -q -f qcow2 full.qcow2 1M
refuse "existing non-empty file" 1 full.qcow2 -f qcow2 full.qcow2 1G
refuse "existing non-empty file, raw" 1 full.qcow2 -f raw full.qcow2 1G
refuse "missing backing" 1 new1.qcow2 -f qcow2 -b nope.qcow2 -F qcow2 new1.qcow2
refuse "-F qcow2 on a raw backing" 1 new2.qcow2 -f qcow2 -b base.raw -F qcow2 new2.qcow2
# qemu-img 7.2 accepts -F raw over a qcow2 file (the guest would see qcow2
# metadata as disk content); extsnap refuses it.
refuse "-F raw on a qcow2 backing" 1 new3.qcow2 -f qcow2 -b base.qcow2 -F raw new3.qcow2
qemu-img create -q -f qcow2 gone.qcow2 1M
qemu-img create -q -f qcow2 -b gone.qcow2 -F qcow2 mid.qcow2
rm gone.qcow2
refuse "broken chain below the backing" 1 new10.qcow2 -f qcow2 -b mid.qcow2 -F qcow2 new10.qcow2
: >self.img
refuse "backing is the image itself" 1 self.img -f qcow2 -b self.img -F raw self.img 1M
refuse "-b without -F" 1 new4.qcow2 -f qcow2 -b base.qcow2 new4.qcow2
refuse "-u without size" 1 new5.qcow2 -f qcow2 -u -b base.qcow2 -F qcow2 new5.qcow2
refuse "no size" 1 new6.qcow2 -f qcow2 new6.qcow2
refuse "unknown option" 1 new7.qcow2 --bogus new7.qcow2 1G
refuse "unknown -o key" 1 new8.qcow2 -o foo=bar new8.qcow2 1G
refuse "bad cluster size" 1 new9.qcow2 -o cluster_size=1000 new9.qcow2 1G
refuse "cluster size too big" 1 new9.qcow2 -o cluster_size=4M new9.qcow2 1G
refuse "bad refcount_bits" 1 new9.qcow2 -o refcount_bits=3 new9.qcow2 1G
refuse "refcount_bits 128" 1 new9.qcow2 -o refcount_bits=128 new9.qcow2 1G
refuse "bad compat" 1 new9.qcow2 -o compat=1.0 new9.qcow2 1G
refuse "bad extended_l2" 1 new9.qcow2 -o extended_l2=maybe new9.qcow2 1G
refuse "extended_l2 with 8K clusters" 1 new9.qcow2 -o extended_l2=on,cluster_size=8K new9.qcow2 1G
refuse "v2 with lazy refcounts" 1 new9.qcow2 -o compat=0.10,lazy_refcounts=on new9.qcow2 1G
refuse "v2 with zstd" 1 new9.qcow2 -o compat=0.10,compression_type=zstd new9.qcow2 1G
refuse "v2 with refcount_bits=8" 1 new9.qcow2 -o compat=0.10,refcount_bits=8 new9.qcow2 1G
refuse "bad compression type" 1 new9.qcow2 -o compression_type=lz4 new9.qcow2 1G
refuse "bad size" 1 new9.qcow2 new9.qcow2 12Q
refuse "unknown format" 1 new9.qcow2 -f vmdk new9.qcow2 1G
refuse "too large for 512 B clusters" 1 new9.qcow2 -o cluster_size=512 new9.qcow2 129G
refuse "name too long" 1 new9.qcow2 -u -b "$(head -c 1024 /dev/zero | tr '\0' n)" -F qcow2 new9.qcow2 1G
refuse "name does not fit in 1K cluster" 1 new9.qcow2 -o cluster_size=1024 -u -b "$name1023" -F qcow2 new9.qcow2 1G
: >empty2.qcow2
refuse "failure keeps a pre-existing empty file" 1 empty2.qcow2 -b nope -F qcow2 empty2.qcow2
ok_eq "pre-existing empty file still there" "yes" "$([[ -f empty2.qcow2 ]] && echo yes || echo no)"

# Fault injection: a failed write or flush leaves no file behind, and a
# crash before the header is written leaves nothing that looks like qcow2.
for fault in write:1:eio write:3:enospc flush:1:eio flush:2:eio; do
    rm -f f.qcow2
    ok_rc "fault $fault" 1 env EXTSNAP_FAULT=$fault "$X" img create -f qcow2 f.qcow2 1G 2>/dev/null
    ok_eq "fault $fault: no file left" "absent" "$([[ -e f.qcow2 ]] && echo present || echo absent)"
done
rm -f f.qcow2
ok_rc "stop before the header" 86 env EXTSNAP_FAULT=flush:1:stop "$X" img create -f qcow2 f.qcow2 1G
ok_eq "stopped create has no qcow2 magic" "00000000" "$(head -c 4 f.qcow2 | od -An -tx1 | tr -d ' \n')"
rm -f f.qcow2

# --help names every option
help=$("$X" img create --help)
for opt in -f -b -F -u -o cluster_size compat refcount_bits extended_l2 lazy_refcounts compression_type; do
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -q -- "$opt" <<<"$help" || fail "--help does not mention $opt"
done

finish
