#!/usr/bin/env bash
# No function without callers (issue #12): every global function the
# library (libextsnap.a) or the extsnap binary's own objects define is
# referenced by another of those objects. A function only its own file
# calls is static; one nobody calls goes. Read from the objects (nm), so
# the compiler's view, not a guess from the source text.
#
# ALLOWED: functions that only the unit tests call, one per line with the
# reason. Keep it short: better test through the real callers.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_tool nm
BUILD=$(dirname "$(command -v "$EXTSNAP")")
LIB=$BUILD/libextsnap.a
# The binary's own objects: main, the command layer (an object library the
# man page and completion generator, es_docgen, links too) and the generator.
CMD_OBJS=("$BUILD/CMakeFiles/extsnap.dir" "$BUILD/CMakeFiles/extsnap_cmd.dir" "$BUILD/CMakeFiles/es_docgen.dir")
for d in "$LIB" "${CMD_OBJS[@]}"; do
    [[ -e $d ]] || skip_test "no objects next to $EXTSNAP ($d)"
done

ALLOWED=$(sed 's/#.*//; s/[[:space:]]*$//; /^$/d' <<'EOF_ALLOWED'
# The fault hook's controls (util/fileio.h): the unit tests' way in.
es_fault_count
es_fault_reset
es_fault_set
es_xalloc_fail_at         # util/xalloc.h: the n-th allocation fails (test_util_helpers)
# Test knobs and measurements.
es_io_root_walk_only      # force the fallback walk of fileio_root.c
qcow2_l2_cache_total_bytes  # test_l2_cache_budget: the caches' memory bound
# Pure pieces of a used function, exposed to test them on their own
# (their own file calls them).
es_imglock_acquire
es_imglock_held
domxml_file_tmp_path      # the one spelling of the writer's temp names (test_domxml_store)
es_text_width_n           # es_text_width's piece for a byte-bounded prefix
qcow2_check_image         # qcow2_check_image_progress without progress (the check tests)
qcow2_refblock_entry_get
qmp_chain_from_replies
qmp_locate_from_replies
qmp_block_exports_from_reply    # qmp_export.h: the parse and the graph's writability, on
qmp_block_exports_mark_writable # canned replies (test_qmp_export)
snap_qmp_socket_from_args
# The QMP client's test side: fake QEMU over a socketpair, QEMU's version,
# the human monitor (qemu-io in the QEMU tests), settings the tests vary.
qmp_client_open_fd
qmp_client_version
qmp_hmp
qmp_client_events_dropped
qmp_client_set_interrupt
qmp_client_set_timeout
# No production caller, tests only (#12: to go, with their tests, by their
# owners): the domxml writer (production writes through snap/txn/xmlfile.c;
# "one writer of libvirt files" moves it) and the chain checker.
domxml_config_path
domxml_domain_load_named
domxml_domain_save
domxml_domain_save_file
domxml_snapshot_dir_path
domxml_snapshot_file_path
domxml_snapshot_remove
domxml_snapshot_save
qcow2_check_backing_chain
EOF_ALLOWED
)

# Defined global functions never referenced by another object, one per line
# ("name object"), main excluded. Arguments: the objects and archives.
uncalled() {
    nm -A "$@" 2>/dev/null | awk '
        { n = split($0, f, " "); sym = f[n]; type = f[n - 1]; obj = f[1]; sub(/:[^:]*$/, "", obj) }
        type == "T" { def[sym] = obj }
        type == "U" { used[sym] = 1 }
        END { for (s in def) if (!(s in used) && s != "main") print s, def[s] }' | sort
}

mapfile -t objs < <(find "${CMD_OBJS[@]}" -name '*.o' | sort)
found=$(uncalled "$LIB" "${objs[@]}" | while read -r sym obj; do
    grep -qxF "$sym" <<<"$ALLOWED" || echo "$sym (${obj##*/})"
done)
ok_eq "functions with no caller outside their own file" "" "$found" || true
stale=$(for sym in $ALLOWED; do
    uncalled "$LIB" "${objs[@]}" | grep -q "^$sym " || echo "$sym"
done)
ok_eq "allowed entries that now have callers (or are gone): drop them" "" "$stale" || true

# The rule can fail: a made-up pair of objects, one calling the other.
cat >"$T/a.c" <<'EOC'
int called(void) { return 1; }
int uncalled_one(void) { return 2; }
int main(void) { return 0; }
EOC
printf 'int called(void);\nint user(void) { return called(); }\n' >"$T/b.c"
if command -v cc >/dev/null; then
    cc -c -o "$T/a.o" "$T/a.c" && cc -c -o "$T/b.o" "$T/b.c"
    ok_eq "made-up objects" "uncalled_one user" "$(uncalled "$T/a.o" "$T/b.o" | cut -d' ' -f1 | xargs)" || true
else
    skip_part "no C compiler to make the self-check's objects"
fi
finish
