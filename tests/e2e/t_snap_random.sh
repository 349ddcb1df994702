#!/usr/bin/env bash
# Seeded, model-based random test of the offline domain commands on lib/snap.sh's
# tvm (vda, vdb qcow2; vdc raw; sda readonly cdrom) under a temporary --root.
# Each seed runs a random sequence of steps:
#   create NAME                 extsnap create tvm NAME (fresh, reused or taken names)
#   write DISK KIND PAT OFF LEN qemu-io into the live chain of DISK: KIND data
#                               (write -P PAT), zero (write -z) or compressed
#                               (write -c -P PAT, whole clusters the top image
#                               does not have yet, else as data)
#   revert NAME|base            extsnap revert tvm NAME
#   refresh                     extsnap refresh tvm
#   delete NAME                 extsnap delete tvm NAME (current, leaf, non-leaf)
#   delete-metadata NAME        extsnap delete tvm NAME --metadata
#   commit BASE TOP             extsnap commit tvm BASE TOP (valid ranges, some not)
# lib/snap_model.sh predicts each one from docs/snap-design.md: success, or a
# refusal (then the exit status is not 0, stderr is one line and no file
# under the root changed, sha256 and mode), and the images, snapshot files and
# guest content afterwards. After every step:
#   extsnap verify exits 0; no journal is left;
#   the snapshots, their parents and the current one (at most one) are the
#   model's; the config and every snapshot's <domain>, <disks> and
#   <revertDisks> name the model's images;
#   the image files are exactly the model's, with the model's backing files;
#   the config and every snapshot file validate (xmllint --relaxng with the
#   schemas virt-xml-validate uses: libvirt 9.0's, plus
#   <revertDisks> where present); every qcow2 image passes qemu-img check;
#   the live guest content of each disk, and the content at every snapshot
#   (read through the images its <domain> names) equal the model's.
# Reverts in the sequence compare a snapshot's content the destructive way.
# Fixed cases (sequences earlier runs found, shortest form) run first.
#
# Knobs (defaults: the fixed cases, then seeds 1..6 of 25 steps):
#   SEED=n                  only seed n (no fixed cases): replays a failure
#   ES_RANDOM_SEEDS=k       run k seeds from ES_RANDOM_FIRST_SEED (default 1)
#   ES_RANDOM_STEPS=n       steps per seed (soak: e.g. 40 seeds of 60 steps)
#   ES_RANDOM_REPLAY=FILE   run the steps in FILE (one per line, as a failure
#                           prints them) instead
#   ES_RANDOM_VERBOSE=1     print every step and the model's refusals
# A failure prints the seed, the steps so far, the model and the snapshot
# tree; that run stops there and the next one goes on.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap_ops.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap_model.sh"
need_cmd qemu-img qemu-io virt-xml-validate xmllint
export TZ=UTC LC_ALL=C

STEPS_PER_SEED=${ES_RANDOM_STEPS:-25}
if [[ -n ${SEED:-} ]]; then
    SEED_LIST=$SEED
else
    first=${ES_RANDOM_FIRST_SEED:-1}
    SEED_LIST=$(seq "$first" $((first + ${ES_RANDOM_SEEDS:-6} - 1)))
fi
IMG_SIZE=$((4 * 1024 * 1024))
CLUSTER=65536

# --- assertions of one step ------------------------------------------------------
SM_FAILS=()
sm_assert() { # WHAT EXPECTED ACTUAL
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ "$2" == "$3" ]] || SM_FAILS+=("$1: expected [$2], got [$3]")
}

# x_run ARGS...: extsnap ARGS --root R -q; SM_RC, stderr in $T/err.
x_run() {
    SM_RC=0
    "$EXTSNAP" "$@" --root "$R" -q >"$T/out" 2>"$T/err" || SM_RC=$?
}

