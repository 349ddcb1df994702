#!/usr/bin/env bash
# Run every libFuzzer harness of an ES_FUZZ build (README.md): first each
# checked-in corpus file once as a regression input, then SECONDS of
# fuzzing from that corpus, JOBS harnesses at a time. Any crash, sanitizer
# report, leak or timeout fails the run; the input that caused it is left
# in BUILD_DIR/fuzz-out/KIND/ and named in the output.
#
# The mutations follow a fixed seed, ES_FUZZ_SEED (default 1), so that a
# run, CI's included, can be repeated input for input: a red CI is a finding
# anyone can replay, never a roll of the dice. ES_FUZZ_SEED=0 lets libFuzzer
# pick one (campaigns, to explore further); the seed is printed either way.
#
#   tests/fuzz/run.sh BUILD_DIR [SECONDS [JOBS [KIND...]]]
set -uo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR [SECONDS [JOBS [KIND...]]]}" && pwd)
secs=${2:-60}
jobs=${3:-2}
shift $(($# < 3 ? $# : 3))
kinds=("$@")
seed=${ES_FUZZ_SEED:-1}
[[ $seed =~ ^[0-9]+$ ]] || { echo "run.sh: ES_FUZZ_SEED must be a number, not '$seed'" >&2; exit 2; }
((${#kinds[@]})) || kinds=(qcow2_read qcow2_write domxml snapxml journal qmp)
out=$build/fuzz-out
rm -rf "$out"
mkdir -p "$out"

# one KIND: regression pass, then the timed run; the log is $out/KIND.log.
one() {
    local kind=$1 h=$build/tests/fuzz/fuzz_$1 d=$out/$1 rc=0
    local opts=(-timeout=20 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$d/")
    local fopts=(-seed="$seed")
    mkdir -p "$d/corpus" "$d/tmp"
    # The scratch files the harness reads by path live in its own directory.
    export TMPDIR=$d/tmp
    {
        echo "== $kind: corpus regression"
        "$h" "${opts[@]}" -runs=0 "$src/tests/fuzz/corpus/$kind" || rc=1
        if ((rc == 0)); then
            echo "== $kind: fuzzing for ${secs}s, seed $seed"
            "$h" "${opts[@]}" "${fopts[@]}" -max_total_time="$secs" "$d/corpus" "$src/tests/fuzz/corpus/$kind" || rc=1
        fi
    } >"$out/$kind.log" 2>&1
    local stats
    stats=$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' \
        "$out/$kind.log" | tail -3 | sed 's/^stat:://' | tr '\n' ' ')
    local cov
    cov=$(grep -oE 'cov: [0-9]+' "$out/$kind.log" | tail -1)
    if ((rc)); then
        echo "FAIL $kind: $cov $stats"
        # The timed run's seed (the last one libFuzzer printed) replays it.
        grep -oE 'INFO: Seed: [0-9]+' "$out/$kind.log" | tail -1 | sed 's/^INFO: /  /'
        grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz: |.*returned -?[0-9]+ with message|artifact_prefix|Test unit written)' \
            "$out/$kind.log" | head -8 | sed 's/^/  /'
        return 1
    fi
    echo "ok   $kind: $cov $stats"
}

t0=$SECONDS
failed=0
running=0
for kind in "${kinds[@]}"; do
    one "$kind" &
    running=$((running + 1))
    if ((running >= jobs)); then
        wait -n || failed=1
        running=$((running - 1))
    fi
done
while ((running > 0)); do
    wait -n || failed=1
    running=$((running - 1))
done
echo "fuzz: ${#kinds[@]} harnesses, seed $seed, $((SECONDS - t0))s, $( ((failed)) && echo FAILED || echo ok)"
exit $failed
