#!/usr/bin/env bash
# Crash consistency of delete and commit: a fault at each file-changing step
# that EXTSNAP_FAULT_TRACE lists (journal writes, every disk's merge, the
# rebases, the XML files, the deletes), as a stop (power cut, exit 86) and
# as an I/O error, on a fresh copy of the domain each time; then 'recover'
# or the next extsnap command (which must recover first). The domain must
# be wholly before or wholly after the operation: config, metadata, image
# files, the live guest content and the content at every remaining
# snapshot (qemu-img convert); no image corrupt (leaked clusters from a
# stopped merge are allowed: qemu-img check exit 3); 'extsnap verify' exits
# 0. Points are sampled when there are many (every phase is kept: see
# pick_points), so the script stays within about two minutes.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap_ops.sh"
need_cmd qemu-img qemu-io virt-xml-validate xmllint jq

# The base: s1, s2, s3 with writes to every disk in between (several
# clusters per overlay, so each merge has several steps).
B=$T/base
R=$B
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

# state W: everything that must be wholly before or wholly after. (s1's
# saved images are the original images, which none of the operations
# writes; the check of the others covers the merges.)
state() {
    local w=$1 f s
    crash_state "$w"
    for f in "$w$SNAP_DIR"/tvm/*.xml; do
        [[ -e $f ]] || continue
        s=$(basename "$f" .xml)
        [[ $s == s1 ]] || echo "at $s: $(saved_sums "$w" tvm "$s" "vda vdb vdc")"
    done
}

# pick_points TRACE BUDGET: about BUDGET of the mutate steps: the first step
# of every phase (a journal write, one image's merge, rebase or deletion,
# the XML files), the last step of every merge, and every k-th step.
pick_points() {
    grep '^mutate ' "$1" | awk -v budget="$2" '
        function phase(op, p) {
            if (p ~ /extsnap\.journal/) return "journal"
            if (op == "fsync-dir") return last
            if (p ~ /\/etc\/libvirt\// || p ~ /\/qemu\/snapshot/) return "xml"
            return "image " p
        }
        { n[NR] = $2; ph[NR] = phase($3, $4); last = ph[NR] }
        END {
            for (i = 1; i <= NR; i++) {
                must[i] = ph[i] != ph[i - 1] || (ph[i] != ph[i + 1] && ph[i] == ph[i - 1])
                m += must[i]
            }
            k = budget > m ? int((NR + budget - m - 1) / (budget - m)) : NR + 1
            for (i = 1; i <= NR; i++)
                if (must[i] || i % k == 0) print n[i]
        }'
}

# fault_case LABEL STOPS EIOS OP...: about STOPS stop points and EIOS
# eio points of 'extsnap OP'.
fault_case() {
    local label=$1 stops=$2 eios=$3 W=$T/w before after n rc out got action
    shift 3
    rm -rf "$W"
    cp -a "$B" "$W"
    R=$W
    before=$(state "$W")
    EXTSNAP_FAULT_TRACE=$T/trace x "$@" -q
    after=$(state "$W")
    [[ $before != "$after" ]] || fail "$label: the operation changed nothing?"
    full_check "$label: reference run" tvm
    local points epoints
    points=$(pick_points "$T/trace" "$stops")
    epoints=$(pick_points "$T/trace" "$eios")
    grep -q '^mutate .* pwrite .*/vd[abc]\.s[12]$' "$T/trace" ||
        fail "$label: the trace shows no merge writes"
    echo "$label: $(grep -c '^mutate ' "$T/trace") fault points, $(wc -w <<<"$points") stops and $(wc -w <<<"$epoints") I/O errors tried"
    rm -f "$T/trace"
    local k=0
    for action in stop eio; do
        for n in $([[ $action == stop ]] && echo "$points" || echo "$epoints"); do
            k=$((k + 1))
            rm -rf "$W"
            cp -a "$B" "$W"
            R=$W
            rc=0
            EXTSNAP_FAULT=mutate:$n:$action x "$@" -q >/dev/null 2>"$T/err" || rc=$?
            if [[ $action == stop ]] && ((rc != 86)); then
                fail "$label: mutate:$n:stop: exit $rc, not the fault's 86"
            elif [[ $action == eio ]] && ((rc != 1)); then
                fail "$label: mutate:$n:eio: exit $rc, not 1 ($(cat "$T/err"))"
            fi
            if ((k % 3 == 0)); then
                # The next command recovers first (and then refuses: no such snapshot).
                out=$(x delete tvm no-such-snapshot -q 2>&1) || true
                [[ -e $W$SNAP_DIR/tvm.extsnap.journal ]] &&
                    fail "$label: $n:$action: the next command left the journal: $out"
            else
                out=$(x recover tvm -q 2>&1) || fail "$label: $n:$action: recover failed: $out"
            fi
            got=$(state "$W")
            ES_CHECKS=$((ES_CHECKS + 1))
            if [[ $got != "$before" && $got != "$after" ]]; then
                fail "$label: mutate:$n:$action: neither before nor after (run: $(head -c 300 "$T/err"))"
                diff <(echo "$before") <(echo "$got") | head -8 >&2 || true
                diff <(echo "$after") <(echo "$got") | head -8 >&2 || true
            fi
            check_eq "$label: mutate:$n:$action: no image corrupt" "" "$(check_images_no_corruption "$W")"
            rc=0
            out=$(x verify tvm 2>&1) || rc=$?
            check_eq "$label: mutate:$n:$action: verify ($out)" 0 "$rc"
            check_eq "$label: mutate:$n:$action: nothing temporary left" "" \
                "$(cd "$W" && find . \( -name '*.tmp' -o -name '*.new' -o -name '*.journal' \) | sort)"
        done
    done
}

fault_case "delete s2 (non-leaf: merge)" 30 10 delete tvm s2
fault_case "commit s1 s3 (two snapshots at once)" 30 10 commit tvm s1 s3
fault_case "delete s3 (current leaf: merge)" 12 5 delete tvm s3
finish
