#!/usr/bin/env bash
# Every message that tells the user to run a command tells them one that
# works. The hints are found in the sources (string literals of src/ that say
# "run '...'", "'extsnap ...'", "use --...", "give it --...", "give --...",
# "or --X PATH", "out with --..."; help texts excluded; and the uses of the
# recover command line) and listed with their count per file: a hint added
# without a case here fails the test. Each case provokes
# its hint and runs what it suggests, which must be accepted (not a usage
# error) and, for recover, recover:
#   - recover offline (--root): a delete failing at each I/O point, a
#     pending journal seen by --dry-run, list and verify;
#   - recover online: a running VM reached only through --qmp (its config
#     names no socket), a failed block-job finalize, then recovery refused
#     while virtqemud runs (the hint to stop it and recover), then done;
#   - img commit on an image QEMU holds (--qmp), img info/map/compare/check
#     on it (--force-share), img map on compressed clusters (--output=json),
#     images marked corrupt or dirty (img check -r all on the image, with
#     img commit's --root), disks create cannot snapshot (--disk), commit ranges
#     that only delete can do (delete), verify; inexact snapshots (list's
#     verify, revert's --force); a snapshot's NVRAM copy missing or its name
#     taken (--no-vm-state).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
need_cmd qemu-img qemu-io qemu-system-x86_64 jq python3 xmllint
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PIDS=()
cleanup() {
    local p
    vm_kill
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT
eq() { ok_eq "$@" || true; }
has() {
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $3 == *"$2"* ]] || fail "$1: [$2] not in [$3]"
}

# ------------------------------------------------------------ the hints in the sources
scan_hints() {
    python3 - "$SRC" <<'PY'
import os, re, sys
root = sys.argv[1]
hint = re.compile(r"run '[^']*'|'extsnap [^']*'|use --[a-z-]+|give it --[a-z-]+"
                  r"|or --[a-z-]+ PATH|out with --[a-z-]+|give --[a-z-]+")
count = {}
for d, _, files in os.walk(os.path.join(root, "src")):
    for f in files:
        if not f.endswith((".c", ".h")):
            continue
        text = open(os.path.join(d, f), encoding="utf-8", errors="replace").read()
        # Strings (adjacent literals joined), outside comments and char literals.
        strings, i, n, last_end = [], 0, len(text), -1
        while i < n:
            if text.startswith("/*", i):
                i = text.find("*/", i + 2) + 2
            elif text.startswith("//", i):
                i = text.find("\n", i)
            elif text[i] == "'":
                m = re.match(r"'(\\.|[^'\\])*'", text[i:])
                i += len(m.group(0)) if m else 1
            elif text[i] == '"':
                m = re.match(r'"((\\.|[^"\\])*)"', text[i:])
                s = m.group(1)
                if strings and re.fullmatch(r"\s*", text[last_end:i]):
                    strings[-1] += s
                else:
                    strings.append(s)
                i += len(m.group(0))
                last_end = i
            else:
                i += 1
        rel = os.path.relpath(os.path.join(d, f), root)
        # Hints whose command is built at run time: the recover command line.
        calls = len(re.findall(r"(?<![*\w])snap_ctx_recover_cmd\(", text))
        if calls:
            count[(rel, "recover command line")] = calls
        for s in strings:
            if "\\n" in s:  # help and usage texts
                continue
            for h in hint.findall(s):
                count[(rel, h)] = count.get((rel, h), 0) + 1
for (rel, h), c in sorted(count.items()):
    print(f"{c} {rel}: {h}")
PY
}

