# shellcheck shell=bash
# Crash sweeps (t_snap_crash_*.sh, t_snap_faults.sh): an extsnap command is
# stopped at EVERY file-system change it makes (EXTSNAP_FAULT=mutate:N:stop,
# N = 1 .. all of them, and N = one past the last: the run completes), on a
# fresh copy of the domain each time; then `extsnap recover` (or the next
# command) runs, and nothing may be lost:
#   - the domain is exactly as before or exactly as after the command: the
#     config, every snapshot file, the set of files under the root (lock
#     file and journal included: none may be left), the guest content of
#     every disk of the live config and of every snapshot (qemu-img convert
#     of each chain, hashed);
#   - every qcow2 image passes qemu-img check (exit 0: no leak either);
#   - extsnap verify exits 0; nothing temporary is left.
# I/O errors are tried at every third point (the command must undo itself).
# Source after lib/common.sh, lib/snap.sh.
#
# To stay within time the oracle caches what it learnt about a file by its
# path under the root, mtime (ns) and size: each iteration starts from a copy
# (cp -a keeps mtimes), so only the files the command wrote (a new mtime) are
# looked at again (qemu-img info, qemu-img check), and only the chains with
# such a file are read again (qemu-img convert).

SWEEP_CACHE=$T/sweep-cache
mkdir -p "$SWEEP_CACHE"

# sweep_keys W: "relpath mtime size" of every file under W into SWEEP_KEY.
declare -A SWEEP_KEY
sweep_keys() {
    local rel mt sz
    SWEEP_KEY=()
    while read -r rel mt sz; do
        SWEEP_KEY[/$rel]="${rel//\//_}@$mt@$sz"
    done < <(find "$1" -type f -printf '%P %T@ %s\n')
}

