#!/usr/bin/env bash
# Progress of long work (issue #13 part 4), offline:
#  A. img commit: a bar on stderr when it is a terminal (script(1) gives it
#     one), nothing when it is not, nothing with -q; --progress=json lines
#     on stderr (stdout keeps "Image committed."), every line parsed by jq:
#     bytes_done never decreases, never exceeds bytes_total, the last
#     sample has bytes_done == bytes_total; the result is what qemu-img
#     commit gives (qemu-img compare);
#  B. img compare: the same, for -p / --progress=json;
#  C. domain delete and commit (merges): one stream per merged disk (the
#     disks of the plan's merges[], from --output=json on stdout, which
#     stays one JSON document), a bar per disk on a terminal, nothing on a
#     pipe; usage error for a bad MODE;
#  D. setup across file systems (a tmpfs): copy and read-back of each disk;
#  E. img check (-p, --progress=json: the walk of the active L1 table);
#  F. verify --all: one stream per qcow2 image checked.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/progress.sh"
need_cmd qemu-img qemu-io jq script
MNT=""
trap '[[ -z $MNT ]] || umount "$MNT" 2>/dev/null || true; rm -rf "$T"' EXIT

# --- A: img commit ------------------------------------------------------------
chain() { # DIR: base (32 MiB) with data, top over it with 12 MiB more
    mkdir -p "$1"
    qemu-img create -q -f qcow2 "$1/base.qcow2" 32M
    qemu-io -f qcow2 -c 'write -P 0x11 0 8M' "$1/base.qcow2" >/dev/null
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$1/top.qcow2"
    qemu-io -f qcow2 -c 'write -P 0x22 4M 8M' -c 'write -P 0x33 20M 4M' "$1/top.qcow2" >/dev/null
}
chain "$T/ref"
qemu-img commit -q "$T/ref/top.qcow2"

chain "$T/a1"
check_rc "A: img commit on a terminal" 0 on_tty "$T/a1.out" "$T/a1.tty" "$EXTSNAP" img commit "$T/a1/top.qcow2"
bar_shown "A: img commit on a terminal" "$T/a1.tty" commit "$T/a1/top.qcow2"
check_eq "A: stdout on a terminal" "Image committed." "$(cat "$T/a1.out")"
oracle qemu-img compare -q "$T/a1/base.qcow2" "$T/ref/base.qcow2" || true

chain "$T/a2"
check_rc "A: img commit -p -q on a terminal" 0 on_tty "$T/a2.out" "$T/a2.tty" "$EXTSNAP" img commit -p -q "$T/a2/top.qcow2"
check_eq "A: -q: nothing on the terminal" "" "$(tty_text "$T/a2.tty")"

chain "$T/a3"
check_rc "A: img commit -p, stderr not a terminal" 0 "$EXTSNAP" img commit -p "$T/a3/top.qcow2" >"$T/a3.out" 2>"$T/a3.err"
check_eq "A: not a terminal: stderr" "" "$(cat "$T/a3.err")"

chain "$T/a4"
check_rc "A: img commit --progress=json" 0 "$EXTSNAP" img commit --progress=json "$T/a4/top.qcow2" >"$T/a4.out" 2>"$T/a4.err"
progress_ok "A: img commit --progress=json" "$T/a4.err" "commit $T/a4/top.qcow2"
check_eq "A: json: stdout" "Image committed." "$(cat "$T/a4.out")"
check_eq "A: json: bytes_total is what TOP holds" 12582912 "$(jq -s 'map(.bytes_total) | max' "$T/a4.err")"
oracle qemu-img compare -q "$T/a4/base.qcow2" "$T/ref/base.qcow2" || true

chain "$T/a5"
check_rc "A: json wins over -q" 0 "$EXTSNAP" img commit -q --progress=json "$T/a5/top.qcow2" >"$T/a5.out" 2>"$T/a5.err"
progress_ok "A: -q --progress=json" "$T/a5.err" "commit $T/a5/top.qcow2"
check_eq "A: -q --progress=json: stdout" "" "$(cat "$T/a5.out")"
check_rc "A: bad MODE" 1 "$EXTSNAP" img commit --progress=fancy "$T/a5/top.qcow2" 2>/dev/null

# --- B: img compare -------------------------------------------------------------
B1=$T/a4/base.qcow2 B2=$T/ref/base.qcow2
check_rc "B: img compare -p on a terminal" 0 on_tty "$T/b1.out" "$T/b1.tty" "$EXTSNAP" img compare -p "$B1" "$B2"
bar_shown "B: img compare on a terminal" "$T/b1.tty" compare "$B1"
check_eq "B: stdout" "Images are identical." "$(cat "$T/b1.out")"
check_rc "B: img compare, stderr not a terminal" 0 "$EXTSNAP" img compare "$B1" "$B2" >/dev/null 2>"$T/b2.err"
check_eq "B: not a terminal: stderr" "" "$(cat "$T/b2.err")"
check_rc "B: img compare --progress=json" 0 "$EXTSNAP" img compare --progress=json "$B1" "$B2" >"$T/b3.out" 2>"$T/b3.err"
progress_ok "B: img compare --progress=json" "$T/b3.err" "compare $B1"
check_eq "B: json: bytes_total is the virtual size" 33554432 "$(jq -s 'map(.bytes_total) | max' "$T/b3.err")"

# --- C: delete and commit -----------------------------------------------------------
# tvm with s1, s2, s3 and data written after each, in every disk.
make_three() {
    R=$1
    snap_make_tvm "$R"
    local s i=1
    for s in s1 s2 s3; do
        x create tvm $s -q
        guest_write "$R" tvm vda $((0x10 * i + 1)) $((i * 256))k 256k
        guest_write "$R" tvm vdb $((0x10 * i + 2)) $((i * 512))k 128k
        guest_write "$R" tvm vdc $((0x10 * i + 3)) $((i * 64))k 64k
        i=$((i + 1))
    done
}
merged_disks() { jq -r '.merges[] | "commit " + .disk' "$1"; }