# COUNT FILE: HINT <tab> the case below that provokes it and runs it.
KNOWN=$(cat <<'EOF'
1 src/cmd/busy_hint.h: use --force-share	busy
1 src/cmd/busy_hint.h: use --qmp	busy
1 src/cmd/img_map.c: use --output	compressed_map
1 src/cmd/snap_list.c: 'extsnap verify'	inexact
4 src/qcow2/commit.c: run 'extsnap img check -r all'	img_check_marked
1 src/qcow2/commit_batch.c: 'extsnap img check'	corrupt_base
1 src/qcow2/commit_plan.c: run 'extsnap img check -r all'	img_check_marked
2 src/qcow2/image.c: run 'extsnap img check -r all'	img_check_marked
1 src/qcow2/l2_write.c: run 'extsnap img check -r all'	img_check_marked
1 src/qcow2/overlap.c: 'extsnap img check'	corrupt_base
2 src/qcow2/reclaim.c: 'extsnap img check'	corrupt_base
2 src/qcow2/refcount_trust.c: run 'extsnap img check -r all'	img_check_marked
2 src/snap/ops/commit.c: 'extsnap delete'	commit_range
1 src/snap/graph/commit_range.c: 'extsnap verify'	commit_range
1 src/snap/graph/commit_range.c: run 'extsnap img check -r all%s%s %s'	domain_marked
4 src/snap/ops/create.c: out with --disk	create_disks
1 src/snap/graph/image_check.c: 'extsnap img check%s%s %s'	corrupt_base
1 src/snap/ops/inexact.c: give --force	inexact
2 src/snap/ops/vmstate.c: use --no-vm-state	vm_state
3 src/snap/txn/exec.c: recover command line	recover_offline
3 src/snap/txn/exec.c: run '%s'	recover_offline
2 src/snap/txn/session.c: recover command line	recover_offline
2 src/snap/txn/session.c: run '%s'	recover_offline
8 src/online/online_exec.c: recover command line	recover_online
7 src/online/online_exec.c: run '%s'	recover_online
3 src/online/online_open.c: recover command line	recover_online
3 src/online/online_open.c: run '%s'	recover_online
1 src/online/online_socket.c: or --qmp PATH	recover_online
1 src/snap/ops/verify.c: 'extsnap img check%s%s %s'	verify_check
1 src/snap/ops/verify.c: 'extsnap img check -r leaks%s%s %s'	verify_check
1 src/snap/ops/verify.c: recover command line	recover_offline
1 src/snap/ops/verify.c: run '%s'	recover_offline
EOF
)

scan_hints | LC_ALL=C sort >"$T/found"
sed 's/\t.*//' <<<"$KNOWN" | LC_ALL=C sort >"$T/known"
ES_CHECKS=$((ES_CHECKS + 1))
if ! diff -u "$T/known" "$T/found" >"$T/hints.diff"; then
    fail "the hints in src/ are not those this test has cases for (+ new, - gone):
$(grep '^[-+][0-9]' "$T/hints.diff")"
fi
echo "hints found in the sources:"
sed 's/^/  /' "$T/found"
ES_CHECKS=$((ES_CHECKS + 1))
if grep -rn "recover %s'" "$SRC/src" >"$T/literal"; then
    fail "recover hints that name only the domain: $(cat "$T/literal")"
fi

CASES_RUN=" "
ran() { CASES_RUN+="$1 "; }

# hint_of FILE: the first command a message suggests ('extsnap ...').
hint_of() { grep -o "'extsnap [^']*'" "$1" | head -n1 | tr -d "'" || true; }
# run_hint WHAT HINT EXTRA-ARGS...: run the suggested command (its words as
# the shell would split them, plus EXTRA-ARGS); output in $T/hint.out/err,
# status in HINT_RC. A usage error (told by its "Try 'extsnap ... --help'",
# not by its status, which img check and compare share) always fails.
run_hint() {
    local what=$1 hint=$2
    shift 2
    local -a w
    eval "w=($hint)"
    HINT_RC=0
    if [[ ${w[0]:-} != extsnap ]]; then
        fail "$what: no command in the hint [$hint]"
        HINT_RC=99
        return 0
    fi
    "$EXTSNAP" "${w[@]:1}" "$@" >"$T/hint.out" 2>"$T/hint.err" || HINT_RC=$?
    ES_CHECKS=$((ES_CHECKS + 1))
    ! grep -q "^Try 'extsnap" "$T/hint.err" ||
        fail "$what: the suggested '$hint' is a usage error: $(cat "$T/hint.err")"
}
# names WHAT HINT WORDS...: the hint carries these options (else it would
# reach another domain: the host's).
names() {
    local what=$1 hint=$2 word
    shift 2
    for word in "$@"; do
        ES_CHECKS=$((ES_CHECKS + 1))
        [[ " $hint " == *" $word "* ]] || { fail "$what: [$hint] lacks $word"; return 1; }
    done
}

