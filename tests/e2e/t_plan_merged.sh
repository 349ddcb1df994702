#!/usr/bin/env bash
# A plan that merges several images names every one of them under its merge,
# in the text plan and in the JSON plan (issue #13: the images between TOP's
# overlay and BASE's image appeared only under "delete"). The oracle is the
# images' own backing chain as qemu-img reads it: for each merge, the images
# from its top down to (not including) its base, top first.
#  A. commit s1 s3 with s4 after it (two images merged per disk), --dry-run:
#     JSON merges[].images == the chain, every image deleted as "merged into"
#     is under a merge, and the text plan shows each of them in its merge;
#  B. delete s2 (one image per disk): images is just the top;
#  C. the real commit prints the same merges under "Done:".
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io jq

R=$T/root
snap_make_tvm "$R"
for i in 1 2 3 4; do
    x create tvm s$i -q
    guest_write "$R" tvm vda 0x${i}1 $((i * 64))k 64k
done

# chain_between TOP BASE: the logical paths from TOP down its backing chain,
# stopping before BASE; "BROKEN ..." when BASE is never reached.
chain_between() {
    local p=$1 base=$2 bf n=0
    while [[ $p != "$base" ]]; do
        echo "$p"
        bf=$(qemu-img info -U --output=json "$R$p" | jq -r '."backing-filename" // empty')
        [[ -n $bf ]] || { echo "BROKEN: $p has no backing file before $base"; return; }
        [[ $bf == /* ]] || bf="$(dirname "$p")/$bf"
        p=$bf
        ((++n < 64)) || { echo "BROKEN: loop"; return; }
    done
}

# text_merged FILE: "TOP IMAGE" for every image the text plan lists in a merge.
text_merged() {
    awk '/^  merge        / { top = $2; print top, $2; inm = 1; next }
         inm && /^               and / { print top, $2; next }
         inm && /^               into / { inm = 0; next }
         { inm = 0 }' "$1"
}

# check_plan WHAT JSON TEXT MIN: the checks above on one plan; MIN is the
# least number of images some merge must have (the case is not trivial).
check_plan() {
    local what=$1 json=$2 text=$3 min=$4 i n m top base want got most=0
    n=$(jq '.merges | length' "$json")
    ((n > 0)) || fail "$what: no merges in the plan"
    for ((i = 0; i < n; i++)); do
        top=$(jq -r ".merges[$i].top" "$json")
        base=$(jq -r ".merges[$i].base" "$json")
        want=$(chain_between "$top" "$base")
        got=$(jq -r ".merges[$i].images // [] | .[]" "$json")
        check_eq "$what: merge $i ($top into $base): JSON images" "$want" "$got"
        check_eq "$what: merge $i: text plan images" "$want" \
            "$(text_merged "$text" | awk -v t="$top" '$1 == t { print $2 }')"
        m=$(grep -c . <<<"$want")
        ((m > most)) && most=$m
    done
    ((most >= min)) || fail "$what: no merge of $min images or more (the case is trivial: $most)"
    ES_CHECKS=$((ES_CHECKS + 1))
    check_eq "$what: the images deleted as merged are those under the merges" \
        "$(jq -r '.deletes[] | select(.reason | startswith("merged into")) | .filename' "$json" | sort)" \
        "$(jq -r '.merges[].images // [] | .[]' "$json" | sort)"
}

# ---------------------------------------------------------------- A. commit, dry run
x commit tvm s1 s3 --dry-run --output=json >"$T/a.json"
x commit tvm s1 s3 --dry-run >"$T/a.txt"
check_plan "commit s1 s3 --dry-run" "$T/a.json" "$T/a.txt" 2

# ---------------------------------------------------------------- B. delete, one image
x delete tvm s2 --dry-run --output=json >"$T/b.json"
x delete tvm s2 --dry-run >"$T/b.txt"
check_plan "delete s2 --dry-run" "$T/b.json" "$T/b.txt" 1

# ---------------------------------------------------------------- C. the real run
cp "$T/a.txt" "$T/c.plan"
x commit tvm s1 s3 >"$T/c.txt"
check_eq "commit s1 s3: the merges under Done: are the dry run's" \
    "$(text_merged "$T/c.plan")" "$(text_merged "$T/c.txt")"
[[ -n $(text_merged "$T/c.txt") ]] || fail "commit s1 s3: no merge printed: $(head -3 "$T/c.txt")"
finish
