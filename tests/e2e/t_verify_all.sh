#!/usr/bin/env bash
# verify --all says how many domains it checked (issue #13), so that a CI
# job whose config directory holds no domain (empty, or the wrong one) does
# not pass unseen:
#  A. no domain: stdout is "0 domains checked", exit 0 (nothing is wrong);
#     --output=json: an empty array, exit 0; -q: nothing, exit 0;
#  B. three domains (clean, with problems, a config that does not parse):
#     the last line counts them as the JSON output's results do, the lines
#     before it are those of 'verify' naming the same domains, and the exit
#     status is verify's (1: a domain could not be checked); without the
#     broken one, exit 2; -q prints the problem domain only, no count;
#  C. a missing config directory is an error (exit 1), not 0 domains.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io jq

# ---------------------------------------------------------------- A. no domain
R=$T/empty
snap_root_new "$R"
rc=0
out=$(x verify --all 2>"$T/err") || rc=$?
check_eq "no domain: exit status" 0 "$rc"
check_eq "no domain: output" "0 domains checked" "$out"
check_eq "no domain: stderr" "" "$(cat "$T/err")"
rc=0
out=$(x verify --all --output=json 2>"$T/err") || rc=$?
check_eq "no domain, JSON: exit status" 0 "$rc"
check_eq "no domain, JSON: an empty array" "array 0" "$(jq -r '"\(type) \(length)"' <<<"$out" 2>&1)"
rc=0
out=$(x verify --all -q 2>&1) || rc=$?
check_eq "no domain, -q: exit status" 0 "$rc"
check_eq "no domain, -q: output" "" "$out"

# ---------------------------------------------------------------- B. three domains
R=$T/root
snap_make_tvm "$R"
x create tvm s1 -q
# "gone": a disk whose image is missing (a problem); "broken": no XML.
sed -e 's|<name>tvm</name>|<name>gone</name>|' -e '/<uuid>/d' \
    -e "s|$SNAP_IMG/vda.qcow2|$SNAP_IMG/missing.qcow2|" "$R$SNAP_CFG/tvm.xml" >"$R$SNAP_CFG/gone.xml"
sed -i -e "s|$SNAP_IMG/vda.s1|$SNAP_IMG/missing.qcow2|" "$R$SNAP_CFG/gone.xml"
printf '<domain\n' >"$R$SNAP_CFG/broken.xml"

# counts JSON: "N domains checked: C clean, P with problems, F could not be checked"
counts() {
    jq -r '"\(length) domain\(if length == 1 then "" else "s" end) checked: " +
        "\(map(select(.result == "clean")) | length) clean, " +
        "\(map(select(.result == "problems")) | length) with problems, " +
        "\(map(select(.result == "failed")) | length) could not be checked"' <<<"$1"
}
all_vs_named() { # WHAT EXPECTED-RC DOMAINS...
    local what=$1 want=$2 rc=0 nrc=0 out json named
    shift 2
    out=$(x verify --all 2>"$T/err") || rc=$?
    json=$(x verify --all --output=json 2>/dev/null) || true
    named=$(x verify "$@" 2>/dev/null) || nrc=$?
    check_eq "$what: exit status" "$want" "$rc"
    check_eq "$what: exit status as 'verify $*'" "$nrc" "$rc"
    check_eq "$what: domains in the JSON" "$*" "$(jq -r '[.[].domain] | join(" ")' <<<"$json")"
    check_eq "$what: the last line counts them" "$(counts "$json")" "$(tail -n1 <<<"$out")"
    check_eq "$what: the lines before it are verify's" "$named" "$(sed '$d' <<<"$out")"
}
all_vs_named "clean, problems, broken" 1 broken gone tvm
grep -q "broken" "$T/err" || fail "the broken domain is not reported on stderr: $(cat "$T/err")"
rm "$R$SNAP_CFG/broken.xml"
all_vs_named "clean, problems" 2 gone tvm
out=$(x verify --all -q 2>&1) || true
check_eq "-q: the problem domain only, no count" "gone" "$(grep -o '^[a-z]*:' <<<"$out" | tr -d ':' | sort -u)"
grep -q "domains checked" <<<"$out" && fail "-q printed the count: $out"

# ---------------------------------------------------------------- C. no config dir
rm -rf "$T/empty$SNAP_CFG"
R=$T/empty
rc=0
x verify --all >"$T/out" 2>"$T/err" || rc=$?
check_eq "missing config dir: exit status" 1 "$rc"
check_eq "missing config dir: stdout" "" "$(cat "$T/out")"
finish
