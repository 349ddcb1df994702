# The model behind t_snap_random.sh: what one domain's snapshots, images and
# guest content must be after any sequence of extsnap domain commands, per
# docs/snap-design.md, plus fast oracles that read the real state back.
# Source after lib/common.sh, lib/snap.sh and lib/snap_ops.sh; R is the root,
# the domain is lib/snap.sh's tvm (vda, vdb qcow2, vdc raw, sda cdrom).
#
# Images. The three snapshotted disks always have the same layout, so the
# model keeps one graph of "nodes": node n is the three files
# vda.<suffix>, vdb.<suffix>, vdc.<suffix> (node 0, the base, is vda.qcow2,
# vdb.qcow2, vdc.raw), N_BACK[n] its backing node, N_ALIVE[n] whether its
# files exist. A new overlay is named after the image below it cut at its
# last extension: over vda.a.b, snapshot c's is vda.a.c, a revert's
# vda.a.<epoch>. The libvirt files name nodes: CFG (the config's disks) and
# per snapshot S_DOM (the frozen images its <domain> names), S_DISKS (its
# <disks>), S_RD (its <revertDisks>, "" if none), S_PAR (parent, "" for a
# root); CUR is the current snapshot ("" if none).
#
# Content. Every disk has a reference: a raw file holding what the guest must
# read (the same qemu-io writes are applied to it). LH[disk] is the sha256 of
# the live reference, MH["snap disk"] the one taken when the snapshot was made
# (with a sparse copy of the references, for reverts). No delete or commit may
# change them; a revert makes the live references the snapshot's again.
#
# Functions return through globals (SM_*): they must run in the main shell, so
# the memo tables survive.

SM_DISKS="vda vdb vdc"

# --- a seeded PRNG that does not depend on bash's $RANDOM -------------------
SM_RNG=0
sm_seed() { SM_RNG=$(($1 * 2654435761 + 97)); sm_rand 2; }
# sm_rand N: SM_R uniform in [0, N) (64-bit LCG, high bits).
sm_rand() {
    SM_RNG=$((SM_RNG * 6364136223846793005 + 1442695040888963407))
    SM_R=$((((SM_RNG >> 33) & 0x7fffffff) % $1))
}