# start_fake NAME: a live process whose comm is NAME, pid in FAKE_PID.
start_fake() {
    mkdir -p "$T/bin"
    cp /bin/sleep "$T/bin/$1"
    "$T/bin/$1" 300 </dev/null >/dev/null 2>&1 &
    FAKE_PID=$!
    PIDS+=("$FAKE_PID")
}
stop_fake() { kill "$FAKE_PID" 2>/dev/null || true; wait "$FAKE_PID" 2>/dev/null || true; }

. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/online_domain.sh"

# ------------------------------------------------------------ recover, offline, under --root
R=$T/root
RJ=$R$SNAP_DIR/tvm.extsnap.journal
fresh_tvm() { rm -rf "$R" && cp -a "$T/tvm.base" "$R"; }
snap_make_tvm "$R"
x create tvm s1 -q
guest_write "$R" tvm vda 0x11 0 512k
x create tvm s2 -q
guest_write "$R" tvm vdb 0x22 1M 512k
cp -a "$R" "$T/tvm.base"

# A delete failing at each of its I/O points: every message naming a
# recover command names one that recovers.
EXTSNAP_FAULT_TRACE=$T/trace x delete tvm s1 -q
points=$(grep -c '^mutate ' "$T/trace")
rm -f "$T/trace"
kinds=""
for ((n = 1; n <= points; n++)); do
    fresh_tvm
    EXTSNAP_FAULT=mutate:$n:eio x delete tvm s1 >/dev/null 2>"$T/err" || true
    hint=$(hint_of "$T/err")
    [[ -n $hint ]] || continue
    kind=$(sed -E "s/.*: ([^:;]*); run .*/\1/" "$T/err")
    [[ $kinds != *"[$kind]"* ]] || continue
    kinds+="[$kind]"
    names "eio at $n ($kind)" "$hint" "--root $R" || continue
    run_hint "eio at $n ($kind)" "$hint"
    eq "eio at $n: '$hint' exits 0 ($(cat "$T/hint.err"))" 0 "$HINT_RC"
    [[ ! -e $RJ ]] || fail "eio at $n: '$hint' left the journal"
    rc_is "eio at $n: verify after '$hint'" 0 x verify tvm -q
done
echo "recover hints after a failed delete: $kinds"
[[ -n $kinds ]] || fail "no I/O error of delete gave a recover hint"

# A pending journal (the run stopped dead): dry run, list and verify say to
# recover; the dry run also says to run the command without --dry-run.
pending() {
    local n
    for ((n = points / 2; n <= points; n++)); do
        fresh_tvm
        EXTSNAP_FAULT=mutate:$n:stop x delete tvm s1 -q >/dev/null 2>&1 || true
        [[ -e $RJ ]] && return 0
    done
    fail "no stop point of delete left a journal"
    return 1
}
if pending; then
    rc=0
    x delete tvm s1 --dry-run >/dev/null 2>"$T/err" || rc=$?
    eq "dry run on a pending journal: refused" 1 "$rc"
    has "dry run on a pending journal" "this command without --dry-run" "$(cat "$T/err")"
    hint=$(hint_of "$T/err")
    x list tvm >/dev/null 2>"$T/err2" || fail "list with a pending journal: $(cat "$T/err2")"
    eq "list's hint is the dry run's" "$hint" "$(hint_of "$T/err2")"
    x verify tvm >"$T/err3" 2>&1 || true
    eq "verify's hint is the dry run's" "$hint" "$(hint_of "$T/err3")"
    if names "pending journal" "$hint" "--root $R"; then
        run_hint "pending journal" "$hint"
        eq "pending journal: '$hint' exits 0 ($(cat "$T/hint.err"))" 0 "$HINT_RC"
        has "pending journal: '$hint' says what it did" "Finished:" "$(cat "$T/hint.out")"
        [[ ! -e $RJ ]] || fail "pending journal: '$hint' left the journal"
    fi
    # "this command without --dry-run" recovers first, then deletes.
    pending
    # (It recovers, then plans on what it finds: s1 may be gone already.)
    rc=0
    x delete tvm s1 -q >/dev/null 2>"$T/err" || rc=$?
    ES_CHECKS=$((ES_CHECKS + 1))
    ! grep -q "^Try 'extsnap" "$T/err" || fail "pending journal: the command without --dry-run is a usage error"
    has "pending journal: the command without --dry-run recovers" "an interrupted operation first" \
        "$(cat "$T/err")"
    [[ ! -e $RJ ]] || fail "pending journal: the command without --dry-run left it"
