# Oracles for progress output (--progress=json lines, the bar on a
# terminal). Source after lib/common.sh; needs jq and script(1).

# progress_streams FILE: FILE is a command's stderr under --progress=json.
# Every line must be a JSON object (jq fails otherwise: "BAD not JSON").
# Prints, per stream (phase, disk and image) in order of its first sample, its
# name "PHASE DISK" when its samples are sound: exactly the documented
# keys, bytes_done never decreasing, bytes_total never decreasing,
# bytes_done <= bytes_total, and a last sample with bytes_done ==
# bytes_total; else "BAD PHASE DISK: why".
progress_streams() {
    jq -rs '
      def fields: ["bytes_done", "bytes_total", "disk", "eta", "image", "phase", "rate", "type"];
      [to_entries[] | select(.value.type == "progress") | .value + {i: .key}] as $all
      | if ($all | length) == 0 then "BAD no progress lines"
        elif ([$all[] | select((del(.i) | keys) != fields)] | length) > 0 then
          "BAD keys: " + ([$all[] | del(.i) | keys] | unique | tostring)
        else
          $all | group_by([.phase, .disk, .image]) | map(sort_by(.i)) | sort_by(.[0].i)[]
          | . as $s | ($s[0].phase + " " + $s[0].disk) as $name
          | if ([range(1; $s | length) | select($s[.].bytes_done < $s[. - 1].bytes_done)] | length) > 0
              then "BAD \($name): bytes_done decreased"
            elif ([range(1; $s | length) | select($s[.].bytes_total < $s[. - 1].bytes_total)] | length) > 0
              then "BAD \($name): bytes_total decreased"
            elif ([$s[] | select(.bytes_done > .bytes_total)] | length) > 0
              then "BAD \($name): bytes_done > bytes_total"
            elif $s[-1].bytes_done != $s[-1].bytes_total
              then "BAD \($name): last sample \($s[-1].bytes_done) of \($s[-1].bytes_total)"
            else $name end
        end' "$1" 2>&1 || echo "BAD not JSON: $(head -c 300 "$1")"
}

# progress_ok WHAT FILE EXPECTED: the streams of FILE are sound and are
# EXPECTED (newline-separated "PHASE DISK", in order).
progress_ok() {
    ok_eq "$1: progress lines" "$3" "$(progress_streams "$2")" || true
}

# on_tty OUT ERRFILE CMD...: run CMD with stdin and stderr on a terminal
# (script(1)); its stdout goes to OUT, what the terminal showed to ERRFILE.
# Returns CMD's exit status.
on_tty() {
    local out=$1 tty=$2 q
    shift 2
    printf -v q '%q ' "$@"
    script -qec "$q>$(printf %q "$out")" "$tty" </dev/null >/dev/null
}

# tty_text FILE: what the command showed on the terminal (script(1)'s own
# "Script started/done" lines and blank lines left out).
tty_text() { grep -av -e '^Script started on ' -e '^Script done on ' -e '^[[:space:]]*$' "$1" || true; }

# bar_shown WHAT FILE PHASE DISK: FILE (a terminal's log) shows a bar of
# DISK's PHASE that reached 100%, redrawn with carriage returns.
bar_shown() {
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -aqE "(^|$(printf '\r'))$4 $3 \[#{20}\] 100\.0% [0-9.]+ [KMGT]?i?B / [0-9.]+ [KMGT]?i?B" "$2" ||
        fail "$1: no finished bar for $4 $3 in [$(tr '\r' '|' <"$2" | head -c 600)]"
}
