#!/usr/bin/env bash
# --root DIR for the image commands (info, map, compare, check, commit,
# rebase): a host's root file system lies under R, as in a rescue shell; the
# images' backing names are the host's paths (/var/lib/libvirt/images/...,
# absolute and relative). Oracle: qemu-img run in a mount namespace where
# R/var/lib is /var/lib, i.e. on the very same files as the host sees them,
# so every name and figure must be equal without any rewriting.
# Writes (commit, check -r, rebase -u) are compared with qemu-img doing the
# same on a copy of the tree (Q, seen the same way in its own namespace).
# Escapes ('..' above R, a symlink out of R) are refused with one error line
# and change nothing (sha256 of every file before/after).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img qemu-io jq unshare mount sha256sum xxd cmp
eq() { ok_eq "$@" || true; }
rc_is() { ok_rc "$@" || true; }
has() {
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $3 == *"$2"* ]] || fail "$1: [$2] not in [$3]"
}

R=$T/root                      # the host's root, as mounted in the rescue shell
D=/var/lib/libvirt/images      # where the host keeps its images
mkdir -p "$R$D" "$T/outside"

# in_host ROOTDIR CMD...: CMD sees ROOTDIR/var/lib as /var/lib (the host's view).
in_host() {
    local root=$1
    shift
    unshare -m sh -c 'mount --bind "$0" /var/lib && cd / && exec "$@"' "$root/var/lib" "$@"
}
H() { in_host "$R" "$@"; }
if ! H true 2>"$T/err"; then
    skip_test "cannot run qemu-img in a mount namespace (unshare -m): $(cat "$T/err")"
fi
# E CMD...: run CMD with its stderr in $T/e.err (for rc_is: its own messages stay visible).
E() { "$@" 2>"$T/e.err"; }
# X CMD [args] IMAGE...: extsnap img CMD under the root (options before operands).
X() { "$EXTSNAP" img "$1" --root="$R" "${@:2}"; }

# Fields qemu-img prints that extsnap does not produce (as in t_img_info.sh).
QEMU_ONLY='del(.. | objects | ."encrypted"?) | del(.. | objects | ."children"?) |
           del(.. | objects | ."backing-image"?)'
# same_json WHAT OURS THEIRS: equal JSON documents (keys sorted).
same_json() {
    local d
    ES_CHECKS=$((ES_CHECKS + 1))
    if ! jq -e . "$2" >/dev/null 2>&1; then
        fail "$1: extsnap printed no valid JSON: $(head -c 300 "$2")"
    elif ! d=$(diff <(jq -S . "$2") <(jq -S "$QEMU_ONLY" "$3")); then
        fail "$1: JSON differs (< extsnap, > qemu-img):"$'\n'"$d"
    fi
}
# one_error WHAT STDERR_FILE NEEDLE: exactly one line on stderr, containing NEEDLE.
one_error() {
    eq "$1: lines on stderr ($(cat "$2"))" 1 "$(wc -l <"$2")"
    has "$1: message" "$3" "$(cat "$2")"
}
# Every file and link of both trees, with contents: nothing may change.
sums() {
    (cd "$T" && find root outside -type f -print0 | LC_ALL=C sort -z |
        xargs -0 sha256sum && find root outside -type l -printf '%p -> %l\n' | LC_ALL=C sort)
}

# --- the chain, made on the host's view --------------------------------------
# base <- mid (absolute host name) <- top (relative name "mid.qcow2"),
# sib: a sibling of top over mid; raw.img: a raw base; current.qcow2: an
# absolute symlink to top (a host link: resolved under R again).
H qemu-img create -q -f qcow2 "$D/base.qcow2" 64M
H qemu-io -c 'write -P 0x11 0 1M' -c 'write -P 0x12 8M 192k' -c 'write -z 20M 64k' \
    -c 'write -c -P 0x13 30M 64k' "$D/base.qcow2" >/dev/null
H qemu-img create -q -f qcow2 -b "$D/base.qcow2" -F qcow2 "$D/mid.qcow2"
H qemu-io -c 'write -P 0x21 512k 1M' -c 'write -z 8M 64k' -c 'write -P 0x22 40M 4k' \
    "$D/mid.qcow2" >/dev/null
H qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$D/top.qcow2"
H qemu-io -c 'write -P 0x31 0 64k' -c 'write -P 0x32 8M 32k' -c 'write -z 40M 4k' \
    -c 'write -P 0x33 60M 128k' "$D/top.qcow2" >/dev/null
