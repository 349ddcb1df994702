#!/usr/bin/env bash
# Progress of the domain commands on a running VM (issue #20's last piece,
# #13 part 4): delete and commit through QMP (qemu-system-x86_64 -machine
# none, lib/online_domain.sh's "ovm") with --progress=json: every stderr
# line parsed by jq, one stream per block job (disk and its TOP image),
# bytes_done never decreasing and never above bytes_total, the last sample
# done == total; stdout keeps the one --output=json document. The commits
# are rate-limited so that QEMU is polled several times while they copy.
# On a terminal (script(1)) a bar per disk; on a pipe nothing. img commit
# --qmp --progress=json the same way.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/qemu_vm.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/online_domain.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/progress.sh"
need_cmd qemu-img qemu-io qemu-system-x86_64 jq script
trap 'vm_kill; rm -rf "$T"' EXIT

# The commit jobs' speed limit: an option once there is one, else the
# variable the online path reads.
SPEED=(env EXTSNAP_QMP_SPEED=8388608)
if "$EXTSNAP" delete --help 2>&1 | grep -q -- '--speed'; then SPEED=(env); SPEED_OPT=(--speed=8388608); fi
SPEED_OPT=(${SPEED_OPT[@]+"${SPEED_OPT[@]}"})

write_config ovm vda vdb
for d in vda vdb; do
    qemu-img create -q -f qcow2 "$IMG/ovm-$d.qcow2" 32M
    qemu-img create -q -f raw "$T/expect-$d.raw" 32M
done
off_write vda 0x11 0 2M
off_write vdb 0x12 1M 2M
X create ovm s1 -q
off_write vda 0x21 0 6M
off_write vdb 0x22 4M 4M
X create ovm s2 -q
off_write vda 0x31 8M 6M
off_write vdb 0x32 12M 4M
X create ovm s3 -q
off_write vda 0x41 16M 1M
off_write vdb 0x42 20M 1M
save_state

# --- commit s1 s2 (intermediate commits) with --progress=json -----------------
start_vm
rc_is "commit --progress=json" 0 "${SPEED[@]}" "${OWN_RUN[@]}" "$EXTSNAP" commit ovm s1 s2 --progress=json \
    --output=json "${SPEED_OPT[@]}" --config-dir="$CFG" --snapshot-dir="$SNAPS" --run-dir="$RUN" \
    >"$T/c.out" 2>"$T/c.err"
eq "commit: QEMU's actions" "vda intermediate-commit|vdb intermediate-commit" \
    "$(jq -r '[.online.actions[] | .disk + " " + .action] | join("|")' "$T/c.out" 2>&1 || true)"
progress_ok "commit through QMP" "$T/c.err" "$(printf 'commit vda\ncommit vdb')"
eq "commit: the streams' images are the merged TOPs" "$IMG/ovm-vda.s2 $IMG/ovm-vdb.s2" \
    "$(jq -rs '[.[] | select(.type == "progress") | .image] | unique | join(" ")' "$T/c.err" 2>&1 || true)"
ES_CHECKS=$((ES_CHECKS + 1))
n=$(jq -s '[.[] | select(.type == "progress" and .disk == "vda")] | length' "$T/c.err" 2>/dev/null || echo 0)
((n >= 3)) || fail "commit: vda's 6 MiB at 8 MiB/s showed only $n samples: $(head -c 600 "$T/c.err")"
stop_vm
check_guest "after commit through QMP"

# --- delete s3 (current: active commits with pivot) --------------------------
start_vm
rc_is "delete --progress=json" 0 "${SPEED[@]}" "${OWN_RUN[@]}" "$EXTSNAP" delete ovm s3 --progress=json \
    "${SPEED_OPT[@]}" --config-dir="$CFG" --snapshot-dir="$SNAPS" --run-dir="$RUN" \
    >"$T/d.out" 2>"$T/d.err"
progress_ok "delete through QMP" "$T/d.err" "$(printf 'commit vda\ncommit vdb')"
has "delete: stdout is the human report" "Done" "$(cat "$T/d.out")"
stop_vm
check_guest "after delete through QMP"

# --- the bar on a terminal, nothing on a pipe ------------------------------------
restore_state
start_vm
rc_is "delete on a terminal" 0 on_tty "$T/t.out" "$T/t.tty" "${SPEED[@]}" "${OWN_RUN[@]}" "$EXTSNAP" delete ovm s3 \
    "${SPEED_OPT[@]}" --config-dir="$CFG" --snapshot-dir="$SNAPS" --run-dir="$RUN"
bar_shown "delete on a terminal" "$T/t.tty" commit vda
bar_shown "delete on a terminal" "$T/t.tty" commit vdb
stop_vm
restore_state
start_vm
rc_is "delete, stderr a pipe" 0 "${SPEED[@]}" "${OWN_RUN[@]}" "$EXTSNAP" delete ovm s3 "${SPEED_OPT[@]}" \
    --config-dir="$CFG" --snapshot-dir="$SNAPS" --run-dir="$RUN" >/dev/null 2>"$T/p.err"
eq "delete, stderr a pipe: nothing on it" "" "$(cat "$T/p.err")"
stop_vm

# --- img commit --qmp --progress=json (vda's chain: s1's overlay into its base) --
restore_state
start_vm
rc_is "img commit --qmp --progress=json" 0 "$EXTSNAP" img commit --qmp "$SOCK" --device drive-vda --speed 8M \
    --progress=json "$IMG/ovm-vda.s1" >"$T/i.out" 2>"$T/i.err"
progress_ok "img commit --qmp" "$T/i.err" "commit drive-vda"
eq "img commit --qmp: stdout" "Image committed: $IMG/ovm-vda.s2 now has backing file $IMG/ovm-vda.qcow2." \
    "$(head -n1 "$T/i.out")"
stop_vm

finish