# --- the model ---------------------------------------------------------------
sm_model_init() {
    declare -ga N_BACK=("") N_SUF=(base) N_ALIVE=(1)
    declare -gA S_DOM=() S_DISKS=() S_RD=() S_PAR=() S_CT=() LH=() MH=()
    declare -ga SNAPS=()
    declare -g CUR="" CFG=0 SM_USED_NAMES=""
    mkdir -p "$T/ref"
    rm -f "$T"/ref/*
    local d
    for d in $SM_DISKS; do
        qemu-img convert -U -O raw -f "$(sm_fmt 0 $d)" "$R$(sm_file 0 $d)" "$T/ref/live.$d"
        LH[$d]=$(sha256sum <"$T/ref/live.$d" | cut -d' ' -f1)
    done
}

# sm_file NODE DISK: the logical path of a node's file for DISK.
sm_file() {
    if [[ ${N_SUF[$1]} == base ]]; then
        case $2 in vdc) echo "$SNAP_IMG/vdc.raw" ;; *) echo "$SNAP_IMG/$2.qcow2" ;; esac
    else
        echo "$SNAP_IMG/$2.${N_SUF[$1]}"
    fi
}
sm_fmt() { if [[ ${N_SUF[$1]} == base && $2 == vdc ]]; then echo raw; else echo qcow2; fi; }
# sm_img NODE DISK: SM_F, SM_FT = sm_file, sm_fmt without a subshell.
sm_img() {
    SM_FT=qcow2
    if [[ ${N_SUF[$1]} == base ]]; then
        case $2 in vdc) SM_F=$SNAP_IMG/vdc.raw SM_FT=raw ;; *) SM_F=$SNAP_IMG/$2.qcow2 ;; esac
    else
        SM_F=$SNAP_IMG/$2.${N_SUF[$1]}
    fi
}

# sm_stem NODE: SM_STEM, the node's suffix cut at its last extension.
sm_stem() {
    SM_STEM=""
    [[ ${N_SUF[$1]} == base || ${N_SUF[$1]} != *.* ]] || SM_STEM=${N_SUF[$1]%.*}
}

sm_node_new() { # SUFFIX BACK: SM_NODE
    SM_NODE=${#N_BACK[@]}
    N_BACK[SM_NODE]=$2
    N_SUF[SM_NODE]=$1
    N_ALIVE[SM_NODE]=1
}

sm_is_snap() { [[ -n ${S_DOM[$1]+x} ]]; }

sm_kids() { # SNAP: SM_KIDS (creation order)
    local s
    SM_KIDS=()
    for s in "${SNAPS[@]}"; do [[ ${S_PAR[$s]} == "$1" ]] && SM_KIDS+=("$s"); done
    return 0
}

sm_users() { # NODE: SM_USERS, the live nodes backed by it
    local n
    SM_USERS=()
    for n in "${!N_BACK[@]}"; do
        [[ ${N_ALIVE[n]} == 1 && ${N_BACK[n]} == "$1" ]] && SM_USERS+=("$n")
    done
    return 0
}

# sm_named NODE: is it named by the config or any snapshot file?
sm_named() {
    local s
    [[ $CFG == "$1" ]] && return 0
    for s in "${SNAPS[@]}"; do
        [[ ${S_DOM[$s]} == "$1" || ${S_DISKS[$s]} == "$1" || ${S_RD[$s]} == "$1" ]] && return 0
    done
    return 1
}

# sm_needed NODE...: SM_NEEDED[n]=1 for the live nodes and their chains.
sm_needed() {
    local n
    declare -gA SM_NEEDED=()
    for n in "$@"; do
        while [[ -n $n && ${N_ALIVE[n]} == 1 && -z ${SM_NEEDED[$n]:-} ]]; do
            SM_NEEDED[$n]=1
            n=${N_BACK[n]}
        done
    done
}

sm_in_chain() { # NODE TOP: is NODE in TOP's chain?
    local n=$2
    while [[ -n $n ]]; do [[ $n == "$1" ]] && return 0; n=${N_BACK[n]}; done
    return 1
}

# (a snapshot's reference files stay: a create of the same name replaces them)
sm_drop_snap() { # SNAP: remove from the list and the tables
    local s d keep=()
    for s in "${SNAPS[@]}"; do [[ $s == "$1" ]] || keep+=("$s"); done
    SNAPS=("${keep[@]}")
    unset "S_DOM[$1]" "S_DISKS[$1]" "S_RD[$1]" "S_PAR[$1]" "S_CT[$1]"
    for d in $SM_DISKS; do unset "MH[$1 $d]"; done
}

sm_save() { SM_SAVED=$(declare -p N_BACK N_SUF N_ALIVE S_DOM S_DISKS S_RD S_PAR S_CT SNAPS CUR CFG MH); }
sm_restore() { eval "${SM_SAVED//declare -/declare -g -}"; }

# Each sm_m_* applies a command to the model, or sets SM_REFUSE (why the
# design refuses it) and leaves the model as it was.

sm_m_create() { # NAME
    local name=$1 n d suffix
    SM_REFUSE=""
    if sm_is_snap "$name"; then SM_REFUSE="snapshot $name exists"; return; fi
    sm_stem "$CFG"
    suffix=${SM_STEM:+$SM_STEM.}$name
    for n in "${!N_SUF[@]}"; do
        if [[ ${N_SUF[n]} == "$suffix" && ${N_ALIVE[n]} == 1 ]]; then
            SM_REFUSE="overlay $(sm_file "$n" vda) exists"
            return
        fi
    done
    sm_node_new "$suffix" "$CFG"
    S_DOM[$name]=$CFG
    S_DISKS[$name]=$SM_NODE
    S_RD[$name]=""
    S_PAR[$name]=$CUR
    [[ -n $CUR ]] && S_RD[$CUR]=""
    SNAPS+=("$name")
    CUR=$name
    CFG=$SM_NODE
    for d in $SM_DISKS; do
        MH["$name $d"]=${LH[$d]}
        cp --sparse=always "$T/ref/live.$d" "$T/ref/snap.$name.$d"
    done
    SM_USED_NAMES+=" $name"
}

# sm_m_revert NAME|base: SM_NEWNODE is the node of the new overlays (its
# suffix, SM_NEWSTEM.<epoch>, is learnt from the config afterwards).
sm_m_revert() {
    local t=$1 src s roots=() old_cfg=$CFG old_cur=$CUR excl="" n top d
    SM_REFUSE=""
    if [[ $t == base ]]; then
        if [[ -n $CUR ]]; then
            src=$CUR
            while [[ -n ${S_PAR[$src]} ]]; do src=${S_PAR[$src]}; done
        else
            for s in "${SNAPS[@]}"; do [[ -z ${S_PAR[$s]} ]] && roots+=("$s"); done
            if ((${#roots[@]} != 1)); then SM_REFUSE="${#roots[@]} roots and no current snapshot"; return; fi
            src=${roots[0]}
        fi
    else
        sm_is_snap "$t" || { SM_REFUSE="no snapshot $t"; return; }
        src=$t
    fi
    # The old current's <disks> are not needed when they were its live images.
    if [[ -n $old_cur && -z ${S_RD[$old_cur]} ]] && sm_in_chain "${S_DISKS[$old_cur]}" "$old_cfg"; then
        excl=${S_DISKS[$old_cur]}
    fi
    local left=("$old_cfg")
    [[ -n $old_cur ]] && left+=("${S_RD[$old_cur]:-${S_DISKS[$old_cur]}}")
    sm_stem "${S_DOM[$src]}"
    SM_NEWSTEM=$SM_STEM
    sm_node_new "?" "${S_DOM[$src]}"
    SM_NEWNODE=$SM_NODE
    [[ -n $old_cur ]] && S_RD[$old_cur]=""
    if [[ $t != base ]]; then
        sm_kids "$t"
        if ((${#SM_KIDS[@]})); then S_RD[$t]=$SM_NODE; else S_DISKS[$t]=$SM_NODE; fi
        CUR=$t
    else
        CUR=""
    fi
    CFG=$SM_NODE
    # Discard: in each chain being left, the images above the first needed one,
    # unless another image uses one of them (then it and those below it stay).
    roots=("$CFG")
    for s in "${SNAPS[@]}"; do
        roots+=("${S_DOM[$s]}" "${S_RD[$s]}")
        [[ $s == "$old_cur" && ${S_DISKS[$s]} == "$excl" ]] || roots+=("${S_DISKS[$s]}")
    done
    sm_needed "${roots[@]}"
    local -A cand=()
    local chain
    for top in "${left[@]}"; do
        chain=()
        n=$top
        while [[ -n $n && ${N_ALIVE[n]} == 1 && -z ${SM_NEEDED[$n]:-} ]]; do chain+=("$n"); n=${N_BACK[n]}; done
        for n in "${chain[@]}"; do cand[$n]=1; done
    done
    local changed=1 m
    while ((changed)); do
        changed=0
        for m in "${!N_BACK[@]}"; do
            [[ ${N_ALIVE[m]} == 1 && -z ${cand[$m]:-} ]] || continue
            n=${N_BACK[m]}
            while [[ -n $n && -n ${cand[$n]:-} ]]; do unset "cand[$n]"; changed=1; n=${N_BACK[n]}; done
        done
    done
    for n in "${!cand[@]}"; do N_ALIVE[n]=0; done
    for d in $SM_DISKS; do
        cp --sparse=always "$T/ref/snap.$src.$d" "$T/ref/live.$d"
        LH[$d]=${MH["$src $d"]}
    done
}

# sm_m_delete NAME: delete with merges; sets SM_REFUSE or changes the model.
sm_m_delete() {
    local s=$1 f x m p k o n
    SM_REFUSE=""
    sm_is_snap "$s" || { SM_REFUSE="no snapshot $s"; return; }
    p=${S_PAR[$s]}
    sm_kids "$s"
    local kids=("${SM_KIDS[@]}")
    if [[ $s == "$CUR" ]] || ((${#kids[@]})); then
        f=${S_DOM[$s]}
        sm_users "$f"
        if ((${#SM_USERS[@]} == 0)); then SM_REFUSE="nothing uses $s's frozen image"; return; fi
        if ((${#SM_USERS[@]} > 1)); then
            SM_REFUSE="$s's frozen image $(sm_file "$f" vda) has ${#SM_USERS[@]} users: ${SM_USERS[*]}"
            return
        fi
        x=${SM_USERS[0]}
        sm_named "$x" || { SM_REFUSE="$(sm_file "$x" vda) is named by no libvirt file"; return; }
        sm_users "$x"
        for m in "${SM_USERS[@]}"; do N_BACK[m]=$f; done
        N_ALIVE[x]=0
        [[ $CFG == "$x" ]] && CFG=$f
        for o in "${SNAPS[@]}"; do [[ ${S_DOM[$o]} == "$x" ]] && S_DOM[$o]=$f; done
        for k in "${kids[@]}"; do S_PAR[$k]=$p; done
        sm_drop_snap "$s"
        [[ $s != "$CUR" ]] || CUR=$p
    else
        # A non-current leaf: nothing merged. Its leftover <disks> overlay, its
        # frozen image and the images between that and its parent's frozen image
        # go when nothing needs them: not an image outside these (using one as
        # backing file), the config, another snapshot's <domain> or
        # <revertDisks>, the current snapshot's live <disks>. Base images stay.
        local cand=("${S_DISKS[$s]}") roots=("$CFG") pf=""
        f=${S_DOM[$s]}
        cand+=("$f")
        [[ -z $p ]] || pf=${S_DOM[$p]}
        if [[ -n $pf && $f != "$pf" ]] && sm_in_chain "$pf" "$f"; then
            n=${N_BACK[f]}
            while [[ $n != "$pf" ]]; do cand+=("$n"); n=${N_BACK[n]}; done
        fi
        local -A is_cand=()
        for n in "${cand[@]}"; do is_cand[$n]=1; done
        for n in "${!N_ALIVE[@]}"; do
            [[ ${N_ALIVE[n]} == 1 && -z ${is_cand[$n]:-} ]] && roots+=("$n")
        done
        for o in "${SNAPS[@]}"; do
            [[ $o == "$s" ]] && continue
            roots+=("${S_DOM[$o]}" "${S_RD[$o]}")
            [[ $o == "$CUR" && -z ${S_RD[$o]} ]] && roots+=("${S_DISKS[$o]}")
        done
        sm_needed "${roots[@]}"
        for n in "${cand[@]}"; do
            [[ ${N_ALIVE[n]} == 1 && -n ${N_BACK[n]} && -z ${SM_NEEDED[$n]:-} ]] && N_ALIVE[n]=0
        done
        sm_drop_snap "$s"
    fi
    sm_rederive "$p"
}

# sm_rederive P: the design's overlay rule, for a snapshot P that lost a
# child. An overlay of F (P's frozen image) is in use by a child C when it
# is the image directly above F in C's frozen image's chain, by the config
# when it is the one above F in the config's chain and P is current.
# <disks>: kept when it names one a child uses, else the one the oldest such
# child uses (creation time, then name); with no children the live one; a
# non-current leaf keeps it, but its leftover <revertDisks> become <disks>.
# <revertDisks> (P current): the live one when it is not <disks>.
sm_rederive() {
    local p=$1 f live="" first="" inuse="" k u rd
    [[ -n $p ]] && sm_is_snap "$p" || return 0
    sm_kids "$p"
    local kids=("${SM_KIDS[@]}")
    if [[ $p != "$CUR" ]] && ((${#kids[@]} == 0)); then
        if [[ -n ${S_RD[$p]} ]]; then S_DISKS[$p]=${S_RD[$p]}; S_RD[$p]=""; fi
        return 0
    fi
    f=${S_DOM[$p]}
    [[ ${N_ALIVE[f]} == 1 ]] || return 0
    [[ $p != "$CUR" ]] || { sm_over "$CFG" "$f"; live=$SM_OVER; }
    local sorted
    sorted=$(for k in "${kids[@]}"; do printf '%s %s\n' "${S_CT[$k]:-0}" "$k"; done | sort -k1,1n -k2,2)
    while read -r _ k; do
        [[ -n $k ]] || continue
        sm_over "${S_DOM[$k]}" "$f"
        u=$SM_OVER
        [[ -n $u ]] || continue
        [[ $u == "${S_DISKS[$p]}" ]] && inuse=1
        [[ -n $first ]] || first=$u
    done <<<"$sorted"
    if [[ -z $inuse ]]; then
        if [[ -n $first ]]; then
            S_DISKS[$p]=$first
        elif ((${#kids[@]} == 0)) && [[ -n $live ]]; then
            S_DISKS[$p]=$live
        fi
    fi
    if [[ $p == "$CUR" ]]; then
        rd=${live:-${S_RD[$p]:-${S_DISKS[$p]}}}
        [[ $rd == "${S_DISKS[$p]}" ]] && rd=""
        S_RD[$p]=$rd
    fi
}

# sm_over TOP F: SM_OVER, the live image directly above F in TOP's chain ("" if none).
sm_over() {
    local n=$1
    SM_OVER=""
    while [[ -n $n ]]; do
        if [[ ${N_BACK[n]} == "$2" && ${N_ALIVE[n]} == 1 ]]; then SM_OVER=$n; return 0; fi
        n=${N_BACK[n]}
    done
    return 0
}

sm_m_delete_metadata() { # NAME
    local s=$1 k
    SM_REFUSE=""
    sm_is_snap "$s" || { SM_REFUSE="no snapshot $s"; return; }
    local p=${S_PAR[$s]}
    sm_kids "$s"
    for k in "${SM_KIDS[@]}"; do S_PAR[$k]=$p; done
    [[ $s != "$CUR" ]] || CUR=$p
    sm_drop_snap "$s"
    sm_rederive "$p"
}

# sm_m_commit BASE TOP: one merge per disk (the design's commit): L is the
# image using TOP's frozen image and everything below it down to BASE's image
# (the frozen image of the range's first snapshot), all merged into BASE's
# image. Usually the same files as deleting TOP, its parent, ... one by one;
# not when an image nothing names any more (delete --metadata) lies between.
sm_m_commit() {
    local base=$1 top=$2 s range=() b x n m i k newbase
    SM_REFUSE=""
    sm_is_snap "$top" || { SM_REFUSE="no snapshot $top"; return; }
    [[ $base == base ]] || sm_is_snap "$base" || { SM_REFUSE="no snapshot $base"; return; }
    s=$top
    while [[ -n $s && $s != "$base" ]]; do range+=("$s"); s=${S_PAR[$s]}; done
    if [[ $base != base && $s != "$base" ]] || ((${#range[@]} == 0)); then
        SM_REFUSE="$base is not an ancestor of $top"
        return
    fi
    sm_kids "$top"
    local kids=("${SM_KIDS[@]}")
    if [[ $top != "$CUR" ]] && ((${#kids[@]} == 0)); then SM_REFUSE="$top is a non-current leaf"; return; fi
    b=${S_DOM[${range[-1]}]}
    sm_users "${S_DOM[$top]}"
    if ((${#SM_USERS[@]} != 1)); then
        SM_REFUSE="$top's frozen image $(sm_file "${S_DOM[$top]}" vda) has ${#SM_USERS[@]} users: ${SM_USERS[*]}"
        return
    fi
    x=${SM_USERS[0]}
    sm_named "$x" || { SM_REFUSE="$(sm_file "$x" vda) is named by no libvirt file"; return; }
    local l=()
    n=$x
    while [[ -n $n && $n != "$b" ]]; do l+=("$n"); n=${N_BACK[n]}; done
    [[ $n == "$b" ]] || { SM_REFUSE="BASE's image is not below TOP's (model)"; return; }
    # Every image of L below its top, and BASE's image: used by the next one up only.
    local below=("${l[@]:1}" "$b")
    for ((i = 0; i < ${#below[@]}; i++)); do
        sm_users "${below[i]}"
        if [[ ${#SM_USERS[@]} != 1 || ${SM_USERS[0]} != "${l[i]}" ]]; then
            SM_REFUSE="$(sm_file "${below[i]}" vda) is used by ${SM_USERS[*]}"
            return
        fi
    done
    # No snapshot outside the range has its state in one of them.
    local -A in_range=() in_below=()
    for s in "${range[@]}"; do in_range[$s]=1; done
    for n in "${below[@]}"; do in_below[$n]=1; done
    for s in "${SNAPS[@]}"; do
        if [[ -z ${in_range[$s]:-} && -n ${in_below[${S_DOM[$s]}]:-} ]]; then
            SM_REFUSE="snapshot $s's state is in $(sm_file "${S_DOM[$s]}" vda)"
            return
        fi
    done
    sm_users "$x"
    for m in "${SM_USERS[@]}"; do N_BACK[m]=$b; done
    local -A gone=()
    for n in "${l[@]}"; do N_ALIVE[n]=0; gone[$n]=1; done
    [[ -z ${gone[$CFG]:-} ]] || CFG=$b
    for s in "${SNAPS[@]}"; do [[ -z ${gone[${S_DOM[$s]}]:-} ]] || S_DOM[$s]=$b; done
    newbase=$base
    [[ $base != base ]] || newbase=""
    for k in "${kids[@]}"; do S_PAR[$k]=$newbase; done
    local was_cur=""
    [[ -z $CUR || -z ${in_range[$CUR]:-} ]] || was_cur=1
    for s in "${range[@]}"; do sm_drop_snap "$s"; done
    [[ -z $was_cur ]] || CUR=$newbase
    sm_rederive "$newbase"
}

sm_model_dump() {
    local n s
    echo "model: current=${CUR:-none} config=node $CFG"
    for n in "${!N_BACK[@]}"; do
        echo "  node $n: suffix ${N_SUF[n]} backing ${N_BACK[n]:-none} $([[ ${N_ALIVE[n]} == 1 ]] && echo alive || echo gone)"
    done
    for s in "${SNAPS[@]}"; do
        echo "  snapshot $s: parent ${S_PAR[$s]:-none} domain ${S_DOM[$s]} disks ${S_DISKS[$s]} revertDisks ${S_RD[$s]:-none}"
    done
}

# --- oracles: the real state, memoised by file content --------------------------
# A result that is a function of a file's bytes (qemu-img info/check, schema
# validation, XML fields) or of the bytes of a whole chain (the guest
# content) is computed once per content.
declare -A FH=() SM_INFO_MEMO=() SM_CONT_MEMO=() SM_XML_MEMO=() SM_VALID_MEMO=() SM_CHECK_MEMO=()

# sm_scan: FH[logical path] = sha256 of every file under R.
sm_scan() {
    local line
    FH=()
    while IFS= read -r line; do
        FH[${line:66}]=${line:0:64}
    done < <(cd "$R" && find . -type f -printf '%P\0' | xargs -0 -r sha256sum | sed 's|  |  /|')
}

# sm_backing PATH: SM_BK, SM_BKF (qemu-img info of one qcow2 file).
sm_backing() {
    local h=${FH[$1]} info
    if [[ -z ${SM_INFO_MEMO[$h]+x} ]]; then
        info=$(qemu-img info -U -f qcow2 --output=json "$R$1" 2>&1) || { SM_ERR="qemu-img info $1: $info"; return 1; }
        local bf="" bfmt=""
        [[ $info =~ \"backing-filename\":\ \"([^\"]*)\" ]] && bf=${BASH_REMATCH[1]}
        [[ $info =~ \"backing-filename-format\":\ \"([^\"]*)\" ]] && bfmt=${BASH_REMATCH[1]}
        SM_INFO_MEMO[$h]="$bf|$bfmt"
    fi
    SM_BK=${SM_INFO_MEMO[$h]%|*}
    SM_BKF=${SM_INFO_MEMO[$h]#*|}
}

# sm_spec PATH FMT: SM_SPEC, a json: filename opening the chain with every
# link under R, and SM_KEY, the chain's files and their contents.
sm_spec() {
    local path=$1 fmt=$2 depth=0 open="" close=""
    SM_KEY=""
    while :; do
        [[ -n ${FH[$path]:-} ]] || { SM_ERR="$path does not exist"; return 1; }
        SM_KEY+="$path:$fmt:${FH[$path]};"
        if [[ $fmt == qcow2 ]]; then
            sm_backing "$path" || return 1
            open+="{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$R$path\"},\"backing\":"
            close+="}"
            if [[ -z $SM_BK ]]; then open+=null; break; fi
            [[ $SM_BK == /* ]] || SM_BK="$(dirname "$path")/$SM_BK"
            path=$SM_BK
            fmt=${SM_BKF:-raw}
        else
            open+="{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"$R$path\"}}"
            break
        fi
        ((++depth < 64)) || { SM_ERR="chain deeper than 64 at $path"; return 1; }
    done
    SM_SPEC="json:$open$close"
}

# sm_contents LABEL PATH FMT ...: SM_GOT[LABEL] = sha256 of what the guest
# reads through that chain (qemu-img convert), or why it cannot be read.
sm_contents() {
    local new=() i=0 label out line
    declare -gA SM_GOT=()
    local -A want_key=()
    while (($#)); do
        label=$1
        if ! sm_spec "$2" "$3"; then
            SM_GOT[$label]="no chain: $SM_ERR"
        elif [[ -n ${SM_CONT_MEMO[$SM_KEY]:-} ]]; then
            SM_GOT[$label]=${SM_CONT_MEMO[$SM_KEY]}
        else
            out=$T/content.$((i++))
            if qemu-img convert -U -O raw "$SM_SPEC" "$out" 2>"$out.err"; then
                new+=("$out")
                want_key[$out]=$SM_KEY
                SM_GOT[$label]="@$out"
            else
                SM_GOT[$label]="unreadable: $(head -1 "$out.err")"
            fi
        fi
        shift 3
    done
    ((${#new[@]})) || return 0
    local -A sum=()
    while IFS= read -r line; do sum[${line:66}]=${line:0:64}; done < <(sha256sum "${new[@]}")
    for label in "${!SM_GOT[@]}"; do
        out=${SM_GOT[$label]}
        [[ $out == @* ]] || continue
        out=${out#@}
        SM_GOT[$label]=${sum[$out]}
        SM_CONT_MEMO[${want_key[$out]}]=${sum[$out]}
    done
    rm -f "$T"/content.*
}

# sm_xml PATH: SM_X, the fields of a config or snapshot file, '|'-separated:
# snapshot name, parent, active, then source and format of vda vdb vdc sda
# in its domain, then the <disks> and <revertDisks> sources of vda vdb vdc,
# then the creation time.
sm_xml() {
    local h=${FH[$1]} xp="concat(" t dom
    if [[ -z ${SM_XML_MEMO[$h]+x} ]]; then
        if [[ $1 == "$SNAP_CFG/"* ]]; then dom=/domain; else dom=/domainsnapshot/domain; fi
        xp+="string(/domainsnapshot/name),'|',string(/domainsnapshot/parent/name),'|',string(/domainsnapshot/active)"
        for t in vda vdb vdc sda; do
            xp+=",'|',string($dom/devices/disk[target/@dev='$t']/source/@file)"
            xp+=",'|',string($dom/devices/disk[target/@dev='$t']/driver/@type)"
        done
        for t in vda vdb vdc; do xp+=",'|',string(/domainsnapshot/disks/disk[@name='$t']/source/@file)"; done
        for t in vda vdb vdc; do xp+=",'|',string(/domainsnapshot/revertDisks/disk[@name='$t']/source/@file)"; done
        xp+=",'|',string(/domainsnapshot/creationTime)"
        SM_XML_MEMO[$h]=$(xmllint --xpath "$xp)" "$R$1" 2>&1) || SM_XML_MEMO[$h]="unparsable"
    fi
    SM_X=${SM_XML_MEMO[$h]}
}

# sm_validate: SM_BAD, one line per libvirt file the schema rejects. What
# virt-xml-validate runs (xmllint --relaxng with libvirt's schema), one
# xmllint per schema for all the files not seen before; files that record a
# branch against 9.0's schema plus <revertDisks> (lib/snap.sh).
sm_validate() {
    local f p h line
    local -a cfg=() snap=() rsnap=()
    SM_BAD=""
    for p in "${!FH[@]}"; do
        [[ $p == "$SNAP_CFG/tvm.xml" || $p == "$SNAP_DIR/tvm/"* ]] || continue
        h=${FH[$p]}
        [[ -n ${SM_VALID_MEMO[$h]+x} ]] && continue
        if [[ $p == "$SNAP_CFG/"* ]]; then
            cfg+=("$R$p")
        elif grep -q '<revertDisks>' "$R$p"; then
            rsnap+=("$R$p")
        else
            snap+=("$R$p")
        fi
    done
    sm_validate_with /usr/share/libvirt/schemas/domain.rng "${cfg[@]}"
    sm_validate_with /usr/share/libvirt/schemas/domainsnapshot.rng "${snap[@]}"
    sm_validate_with "$(snap_schema_dir)/domainsnapshot.rng" "${rsnap[@]}"
    for p in "${!FH[@]}"; do
        [[ $p == "$SNAP_CFG/tvm.xml" || $p == "$SNAP_DIR/tvm/"* ]] || continue
        [[ ${SM_VALID_MEMO[${FH[$p]}]} == ok ]] || SM_BAD+="$p does not validate: ${SM_VALID_MEMO[${FH[$p]}]}"$'\n'
    done
}
sm_validate_with() {
    local schema=$1 out f
    shift
    (($#)) || return 0
    out=$(xmllint --noout --relaxng "$schema" "$@" 2>&1) || true
    for f in "$@"; do
        if grep -qxF "$f validates" <<<"$out"; then
            SM_VALID_MEMO[${FH[${f#$R}]}]=ok
        else
            SM_VALID_MEMO[${FH[${f#$R}]}]=$(grep -F "$f" <<<"$out" | grep -v ' validates$' | head -2 | tr '\n' ' ' || true)
        fi
    done
}

# sm_check_images: SM_BAD, one line per qcow2 image in the image directory
# that qemu-img check does not pass (its metadata alone, backing: null).
sm_check_images() {
    local p h
    SM_BAD=""
    for p in "${!FH[@]}"; do
        [[ $p == "$SNAP_IMG/"* ]] || continue
        h=${FH[$p]}
        if [[ -z ${SM_CHECK_MEMO[$h]+x} ]]; then
            if [[ $(head -c 4 "$R$p" | od -An -tx1 | tr -d ' \n') == 514649fb ]]; then
                SM_CHECK_MEMO[$h]=$(check_image "$R$p")
            else
                SM_CHECK_MEMO[$h]=""
            fi
        fi
        [[ -z ${SM_CHECK_MEMO[$h]} ]] || SM_BAD+="${SM_CHECK_MEMO[$h]}"$'\n'
    done
}