H qemu-img create -q -f qcow2 -b "$D/mid.qcow2" -F qcow2 "$D/sib.qcow2"
H qemu-io -c 'write -P 0x41 2M 64k' "$D/sib.qcow2" >/dev/null
H qemu-img create -q -f raw "$D/raw.img" 16M
H qemu-io -f raw -c 'write -P 0x51 0 64k' "$D/raw.img" >/dev/null
H qemu-img create -q -f qcow2 -b "$D/raw.img" -F raw "$D/onraw.qcow2"
H qemu-io -c 'write -P 0x52 1M 64k' "$D/onraw.qcow2" >/dev/null
ln -s "$D/top.qcow2" "$R$D/current.qcow2"
eq "test setup: top names its backing relatively" "mid.qcow2" \
    "$(H qemu-img info --output=json "$D/top.qcow2" | jq -r '."backing-filename"')"

# --- info ---------------------------------------------------------------------
for img in top.qcow2 mid.qcow2 base.qcow2 current.qcow2 onraw.qcow2; do
    for chain in "" --backing-chain; do
        H qemu-img info $chain --output=json "$D/$img" >"$T/q.json"
        if X info $chain --output=json "$D/$img" >"$T/e.json" 2>"$T/e.err"; then
            same_json "info $chain $img" "$T/e.json" "$T/q.json"
        else
            fail "info $chain $img under --root: $(cat "$T/e.err")"
        fi
        ES_CHECKS=$((ES_CHECKS + 1))
        if ! d=$(diff <(X info $chain "$D/$img" 2>&1) <(H qemu-img info $chain "$D/$img" 2>&1)); then
            fail "info $chain $img: human output differs (< extsnap, > qemu-img):"$'\n'"$d"
        fi
    done
done
# A relative IMAGE is taken from the root (the host's /) and shown that way.
X info --backing-chain --output=json "${D#/}/top.qcow2" >"$T/e.json"
H qemu-img info --backing-chain --output=json "$D/top.qcow2" >"$T/q.json"
same_json "info of a relative IMAGE" "$T/e.json" "$T/q.json"
# The rescue shell's path given for the host's: not found, with a hint.
rc_is "info of a rescue-shell path" 1 E X info "$R$D/top.qcow2"
one_error "info of a rescue-shell path" "$T/e.err" "give the host's path: '$D/top.qcow2'"
# Without --root, the host's names are not there: the chain does not open.
rc_is "info --backing-chain without --root" 1 \
    E "$EXTSNAP" img info --backing-chain "$R$D/mid.qcow2"

# --- map ------------------------------------------------------------------------
for img in top.qcow2 current.qcow2 sib.qcow2 onraw.qcow2; do
    H qemu-img map --output=json "$D/$img" >"$T/q.json"
    if X map --output=json "$D/$img" >"$T/e.json" 2>"$T/e.err"; then
        same_json "map $img" "$T/e.json" "$T/q.json"
    else
        fail "map $img under --root: $(cat "$T/e.err")"
    fi
done
ES_CHECKS=$((ES_CHECKS + 1))
# (The human format refuses compressed clusters: base has one at 30M.)
if ! d=$(diff <(X map --max-length=24M "$D/mid.qcow2" 2>&1) \
    <(H qemu-img map --max-length=24M "$D/mid.qcow2" 2>&1)); then
    fail "map (human) mid: differs (< extsnap, > qemu-img):"$'\n'"$d"
fi

# --- compare --------------------------------------------------------------------
H qemu-img convert -O qcow2 "$D/top.qcow2" "$D/flat.qcow2"
# cmp_same WHAT A B: exit status and output equal qemu-img compare's.
cmp_same() {
    local rc_q=0 rc_e=0
    H qemu-img compare "$2" "$3" >"$T/q.out" 2>&1 || rc_q=$?
    X compare "$2" "$3" >"$T/e.out" 2>&1 || rc_e=$?
    eq "compare $1: exit status ($(cat "$T/e.out"))" "$rc_q" "$rc_e"
    eq "compare $1: output" "$(cat "$T/q.out")" "$(cat "$T/e.out")"
}
cmp_same "top vs its flat copy" "$D/top.qcow2" "$D/flat.qcow2"
cmp_same "symlink vs flat copy" "$D/current.qcow2" "$D/flat.qcow2"
cmp_same "top vs sibling" "$D/top.qcow2" "$D/sib.qcow2"
cmp_same "mid vs base" "$D/mid.qcow2" "$D/base.qcow2"
eq "test setup: top and sib differ" 1 "$(H qemu-img compare -q "$D/top.qcow2" "$D/sib.qcow2" || echo $?)"

