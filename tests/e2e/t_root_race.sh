#!/usr/bin/env bash
# --root against a racing attacker: a helper (lib/race_swap.c, built here)
# exchanges directories under R with symbolic links pointing outside R
# (renameat2 RENAME_EXCHANGE, in a loop) while image commands (img info,
# img rebase -u) and domain commands (create, delete, list, verify) run under
# --root R again and again. Whatever each run does (it may well fail: its
# files come and go), no file outside R may be read or written:
#  - the outside tree (same names as inside, so a walk that leaves R finds
#    something) keeps every file's sha256, size and mtime, and gains none;
#  - a sentinel only the outside files contain (a backing name, a virtual
#    size, a disk source) never appears in any output.
# Bounded: a fixed number of runs per command (ES_RACE_RUNS to change it).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io xmllint sha256sum "${CC:-cc}"

RUNS=${ES_RACE_RUNS:-60}
R=$T/root
O=$T/outside
SENTINEL=SENTINELOUTSIDE
SWAP=$T/race_swap
"${CC:-cc}" -O2 -o "$SWAP" "$(dirname "${BASH_SOURCE[0]}")/lib/race_swap.c"

SWAPPER=
cleanup() {
    if [[ -n $SWAPPER ]]; then kill "$SWAPPER" 2>/dev/null || true; fi
    rm -rf "$T"
}
trap cleanup EXIT

# --- inside R: domain tvm (lib/snap.sh), and an image chain for img ---------
snap_make_tvm "$R"
IMG=$R$SNAP_IMG
qemu-img create -q -f qcow2 "$IMG/base.qcow2" 4M
qemu-img create -q -f qcow2 "$IMG/base2.qcow2" 4M
qemu-img create -q -f qcow2 -u -b base.qcow2 -F qcow2 "$IMG/img.qcow2" 4M

# --- outside R: the same names, each carrying the sentinel -------------------
mkdir -p "$O/tvm" "$O/qemu" "$O/snapshot"
for f in vda.qcow2 vdb.qcow2 base.qcow2 base2.qcow2 img.qcow2; do
    # 7 MiB (7340032 bytes) and a backing name nothing inside R has
    qemu-img create -q -f qcow2 -u -b "/$SENTINEL/$f" -F qcow2 "$O/tvm/$f" 7M
done
for f in vdc.raw cd.iso; do printf '%s\n' "$SENTINEL" >"$O/tvm/$f"; done
sed "s|$SNAP_IMG/|$SNAP_IMG/$SENTINEL-|g" "$R$SNAP_CFG/tvm.xml" >"$O/qemu/tvm.xml"
grep -q "$SENTINEL" "$O/qemu/tvm.xml" || { echo "ERROR: no sentinel in the outside config" >&2; exit 1; }

# The pairs the helper exchanges: a directory inside R and, beside it, a link
# leaving R (absolute: under R it names nothing; relative: it climbs out).
ln -s "$O/tvm" "$IMG.swap"
ln -s "$(realpath --relative-to="$R$SNAP_CFG/.." "$O/qemu")" "$R$SNAP_CFG.swap"
ln -s "$O/snapshot" "$R$SNAP_DIR.swap"
[[ -f $R$SNAP_CFG.swap/tvm.xml ]] || { echo "ERROR: the relative link does not reach $O/qemu" >&2; exit 1; }

outside_state() {
    (cd "$O" && find . -printf '%p %y %s %T@\n' | LC_ALL=C sort &&
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}
BEFORE=$(outside_state)

"$SWAP" "$IMG" "$IMG.swap" "$R$SNAP_CFG" "$R$SNAP_CFG.swap" "$R$SNAP_DIR" "$R$SNAP_DIR.swap" \
    2>"$T/swap.err" &
SWAPPER=$!
sleep 0.2
kill -0 "$SWAPPER" 2>/dev/null || { echo "ERROR: race_swap: $(cat "$T/swap.err")" >&2; exit 1; }

OUT=$T/out
: >"$OUT"
# run LABEL CMD...: one run under the race; its output (both streams) is
# kept; OKS counts the runs that succeeded, per label.
declare -A OKS=()
run() {
    local label=$1
    shift
    if "$@" >>"$OUT" 2>&1; then OKS[$label]=$((${OKS[$label]:-0} + 1)); fi
}

start=$SECONDS
for ((i = 0; i < RUNS; i++)); do
    run info "$EXTSNAP" img info --root "$R" "$SNAP_IMG/img.qcow2"
    run info-chain "$EXTSNAP" img info --root "$R" --backing-chain "$SNAP_IMG/img.qcow2"
    if ((i % 2)); then b=base.qcow2; else b=base2.qcow2; fi
    run rebase "$EXTSNAP" img rebase --root "$R" -u -b "$b" -F qcow2 "$SNAP_IMG/img.qcow2"
    if ((i % 5 == 0)); then
        run create x create tvm "r$i" -q
        run list x list tvm
        run verify x verify tvm
        run delete x delete tvm "r$i" -q
    fi
done
elapsed=$((SECONDS - start))

kill "$SWAPPER"
wait "$SWAPPER" || fail "race_swap: $(cat "$T/swap.err")"
SWAPPER=
oks=$(for k in "${!OKS[@]}"; do printf '%s=%s ' "$k" "${OKS[$k]}"; done)
echo "t_root_race: $RUNS rounds in ${elapsed}s; $(tail -1 "$T/swap.err"); succeeded: $oks"

ES_CHECKS=$((ES_CHECKS + 1))
AFTER=$(outside_state)
if [[ $BEFORE != "$AFTER" ]]; then
    fail "outside R: files written (sha256, size, mtime or names changed):" \
        "$(diff <(echo "$BEFORE") <(echo "$AFTER") | grep '^>' | cut -c1-120 | tr '\n' ';')"
fi
ES_CHECKS=$((ES_CHECKS + 1))
if grep -q "$SENTINEL\|7340032\|7 MiB" "$OUT"; then
    fail "outside R: files read ($(grep -c "$SENTINEL\|7340032\|7 MiB" "$OUT") lines), e.g." \
        "$(grep -m3 "$SENTINEL\|7340032\|7 MiB" "$OUT" | cut -c1-160 | tr '\n' ';')"
fi
# The runs did do something: the image commands read and wrote the inside
# image some of the time (the domain commands may lose every race).
ES_CHECKS=$((ES_CHECKS + 1))
grep -q "4 MiB\|4194304" "$OUT" || fail "no run ever read the inside image: $(head -5 "$OUT")"
ES_CHECKS=$((ES_CHECKS + 1))
((${OKS[rebase]:-0} > 0)) || fail "no img rebase ever succeeded: $(grep -m3 rebase "$OUT")"
finish
