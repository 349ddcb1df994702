#!/usr/bin/env bash
# The whole test suite: dependencies, a -Werror build, unit + end-to-end tests
# (qemu-img, qemu-io, qemu-system-x86_64 and virt-xml-validate as oracles),
# then an AddressSanitizer + UBSan build running the unit tests and the
# end-to-end image tests (label img) again, and last a clang build of the
# libFuzzer harnesses (tests/fuzz) running every corpus file once and each
# harness for ES_FUZZ_SECONDS (default 60), two at a time.
#
# Every stage runs even when an earlier one failed (a stage whose build
# failed is reported as not run); all failures are listed at the end.
# A test that could not run its oracle or facility exits 77 and ctest reports
# it as Skipped: listed at the end too, and a failure when CI is set
# (.ci/run sets CI=true): a green CI means the checks ran and passed.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()  # "stage: what"
skipped=() # "stage: test"

# stage NAME CMD...: run one stage, record its failure, go on.
stage() {
    local name=$1 t0=$SECONDS rc=0
    shift
    echo "==> $name"
    "$@" || rc=$?
    if ((rc)); then
        failed+=("$name (exit $rc)")
        echo "<== $name: FAILED after $((SECONDS - t0))s"
    else
        echo "<== $name: ok in $((SECONDS - t0))s"
    fi
    return $rc
}

# run_ctest NAME DIR CTEST-ARGS...: ctest in DIR; the tests that failed or
# were skipped are recorded by name.
run_ctest() {
    local name=$1 dir=$2 rc line nfailed=${#failed[@]}
    shift 2
    (cd "$dir" && ctest --output-on-failure -j2 "$@") 2>&1 | tee "$dir/ctest-$name.log"
    rc=${PIPESTATUS[0]}
    # ctest's closing lists ("The following tests did not run:" / "FAILED:"):
    # one "  N - NAME (STATUS)" line per test.
    while IFS= read -r line; do
        if [[ $line == *" (Skipped)" ]]; then
            skipped+=("$name: ${line% (Skipped)}")
        else
            failed+=("$name: $line")
        fi
    done < <(awk '/^The following tests (did not run|FAILED):/ {on = 1; next}
                  on && /^[[:space:]]+[0-9]+ - / {sub(/^[[:space:]]+[0-9]+ - /, ""); print; next}
                  {on = 0}' "$dir/ctest-$name.log")
    if ((rc && ${#failed[@]} == nfailed)); then
        failed+=("$name: ctest exited $rc")
    fi
    return "$rc"
}

stage deps bash scripts/deps.sh
if stage build bash scripts/build.sh build; then
    run_ctest tests build
else
    failed+=("tests: not run (the build failed)")
fi

if stage asan-build bash scripts/build.sh build-asan -DES_SANITIZE=ON; then
    # A sanitizer report exits 99: never taken for one of extsnap's exit codes.
    ASAN_OPTIONS=detect_leaks=1:exitcode=99 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=99 \
        run_ctest asan-tests build-asan -L 'unit|img'
else
    failed+=("asan-tests: not run (the sanitizer build failed)")
fi

# Any crash, sanitizer report, leak or timeout fails the stage; the input
# that caused it stays in build-fuzz/fuzz-out/KIND/ (tests/fuzz/README.md).
if stage fuzz-build bash scripts/build.sh build-fuzz -DCMAKE_C_COMPILER=clang -DES_FUZZ=ON \
    -DES_BUILD_TESTS=OFF; then
    stage fuzz bash tests/fuzz/run.sh build-fuzz "${ES_FUZZ_SECONDS:-60}" 2
else
    failed+=("fuzz: not run (the fuzzing build failed)")
fi

echo
echo "=== summary (${SECONDS}s)"
status=0
if ((${#skipped[@]})); then
    echo "skipped (an oracle or facility is missing, see the test's SKIP line):"
    printf '  %s\n' "${skipped[@]}"
    if [[ -n ${CI:-} ]]; then
        echo "CI is set: a skipped test fails the run"
        status=1
    fi
fi
if ((${#failed[@]})); then
    echo "failed:"
    printf '  %s\n' "${failed[@]}"
    status=1
fi
((status)) || echo "all stages passed, nothing skipped"
exit $status