# --- check ----------------------------------------------------------------------
# A leak: the header cluster's refcount raised to 2 (16-bit refcounts).
H qemu-img create -q -f qcow2 -b "$D/mid.qcow2" -F qcow2 "$D/leak.qcow2"
H qemu-io -c 'write -P 0x61 0 64k' "$D/leak.qcow2" >/dev/null
add_leak() {
    local rt rb
    rt=$((0x$(xxd -p -s 48 -l 8 "$1")))
    rb=$((0x$(xxd -p -s "$rt" -l 8 "$1")))
    printf '\x00\x02' | dd of="$1" bs=1 seek="$rb" conv=notrunc status=none
}
add_leak "$R$D/leak.qcow2"
FIELDS="corruptions leaks check-errors image-end-offset total-clusters allocated-clusters
        fragmented-clusters compressed-clusters corruptions-fixed leaks-fixed filename"
# chk_same WHAT IMAGE [options]: exit status and figures equal qemu-img check's.
chk_same() {
    local what=$1 img=$2 rc_q=0 rc_e=0 k
    shift 2
    H qemu-img check "$@" --output=json "$img" >"$T/q.json" 2>/dev/null || rc_q=$?
    X check "$@" --output=json "$img" >"$T/e.json" 2>"$T/e.err" || rc_e=$?
    eq "check $what: exit status ($(head -c 300 "$T/e.err"))" "$rc_q" "$rc_e"
    for k in $FIELDS; do
        eq "check $what: $k" "$(jq -r --arg k "$k" '.[$k] // 0' "$T/q.json")" \
            "$(jq -r --arg k "$k" '.[$k] // 0' "$T/e.json")"
    done
    eq "check $what: backing-errors" "null" "$(jq -c '."backing-errors"' "$T/e.json")"
}
for img in top.qcow2 mid.qcow2 base.qcow2 current.qcow2 onraw.qcow2 leak.qcow2; do
    chk_same "$img" "$D/$img"
done
rc_is "check of a raw image" 63 E X check -q "$D/raw.img"
# Repair on two copies (Q is the same tree for qemu-img).
cp -a "$R" "$T/q"
rc_is "check -r leaks under --root" 0 E X check -q -r leaks "$D/leak.qcow2"
rc_is "qemu-img check -r leaks (oracle)" 0 in_host "$T/q" qemu-img check -q -r leaks "$D/leak.qcow2"
rc_is "repaired leak.qcow2 is clean" 0 H qemu-img check -q "$D/leak.qcow2"
rc_is "repaired leak.qcow2 equals qemu-img's" 0 cmp "$R$D/leak.qcow2" "$T/q$D/leak.qcow2"
# A missing backing file is a chain problem (exit 2), reported by its host name.
H qemu-img create -q -f qcow2 -u -b "$D/gone.qcow2" -F qcow2 "$D/orphan.qcow2" 16M
rc_is "check: missing backing file" 2 E X check "$D/orphan.qcow2" >"$T/e.out"
has "check: missing backing named as the host does" "'$D/gone.qcow2' of $D/orphan.qcow2 does not exist" \
    "$(cat "$T/e.out")"
rm -f "$R$D/orphan.qcow2"
rm -rf "$T/q"

# --- commit ---------------------------------------------------------------------
# commit_same WHAT [options] TOP: extsnap under R, qemu-img on a copy Q; then
# every image of the chain has the same guest content in both trees (compared
# as flat raw files), both pass qemu-img check, and headers are unchanged.
flat() { in_host "$1" qemu-img convert -O raw "$D/$2" "$3"; }
commit_same() {
    local what=$1 rc_e=0 i
    shift
    rm -rf "$T/q"
    cp -a "$R" "$T/q"
    in_host "$T/q" qemu-img commit -q "$@" || fail "commit $what: qemu-img commit (test setup) failed"
    X commit -q "$@" 2>"$T/e.err" || rc_e=$?
    eq "commit $what: exit status ($(cat "$T/e.err"))" 0 "$rc_e"
    for i in top.qcow2 mid.qcow2 base.qcow2 sib.qcow2; do
        flat "$R" "$i" "$T/e.raw"
        flat "$T/q" "$i" "$T/q.raw"
        rc_is "commit $what: $i reads as after qemu-img commit" 0 qemu-img compare -q -f raw -F raw "$T/e.raw" "$T/q.raw"
        rc_is "commit $what: $i passes qemu-img check" 0 H qemu-img check -q "$D/$i"
        H qemu-img info --output=json "$D/$i" | jq -S '{"backing-filename", "virtual-size"}' >"$T/e.hdr"
        in_host "$T/q" qemu-img info --output=json "$D/$i" | jq -S '{"backing-filename", "virtual-size"}' >"$T/q.hdr"
        eq "commit $what: $i header" "$(cat "$T/q.hdr")" "$(cat "$T/e.hdr")"
    done
    rm -rf "$T/q" "$T/e.raw" "$T/q.raw"
}
cp -a "$R" "$T/pristine"
commit_same "top into mid (relative backing name)" "$D/top.qcow2"
rm -rf "$R" && cp -a "$T/pristine" "$R"
commit_same "-b base (host name)" -b "$D/base.qcow2" "$D/current.qcow2"
rm -rf "$R" && cp -a "$T/pristine" "$R"
commit_same "-b base (relative name)" -b base.qcow2 "$D/top.qcow2"
rm -rf "$R" && cp -a "$T/pristine" "$R"
rc_is "commit -b: not in the chain" 1 E X commit -q -b "$D/sib.qcow2" "$D/top.qcow2"
one_error "commit -b: not in the chain" "$T/e.err" "BASE is not in the backing chain"
rc_is "commit --root with --qmp: usage error" 1 \
    E "$EXTSNAP" img commit --qmp="$T/none.sock" --device=x --root="$R" "$D/top.qcow2"