# sweep_info W LOGICAL: "backing-name backing-format" of a qcow2 image ("" if
# none), cached by the file's key.
sweep_info() {
    local w=$1 p=$2 c info bf="" bfmt=""
    c=$SWEEP_CACHE/info.${SWEEP_KEY[$p]:-missing}
    if [[ ! -f $c ]]; then
        info=$(qemu-img info -U -f qcow2 --output=json "$w$p" 2>/dev/null) || { echo "unreadable"; return; }
        [[ $info =~ \"backing-filename\":\ \"([^\"]*)\" ]] && bf=${BASH_REMATCH[1]}
        [[ $info =~ \"backing-filename-format\":\ \"([^\"]*)\" ]] && bfmt=${BASH_REMATCH[1]}
        [[ -z $bf || $bf == /* ]] || bf="$(dirname "$p")/$bf"
        echo "$bf ${bfmt:-raw}" >"$c"
    fi
    local line
    IFS= read -r line <"$c"
    echo "$line"
}

# sweep_view W LOGICAL FMT: sha256 of what a guest reads from that image and
# its chain; cached by the keys of every file of the chain.
sweep_view() {
    local w=$1 p=$2 chain="" back=null q=$2 qf=$3 depth=0 info tmp c links=()
    [[ -n ${SWEEP_KEY[$p]:-} ]] || { echo "missing"; return; }
    while :; do
        chain+="${SWEEP_KEY[$q]:-missing}:$qf;"
        links+=("$q $qf")
        [[ $qf == qcow2 && -n ${SWEEP_KEY[$q]:-} ]] || break
        info=$(sweep_info "$w" "$q")
        [[ $info == unreadable ]] && { echo "unreadable"; return; }
        [[ $info == " "* ]] && break
        q=${info% *} qf=${info##* }
        depth=$((depth + 1))
        ((depth < 32)) || { echo "loop"; return; }
    done
    c=$SWEEP_CACHE/view.$(sha256sum <<<"$chain" | cut -c1-40)
    if [[ ! -f $c ]]; then
        local i l lp lf
        for ((i = ${#links[@]} - 1; i >= 0; i--)); do
            l=${links[$i]} lp=${l% *} lf=${l##* }
            if [[ $lf == qcow2 ]]; then
                back='{"driver":"qcow2","file":{"driver":"file","filename":"'"$w$lp"'"},"backing":'"$back"'}'
            else
                back='{"driver":"raw","file":{"driver":"file","filename":"'"$w$lp"'"}}'
            fi
        done
        tmp=$(mktemp "$T/view.XXXXXX")
        if qemu-img convert -U -O raw "json:$back" "$tmp" 2>/dev/null; then
            sha256sum <"$tmp" | cut -c1-16 >"$c"
        else
            echo "unreadable" >"$c"
        fi
        rm -f "$tmp"
    fi
    local h
    read -r h <"$c"
    echo "$h"
}

# sweep_disks FILE: "dev fmt source" of every disk of the (saved) domain.
sweep_disks() {
    awk '
        /<devices>/ { dev = 1 } /<\/devices>/ { dev = 0 }
        dev && /<disk / { d = 1; t = ""; f = ""; s = "" }
        d && /<driver / && match($0, /type=.[a-z0-9]+/) { f = substr($0, RSTART + 6, RLENGTH - 6) }
        d && /<source / && match($0, /file=.[^"\x27]+/) { s = substr($0, RSTART + 6, RLENGTH - 6) }
        d && /<target / && match($0, /dev=.[a-z0-9]+/) { t = substr($0, RSTART + 5, RLENGTH - 5) }
        d && /<\/disk>/ { d = 0; print t, f, s }' "$1"
}

# sweep_guest W XMLFILE: "vda=H vdb=H ..." for the disks that XML names.
sweep_guest() {
    local w=$1 t f s out=""
    while read -r t f s; do
        [[ -n $s ]] || continue
        out+="$t=$(sweep_view "$w" "$s" "$f") "
    done < <(sweep_disks "$2")
    echo "${out% }"
}

# sweep_state W DOMAIN: everything that must be wholly before or after.
sweep_state() {
    local w=$1 d=$2 f
    sweep_keys "$w"
    echo "config:"
    sed -E -e 's/\.[0-9]{10}\b/.EPOCH/g' "$w$SNAP_CFG/$d.xml"
    echo "live: $(sweep_guest "$w" "$w$SNAP_CFG/$d.xml")"
    for f in "$w$SNAP_DIR/$d"/*.xml; do
        [[ -e $f ]] || continue
        echo "snapshot file $(basename "$f"):"
        sed -E -e 's/\.[0-9]{10}\b/.EPOCH/g' -e 's/<creationTime>[0-9]+</<creationTime>T</' \
            -e "s/creationTime='[0-9]+'/creationTime='T'/" "$f"
        echo "at $(basename "$f" .xml): $(sweep_guest "$w" "$f")"
    done
    echo "files:"
    (cd "$w" && find . -type f | sort | sed -E 's/\.[0-9]{10}$/.EPOCH/')
    # A script's own part of the state (t_snap_crash_vmstate.sh: the NVRAM).
    if declare -F sweep_state_extra >/dev/null; then sweep_state_extra "$w" "$d"; fi
}

# sweep_check_images W: qemu-img check (exit 0) of every qcow2 file, cached
# ("-" for a file that is no qcow2 image).
sweep_check_images() {
    local w=$1 p c rc
    for p in "${!SWEEP_KEY[@]}"; do
        c=$SWEEP_CACHE/check.${SWEEP_KEY[$p]}
        if [[ ! -f $c ]]; then
            rc=-
            if [[ $(head -c 4 "$w$p" | od -An -tx1 | tr -d ' ') == 514649fb ]]; then
                rc=0
                qemu-img check -U -q "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$w$p\"},\"backing\":null}" \
                    >/dev/null 2>&1 || rc=$?
            fi
            echo "$rc" >"$c"
        fi
        read -r rc <"$c"
        [[ $rc == 0 || $rc == - ]] || echo "qemu-img check $p: exit $rc"
    done
}

# sweep_after_checks LABEL W DOMAIN: images clean, verify clean, nothing
# temporary left.
sweep_after_checks() {
    local label=$1 w=$2 d=$3 out rc=0
    sweep_keys "$w"
    check_eq "$label: qemu-img check of every image" "" "$(sweep_check_images "$w")"
    out=$("$EXTSNAP" verify "$d" --root "$w" 2>&1) || rc=$?
    check_eq "$label: extsnap verify ($out)" 0 "$rc"
    check_eq "$label: nothing temporary left" "" \
        "$(cd "$w" && find . \( -name '*.tmp' -o -name '*.new' -o -name '*.journal' -o -name '*.extsnap.lock' \
            -o -name '*.extsnap-copy' -o -name '*.extsnap-tmp' -o -name '*.extsnap-old' \) | sort)"
}

SWEEP_TOTAL=0

# sweep_case B DOMAIN LABEL OP...: the sweep described above, on copies of B.
# SWEEP_NEXT (optional): a command run instead of recover after every fifth
# stop; it must recover first and leave the same state recover would.
# SWEEP_MATCH (optional, an awk regex over "OP PATH" of the trace): stop only
# at the points it matches (and past the last), and inject I/O errors only
# where SWEEP_EIO_MATCH (likewise) matches: a sweep of one part of a long
# operation. sweep_recover takes SWEEP_MATCH too.
sweep_case() {
    local B=$1 d=$2 label=$3
    shift 3
    local W=$T/w before after n max rc out got action pts=0 t0=$SECONDS
    rm -rf "$W" && cp -a "$B" "$W"
    before=$(sweep_state "$W" "$d")
    rm -f "$T/trace"
    EXTSNAP_FAULT_TRACE=$T/trace "$EXTSNAP" "$@" --root "$W" -q ||
        { fail "$label: the reference run failed"; return; }
    after=$(sweep_state "$W" "$d")
    [[ $before != "$after" ]] || fail "$label: the operation changed nothing?"
    sweep_after_checks "$label: reference run" "$W" "$d"
    max=$(grep -c '^mutate ' "$T/trace")
    ((max > 5)) || fail "$label: only $max fault points traced"
    cp "$T/trace" "$T/trace.$label"
    local only="" eio_only=""
    if [[ -n ${SWEEP_MATCH:-} ]]; then
        only=" $(awk -v re="$SWEEP_MATCH" '$1 == "mutate" && ($3 " " $4) ~ re { print $2 }' "$T/trace" | tr '\n' ' ') "
        eio_only=" $(awk -v re="${SWEEP_EIO_MATCH:-^$}" '$1 == "mutate" && ($3 " " $4) ~ re { print $2 }' "$T/trace" | tr '\n' ' ') "
        [[ $only != "  " ]] || fail "$label: SWEEP_MATCH matched no point"
    fi
    for action in stop eio; do
        for ((n = 1; n <= max + 1; n++)); do
            if [[ -n $only ]]; then
                if [[ $action == stop ]]; then
                    ((n > max)) || [[ $only == *" $n "* ]] || continue
                else
                    [[ $eio_only == *" $n "* ]] || continue
                fi
            fi
            [[ -z $only && $action == eio ]] && ((n % 3 != 1 && n != max)) && continue
            ((n <= max)) || [[ $action == stop ]] || continue
            rm -rf "$W" && cp -a "$B" "$W"
            rc=0
            EXTSNAP_FAULT=mutate:$n:$action "$EXTSNAP" "$@" --root "$W" -q >/dev/null 2>"$T/err" || rc=$?
            local op
            op=$(awk -v n="$n" '$1 == "mutate" && $2 == n { print $3, $4 }' "$T/trace")
            if ((n > max)); then
                ((rc == 0)) || fail "$label: past the last point: exit $rc ($(cat "$T/err"))"
            elif [[ $action == stop ]]; then
                ((rc == 86)) || fail "$label: mutate:$n:stop ($op): exit $rc, not the fault's 86"
            elif [[ $op == "unlink "*.extsnap.lock ]]; then
                # The lock file's removal fails after the work is done: not fatal.
                ((rc == 0)) || fail "$label: mutate:$n:eio ($op): exit $rc, not 0"
            else
                ((rc == 1)) || fail "$label: mutate:$n:eio ($op): exit $rc, not 1 ($(cat "$T/err"))"
            fi
            if [[ $action == stop && -n ${SWEEP_NEXT:-} ]] && ((n % 5 == 3)); then
                if [[ -e $W$SNAP_DIR/$d.extsnap.journal ]]; then
                    rc=0
                    "$EXTSNAP" refresh "$d" --dry-run --root "$W" >/dev/null 2>"$T/err2" || rc=$?
                    if ((rc != 1)) || ! grep -q "recover" "$T/err2"; then
                        fail "$label: $n:stop: a dry run ignored the pending journal ($(cat "$T/err2"))"
                    fi
                fi
                local had_journal=no
                [[ -e $W$SNAP_DIR/$d.extsnap.journal ]] && had_journal=yes
                # shellcheck disable=SC2086 # (words: a command line)
                out=$("$EXTSNAP" $SWEEP_NEXT --root "$W" 2>&1) || true
                [[ $had_journal == no ]] || grep -q "interrupted operation first" <<<"$out" ||
                    fail "$label: $n:stop: '$SWEEP_NEXT' did not report its recovery: $out"
            else
                out=$("$EXTSNAP" recover "$d" --root "$W" -q 2>&1) ||
                    fail "$label: mutate:$n:$action ($op): recover failed: $out"
            fi
            got=$(sweep_state "$W" "$d")
            ES_CHECKS=$((ES_CHECKS + 1))
            if [[ $got != "$before" && $got != "$after" ]]; then
                fail "$label: mutate:$n:$action ($op): neither before nor after (run: $(head -c 300 "$T/err"); then: $out)"
                diff <(echo "$before") <(echo "$got") | head -8 >&2 || true
                diff <(echo "$after") <(echo "$got") | head -8 >&2 || true
            fi
            sweep_after_checks "$label: mutate:$n:$action ($op)" "$W" "$d"
            [[ $action == stop ]] && pts=$((pts + 1))
        done
    done
    SWEEP_TOTAL=$((SWEEP_TOTAL + pts))
    echo "$label: $max mutate points; stopped at ${only:+the chosen }$pts (the last one past them), $((SECONDS - t0)) s"
}

# sweep_recover B DOMAIN LABEL K OP...: `extsnap OP` stopped at its K-th
# mutate point leaves a journal; `recover` itself is then stopped at every
# one of its points (and past the last), and a second `recover` must bring
# the domain to the before or the after state of OP, with the checks above.
sweep_recover() {
    local B=$1 d=$2 label=$3 k=$4
    shift 4
    local W=$T/w S=$T/stopped before after n max rc out got pts=0 t0=$SECONDS
    rm -rf "$W" && cp -a "$B" "$W"
    before=$(sweep_state "$W" "$d")
    "$EXTSNAP" "$@" --root "$W" -q || { fail "$label: the reference run failed"; return; }
    after=$(sweep_state "$W" "$d")
    rm -rf "$S" && cp -a "$B" "$S"
    rc=0
    EXTSNAP_FAULT=mutate:$k:stop "$EXTSNAP" "$@" --root "$S" -q >/dev/null 2>&1 || rc=$?
    ((rc == 86)) || fail "$label: the stop at $k: exit $rc"
    [[ -e $S$SNAP_DIR/$d.extsnap.journal ]] || fail "$label: the stop at $k left no journal"
    rm -rf "$W" && cp -a "$S" "$W"
    rm -f "$T/rtrace"
    EXTSNAP_FAULT_TRACE=$T/rtrace "$EXTSNAP" recover "$d" --root "$W" -q ||
        fail "$label: the reference recover failed"
    max=$(grep -c '^mutate ' "$T/rtrace")
    ((max > 3)) || fail "$label: recover has only $max fault points"
    local only=""
    [[ -z ${SWEEP_MATCH:-} ]] ||
        only=" $(awk -v re="$SWEEP_MATCH" '$1 == "mutate" && ($3 " " $4) ~ re { print $2 }' "$T/rtrace" | tr '\n' ' ') "
    for ((n = 1; n <= max + 1; n++)); do
        [[ -z $only ]] || ((n > max)) || [[ $only == *" $n "* ]] || continue
        rm -rf "$W" && cp -a "$S" "$W"
        rc=0
        EXTSNAP_FAULT=mutate:$n:stop "$EXTSNAP" recover "$d" --root "$W" -q >/dev/null 2>"$T/err" || rc=$?
        if ((n <= max)); then
            ((rc == 86)) || fail "$label: recover mutate:$n:stop: exit $rc, not 86"
        else
            ((rc == 0)) || fail "$label: recover past its last point: exit $rc"
        fi
        out=$("$EXTSNAP" recover "$d" --root "$W" -q 2>&1) ||
            fail "$label: recover after recover stopped at $n: $out"
        got=$(sweep_state "$W" "$d")
        ES_CHECKS=$((ES_CHECKS + 1))
        if [[ $got != "$before" && $got != "$after" ]]; then
            fail "$label: recover stopped at $n: neither before nor after ($out)"
            diff <(echo "$before") <(echo "$got") | head -8 >&2 || true
            diff <(echo "$after") <(echo "$got") | head -8 >&2 || true
        fi
        sweep_after_checks "$label: recover stopped at $n" "$W" "$d"
        pts=$((pts + 1))
    done
    SWEEP_TOTAL=$((SWEEP_TOTAL + pts))
    echo "$label: recover has $max mutate points; stopped at ${only:+the chosen }$pts (the last one past them), $((SECONDS - t0)) s"
}

# faults_base B: domain tvm with s1, s2, s3 and writes to every disk in
# between (several clusters per overlay, so each merge has several steps):
# the base of the delete/commit sweeps (t_snap_faults*.sh).
faults_base() {
    # shellcheck disable=SC2034 # (R: the root x works on)
    local B=$1 R=$1
    snap_make_tvm "$B"
    x create tvm s1 -q
    guest_write "$B" tvm vda 0x11 0 192k
    guest_write "$B" tvm vdc 0x12 1M 64k
    x create tvm s2 -q
    guest_write "$B" tvm vda 0x21 64k 128k
    guest_write "$B" tvm vdb 0x22 0 64k
    guest_write "$B" tvm vdb 0x23 2M 64k
    guest_write "$B" tvm vdc 0x24 0 128k
    x create tvm s3 -q
    guest_write "$B" tvm vda 0x31 3M 64k
    guest_write "$B" tvm vdb 0x32 1M 128k
    guest_write "$B" tvm vdc 0x33 2M 64k
}
