#!/usr/bin/env bash
# Library code reads no environment (issue #12): only the command line
# (src/cmd) turns environment variables into the operations' options and
# installs the test fault hooks (util/fileio.h, qmp/qmp_fault.h) from
# EXTSNAP_FAULT / EXTSNAP_QMP_FAULT. A getenv anywhere else under src/ fails.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
SRC=${ES_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

# getenv calls in the C files under DIR/src but outside src/cmd, as
# "file:line: text"; comments may name getenv (this rule's own reasons).
getenv_calls() {
    (cd "$1" && find src -name '*.[ch]' ! -path 'src/cmd/*' -print0 | sort -z |
        xargs -0 -r awk '
            FNR == 1 { inc = 0 }
            {
                line = $0
                if (inc) { if (sub(/.*\*\//, "", line)) inc = 0; else next }
                gsub(/\/\*([^*]|\*[^\/])*\*\//, "", line)
                if (sub(/\/\*.*/, "", line)) inc = 1
                sub(/\/\/.*/, "", line)
                if (line ~ /(^|[^A-Za-z0-9_])(secure_)?getenv[ \t]*\(/)
                    print FILENAME ":" FNR ": " $0
            }')
}

ok_eq "getenv outside src/cmd" "" "$(getenv_calls "$SRC")" || true

# The rule can fail: in a made-up tree it finds the call, not the comments,
# and leaves src/cmd alone.
mkdir -p "$T/src/util" "$T/src/cmd"
printf '/* getenv("X") only\n   getenv( here too */\nint g(void);\n' >"$T/src/util/a.c"
printf 'int f(void) { return getenv("X") != 0; } /* getenv( */\n' >"$T/src/util/b.c"
printf 'int h(void) { return getenv("X") != 0; }\n' >"$T/src/cmd/c.c"
ok_eq "a made-up library getenv is found" "src/util/b.c:1" "$(getenv_calls "$T" | cut -d: -f1,2)" || true
finish