has "commit --root with --qmp: message" "--root cannot be used with --qmp" "$(cat "$T/e.err")"

# --- rebase -u ------------------------------------------------------------------
cp -a "$R" "$T/q"
X rebase -u -b "$D/base.qcow2" -F qcow2 "$D/sib.qcow2" 2>"$T/e.err" || fail "rebase -u: $(cat "$T/e.err")"
eq "rebase -u: no warning for an existing backing file" "" "$(cat "$T/e.err")"
in_host "$T/q" qemu-img rebase -u -b "$D/base.qcow2" -F qcow2 "$D/sib.qcow2"
rc_is "rebase -u: same file as qemu-img's" 0 cmp "$R$D/sib.qcow2" "$T/q$D/sib.qcow2"
H qemu-img info --backing-chain --output=json "$D/sib.qcow2" >"$T/q.json"
X info --backing-chain --output=json "$D/sib.qcow2" >"$T/e.json"
same_json "info after rebase -u" "$T/e.json" "$T/q.json"
# A name with nothing behind it under R (a rescue-shell path, most likely):
# written as given, with a warning.
X rebase -u -b "$R$D/base.qcow2" -F qcow2 "$D/sib.qcow2" 2>"$T/e.err" || fail "rebase -u (missing): $(cat "$T/e.err")"
one_error "rebase -u: missing backing" "$T/e.err" "warning: the new backing file $R$D/base.qcow2 does not exist under"
eq "rebase -u: name written as given" "$R$D/base.qcow2" \
    "$(H qemu-img info --output=json "$D/sib.qcow2" | jq -r '."backing-filename"')"
X rebase -q -u -b mid.qcow2 -F qcow2 "$D/sib.qcow2" 2>"$T/e.err" || fail "rebase -u (relative): $(cat "$T/e.err")"
in_host "$T/q" qemu-img rebase -u -b mid.qcow2 -F qcow2 "$D/sib.qcow2"
rc_is "rebase -u relative name: same file as qemu-img's" 0 cmp "$R$D/sib.qcow2" "$T/q$D/sib.qcow2"
rc_is "rebase -u relative name: chain opens" 0 H qemu-img check -q "$D/sib.qcow2"
rm -rf "$T/q"

# --- escapes: refused, one error line, nothing changed ------------------------------
# evil1 names a backing file above the root; evil2 names a link that climbs
# out of it to a real image; evil3 one level deeper (behind a good overlay);
# absout is an absolute link to that real image (a host link: taken under R,
# where nothing is there).
qemu-img create -q -f qcow2 "$T/outside/base.qcow2" 64M
H qemu-img create -q -f qcow2 -u -b ../../../../../../../etc/passwd -F raw "$D/evil1.qcow2" 64M
ln -s ../../../../../outside/base.qcow2 "$R$D/escape.qcow2"
eq "test setup: the escaping link reaches a real file" "$T/outside/base.qcow2" "$(readlink -f "$R$D/escape.qcow2")"
H qemu-img create -q -f qcow2 -u -b escape.qcow2 -F qcow2 "$D/evil2.qcow2" 64M
H qemu-img create -q -f qcow2 -b "$D/mid.qcow2" -F qcow2 "$D/evil3.qcow2"
H qemu-io -c 'write -P 0x71 0 64k' "$D/evil3.qcow2" >/dev/null
H qemu-img rebase -u -b "$D/evil2.qcow2" -F qcow2 "$D/evil3.qcow2"
ln -s "$T/outside/base.qcow2" "$R$D/absout.qcow2"
# evil4: leaked clusters a repair would free, over a backing name above the root.
H qemu-img create -q -f qcow2 -b "$D/mid.qcow2" -F qcow2 "$D/evil4.qcow2"
H qemu-io -c 'write -P 0x72 0 64k' "$D/evil4.qcow2" >/dev/null
add_leak "$R$D/evil4.qcow2"
H qemu-img rebase -u -b ../../../../../../../etc/passwd -F raw "$D/evil4.qcow2"
before=$(sums)

