#!/usr/bin/env bash
# The command line as people expect it (#13 part 5), and option tables that
# cannot drift from the parser (#12):
#   - `extsnap img`, `extsnap img --help`, `extsnap help img` list the img
#     commands (the first as a usage error on stderr);
#   - the global options (--root, --config-dir, --snapshot-dir, --run-dir,
#     -q, -v) are accepted before the command too, with the same effect;
#   - an unknown command gets "did you mean" the nearest command name;
#   - --version prints the version and the qcow2/libvirt features;
#   - for every command, every option --help documents is accepted by the
#     parser (never "unknown option"), and every option the parser takes
#     appears in --help (the option list is read from `extsnap help`'s own
#     tables through --help, the parser probed with each one).
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
eq "seven img commands in the overview" 7 "${#IMG_CMDS[@]}"

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
mapfile -t CMDS < <("$X" help | sed -n 's/^  \(img [a-z]*\|[a-z]*\)  .*/\1/p')
# The options of a --help text: "  -f, --format=FMT", "  --tree", "  -d".
help_opts() {
    sed -n 's/^  \(-[A-Za-z]\(, \)\?\)\?\(--[a-z][a-z0-9-]*\)\?\([= ][A-Z|a-z"]*\)\?\( .*\|\)$/\1|\3|\4/p' |
        grep -v '^|||$' | grep -v -- '--help'
}
for c in "${CMDS[@]}"; do
    # shellcheck disable=SC2086
    help=$("$X" $c --help)
    n=0
    while IFS='|' read -r short long arg; do
        short=${short%, }
        for o in $short $long; do
            n=$((n + 1))
            args=("$o")
            if [[ -n $arg ]]; then
                case $arg in
                    =FMT | " FMT") v=qcow2 ;;
                    =DIR) v=/ ;;
                    =N | =BYTES) v=1 ;;
                    =SECONDS) v=1 ;;
                    =leaks*) v=leaks ;;
                    *) v=/x ;;
                esac
                [[ $c == "img create" && $o == -o* ]] && v=cluster_size=64k
                [[ $o == --output ]] && v=human
                args+=("$v")
            fi
            rc=0
            # The option alone, no operands: a usage error about operands, or
            # success; never one about the option. (--root / keeps the
            # commands that run without operands inside an empty root.)
            mkdir -p "$T/empty"
            # shellcheck disable=SC2086
            (cd "$T/empty" && "$X" $c "${args[@]}") >/dev/null 2>err || rc=$?
            ES_CHECKS=$((ES_CHECKS + 1))
            if grep -q "unknown option\|needs an argument\|takes no argument\|invalid -" err; then
                fail "$c: $o (documented in --help) is refused by the parser: $(cat err)"
            fi
        done
    done < <(help_opts <<<"$help")
    ES_CHECKS=$((ES_CHECKS + 1))
    ((n > 0)) || fail "$c: no option found in --help"
    # Every long option the parser knows is in --help: probe the names of
    # all commands' options on this one.
    for o in $(for d in "${CMDS[@]}"; do "$X" $d --help | help_opts | cut -d'|' -f2; done | sort -u); do
        # shellcheck disable=SC2086
        (cd "$T/empty" && "$X" $c "$o=/x" </dev/null) >/dev/null 2>err || true
        (cd "$T/empty" && "$X" $c "$o" </dev/null) >/dev/null 2>err2 || true
        if ! grep -q "unknown option '$o" err err2 && ! grep -q -- "  \(-., \)\?$o\b" <<<"$help"; then
            ES_CHECKS=$((ES_CHECKS + 1))
            fail "$c accepts $o but its --help does not show it"
        fi
    done
done

finish
