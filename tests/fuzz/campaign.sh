#!/usr/bin/env bash
# A fuzzing campaign (README.md, "Campaigns"): each harness of an ES_FUZZ
# build runs until it has used CPU_MINUTES of CPU time (user + system, its
# fuzzing children included), all of them at once, from a copy of the
# checked-in corpus, with a seed libFuzzer picks. Unlike run.sh (CI's
# gate), a finding does not stop the harness: libFuzzer's fork mode keeps
# going and leaves every input in OUT/KIND/. One line per harness at the
# end: CPU minutes, executions, coverage (edges), corpus size, findings.
#
#   tests/fuzz/campaign.sh BUILD_DIR CPU_MINUTES OUT_DIR [KIND...]
set -uo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
usage="usage: campaign.sh BUILD_DIR CPU_MINUTES OUT_DIR [KIND...]"
build=$(cd "${1:?$usage}" && pwd)
minutes=${2:?$usage}
out=${3:?$usage}
shift 3
[[ $minutes =~ ^[0-9]+$ ]] || { echo "campaign.sh: CPU_MINUTES must be a number" >&2; exit 2; }
kinds=("$@")
((${#kinds[@]})) || kinds=(qcow2_read qcow2_write domxml snapxml journal qmp)
mkdir -p "$out"
out=$(cd "$out" && pwd)
tick=$(getconf CLK_TCK)

# CPU seconds of pid and its reaped children (fields 14-17 of its stat).
cpu_seconds() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -1; return; }
    stat=${stat##*) } # the fields after the command name
    read -r -a f <<<"$stat"
    echo $(((f[11] + f[12] + f[13] + f[14]) / tick))
}

declare -A pids
for kind in "${kinds[@]}"; do
    d=$out/$kind
    mkdir -p "$d/corpus" "$d/tmp"
    cp -n "$src/tests/fuzz/corpus/$kind/"* "$d/corpus/" 2>/dev/null
    # The scratch files the harness reads by path live in its own directory.
    # Its own process group: fork mode's parent does not stop on SIGINT,
    # so the budget ends it with its fuzzing children all at once.
    TMPDIR=$d/tmp setsid "$build/tests/fuzz/fuzz_$kind" -fork=1 -ignore_crashes=1 -ignore_ooms=1 \
        -ignore_timeouts=1 -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$d/" "$d/corpus" >"$d/log" 2>&1 &
    pids[$kind]=$!
    echo "$kind: pid ${pids[$kind]}, log $d/log"
done

declare -A used
while ((${#pids[@]})); do
    sleep 10
    for kind in "${!pids[@]}"; do
        pid=${pids[$kind]}
        s=$(cpu_seconds "$pid")
        if ((s < 0)); then # ended by itself
            wait "$pid"
            unset "pids[$kind]"
            continue
        fi
        used[$kind]=$s
        if ((s >= minutes * 60)); then
            kill -TERM -- "-$pid" 2>/dev/null
            wait "$pid"
            unset "pids[$kind]"
        fi
    done
done

printf '%-12s %8s %12s %8s %8s %9s\n' KIND cpu-min executions edges corpus findings
for kind in "${kinds[@]}"; do
    d=$out/$kind
    last=$(grep -E '^#[0-9]+: cov: ' "$d/log" | tail -1)
    execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
    edges=$(grep -oE 'cov: [0-9]+' <<<"$last" | cut -d' ' -f2)
    corpus=$(find "$d/corpus" -type f | wc -l)
    findings=$(find "$d" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
        -o -name 'oom-*' \) | wc -l)
    printf '%-12s %8s %12s %8s %8s %9s\n' "$kind" "$(((${used[$kind]:-0} + 30) / 60))" \
        "${execs:-?}" "${edges:-?}" "$corpus" "$findings"
done