# --- one step --------------------------------------------------------------------
# expect_outcome WHAT BEFORE: compare the command's outcome with SM_REFUSE.
expect_outcome() {
    local what=$1 before=$2 lines after
    if [[ -n $SM_REFUSE ]]; then
        ES_CHECKS=$((ES_CHECKS + 1))
        if ((SM_RC == 0)); then
            SM_FAILS+=("$what: succeeded, the model refuses it ($SM_REFUSE)")
            return
        fi
        lines=$(wc -l <"$T/err")
        sm_assert "$what: refused ($SM_REFUSE) with one error line [$(head -c 400 "$T/err")]" 1 "$lines"
        after=$(root_sums "$R")
        ES_CHECKS=$((ES_CHECKS + 1))
        [[ $before == "$after" ]] || SM_FAILS+=("$what: refused, but files under the root changed: $(diff \
            <(echo "$before") <(echo "$after") | grep '^[<>]' | head -6 | tr '\n' ';' || true)")
    else
        sm_assert "$what: exit status [$(head -c 400 "$T/err")]" 0 "$SM_RC"
    fi
}

SM_PENDING_NODE=""
do_step() { # LINE LABEL
    local line=$1 what=$2 before="" d kind pat off len cmd
    local -a a
    read -r -a a <<<"$line"
    SM_REFUSE=""
    case ${a[0]} in
    create)
        sm_m_create "${a[1]}"
        [[ -z $SM_REFUSE ]] || before=$(root_sums "$R")
        x_run create tvm "${a[1]}"
        expect_outcome "$what" "$before"
        ;;
    write)
        d=${a[1]} kind=${a[2]} pat=${a[3]} off=${a[4]} len=${a[5]}
        case $kind in
        data) cmd="write -P $pat $off $len" ;;
        zero) cmd="write -z $off $len" ;;
        compressed) cmd="write -c -P $pat $off $len" ;;
        esac
        # The live chain as the config names it (FH is fresh from the last check).
        if ! sm_spec "$(cfg_source "$R" tvm "$d")" "$(cfg_format "$R" tvm "$d")"; then
            SM_FAILS+=("$what: the live chain does not open: $SM_ERR")
            return
        fi
        # QEMU compresses only into clusters the top image does not have yet.
        if [[ $kind == compressed ]] && ! qemu-io -r -c "alloc $off $len" \
            "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$R$(cfg_source "$R" tvm "$d")\"},\"backing\":null}" |
            grep -q "^0/$len bytes allocated"; then
            cmd="write -P $pat $off $len"
        fi
        qemu-io -c "$cmd" "$SM_SPEC" >"$T/out" 2>&1 || SM_FAILS+=("$what: qemu-io: $(cat "$T/out")")
        [[ $kind == compressed ]] && cmd="write -P $pat $off $len"
        qemu-io -f raw -c "$cmd" "$T/ref/live.$d" >/dev/null
        LH[$d]=$(sha256sum <"$T/ref/live.$d" | cut -d' ' -f1)
        ;;
    revert | refresh)
        if [[ ${a[0]} == refresh ]]; then
            if [[ -n $CUR ]]; then sm_m_revert "$CUR"; else SM_REFUSE="no current snapshot"; fi
        else
            sm_m_revert "${a[1]}"
        fi
        if [[ -z $SM_REFUSE ]]; then
            SM_PENDING_NODE=$SM_NEWNODE SM_PENDING_STEM=$SM_NEWSTEM
        else
            before=$(root_sums "$R")
        fi
        if [[ ${a[0]} == refresh ]]; then x_run refresh tvm; else x_run revert tvm "${a[1]}"; fi
        expect_outcome "$what" "$before"
        ;;
    delete)
        sm_m_delete "${a[1]}"
        [[ -z $SM_REFUSE ]] || before=$(root_sums "$R")
        x_run delete tvm "${a[1]}"
        expect_outcome "$what" "$before"
        ;;
    delete-metadata)
        sm_m_delete_metadata "${a[1]}"
        [[ -z $SM_REFUSE ]] || before=$(root_sums "$R")
        x_run delete tvm "${a[1]}" --metadata
        expect_outcome "$what" "$before"
        ;;
    commit)
        sm_m_commit "${a[1]}" "${a[2]}"
        [[ -z $SM_REFUSE ]] || before=$(root_sums "$R")
        x_run commit tvm "${a[1]}" "${a[2]}"
        expect_outcome "$what" "$before"
        ;;
    *)
        SM_FAILS+=("unknown step '$line'")
        ;;
    esac
}