fi
# recover takes the options of the command it recovers (the interrupted
# command line with 'recover DOMAIN' in place of the command and operands).
for opts in "--description=x --disk=vda,vdb --no-metadata" "--metadata" "--force"; do
    pending || break
    # shellcheck disable=SC2086
    rc_is "recover with the options $opts" 0 x recover $opts tvm -q
    [[ ! -e $RJ ]] || fail "recover with the options $opts left the journal"
done
ran recover_offline

# ------------------------------------------------------------ inexact snapshots
# (A record as a cancelled online delete of s1 leaves it.) list says to see
# verify, revert says to give --force.
fresh_tvm
printf '{"extsnap-inexact": 1, "snapshots": [{"name": "s1", "creation-time": %s, "state": "cancelled", "images": []}]}\n' \
    "$(xmllint --xpath 'string(/domainsnapshot/creationTime)' "$R$SNAP_DIR/tvm/s1.xml")" \
    >"$R$SNAP_DIR/tvm.extsnap.inexact"
has "list of an inexact snapshot" "(inexact: see 'extsnap verify')" "$(x list tvm 2>&1)"
rc=0
x verify tvm >"$T/out" 2>&1 || rc=$?
has "verify, as list suggests: reports it ($rc)" "inexact-snapshot" "$(cat "$T/out")"
! grep -q "^Try 'extsnap" "$T/out" || fail "verify, as list suggests: a usage error"
rc=0
x revert tvm s1 >/dev/null 2>"$T/err" || rc=$?
eq "revert to an inexact snapshot: refused" 1 "$rc"
has "revert to an inexact snapshot" "give --force to revert" "$(cat "$T/err")"
rc_is "revert --force, as suggested" 0 x revert tvm s1 --force -q
ran inexact

# ------------------------------------------------------------ disks create cannot snapshot
fresh_tvm
C=$R$SNAP_CFG/tvm.xml
for kind in block internal network sliced; do
    fresh_tvm
    case $kind in
    block) sed -i "s|</devices>|<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev-blk'/><target dev='vdx' bus='virtio'/></disk></devices>|" "$C" ;;
    internal) sed -i "0,/<disk type='file' device='disk'>/s//<disk type='file' device='disk' snapshot='internal'>/" "$C" ;;
    network) sed -i "s|</devices>|<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='nbd' name='x'><host name='h' port='10809'/></source><target dev='vdx' bus='virtio'/></disk></devices>|" "$C" ;;
    sliced) sed -i "0,/<source file='\([^']*\)'\/>/s//<source file='\1'><slices><slice type='storage' offset='0' size='1048576'\/><\/slices><\/source>/" "$C" ;;
    esac
    rc=0
    x create tvm s3 >/dev/null 2>"$T/err" || rc=$?
    eq "create with a $kind disk: refused ($(cat "$T/err"))" 1 "$rc"
    has "create with a $kind disk" "out with --disk" "$(cat "$T/err")"
    others=vda,vdb,vdc
    [[ $kind == internal || $kind == sliced ]] && others=vdb,vdc
    rc_is "create with a $kind disk, the others given with --disk" 0 x create tvm s3 --disk=$others --dry-run -q
