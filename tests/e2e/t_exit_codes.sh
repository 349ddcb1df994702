#!/usr/bin/env bash
# Exit codes a script can rely on (README.md, "Exit codes"):
#  - a usage error (unknown option, missing argument) exits 1 for every
#    command, as in qemu-img, except img compare (2: its 1 means "differ");
#    never the code of "problems found" (verify 2, img check 2/3,
#    img doctor 2);
#  - the findings themselves: img check 2 corrupt / 3 leaks, verify 2,
#    img compare 1, img doctor 2;
#  - SIGINT ends any command with status 130 (offline: at once; the online
#    path first cancels QEMU's jobs, see t_online_domain/t_online_img_commit);
#  - every command of `extsnap help` has a row in README's table.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_tool qemu-img qemu-io xmllint
cd "$T"
rc_is() { ok_rc "$@" || true; } # report and go on
eq() { ok_eq "$@" || true; }
E() { "$@" 2>"$T/err"; }        # the command's stderr to $T/err, not the check's

# The command names, from `extsnap help`.
mapfile -t CMDS < <("$EXTSNAP" help | sed -n 's/^  \(img [a-z]*\|[a-z]*\)  .*/\1/p')
eq "extsnap help lists 22 commands" 22 "${#CMDS[@]}"

usage_code() { [[ $1 == "img compare" ]] && echo 2 || echo 1; }

# --- usage errors ---------------------------------------------------------
for c in "${CMDS[@]}"; do
    want=$(usage_code "$c")
    # shellcheck disable=SC2086 # "img info" is two words
    rc_is "$c --bogus: usage error" "$want" E "$EXTSNAP" $c --bogus x
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -q "^extsnap: $c: .*--bogus" "$T/err" || fail "$c --bogus: message: $(cat "$T/err")"
    # shellcheck disable=SC2086
    rc_is "$c without arguments: usage error" "$want" E "$EXTSNAP" $c
done
rc_is "no command" 1 E "$EXTSNAP"
rc_is "unknown command" 1 E "$EXTSNAP" frobnicate
rc_is "unknown global option" 1 E "$EXTSNAP" --bogus
rc_is "help of an unknown command" 1 E "$EXTSNAP" help frobnicate
rc_is "--version" 0 "$EXTSNAP" --version >/dev/null

# --- findings keep their own codes ----------------------------------------
qemu-img create -q -f qcow2 -o cluster_size=4k leak.qcow2 1M
qemu-io -c 'write -P 1 0 64k' leak.qcow2 >/dev/null
cp leak.qcow2 clean.qcow2
# A leak / a corruption: cluster 0's refcount (the first 16-bit entry of the
# first refcount block) raised to 2 / lowered to 0.
rt=$((16#$(xxd -s 48 -l 8 -p leak.qcow2)))
rb=$((16#$(xxd -s "$rt" -l 8 -p leak.qcow2)))
printf '\x00\x02' | dd of=leak.qcow2 bs=1 seek="$rb" conv=notrunc status=none
rc_is "qemu-img check: leak (test setup)" 3 qemu-img check -q leak.qcow2
rc_is "img check: leak" 3 "$EXTSNAP" img check -q leak.qcow2
cp clean.qcow2 corrupt.qcow2
printf '\x00\x00' | dd of=corrupt.qcow2 bs=1 seek="$rb" conv=notrunc status=none
rc_is "qemu-img check: corruption (test setup)" 2 qemu-img check -q corrupt.qcow2
rc_is "img check: corruption" 2 E "$EXTSNAP" img check -q corrupt.qcow2
rc_is "img check --bogus on a corrupt image: usage, not corruption" 1 \
    E "$EXTSNAP" img check --bogus corrupt.qcow2
rc_is "img check of a missing file" 1 E "$EXTSNAP" img check -q missing.qcow2
rc_is "img compare: same content" 0 "$EXTSNAP" img compare -q clean.qcow2 clean.qcow2
qemu-io -c 'write -P 9 0 4k' leak.qcow2 >/dev/null
rc_is "img compare: differ" 1 "$EXTSNAP" img compare -q clean.qcow2 leak.qcow2

qemu-img create -q -f qcow2 -b "$T/clean.qcow2" -F qcow2 over.qcow2
rc_is "img doctor: healthy" 0 "$EXTSNAP" img doctor over.qcow2 >/dev/null
mv clean.qcow2 elsewhere.qcow2
rc_is "img doctor: problems (backing file missing)" 2 \
    E "$EXTSNAP" img doctor over.qcow2 >/dev/null
rc_is "img doctor --bogus on that image: usage, not problems" 1 \
    E "$EXTSNAP" img doctor --bogus over.qcow2
mv elsewhere.qcow2 clean.qcow2

R=$T/root
snap_make_tvm "$R"
rc_is "verify: clean" 0 "$EXTSNAP" verify tvm --root "$R" -q
rm "$R$SNAP_IMG/vdb.qcow2"
rc_is "verify: problems" 2 E "$EXTSNAP" verify tvm --root "$R" -q
rc_is "verify --bogus on that domain: usage, not problems" 1 \
    E "$EXTSNAP" verify --bogus tvm --root "$R"
rc_is "verify of a domain that does not exist: could not check" 1 \
    E "$EXTSNAP" verify nosuch --root "$R" -q

# --- SIGINT -----------------------------------------------------------------
# The command blocks writing its fault trace into a FIFO nobody reads; then
# SIGINT. (env --default-signal: a background job of a script ignores SIGINT.)
mkfifo "$T/trace.fifo"
sigint_rc() { # WHAT CMD...: start CMD, interrupt it once blocked, check 130
    local what=$1 pid rc=0 i
    shift
    EXTSNAP_FAULT_TRACE=$T/trace.fifo env --default-signal=INT "$@" >/dev/null 2>"$T/err" &
    pid=$!
    for ((i = 0; i < 100; i++)); do # until it waits in open() of the FIFO
        [[ $(cat "/proc/$pid/wchan" 2>/dev/null) == fifo_open ]] && break
        sleep 0.05
    done
    kill -INT "$pid"
    wait "$pid" || rc=$?
    eq "$what: SIGINT exit status" 130 "$rc"
}
snap_make_tvm "$T/r2"
sigint_rc "img info" "$EXTSNAP" img info clean.qcow2
sigint_rc "img commit" "$EXTSNAP" img commit -q "$T/r2$SNAP_IMG/vda.qcow2"
sigint_rc "create" "$EXTSNAP" create tvm s1 --root "$T/r2" -q
rc_is "after the interrupted create: verify or recover works" 0 \
    bash -c "'$EXTSNAP' recover tvm --root '$T/r2' -q && '$EXTSNAP' verify tvm --root '$T/r2' -q"

# --- README's table names every command -------------------------------------
readme=${ES_SRC:-$(dirname "$0")/../..}/README.md
table=$(sed -n '/^## Exit codes/,/^## /p' "$readme")
for c in "${CMDS[@]}"; do
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -q "^| \`$c\`" <<<"$table" || fail "README.md's exit-code table has no row for $c"
done

finish