# refused WHAT STATUS NEEDLE CMD [args]: exit STATUS, one line naming the escape.
refused() {
    local what=$1 status=$2 needle=$3
    shift 3
    rc_is "$what" "$status" E X "$@" >/dev/null
    one_error "$what" "$T/e.err" "$needle"
}
OUT="leads outside the root directory"
rc_is "test setup: evil4 has leaks" 3 in_host "$R" qemu-img check -q -U \
    "json:{\"driver\": \"qcow2\", \"backing\": null, \"file\": {\"driver\": \"file\", \"filename\": \"$D/evil4.qcow2\"}}"
refused "check -r leaks of leaks over an escape" 1 "$OUT" check -r leaks "$D/evil4.qcow2"
for evil in evil1 evil2 evil3 evil4; do
    refused "info --backing-chain $evil" 1 "$OUT" info --backing-chain "$D/$evil.qcow2"
    refused "map $evil" 1 "$OUT" map --output=json "$D/$evil.qcow2"
    refused "compare $evil (error: 2)" 2 "$OUT" compare "$D/$evil.qcow2" "$D/top.qcow2"
    refused "check $evil" 1 "$OUT" check "$D/$evil.qcow2"
    refused "check -r all $evil" 1 "$OUT" check -r all "$D/$evil.qcow2"
    refused "commit $evil" 1 "$OUT" commit "$D/$evil.qcow2"
done
refused "info of an IMAGE above the root" 1 "$OUT" info ../../../outside/base.qcow2
refused "info of a link out of the root" 1 "$OUT" info "$D/escape.qcow2"
refused "check of a link out of the root" 1 "$OUT" check -r all "$D/escape.qcow2"
refused "rebase -u of a link out of the root" 1 "$OUT" rebase -u -b base.qcow2 -F qcow2 "$D/escape.qcow2"
refused "rebase -u -b above the root" 1 "$OUT" rebase -u -b ../../../../../../etc/passwd -F raw "$D/top.qcow2"
refused "rebase -u -b a link out of the root" 1 "$OUT" rebase -u -b escape.qcow2 -F qcow2 "$D/top.qcow2"
refused "commit -b a link out of the root" 1 "$OUT" commit -b "$D/escape.qcow2" "$D/top.qcow2"
refused "info of an absolute link to a file outside" 1 "cannot open" info "$D/absout.qcow2"
eq "refusals changed nothing" "$before" "$(sums)"
# JSON check: the refusal is the image's result.
rc_is "check --output=json evil2" 1 E X check --output=json "$D/evil2.qcow2" >"$T/e.json"
has "check --output=json evil2: error field" "$OUT" "$(jq -r .error "$T/e.json")"

# --- a missing or wrong root ------------------------------------------------------
for cmd in info map check commit; do
    rc_is "$cmd: missing root" 1 E "$EXTSNAP" img $cmd --root="$T/nope" "$D/top.qcow2"
    one_error "$cmd: missing root" "$T/e.err" "--root $T/nope: No such file or directory"
done
rc_is "compare: missing root (error: 2)" 2 E "$EXTSNAP" img compare --root="$T/nope" "$D/top.qcow2" "$D/flat.qcow2"
one_error "compare: missing root" "$T/e.err" "--root $T/nope: No such file or directory"
rc_is "rebase: missing root" 1 E "$EXTSNAP" img rebase -u -b x -F raw --root="$T/nope" "$D/top.qcow2"
one_error "rebase: missing root" "$T/e.err" "--root $T/nope: No such file or directory"
rc_is "info: root is a file" 1 E "$EXTSNAP" img info --root="$R$D/top.qcow2" "$D/top.qcow2"
one_error "info: root is a file" "$T/e.err" "not a directory"
rc_is "info: empty --root is a usage error" 1 E "$EXTSNAP" img info --root= "$D/top.qcow2"
for cmd in info map compare check commit rebase; do
    has "$cmd --help documents --root" "--root=DIR" "$("$EXTSNAP" img $cmd --help)"
done
eq "nothing changed" "$before" "$(sums)"

finish