done
ran create_disks

# ------------------------------------------------------------ the NVRAM copy (--no-vm-state)
fresh_tvm
NV=/var/lib/libvirt/qemu/nvram/tvm_VARS.fd
sed -i "s|^    <boot dev='hd'/>|    <nvram>$NV</nvram>\n    <boot dev='hd'/>|" "$R$SNAP_CFG/tvm.xml"
mkdir -p "$(dirname "$R$NV")" && echo vars >"$R$NV"
touch "$R$SNAP_IMG/tvm.s3.nvram"
rc=0
x create tvm s3 >/dev/null 2>"$T/err" || rc=$?
eq "create with a file in the NVRAM copy's way: refused" 1 "$rc"
has "create with a file in the NVRAM copy's way" "or use --no-vm-state" "$(cat "$T/err")"
rc_is "create --no-vm-state, as suggested" 0 x create tvm s3 --no-vm-state -q
rm -f "$R$SNAP_IMG/tvm.s3.nvram"
x create tvm s4 -q
mv "$R$SNAP_IMG/tvm.s4.nvram" "$T/s4.nvram"
rc=0
x revert tvm s4 >/dev/null 2>"$T/err" || rc=$?
eq "revert to a snapshot whose NVRAM copy is missing: refused" 1 "$rc"
has "revert with the NVRAM copy missing" "use --no-vm-state" "$(cat "$T/err")"
rc_is "revert --no-vm-state, as suggested" 0 x revert tvm s4 --no-vm-state -q
ran vm_state

# ------------------------------------------------------------ commit ranges only delete does
fresh_tvm
rc=0
x commit tvm s1 s1 >/dev/null 2>"$T/err" || rc=$?
eq "commit of one snapshot: refused" 1 "$rc"
has "commit of one snapshot" "use 'extsnap delete'" "$(cat "$T/err")"
rc_is "delete, as commit suggests" 0 x delete tvm s1 --dry-run -q
x revert tvm s1 -q
x create tvm s3 -q
rc=0
x commit tvm s1 s2 >/dev/null 2>"$T/err" || rc=$?
has "commit up to a discarded leaf" "use 'extsnap delete' to remove snapshots" "$(cat "$T/err")"
rc_is "delete of the leaf, as commit suggests" 0 x delete tvm s2 --dry-run -q
rc_is "verify, as commit suggests for a broken live image" 0 x verify tvm -q
ran commit_range

# ------------------------------------------------------------ img check on what verify names
# refcount FILE CLUSTER VALUE [GROW]: set a cluster's refcount (16-bit
# refcounts, first refcount block), growing the file to hold it if asked.
refcount() {
    python3 - "$@" <<'PY'
import struct, sys
path, cl, val = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    h = f.read(104)
    cbits = struct.unpack(">I", h[20:24])[0]
    rt = struct.unpack(">Q", h[48:56])[0]
    f.seek(rt)
    rb = struct.unpack(">Q", f.read(8))[0]
    if len(sys.argv) > 4:
        f.truncate((cl + 1) << cbits)
    f.seek(rb + 2 * cl)
    f.write(struct.pack(">H", val))
PY
}
# A leaked cluster, then a cluster in use with refcount 0, in the image of
# s1's vda: verify says which img check to run, under the same --root.
for kind in leak corrupt; do
    fresh_tvm
    img=$R$SNAP_IMG/vda.qcow2
    if [[ $kind == leak ]]; then
        refcount "$img" $(( $(stat -c %s "$img") / 65536 )) 1 grow
    else
        refcount "$img" 0 0 # the header's cluster
    fi
    x verify tvm >"$T/out" 2>&1 || true
    hint=$(hint_of "$T/out")
    names "verify ($kind)" "$hint" "--root $R" "$SNAP_IMG/vda.qcow2" || continue
    run_hint "verify ($kind)" "$hint"
    if [[ $kind == leak ]]; then
        eq "verify ($kind): '$hint' ($(cat "$T/hint.err"))" 0 "$HINT_RC"
        rc_is "verify ($kind): verify after '$hint'" 0 x verify tvm -q
    else # it reports the corruption (exit 2 would also be a usage error: look at the output)
        has "verify ($kind): '$hint' reports it" "1 errors were found on the image" \
            "$(cat "$T/hint.out")"
    fi