# --- the checks after every step ---------------------------------------------------
check_state() {
    local what=$1 d s n f out rc t i
    local -a cf sf
    sm_scan
    sm_assert "$what: no journal left" "" "$(ls "$R$SNAP_DIR" | grep journal || true)"
    rc=0
    out=$(x verify tvm 2>&1) || rc=$?
    sm_assert "$what: extsnap verify exit status [$out]" 0 "$rc"

    # The config: which images, and the new overlays' names after a revert.
    sm_xml "$SNAP_CFG/tvm.xml"
    IFS='|' read -r -a cf <<<"$SM_X"
    if [[ -n $SM_PENDING_NODE ]]; then
        s=${cf[3]##*/vda.}
        if [[ ${s#"${SM_PENDING_STEM:+$SM_PENDING_STEM.}"} =~ ^[0-9]{10}$ &&
            $s == "${SM_PENDING_STEM:+$SM_PENDING_STEM.}"* ]]; then
            N_SUF[SM_PENDING_NODE]=$s
        else
            SM_FAILS+=("$what: the revert's vda overlay ${cf[3]} is not vda.${SM_PENDING_STEM:+$SM_PENDING_STEM.}<epoch>")
        fi
        SM_PENDING_NODE=""
    fi
    i=3
    for d in $SM_DISKS; do
        sm_img "$CFG" "$d"
        sm_assert "$what: config $d" "$SM_F $SM_FT" "${cf[i]} ${cf[i + 1]}"
        i=$((i + 2))
    done
    sm_assert "$what: config sda" "$SNAP_IMG/cd.iso raw" "${cf[9]} ${cf[10]}"

    # The snapshot files: names, parents, the current one, their frozen images.
    local files="" names="" cur="" want_names
    for f in "${!FH[@]}"; do [[ $f == "$SNAP_DIR/tvm/"* ]] && files+="$f"$'\n'; done
    files=$(sort <<<"${files%$'\n'}")
    for f in $files; do
        sm_xml "$f"
        IFS='|' read -r -a sf <<<"$SM_X"
        s=${f##*/}
        s=${s%.xml}
        names+="$s "
        sm_assert "$what: $f names itself" "$s" "${sf[0]}"
        [[ ${sf[2]} == 1 ]] && cur+="$s "
        sm_is_snap "$s" || continue
        [[ -n ${S_CT[$s]:-} ]] || S_CT[$s]=${sf[17]}
        sm_assert "$what: parent of $s" "${S_PAR[$s]}" "${sf[1]}"
        i=3
        for d in $SM_DISKS; do
            sm_img "${S_DOM[$s]}" "$d"
            sm_assert "$what: $s's <domain> $d" "$SM_F $SM_FT" "${sf[i]} ${sf[i + 1]}"
            i=$((i + 2))
        done
        # Its <disks> and <revertDisks> (vda stands for the three).
        sm_img "${S_DISKS[$s]}" vda
        sm_assert "$what: $s's <disks> vda" "$SM_F" "${sf[11]}"
        SM_F=""
        [[ -z ${S_RD[$s]} ]] || sm_img "${S_RD[$s]}" vda
        sm_assert "$what: $s's <revertDisks> vda" "$SM_F" "${sf[14]}"
    done
    names=$(tr ' ' '\n' <<<"$names" | sed '/^$/d' | sort | tr '\n' ' ')
    want_names=$(printf '%s\n' "${SNAPS[@]}" | sort | tr '\n' ' ')
    [[ ${#SNAPS[@]} -gt 0 ]] || want_names=""
    sm_assert "$what: snapshot files" "$want_names" "$names"
    sm_assert "$what: current snapshot" "${CUR:+$CUR }" "$cur"

    # The image files and their backing files.
    local want_files="cd.iso" got_files=""
    for n in "${!N_BACK[@]}"; do
        [[ ${N_ALIVE[n]} == 1 ]] || continue
        for d in $SM_DISKS; do sm_img "$n" "$d"; want_files+=$'\n'${SM_F##*/}; done
    done
    for f in "${!FH[@]}"; do [[ $f == "$SNAP_IMG/"* ]] && got_files+="${f##*/}"$'\n'; done
    sm_assert "$what: image files" "$(sort <<<"$want_files" | tr '\n' ' ')" \
        "$(sort <<<"${got_files%$'\n'}" | tr '\n' ' ')"
    for n in "${!N_BACK[@]}"; do
        [[ ${N_ALIVE[n]} == 1 ]] || continue
        for d in $SM_DISKS; do
            sm_img "$n" "$d"
            f=$SM_F
            [[ -n ${FH[$f]:-} && $SM_FT == qcow2 ]] || continue
            if ! sm_backing "$f"; then SM_FAILS+=("$what: $SM_ERR"); continue; fi
            if [[ -n ${N_BACK[n]} ]]; then
                sm_img "${N_BACK[n]}" "$d"
                sm_assert "$what: backing file of $f" "$SM_F|$SM_FT" "$SM_BK|$SM_BKF"
            else
                sm_assert "$what: backing file of $f" "|" "$SM_BK|$SM_BKF"
            fi
        done
    done
    sm_assert "$what: the cdrom image" "$CD_SUM" "${FH[$SNAP_IMG/cd.iso]:-}"

    sm_validate
    sm_assert "$what: libvirt files validate" "" "$SM_BAD"
    sm_check_images
    sm_assert "$what: qemu-img check of every image" "" "$SM_BAD"

    # Guest content: live, and at every snapshot through its saved <domain>.
    local args=()
    i=3
    for d in $SM_DISKS; do
        args+=("live $d" "${cf[i]}" "${cf[i + 1]}")
        i=$((i + 2))
    done
    for s in "${SNAPS[@]}"; do
        [[ -n ${FH[$SNAP_DIR/tvm/$s.xml]:-} ]] || continue
        sm_xml "$SNAP_DIR/tvm/$s.xml"
        IFS='|' read -r -a sf <<<"$SM_X"
        i=3
        for d in $SM_DISKS; do
            args+=("$s $d" "${sf[i]}" "${sf[i + 1]}")
            i=$((i + 2))
        done
    done
    sm_contents "${args[@]}"
    for d in $SM_DISKS; do sm_assert "$what: live content of $d" "${LH[$d]}" "${SM_GOT[live $d]}"; done
    for s in "${SNAPS[@]}"; do
        for d in $SM_DISKS; do
            [[ -n ${SM_GOT[$s $d]+x} ]] || continue
            sm_assert "$what: content of $d at $s" "${MH[$s $d]}" "${SM_GOT[$s $d]}"
        done
    done
}

# --- random steps ----------------------------------------------------------------
NAME_FIRST=abcdefghijklmnopqrstuvwxyz
NAME_REST=abcdefghijklmnopqrstuvwxyz0123456789-_
pick() { sm_rand $#; shift "$SM_R"; SM_PICK=$1; }

random_name() {
    local used=() n s len
    for s in $SM_USED_NAMES; do sm_is_snap "$s" || used+=("$s"); done
    sm_rand 100
    if ((SM_R < 8 && ${#SNAPS[@]})); then
        pick "${SNAPS[@]}"
        return
    elif ((SM_R < 28 && ${#used[@]})); then
        pick "${used[@]}"
        return
    fi
    while :; do
        sm_rand 26
        n=${NAME_FIRST:SM_R:1}
        sm_rand 6
        len=$SM_R
        while ((len-- > 0)); do
            sm_rand ${#NAME_REST}
            n+=${NAME_REST:SM_R:1}
        done
        # Now and then a name with a dot: overlay names keep all but the last part.
        sm_rand 8
        if ((SM_R == 0)); then
            sm_rand ${#NAME_REST}
            n+=.${NAME_REST:SM_R:1}
            sm_rand 26
            n+=${NAME_FIRST:SM_R:1}
        fi
        case $n in base | qcow2 | raw | iso) continue ;; esac
        SM_PICK=$n
        return
    done
}

random_write() {
    local d kind pat off len
    pick $SM_DISKS
    d=$SM_PICK
    sm_rand 256
    pat=$(printf '0x%02x' $((SM_R | 1)))
    sm_rand 100
    # (compressed clusters need a qcow2 image: not on vdc's raw base)
    if ((SM_R < 15)) && [[ $(sm_fmt "$CFG" "$d") == qcow2 ]]; then
        kind=compressed
        sm_rand $((IMG_SIZE / CLUSTER))
        off=$((SM_R * CLUSTER))
        sm_rand 3
        len=$(((SM_R + 1) * CLUSTER))
    else
        ((SM_R < 30)) && kind=zero || kind=data
        sm_rand 3
        if ((SM_R == 0)); then # cluster-aligned
            sm_rand $((IMG_SIZE / CLUSTER))
            off=$((SM_R * CLUSTER))
            sm_rand 4
            len=$(((SM_R + 1) * CLUSTER))
        elif ((SM_R == 1)); then # any bytes
            sm_rand $IMG_SIZE
            off=$SM_R
            sm_rand $((3 * CLUSTER))
            len=$((SM_R + 1))
        else # sectors
            sm_rand $((IMG_SIZE / 512))
            off=$((SM_R * 512))
            sm_rand 256
            len=$(((SM_R + 1) * 512))
        fi
    fi
    ((off + len <= IMG_SIZE)) || len=$((IMG_SIZE - off))
    SM_PICK="write $d $kind $pat $off $len"
}

random_step() {
    local op s top anc=()
    sm_rand 100
    op=$SM_R
    if ((${#SNAPS[@]} == 0 && op >= 52 && op < 97)); then op=0; fi
    if ((op < 25)); then
        random_name
        SM_PICK="create $SM_PICK"
    elif ((op < 52)); then
        random_write
    elif ((op < 64)); then
        sm_rand 25
        if ((SM_R == 0)); then SM_PICK="revert nosuch"; else pick "${SNAPS[@]}"; SM_PICK="revert $SM_PICK"; fi
    elif ((op < 67)); then
        SM_PICK=refresh
    elif ((op < 83)); then
        sm_rand 30
        if ((SM_R == 0)); then SM_PICK="delete nosuch"; else pick "${SNAPS[@]}"; SM_PICK="delete $SM_PICK"; fi
    elif ((op < 93)); then
        # TOP: mostly one in use; BASE: one of its ancestors or base, sometimes any.
        local inuse=()
        for s in "${SNAPS[@]}"; do
            sm_kids "$s"
            [[ $s == "$CUR" ]] || ((${#SM_KIDS[@]})) && inuse+=("$s")
        done
        sm_rand 10
        if ((SM_R > 0 && ${#inuse[@]})); then pick "${inuse[@]}"; else pick "${SNAPS[@]}"; fi
        top=$SM_PICK
        s=${S_PAR[$top]}
        while [[ -n $s ]]; do anc+=("$s"); s=${S_PAR[$s]}; done
        sm_rand 10
        if ((SM_R == 0)); then pick base "${SNAPS[@]}"; else pick base "${anc[@]}"; fi
        SM_PICK="commit $SM_PICK $top"
    elif ((op < 97)); then
        pick "${SNAPS[@]}"
        SM_PICK="delete-metadata $SM_PICK"
    else
        SM_PICK="revert base"
    fi
}

# --- a run: a seed's random steps, or a fixed list -------------------------------
report() {
    local label=$1 m
    for m in "${SM_FAILS[@]}"; do fail "$label: $m"; done
    {
        echo "---- $label failed at step ${#DONE[@]}: ${DONE[-1]}"
        echo "replay: $REPLAY_HINT"
        echo "steps (extsnap CMD tvm ARGS --root R, writes with qemu-io):"
        printf '  %s\n' "${DONE[@]}"
        sm_model_dump
        echo "extsnap list --tree:"
        x list tvm --tree 2>&1 | sed 's/^/  /' || true
        echo "images: $(ls "$R$SNAP_IMG" | tr '\n' ' ')"
        echo "----"
    } >&2
}

# run LABEL SEED [STEP...]: a fresh domain, then the steps given, or
# STEPS_PER_SEED random ones from SEED.
run() {
    local label=$1 seed=$2 i line
    shift 2
    R=$T/run-$seed
    rm -rf "$R"
    snap_make_tvm "$R"
    CD_SUM=$(sha256sum <"$R$SNAP_IMG/cd.iso" | cut -d' ' -f1)
    sm_model_init
    sm_seed "$seed"
    DONE=()
    SM_FAILS=()
    check_state "$label: start"
    ((${#SM_FAILS[@]} == 0)) || { DONE=(start); report "$label"; return; }
    for ((i = 0; ; i++)); do
        if (($#)); then
            ((i < $#)) || break
            line=${*:i+1:1}
        else
            ((i < STEPS_PER_SEED)) || break
            random_step
            line=$SM_PICK
        fi
        DONE+=("$line")
        do_step "$line" "step $((i + 1)) ($line)"
        [[ -z ${ES_RANDOM_VERBOSE:-} ]] ||
            echo "$label step $((i + 1)): $line${SM_REFUSE:+ (refused: $SM_REFUSE)}"
        ((${#SM_FAILS[@]})) || check_state "step $((i + 1)) ($line)"
        if ((${#SM_FAILS[@]})); then
            report "$label"
            return
        fi
    done
    echo "$label: ${#DONE[@]} steps, ${#SNAPS[@]} snapshots left"
}

# Fixed cases: sequences the random runs found (shortest form), run first.
CASES=(
    # The parent of a snapshot taken after reverting to it is current again
    # (its live overlay is the revert's), after deleting the snapshot ...
    "create s;create c;revert s;create n;delete c;delete n"
    "create s;create c;revert s;create n;delete n"
    # ... committing it ...
    "create s;create c;revert s;create n;commit s n"
    # ... or dropping its metadata.
    "create s;create c;revert s;create n;delete-metadata n"
    # A refused command on a domain extsnap never changed.
    "revert base"
)

if [[ -n ${ES_RANDOM_REPLAY:-} ]]; then
    REPLAY_HINT="ES_RANDOM_REPLAY=$ES_RANDOM_REPLAY bash $0"
    mapfile -t steps < <(grep -v -e '^\s*#' -e '^\s*$' "$ES_RANDOM_REPLAY" | sed 's/^\s*//')
    run replay 0 "${steps[@]}"
else
    if [[ -z ${SEED:-} ]]; then
        for ((c = 0; c < ${#CASES[@]}; c++)); do
            IFS=';' read -r -a steps <<<"${CASES[c]}"
            REPLAY_HINT="the steps below, one per line, in a file: ES_RANDOM_REPLAY=FILE bash $0"
            run "case $((c + 1))" 0 "${steps[@]}"
        done
    fi
    for seed in $SEED_LIST; do
        REPLAY_HINT="SEED=$seed ES_RANDOM_STEPS=$STEPS_PER_SEED bash $0"
        run "seed $seed" "$seed"
    done
fi
finish
