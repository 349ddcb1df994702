#!/usr/bin/env bash
# The bash completion the build generates (es_docgen, from the command
# tables), sourced in a clean bash with Debian's bash-completion: COMPREPLY
# for commands, img subcommands, each command's options (as its --help
# lists them), option values, and domain and snapshot names read from a
# root of our own, honouring --root, --config-dir and --snapshot-dir
# already typed (before or after the command, as DIR or =DIR).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BC=/usr/share/bash-completion/bash_completion
[[ -r $BC ]] || skip_test "$BC is missing (bash-completion; run scripts/deps.sh)"

build=${ES_BUILD:?ES_BUILD: the build tree (set by ctest)}
comp=$build/completion/extsnap
ok_rc "completion script generated" 0 test -s "$comp" || finish
ok_rc "completion script is valid bash" 0 bash -n "$comp" || finish

# A root with two domains and their snapshots, and a second config dir.
R=$T/host
mkdir -p "$R/etc/libvirt/qemu" "$R/var/lib/libvirt/qemu/snapshot/web1" "$R/cfg" "$R/snaps/web1" \
    "$R/var/lib/libvirt/qemu/snapshot/db"
touch "$R/etc/libvirt/qemu/web1.xml" "$R/etc/libvirt/qemu/web2.xml" "$R/etc/libvirt/qemu/db.xml"
touch "$R/var/lib/libvirt/qemu/snapshot/web1/before-upgrade.xml" \
    "$R/var/lib/libvirt/qemu/snapshot/web1/weekly.xml" \
    "$R/var/lib/libvirt/qemu/snapshot/db/nightly.xml"
touch "$R/cfg/other.xml" "$R/snaps/web1/elsewhere.xml"
mkdir -p "$T/cwd/dir1" && touch "$T/cwd/disk.qcow2"

# complete LINE: COMPREPLY (sorted, one per line) for the cursor at the end
# of LINE, with COMP_WORDS split as readline does (blanks, then '=' and ':'
# as words of their own).
cat >"$T/complete.sh" <<EOF
. "$BC"
. "$comp"
line=\$1
COMP_WORDS=()
for w in \$line; do
    while [[ \$w =~ ^([^=:]*)([=:])(.*)\$ ]]; do
        [[ \${BASH_REMATCH[1]} ]] && COMP_WORDS+=("\${BASH_REMATCH[1]}")
        COMP_WORDS+=("\${BASH_REMATCH[2]}")
        w=\${BASH_REMATCH[3]}
    done
    [[ \$w ]] && COMP_WORDS+=("\$w")
done
[[ \$line == *' ' ]] && COMP_WORDS+=("")
COMP_CWORD=\$((\${#COMP_WORDS[@]} - 1))
COMP_LINE=\$line COMP_POINT=\${#line}
_extsnap extsnap "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "\${COMPREPLY[@]}" | sort
EOF
complete() { (cd "$T/cwd" && bash --norc --noprofile "$T/complete.sh" "$1" 2>&1); }
# expect LINE WORDS...: the completions are exactly WORDS.
expect() {
    local line=$1
    shift
    ok_eq "completion of [$line]" "$(printf '%s\n' "$@" | sort)" "$(complete "$line")" || true
}

commands=$("$EXTSNAP" help | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print}' |
    sed -E 's/^  ([a-z]+( [a-z]+)?)  .*/\1/; s/ +$//')
img=$(sed -n 's/^img //p' <<<"$commands")
ok_eq "img subcommands listed by 'extsnap help'" 1 "$([[ $img == *info* ]] && echo 1)"
top=$( (echo help; echo img; grep -v '^img ' <<<"$commands") | sort)

expect "extsnap " $top
expect "extsnap re" $(grep '^re' <<<"$top")
expect "extsnap img " $img
expect "extsnap img c" $(grep '^c' <<<"$img")
expect "extsnap help img " $img

# Options: exactly those of the command's --help (long names), -h/--help included.
options_of() {
    "$EXTSNAP" $1 --help | grep -E '^ {2,4}--?[a-zA-Z0-9]' | sed -E 's/^ +//; s/  .*//' |
        grep -oE -- '--[a-zA-Z0-9][a-zA-Z0-9-]*' | sort -u
}
for c in "delete" "img info" "verify"; do
    expect "extsnap $c --" $(options_of "$c")
done
expect "extsnap img info --output " human json
expect "extsnap img info --output=" human json
expect "extsnap img info " dir1 disk.qcow2
expect "extsnap img info disk.qcow2 "
expect "extsnap img check disk.qcow2 " dir1 disk.qcow2
expect "extsnap img rebase -u -b base.qcow2 -F qcow2 " dir1 disk.qcow2
expect "extsnap img rebase -u -b base.qcow2 -F qcow2 disk.qcow2 "

# Domain and snapshot names from the root given on the line.
expect "extsnap list --root $R " db web1 web2
expect "extsnap list --root=$R w" web1 web2
expect "extsnap list --root $R --config-dir /cfg " other
expect "extsnap delete --root $R web1 " before-upgrade weekly
expect "extsnap delete web1 --root $R " before-upgrade weekly
expect "extsnap delete --root $R --snapshot-dir=/snaps web1 " elsewhere
expect "extsnap delete --root $R db n" nightly
expect "extsnap revert --root $R web1 " base before-upgrade weekly
expect "extsnap commit --root $R web1 before-upgrade w" weekly
expect "extsnap verify --root $R web1 " db web1 web2
expect "extsnap list --root $R web1 "
expect "extsnap setup --root $R web1 " dir1
expect "extsnap list --root " dir1
# Global options typed before the command.
expect "extsnap --root $R list " db web1 web2
expect "extsnap --config-dir /cfg --root=$R list " other
expect "extsnap --root=$R delete web1 w" weekly
expect "extsnap --root " dir1
expect "extsnap --root $R " $top
expect "extsnap --ro" --root
# Only the options extsnap takes before the command ('extsnap help' names them).
global=$("$EXTSNAP" help | tr '\n' ' ' | sed -n 's/.*Global options (\([^)]*\)).*/\1/p' | tr -d ,)
ok_eq "global options named by 'extsnap help'" 1 "$([[ $global == *--root* ]] && echo 1)"
for prefix in --r --c --s --d --o; do
    expect "extsnap $prefix" $(printf '%s\n' $global --help --version | grep -- "^$prefix")
done
finish
