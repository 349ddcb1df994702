# Shared helpers for the end-to-end scripts (bash). Source it after
# `set -euo pipefail`:
#     . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# It provides:
#   EXTSNAP          the binary under test (env EXTSNAP, else `extsnap` on PATH)
#   T                a fresh directory under ${ES_TEST_TMP:-/tmp}, removed on exit
#   fail MSG...      record a failed assertion (one line on stderr), keep going
#   ok_eq WHAT EXPECTED ACTUAL     assert two strings are equal
#   ok_rc WHAT EXPECTED_RC CMD...  run CMD, assert its exit status
#   need_cmd NAME... stop with an error when a tool (an oracle) is missing
#   finish           print a summary and exit 1 if anything failed
# Keep this file generic: helpers specific to one script live in that script.

ES_FAILS=0
ES_CHECKS=0
EXTSNAP=${EXTSNAP:-extsnap}
mkdir -p "${ES_TEST_TMP:-/tmp}"
T=$(mktemp -d "${ES_TEST_TMP:-/tmp}/$(basename "${0%.sh}").XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() {
    ES_FAILS=$((ES_FAILS + 1))
    echo "FAIL: $*" >&2
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

need_cmd() {
    local c
    for c in "$@"; do
        if ! command -v "$c" >/dev/null 2>&1; then
            echo "ERROR: $c is not installed (run scripts/deps.sh)" >&2
            exit 1
        fi
    done
}

finish() {
    if ((ES_FAILS)); then
        echo "$(basename "$0"): $ES_FAILS of $ES_CHECKS checks failed" >&2
        exit 1
    fi
    echo "$(basename "$0"): all $ES_CHECKS checks passed"
    exit 0
}
