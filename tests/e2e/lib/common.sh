# Shared helpers for the end-to-end scripts (bash). Source it after
# `set -euo pipefail`:
#     . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# It provides:
#   EXTSNAP          the binary under test (env EXTSNAP, else `extsnap` on PATH)
#   T                a fresh directory under ${ES_TEST_TMP:-/tmp}, removed on exit
#   fail MSG...      record a failed assertion (one line on stderr), keep going
#   ok_eq WHAT EXPECTED ACTUAL     assert two strings are equal
#   ok_rc WHAT EXPECTED_RC CMD...  run CMD, assert its exit status
#   need_tool NAME...  a tool this script cannot do without (an oracle such as
#                    qemu-img): when one is missing, stop with exit 77, which
#                    ctest reports as Skipped (never a pass; CI fails on it)
#   skip_test REASON   the same for a missing facility (tmpfs mount, ...)
#   skip_part REASON   a section cannot run: note it and go on; finish then
#                    exits 77 unless something failed
#   oracle CMD...    run an oracle; when it fails its stderr is in the
#                    failure line (stdout is passed through)
#   oracle_err FILE  an oracle's saved stderr on one line, for messages
#   finish           print a summary and exit 1 if anything failed, 77 if a
#                    part was skipped, else 0
# Keep this file generic: helpers specific to one script live in that script.

ES_FAILS=0
ES_CHECKS=0
ES_SKIPS=0
EXTSNAP=${EXTSNAP:-extsnap}
mkdir -p "${ES_TEST_TMP:-/tmp}"
T=$(mktemp -d "${ES_TEST_TMP:-/tmp}/$(basename "${0%.sh}").XXXXXX")
trap 'rm -rf "$T"' EXIT

# The script's own stderr: a FAIL line reaches the log even from a check
# whose stderr the caller redirected (ok_rc ... 2>/dev/null).
exec {ES_STDERR}>&2

fail() {
    ES_FAILS=$((ES_FAILS + 1))
    echo "FAIL: $*" >&"$ES_STDERR"
}

ok_eq() {
    local what=$1 expected=$2 actual=$3
    ES_CHECKS=$((ES_CHECKS + 1))
    if [[ "$expected" != "$actual" ]]; then
        fail "$what: expected [$expected], got [$actual]"
        return 1
    fi
    return 0
}

ok_rc() {
    local what=$1 expected=$2 rc=0
    shift 2
    ES_CHECKS=$((ES_CHECKS + 1))
    "$@" || rc=$?
    if [[ $rc -ne $expected ]]; then
        fail "$what: '$*' exited $rc, expected $expected"
        return 1
    fi
    return 0
}

need_tool() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip_test "$c is not installed (run scripts/deps.sh)"
    done
}
need_cmd() { need_tool "$@"; }  # the old name

skip_test() {
    echo "SKIP: $(basename "$0"): $*" >&2
    ((ES_FAILS == 0)) || finish  # what already failed still fails
    exit 77
}

skip_part() {
    ES_SKIPS=$((ES_SKIPS + 1))
    echo "SKIP: $(basename "$0"): $*" >&2
}

oracle_err() { # FILE: an oracle's error output on one line (at most 400 bytes)
    tr -s '\n' ' ' <"$1" | head -c 400
}

oracle() {
    local err rc=0
    err=$(mktemp "$T/oracle-err.XXXXXX")
    "$@" 2>"$err" || rc=$?
    if ((rc)); then
        fail "oracle '$*' exited $rc: $(oracle_err "$err")"
    fi
    rm -f "$err"
    return $rc
}

finish() {
    if ((ES_FAILS)); then
        echo "$(basename "$0"): $ES_FAILS of $ES_CHECKS checks failed" >&2
        exit 1
    fi
    if ((ES_SKIPS)); then
        echo "$(basename "$0"): $ES_CHECKS checks passed, $ES_SKIPS part(s) skipped: exit 77 (not a pass)" >&2
        exit 77
    fi
    echo "$(basename "$0"): all $ES_CHECKS checks passed"
    exit 0
}
