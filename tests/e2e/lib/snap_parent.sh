# Helpers of the scripts that check a parent's <disks>/<revertDisks> after
# it loses a child (issue #4; t_snap_delete.sh G, t_snap_commit.sh F).
# Source after lib/common.sh, lib/snap.sh and lib/snap_ops.sh. They work on
# domain tvm under the root R; PT_TARGETS are the disks compared.

PT_TARGETS="vda vdc"  # a qcow2 and a raw base image
declare -A PT_AT=()  # guest content at each snapshot, taken when it was made
PT_LIVE=""           # the guest content now
PT_N=0
PT_LABEL=""

# pt_new LABEL: a fresh tvm under $T/LABEL (R and IMG set).
pt_new() {
    PT_LABEL=$1
    R=$T/$1
    IMG=$R$SNAP_IMG
    snap_make_tvm "$R"
    PT_AT=()
    PT_LIVE=$(all_guest_sums "$R" tvm "$PT_TARGETS")
}

# pt_save NAME / pt_load NAME LABEL: keep the root and what the guest saw as
# NAME; start LABEL from a copy of them (a state made once, used many times).
declare -A PT_SAVED_AT=()
PT_SAVED_LIVE=""
pt_save() {
    local s
    cp -a "$R" "$T/saved-$1"
    PT_SAVED_AT=()
    for s in "${!PT_AT[@]}"; do PT_SAVED_AT[$s]=${PT_AT[$s]}; done
    PT_SAVED_LIVE=$PT_LIVE
}
pt_load() {
    local s
    PT_LABEL=$2
    R=$T/$2
    IMG=$R$SNAP_IMG
    cp -a "$T/saved-$1" "$R"
    PT_AT=()
    for s in "${!PT_SAVED_AT[@]}"; do PT_AT[$s]=${PT_SAVED_AT[$s]}; done
    PT_LIVE=$PT_SAVED_LIVE
}

# pt_write: the guest writes to every disk (a new pattern each time).
pt_write() {
    PT_N=$((PT_N + 1))
    local p
    p=$(printf '0x%02x' $((PT_N % 200 + 16)))
    guest_write "$R" tvm vda "$p" $((PT_N % 60 * 64))k 64k
    guest_write "$R" tvm vdb "$p" $((PT_N % 30 * 128))k 4k
    guest_write "$R" tvm vdc "$p" $((PT_N % 50 * 64))k 64k
    PT_LIVE=$(all_guest_sums "$R" tvm "$PT_TARGETS")
}

# pt_list SNAP LIST TARGET: the source of TARGET in SNAP's <disks> or
# <revertDisks> ("" when none).
pt_list() {
    xmllint --xpath "string(/domainsnapshot/$2/disk[@name='$3']/source/@file)" \
        "$R$SNAP_DIR/tvm/$1.xml"
}

# pt_in_chain IMAGE TOP: is IMAGE TOP or in TOP's backing chain (logical
# names, absolute backing names as extsnap and libvirt write them)?
pt_in_chain() {
    local img=$1 top=$2 i=0
    while [[ -n $top ]] && ((i++ < 16)); do
        [[ $top != "$img" ]] || return 0
        [[ -e $R$top ]] || return 1
        top=$(backing_of "$R$top")
    done
    return 1
}

# pt_lists WHAT: the invariant of issue #4 on the files as they are. For
# every snapshot with children, each <disks> entry is the frozen image of
# one of them (or in its chain: a --no-metadata overlay in between); for
# the current one, the config's disks are its
# <revertDisks> when it has children, else its <disks> (and no
# <revertDisks>); every file those name exists.
pt_lists() {
    local what=$1 f s k t d rd live ok cur
    local -A par=()
    for f in "$R$SNAP_DIR"/tvm/*.xml; do
        [[ -e $f ]] || continue
        s=$(basename "$f" .xml)
        par[$s]=$(snap_parent "$R" tvm "$s")
    done
    cur=$(current_snapshot "$R" tvm)
    for s in "${!par[@]}"; do
        local kids=()
        for k in "${!par[@]}"; do [[ ${par[$k]} != "$s" ]] || kids+=("$k"); done
        for t in $PT_TARGETS; do
            d=$(pt_list "$s" disks "$t")
            rd=$(pt_list "$s" revertDisks "$t")
            if ((${#kids[@]})); then
                ok=0
                for k in "${kids[@]}"; do ! pt_in_chain "$d" "$(saved_source "$R" tvm "$k" "$t")" || ok=1; done
                ((ok)) || fail "$what: $s's <disks> name $d for $t, the frozen image of none" \
                    "of its children (${kids[*]})"
                ES_CHECKS=$((ES_CHECKS + 1))
            fi
            if [[ $s == "$cur" ]]; then
                live=$(cfg_source "$R" tvm "$t")
                if ((${#kids[@]})); then
                    check_eq "$what: current $s (with children): <revertDisks> $t is the live image" "$live" "$rd"
                else
                    check_eq "$what: current leaf $s: <disks> $t is the live image, no <revertDisks>" \
                        "$live|" "$d|$rd"
                fi
                [[ -z $rd || -e $R$rd ]] || fail "$what: $s's <revertDisks> name $rd, which does not exist"
            fi
            if [[ $s == "$cur" ]] || ((${#kids[@]})); then
                [[ -e $R$d ]] || fail "$what: $s's <disks> name $d ($t), which does not exist"
            fi
        done
    done
}

# pt_step CMD ARGS...: extsnap CMD tvm ARGS, which must succeed; then
# full_check (validate, qemu-img check, verify), pt_lists, the live content
# (unchanged, or the target's after revert/refresh) and the content at every
# remaining snapshot (unchanged).
pt_step() {
    local what="$PT_LABEL: $*" s
    check_rc "$what" 0 x "$1" tvm "${@:2}" -q
    case $1 in
        create) PT_AT[$2]=$PT_LIVE ;;
        revert) PT_LIVE=${PT_AT[$2]} ;;
        refresh) PT_LIVE=${PT_AT[$(current_snapshot "$R" tvm)]} ;;
    esac
    full_check "$what" tvm
    pt_lists "$what"
    check_eq "$what: live content" "$PT_LIVE" "$(all_guest_sums "$R" tvm "$PT_TARGETS")"
    for s in "${!PT_AT[@]}"; do
        if [[ ! -e $R$SNAP_DIR/tvm/$s.xml ]]; then
            unset "PT_AT[$s]"
            continue
        fi
        check_eq "$what: content at $s unchanged" "${PT_AT[$s]}" "$(saved_sums "$R" tvm "$s" "$PT_TARGETS")"
    done
}
