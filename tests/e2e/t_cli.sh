#!/usr/bin/env bash
# The command line as people expect it (#13 part 5), and option tables that
# cannot drift from the parser (#12):
#   - `extsnap img`, `extsnap img --help`, `extsnap help img` list the img
#     commands (the first as a usage error on stderr);
#   - the global options (--root, --config-dir, --snapshot-dir, --run-dir,
#     -q, -v) are accepted before the command too, with the same effect;
#   - an unknown command gets "did you mean" the nearest command name;
#   - --version prints the version and the qcow2/libvirt features;
#   - for every command, every option of its table (`extsnap help --options`,
#     what the parser is built from) appears in its --help and is accepted by
#     the parser under each spelling; an option in no table is refused.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_tool qemu-img qemu-io
cd "$T"
X=$EXTSNAP
eq() { ok_eq "$@" || true; } # report and go on
rc_is() { ok_rc "$@" || true; }
has() { # WHAT NEEDLE HAYSTACK
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $3 == *"$2"* ]] || fail "$1: [$2] not in [$3]"
}
hasnt() {
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $3 != *"$2"* ]] || fail "$1: [$2] in [$3]"
}

mapfile -t IMG_CMDS < <("$X" help | sed -n 's/^  \(img [a-z]*\)  .*/\1/p')
eq "eight img commands in the overview" 8 "${#IMG_CMDS[@]}"

# --- the img group ----------------------------------------------------------
rc=0; out=$("$X" img 2>&1 >/dev/null) || rc=$?
eq "extsnap img: usage error" 1 "$rc"
for c in "${IMG_CMDS[@]}"; do has "extsnap img lists $c" "  $c " "$out"; done
for form in "img --help" "img -h" "help img"; do
    rc=0
    # shellcheck disable=SC2086 # two words
    out=$("$X" $form) || rc=$?
    eq "extsnap $form: exit 0" 0 "$rc"
    for c in "${IMG_CMDS[@]}"; do has "extsnap $form lists $c" "  $c " "$out"; done
    hasnt "extsnap $form lists only img commands" "  verify " "$out"
done

# --- global options before the command ---------------------------------------
R=$T/root
snap_make_tvm "$R"
"$X" create tvm s1 --root "$R" -q || fail "create s1"
after=$("$X" list tvm --root "$R" --output=json)
rc_is "--root before the command" 0 "$X" --root "$R" list tvm --output=json
eq "--root before the command: same output" "$after" "$("$X" --root "$R" list tvm --output=json)"
eq "--root=R before the command" "$after" "$("$X" --root="$R" list --output=json tvm)"
eq "all directories before the command" "$after" \
    "$("$X" --root "$R" --config-dir /etc/libvirt/qemu --snapshot-dir=/var/lib/libvirt/qemu/snapshot \
        --run-dir /run/libvirt/qemu list tvm --output=json)"
eq "-q before the command: nothing printed" "" "$("$X" -q --root "$R" create tvm s2)"
v=$("$X" -v --root "$R" create tvm s3 --dry-run 2>&1) || true
has "-v before the command works" "s3" "$v"
after=$("$X" list tvm --root "$R" --output=json)
eq "-- ends the global options" "$after" "$("$X" --root "$R" -- list tvm --output=json)"
eq "--root before an img command" "$("$X" img info --root "$R" "$SNAP_IMG/vda.qcow2")" \
    "$("$X" --root "$R" img info "$SNAP_IMG/vda.qcow2")"
rc=0; "$X" --root "$R" img create x.qcow2 1M 2>err || rc=$?
eq "a global option the command does not take: its usage error" 1 "$rc"
has "... naming it" "--root" "$(cat err)"
rc_is "a non-global option before the command: usage error" 1 "$X" --dry-run list tvm 2>/dev/null
rc_is "--root without its argument" 1 "$X" --root 2>/dev/null
rc_is "global options and no command" 1 "$X" --root "$R" 2>/dev/null