make_three "$T/c1"
check_rc "C: delete --progress=json --output=json" 0 x delete tvm s2 --progress=json --output=json >"$T/c1.out" 2>"$T/c1.err"
check_eq "C: delete merges three disks" 3 "$(jq '.merges | length' "$T/c1.out")"
progress_ok "C: delete --progress=json" "$T/c1.err" "$(merged_disks "$T/c1.out")"
check_eq "C: delete: verify" 0 "$(x verify tvm -q >/dev/null 2>&1; echo $?)"

make_three "$T/c2"
check_rc "C: commit s1 s3 --progress=json" 0 x commit tvm s1 s3 --progress=json --output=json >"$T/c2.out" 2>"$T/c2.err"
check_eq "C: commit s1 s3 merges (one per disk)" 3 "$(jq '.merges | length' "$T/c2.out")"
progress_ok "C: commit --progress=json" "$T/c2.err" "$(merged_disks "$T/c2.out")"

make_three "$T/c3"
check_rc "C: delete on a terminal" 0 on_tty "$T/c3.out" "$T/c3.tty" "$EXTSNAP" delete tvm s2 --root "$R"
for d in vda vdb vdc; do bar_shown "C: delete on a terminal" "$T/c3.tty" commit $d; done

make_three "$T/c4"
check_rc "C: delete, stderr not a terminal" 0 x delete tvm s2 >/dev/null 2>"$T/c4.err"
check_eq "C: not a terminal: stderr" "" "$(cat "$T/c4.err")"
make_three "$T/c5"
check_rc "C: delete -q on a terminal" 0 on_tty "$T/c5.out" "$T/c5.tty" "$EXTSNAP" delete -q tvm s2 --root "$R"
check_eq "C: -q: nothing on the terminal" "" "$(tty_text "$T/c5.tty")"
check_rc "C: bad MODE is a usage error" 1 x delete tvm s3 --progress=fancy 2>"$T/c6.err"
grep -q "progress is auto, bar, json or none" "$T/c6.err" || fail "C: bad MODE: $(cat "$T/c6.err")"

# --- E: img check ---------------------------------------------------------------------
E1=$T/a4/base.qcow2
check_rc "E: img check on a terminal" 0 on_tty "$T/e1.out" "$T/e1.tty" "$EXTSNAP" img check "$E1"
bar_shown "E: img check on a terminal" "$T/e1.tty" check "$E1"
check_rc "E: img check, stderr not a terminal" 0 "$EXTSNAP" img check "$E1" >/dev/null 2>"$T/e2.err"
check_eq "E: not a terminal: stderr" "" "$(cat "$T/e2.err")"
check_rc "E: img check --progress=json --output=json" 0 "$EXTSNAP" img check --progress=json --output=json "$E1" \
    >"$T/e3.out" 2>"$T/e3.err"
progress_ok "E: img check --progress=json" "$T/e3.err" "check $E1"
check_eq "E: stdout is the check's JSON" "$E1 0" "$(jq -r '.filename + " " + (."check-errors" | tostring)' "$T/e3.out" 2>&1 || true)"

# --- F: verify --all ------------------------------------------------------------------
R=$T/f
snap_make_tvm "$R"
x create tvm s1 -q
check_rc "F: verify --all --progress=json" 0 x verify --all --progress=json --output=json >"$T/f.out" 2>"$T/f.err"
nimg=$(jq '.[0]."images-checked"' "$T/f.out" 2>&1 || true)
check_eq "F: images checked" 5 "$nimg"
progress_ok "F: verify --all --progress=json" "$T/f.err" "$(for ((i = 0; i < 5; i++)); do echo "check tvm"; done)"
check_eq "F: the streams' images are the domain's qcow2 images" \
    "$SNAP_IMG/vda.qcow2 $SNAP_IMG/vda.s1 $SNAP_IMG/vdb.qcow2 $SNAP_IMG/vdb.s1 $SNAP_IMG/vdc.s1" \
    "$(jq -rs '[.[] | .image] | unique | join(" ")' "$T/f.err" 2>&1 || true)"
check_rc "F: verify --all on a terminal" 0 on_tty "$T/f.out2" "$T/f.tty" "$EXTSNAP" verify --all --root "$R"
bar_shown "F: verify --all on a terminal" "$T/f.tty" check tvm
check_rc "F: verify --all, stderr not a terminal" 0 x verify --all >/dev/null 2>"$T/f2.err"
check_eq "F: not a terminal: stderr" "" "$(cat "$T/f2.err")"

# --- D: setup across file systems -------------------------------------------------
R=$T/d
snap_make_tvm "$R"
mkdir -p "$R/srv/fast"
if mount -t tmpfs -o size=64m tmpfs "$R/srv/fast" 2>/dev/null; then
    MNT=$R/srv/fast
    check_rc "D: setup --progress=json" 0 x setup tvm /srv/fast --progress=json -q >"$T/d.out" 2>"$T/d.err"
    progress_ok "D: setup --progress=json" "$T/d.err" "$(printf '%s\n' "copy vda" "compare vda" "copy vdb" "compare vdb" "copy vdc" "compare vdc")"
    check_eq "D: setup: bytes_total of vdc's copy is its size" 4194304 \
        "$(jq -s 'map(select(.phase == "copy" and .disk == "vdc") | .bytes_total) | max' "$T/d.err")"
else
    skip_part "D: cannot mount a tmpfs here (needs root): the cross-file-system copy did not run"
fi

finish
