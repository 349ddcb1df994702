#!/usr/bin/env bash
# The man pages the build generates (es_docgen, from the command tables):
# extsnap(1) and one extsnap-CMD(1) per command that `extsnap help` lists,
# no warning from `groff -man -ww -z`, extsnap(1) naming every command's
# page and its concept sections, and every command's page carrying the
# usage line and every option its --help lists (so the two cannot drift).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_tool groff col

build=${ES_BUILD:?ES_BUILD: the build tree (set by ctest)}
M=$build/man
commands=$("$EXTSNAP" help | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print}' |
    sed -E 's/^  ([a-z]+( [a-z]+)?)  .*/\1/; s/ +$//')
ok_eq "commands listed by 'extsnap help'" 1 "$([[ $commands == *create* ]] && echo 1)"

# A page as plain text (ASCII hyphens, no overstrikes), wide enough that an
# option and its argument stay on one line.
render() { groff -man -Tascii -rLL=200n "$1" 2>/dev/null | col -bx; }

pages=(extsnap)
while read -r c; do pages+=("extsnap-${c// /-}"); done <<<"$commands"
for p in "${pages[@]}"; do
    ok_rc "$p.1 generated" 0 test -s "$M/$p.1" || continue
    ok_eq "groff -man -ww -z $p.1 says nothing" "" "$(groff -man -ww -z "$M/$p.1" 2>&1)" || true
done
# No page for a command that is gone.
ok_eq "pages generated" "$(printf '%s.1\n' "${pages[@]}" | sort)" "$(cd "$M" 2>/dev/null && ls -1 -- *.1 | sort)" || true

main=$(render "$M/extsnap.1")
for section in "SNAPSHOT MODEL" JOURNAL "EXIT STATUS" ENVIRONMENT FILES "GLOBAL OPTIONS"; do
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -q "^$section\$" <<<"$main" || fail "extsnap(1) has no $section section"
done
# GLOBAL OPTIONS: those 'extsnap help' says may come before the command.
global=$("$EXTSNAP" help | tr '\n' ' ' | sed -n 's/.*Global options (\([^)]*\)).*/\1/p' | tr -d ,)
ok_eq "global options named by 'extsnap help'" 1 "$([[ $global == *--root* ]] && echo 1)" || true
globals_section=$(sed -n '/^GLOBAL OPTIONS$/,/^[A-Z]/p' <<<"$main")
for opt in $global; do
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -qE -- "(^|[ ,])$opt([ =,]|$)" <<<"$globals_section" || fail "extsnap(1) GLOBAL OPTIONS lacks $opt"
done
for p in "${pages[@]:1}"; do
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -qF "$p(1)" <<<"$main" || fail "extsnap(1) does not name $p(1)"
done

# Each command's page: its usage line, and each option of its --help
# (long name, or the short one when it has none).
while read -r c; do
    p=extsnap-${c// /-}
    [[ -s $M/$p.1 ]] || continue
    page=$(render "$M/$p.1" | tr -s ' ')
    help=$("$EXTSNAP" $c --help)
    usage=$(sed -n '1s/^usage: //p' <<<"$help" | tr -s ' ')
    # The page --help points to is this one.
    named=$(sed -n "s/.*'man \([^']*\)'.*/\1/p" <<<"$help")
    [[ -z $named ]] || ok_eq "the page 'extsnap $c --help' names" "$p" "$named" || true
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -qF -- "$usage" <<<"$page" || fail "$p(1) lacks the usage line [$usage]"
    while read -r opt; do
        [[ $opt == --help || $opt == -h ]] && continue
        ES_CHECKS=$((ES_CHECKS + 1))
        grep -qE -- "(^|[ ,[])$opt([ =,[]|$)" <<<"$page" || fail "$p(1) does not document $opt (from --help)"
    done < <(grep -E '^ {2,4}--?[a-zA-Z0-9]' <<<"$help" | sed -E 's/^ +//; s/^(-[a-zA-Z0-9], )?(--?[a-zA-Z0-9-]+).*/\2/' | sort -u)
done <<<"$commands"
finish