# --- did you mean -------------------------------------------------------------
sugg() { # TYPO WANT
    local rc=0
    "$X" $1 x 2>err >/dev/null || rc=$?
    eq "'$1': usage error" 1 "$rc"
    has "'$1' suggests $2" "did you mean '$2'?" "$(cat err)"
}
sugg lsit list
sugg verfy verify
sugg delte delete
sugg "img inof" "img info"
sugg "img comit" "img commit"
sugg imgg img
"$X" frobnicate 2>err || true
hasnt "nothing near frobnicate" "did you mean" "$(cat err)"
"$X" help lsit 2>err || true
has "help of a typo suggests" "did you mean 'list'?" "$(cat err)"

# --- --version ------------------------------------------------------------------
v=$("$X" --version) || true
has "--version: the version" "extsnap " "$(head -1 <<<"$v")"
has "--version: qcow2 versions" "versions 2 (compat=0.10) and 3 (compat=1.1)" "$v"
has "--version: compression types" "zlib, zstd" "$v"
has "--version: extended L2" "extended L2 entries" "$v"
has "--version: the refused feature" "refused: external data file" "$v"
has "--version: libvirt" "libvirt:" "$v"
for c in "${IMG_CMDS[@]}"; do has "--version names the qcow2 command ${c#img }" "${c#img }" "$v"; done
# What --version claims, an image with it opens.
qemu-img create -q -f qcow2 -o extended_l2=on,compression_type=zstd,cluster_size=2M f.qcow2 4M
rc_is "an image with the claimed features opens" 0 "$X" img info f.qcow2 >/dev/null

# --- table and parser cannot drift ------------------------------------------------
# `extsnap help --options` lists every command's option table (what the parser
# is built from): each option must show in the command's --help and be
# accepted by the parser under each of its spellings.
mkdir -p "$T/empty"
declare -A HELP
rows=0
while IFS=$'\t' read -r c long letter arg kind vis; do
    rows=$((rows + 1))
    # shellcheck disable=SC2086 # "img info" is two words
    [[ -n ${HELP[$c]:-} ]] || HELP[$c]=$("$X" $c --help)
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $vis == shown ]] || fail "$c: option $long $letter is hidden from --help"
    for o in $long $letter; do
        [[ $o == - ]] && continue
        ES_CHECKS=$((ES_CHECKS + 1))
        if [[ $o == --* ]]; then
            grep -q -- "^  \(-., \)\?$o\([=[ ]\|$\)" <<<"${HELP[$c]}" ||
                fail "$c: $o is in the table but not in --help"
        else
            grep -q -- "^  $o\([, ]\|$\)" <<<"${HELP[$c]}" ||
                fail "$c: $o is in the table but not in --help"
        fi
        args=("$o")
        if [[ $arg != - ]]; then
            case $arg in
                FMT) v=qcow2 ;;
                DIR) v=/ ;;
                N | BYTES | SECONDS) v=1 ;;
                leaks*) v=leaks ;;
                OPTS) v=cluster_size=64k ;;
                *) v=/x ;;
            esac
            [[ $o == --output ]] && v=human
            args+=("$v")
        fi
        # The option alone, no operands: a usage error about the operands
        # (or success), never one about the option itself.
        rc=0
        # shellcheck disable=SC2086
        (cd "$T/empty" && "$X" $c "${args[@]}" </dev/null) >/dev/null 2>err || rc=$?
        ES_CHECKS=$((ES_CHECKS + 1))
        if grep -q "unknown option\|needs an argument\|takes no argument\|invalid -" err; then
            fail "$c: $o (in its table and --help) is refused by the parser: $(cat err)"
        fi
    done
done < <("$X" help --options)
ES_CHECKS=$((ES_CHECKS + 1))
((rows > 100)) || fail "help --options lists only $rows options"
# And the other way: an option in no table is refused by every command.
for c in "${IMG_CMDS[@]}" list create; do
    # shellcheck disable=SC2086
    (cd "$T/empty" && "$X" $c --no-such-option x) >/dev/null 2>err || true
    has "$c refuses an option of no table" "unknown option '--no-such-option'" "$(cat err)"
done

finish