done
ran verify_check

# ------------------------------------------------------------ images marked corrupt or dirty
D=$T/marked
mkdir -p "$D"
set_bit() { # FILE BIT: set an incompatible-feature bit (0 dirty, 1 corrupt)
    local v
    v=$(od -An -j79 -N1 -tu1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((v | (1 << $2))))" | dd of="$1" bs=1 seek=79 conv=notrunc status=none
}
# The hint is the whole command: the image the message names, and --root
# when img commit ran under one (the name shown is then the root's view).
for under in "" root; do
    for what in "BASE corrupt:base:1" "BASE dirty:base:0" "TOP corrupt:top:1"; do
        IFS=: read -r label which bit <<<"$what"
        label="$label${under:+ (--root)}"
        rm -f "$D"/*.qcow2
        qemu-img create -q -f qcow2 -o lazy_refcounts=on "$D/base.qcow2" 1M
        qemu-io -f qcow2 -c 'write -P 0x33 0 64k' "$D/base.qcow2" >/dev/null
        args=("$D/top.qcow2")
        shown=$D/$which.qcow2
        if [[ -n $under ]]; then
            qemu-img create -q -f qcow2 -u -b /base.qcow2 -F qcow2 "$D/top.qcow2" 1M
            args=(--root "$D" /top.qcow2)
            shown=/$which.qcow2
        else
            qemu-img create -q -f qcow2 -b "$D/base.qcow2" -F qcow2 "$D/top.qcow2"
        fi
        qemu-io -f qcow2 -c 'write -P 0x44 64k 64k' "json:{\"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", \"filename\": \"$D/top.qcow2\"}, \"backing\": null}" >/dev/null
        set_bit "$D/$which.qcow2" "$bit"
        rc=0
        "$EXTSNAP" img commit "${args[@]}" >/dev/null 2>"$T/err" || rc=$?
        eq "$label: img commit refused ($(cat "$T/err"))" 1 "$rc"
        hint=$(hint_of "$T/err")
        names "$label" "$hint" "$shown" ${under:+"--root $D"} || continue
        run_hint "$label" "$hint"
        eq "$label: '$hint' ($(cat "$T/hint.err"))" 0 "$HINT_RC"
        rc_is "$label: img commit after the repair" 0 "$EXTSNAP" img commit -q "${args[@]}"
    done
done
ran img_check_marked

# A BASE whose L2 entry points into its own L1 table (qemu-img check: a
# corruption): img commit and a domain delete refuse, and say which img
# check to run (the image, and --root for the domain's).
point_into_l1() { # FILE: guest cluster 0's L2 entry -> the L1 table's cluster
    python3 - "$1" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    h = f.read(104)
    l1 = struct.unpack(">Q", h[40:48])[0]
    f.seek(l1)
    l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
    assert l2, "guest cluster 0 has no L2 table"
    f.seek(l2)
    f.write(struct.pack(">Q", l1 | (1 << 63)))
PY
}
rm -f "$D"/*.qcow2
qemu-img create -q -f qcow2 "$D/base.qcow2" 1M
qemu-io -f qcow2 -c 'write -P 0x33 0 64k' "$D/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b "$D/base.qcow2" -F qcow2 "$D/top.qcow2"
qemu-io -f qcow2 -c 'write -P 0x44 0 64k' "$D/top.qcow2" >/dev/null
point_into_l1 "$D/base.qcow2"
rc=0
"$EXTSNAP" img commit "$D/top.qcow2" >/dev/null 2>"$T/err" || rc=$?
eq "img commit into a corrupt BASE: refused ($(cat "$T/err"))" 1 "$rc"
hint=$(hint_of "$T/err")
if names "img commit into a corrupt BASE" "$hint" "$D/base.qcow2"; then
    run_hint "img commit into a corrupt BASE" "$hint"
    has "img commit into a corrupt BASE: '$hint' reports it" "errors were found on the image" \
        "$(cat "$T/hint.out")"
fi
fresh_tvm
point_into_l1 "$R$SNAP_IMG/vda.qcow2"
rc=0
x delete tvm s1 >/dev/null 2>"$T/err" || rc=$?
eq "delete into a corrupt BASE: refused ($(cat "$T/err"))" 1 "$rc"
hint=$(hint_of "$T/err")
if names "delete into a corrupt BASE" "$hint" "--root $R" "$SNAP_IMG/vda.qcow2"; then
    run_hint "delete into a corrupt BASE" "$hint"
    has "delete into a corrupt BASE: '$hint' reports it" "errors were found on the image" \
        "$(cat "$T/hint.out")"
fi
ran corrupt_base

# A domain's merge BASE marked corrupt or dirty: the hint checks it under
# the same --root, and the delete works after.
for bit in 1 0; do
    fresh_tvm
    base=$R$(cfg_source "$R" tvm vda)
    base=${base%.*}.qcow2 # s1's image of vda: the first one
    set_bit "$base" $bit
    rc=0
    x delete tvm s1 >/dev/null 2>"$T/err" || rc=$?
    eq "domain image marked (bit $bit): delete refused ($(cat "$T/err"))" 1 "$rc"
    hint=$(hint_of "$T/err")
    names "domain image marked (bit $bit)" "$hint" "--root $R" || continue
    run_hint "domain image marked (bit $bit)" "$hint"
    eq "domain image marked (bit $bit): '$hint' ($(cat "$T/hint.err"))" 0 "$HINT_RC"
    rc_is "domain image marked (bit $bit): delete after the repair" 0 x delete tvm s1 -q
done
ran domain_marked

# ------------------------------------------------------------ img map of compressed clusters
qemu-img create -q -f qcow2 "$D/plain.qcow2" 1M
qemu-io -f qcow2 -c 'write -P 0x55 0 256k' "$D/plain.qcow2" >/dev/null
qemu-img convert -c -O qcow2 "$D/plain.qcow2" "$D/comp.qcow2"
rc=0
"$EXTSNAP" img map "$D/comp.qcow2" >/dev/null 2>"$T/err" || rc=$?
eq "img map of compressed clusters: refused" 1 "$rc"
has "img map of compressed clusters" "use --output=json" "$(cat "$T/err")"
rc_is "img map --output=json, as suggested" 0 "$EXTSNAP" img map --output=json "$D/comp.qcow2"
ran compressed_map

# ------------------------------------------------------------ images QEMU holds
B=$T/busy
mkdir -p "$B"
qemu-img create -q -f qcow2 "$B/base.qcow2" 4M
qemu-io -f qcow2 -c 'write -P 0x66 0 1M' "$B/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b "$B/base.qcow2" -F qcow2 "$B/top.qcow2"
qemu-io -f qcow2 -c 'write -P 0x77 1M 1M' "$B/top.qcow2" >/dev/null
vm_start "$B/qmp" -drive "if=none,id=drive0,file=$B/top.qcow2,format=qcow2"
for c in info map check compare; do
    imgs=("$B/top.qcow2")
    [[ $c == compare ]] && imgs+=("$B/top.qcow2")
    rc=0
    "$EXTSNAP" img $c "${imgs[@]}" >/dev/null 2>"$T/err" || rc=$?
    # (img compare's errors exit 2, as qemu-img compare's.)
    want=1
    [[ $c == compare ]] && want=2
    eq "img $c of an image QEMU writes: refused ($(cat "$T/err"))" "$want" "$rc"
    has "img $c of an image QEMU writes" "use --force-share" "$(cat "$T/err")"
    rc_is "img $c --force-share, as suggested" 0 "$EXTSNAP" img $c --force-share "${imgs[@]}"
done
rc=0
"$EXTSNAP" img commit "$B/top.qcow2" >/dev/null 2>"$T/err" || rc=$?
eq "img commit of an image QEMU writes: refused" 1 "$rc"
has "img commit of an image QEMU writes" "use --qmp PATH" "$(cat "$T/err")"
ES_CHECKS=$((ES_CHECKS + 1))
! grep -q -- "--force-share" "$T/err" || fail "img commit suggests --force-share: $(cat "$T/err")"
rc_is "img commit --qmp, as suggested" 0 "$EXTSNAP" img commit -q --qmp "$B/qmp" --device drive0 "$B/top.qcow2"
vm_quit
ran busy

# ------------------------------------------------------------ recover, online, through --qmp
# The config names no QMP socket: the VM is reached only with --qmp.
write_config ovm vda vdb
sed -i '/<qemu:commandline>/,/<\/qemu:commandline>/d' "$CFG/ovm.xml"
for d in vda vdb; do
    qemu-img create -q -f qcow2 "$IMG/ovm-$d.qcow2" 8M
    qemu-img create -q -f raw "$T/expect-$d.raw" 8M
done
off_write vda 0x11 0 1M
off_write vdb 0x12 1M 1M
X create ovm s1 -q
off_write vda 0x21 1M 1M
off_write vdb 0x22 2M 1M
X create ovm s2 -q
start_vm
OJ=$SNAPS/ovm.extsnap.journal
rc=0
X delete ovm s2 >/dev/null 2>"$T/err" || rc=$?
eq "running VM without a socket: refused" 1 "$rc"
has "running VM without a socket" "or --qmp PATH" "$(cat "$T/err")"
rc_is "running VM, --qmp as suggested" 0 X delete ovm s2 --qmp "$SOCK" --dry-run -q
rc=0
EXTSNAP_QMP_FAULT=finalize:2:error X delete ovm s2 --qmp "$SOCK" >/dev/null 2>"$T/err" || rc=$?
eq "failed finalize: exit status ($(cat "$T/err"))" 1 "$rc"
hint=$(hint_of "$T/err")
if names "failed finalize" "$hint" "--qmp $SOCK" "--config-dir $CFG" "--snapshot-dir $SNAPS" \
    "--run-dir $RUN"; then
    # A dry run on the pending journal suggests the same recover command.
    rc=0
    X delete ovm s2 --qmp "$SOCK" --dry-run >/dev/null 2>"$T/err" || rc=$?
    eq "dry run on the pending journal: refused" 1 "$rc"
    eq "dry run on the pending journal: the same hint" "$hint" "$(hint_of "$T/err")"
    # virtqemud runs (its driver pid file): recovery would write libvirt's
    # files, refused with what to do.
    start_fake virtqemud
    echo "$FAKE_PID" >"$RUN/driver.pid"
    run_hint "failed finalize, under virtqemud" "$hint"
    eq "failed finalize, under virtqemud: refused" 1 "$HINT_RC"
    has "failed finalize, under virtqemud" "stop libvirtd, then run" "$(cat "$T/hint.err")"
    hint2=$(hint_of "$T/hint.err")
    stop_fake
    rm -f "$RUN/driver.pid"
    if names "virtqemud refusal" "$hint2" "--qmp $SOCK" "--config-dir $CFG"; then
        run_hint "failed finalize" "$hint2"
        eq "failed finalize: '$hint2' exits 0 ($(cat "$T/hint.err"))" 0 "$HINT_RC"
        has "failed finalize: '$hint2' finished it" "Finished: delete snapshot s2" "$(cat "$T/hint.out")"
        [[ ! -e $OJ ]] || fail "failed finalize: '$hint2' left the journal"
        eq "failed finalize: vda runs on the config's image" "$(src -vda ovm)" \
            "$(vm_chain_files drive-vda | head -n1)"
    fi
fi
stop_vm
check_guest "after the online recovery"
ran recover_online

for c in $(cut -f2 <<<"$KNOWN" | sort -u) recover_offline recover_online; do
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $CASES_RUN == *" $c "* ]] || fail "case $c did not run to its end"
done
finish
