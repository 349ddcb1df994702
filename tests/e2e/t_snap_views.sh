#!/usr/bin/env bash
# virsh's snapshot views, offline (issue 14 part 5): show (snapshot-info and,
# with --xml, snapshot-dumpxml), current (show, or set the marker) and
# describe (a snapshot's <description>), on a domain whose snapshots extsnap
# made: s1 -> s2 -> s3, then revert to s1 and s4, so s1 has children s2 and
# s4 and descendants s2, s3, s4, and s4 is current.
# Oracles: the stored files (sha256 of everything under the root for the
# refusals and dry runs; for the changes, a diff of the changed file that
# may hold only the <active> or <description> lines), virt-xml-validate on
# every file written, xmllint for what the files say, python3's json.load
# for every JSON output, extsnap verify clean afterwards, and a crash sweep
# of 'current' and 'describe': stopped (and failed with EIO) at every
# file-system change, then recovered, the root must be byte for byte as
# before or as after (these commands touch no image, so every file is
# compared whole; lib/crash_sweep.sh's guest views would only cost time).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io xmllint python3 virt-xml-validate

B=$T/base
R=$B
snap_make_tvm "$B"
x create tvm s1 -q --description "first"
guest_write "$B" tvm vda 0x11 0 64k
x create tvm s2 -q
guest_write "$B" tvm vda 0x21 64k 64k
x create tvm s3 -q
x revert tvm s1 -q
guest_write "$B" tvm vdb 0x41 0 64k
x create tvm s4 -q
SD=$SNAP_DIR/tvm

fresh() { rm -rf "$T/w"; cp -a "$B" "$T/w"; R=$T/w; }

# json_get EXPR: evaluate a python expression over the JSON on stdin (j);
# fails the check when stdin is not one JSON document.
json_get() {
    python3 -c 'import json, sys
j = json.load(sys.stdin)
print(eval(sys.argv[1]))' "$1" 2>"$T/json.err" || echo "NOT-JSON($(oracle_err "$T/json.err"))"
}

# validates FILE: virt-xml-validate accepts it as a domainsnapshot.
validates() {
    virt-xml-validate "$1" domainsnapshot >/dev/null 2>"$T/vxv" ||
        fail "virt-xml-validate $1: $(oracle_err "$T/vxv")"
    ES_CHECKS=$((ES_CHECKS + 1))
}

# changed_lines OLD NEW: the lines diff reports, markers stripped.
changed_lines() { diff "$1" "$2" | grep '^[<>]' | sed 's/^[<>] *//' | sort | tr '\n' '|' || true; }

verify_clean() {
    local out rc=0
    out=$(x verify tvm 2>&1) || rc=$?
    check_eq "$1: extsnap verify ($out)" 0 "$rc"
}

# refused WHAT PATTERN CMD...: exit 1, one line on stderr saying PATTERN,
# nothing changed under the root.
refused() {
    local what=$1 pattern=$2 before after rc=0
    shift 2
    before=$(root_sums "$R")
    "$@" >"$T/out" 2>"$T/err" || rc=$?
    check_eq "$what: exit status" 1 "$rc"
    grep -q -- "$pattern" "$T/err" || fail "$what: message lacks '$pattern': $(cat "$T/err")"
    check_eq "$what: one line on stderr" 1 "$(wc -l <"$T/err")"
    after=$(root_sums "$R")
    check_eq "$what: nothing changed under the root" "$before" "$after"
}

# --- show ------------------------------------------------------------------------
fresh
before=$(root_sums "$R")
out=$(x show tvm s1)
field() { sed -n "s/^$1: *//p" <<<"$out"; }
check_eq "show: snapshot-info fields" \
    "s1|tvm|no|shutoff|external|-|2|3|yes|first" \
    "$(field Name)|$(field Domain)|$(field Current)|$(field State)|$(field Location)|$(field Parent)|$(field Children)|$(field Descendants)|$(field Metadata)|$(field Description)"
grep -q "^ vda  *external  *$SNAP_IMG/vda.qcow2  *$SNAP_IMG/vda.s1$" <<<"$out" ||
    fail "show: vda's row lacks its frozen image and overlay: $out"
out=$(x show tvm s4)
check_eq "show s4: current, parent, children" "yes|s1|0|-" \
    "$(field Current)|$(field Parent)|$(field Children)|$(field Description)"

j=$(x show tvm s1 --output=json)
check_eq "show --output=json: facts" \
    "tvm s1 first shutoff None False external True ['s2', 's4'] ['s2', 's3', 's4'] True" \
    "$(json_get '" ".join(str(x) for x in (j["domain"], j["name"], j["description"], j["state"], j["parent"], j["current"], j["location"], j["metadata"], j["children"], j["descendants"], j["has-domain"]))' <<<"$j")"
check_eq "show --output=json: creation-time is the file's" \
    "$(xmllint --xpath 'string(/domainsnapshot/creationTime)' "$R$SD/s1.xml")" \
    "$(json_get 'j["creation-time"]' <<<"$j")"
check_eq "show --output=json: vda's overlay and frozen image, as the file says" \
    "$(xmllint --xpath "string(/domainsnapshot/disks/disk[@name='vda']/source/@file)" "$R$SD/s1.xml") $(xmllint --xpath "string(/domainsnapshot/domain/devices/disk[target/@dev='vda']/source/@file)" "$R$SD/s1.xml") qcow2" \
    "$(json_get '" ".join(d["source"] + " " + d["frozen-image"] + " " + d["frozen-image-format"] for d in j["disks"] if d["name"] == "vda")' <<<"$j")"
check_eq "show --output=json: the cdrom was not frozen" "no None" \
    "$(json_get '" ".join(d["snapshot"] + " " + str(d["frozen-image"]) for d in j["disks"] if d["name"] == "sda")' <<<"$j")"

x show tvm s2 --xml >"$T/dump"
check_rc "show --xml: the file byte for byte" 0 cmp -s "$T/dump" "$R$SD/s2.xml"
check_eq "show changed nothing" "$before" "$(root_sums "$R")"

refused "show: unknown snapshot" "extsnap: show: domain tvm has no snapshot named 'nope'" \
    x show tvm nope
refused "show: unknown domain" "extsnap: show: " x show nodom s1
rc=0
x show tvm s1 --xml --output=json >/dev/null 2>"$T/err" || rc=$?
check_eq "show: --xml with --output=json: a usage error" 1 "$rc"
grep -q "do not go together" "$T/err" || fail "show --xml --output=json: $(cat "$T/err")"

# --- current: show -----------------------------------------------------------------
check_eq "current: the name" "s4" "$(x current tvm)"
check_eq "current --output=json" "tvm s4" \
    "$(x current tvm --output=json | json_get 'j["domain"] + " " + j["current"]')"
fresh
sed -i 's|<active>1</active>|<active>0</active>|' "$R$SD/s4.xml"
rc=0
out=$(x current tvm 2>"$T/err") || rc=$?
check_eq "current, none: exit 0, nothing printed" "0||" "$rc|$out|$(cat "$T/err")"
check_eq "current --output=json, none: null" "None" \
    "$(x current tvm --output=json | json_get 'j["current"]')"

# --- current NAME: the marker was lost (a hand edit): one file changes -------------
cp "$R$SD/s4.xml" "$T/s4.before"
before=$(root_sums "$R")
out=$(x current tvm s4 --dry-run)
grep -q "s4.xml" <<<"$out" || fail "current --dry-run: the plan does not name s4.xml: $out"
check_eq "current --dry-run changed nothing" "$before" "$(root_sums "$R")"
j=$(x current tvm s4 --dry-run --output=json)
check_eq "current --dry-run --output=json: the plan" "current True 1" \
    "$(json_get 'j["operation"] + " " + str(j["dry-run"]) + " " + str(len(j["xml-files"]))' <<<"$j")"
check_rc "current tvm s4" 0 x current tvm s4 -q
check_eq "current tvm s4: only <active> changed in s4.xml" "<active>0</active>|<active>1</active>|" \
    "$(changed_lines "$T/s4.before" "$R$SD/s4.xml")"
validates "$R$SD/s4.xml"
check_eq "current tvm s4: the other files as they were" \
    "$(cd "$B" && find . -type f ! -name s4.xml -print0 | sort -z | xargs -0 sha256sum)" \
    "$(cd "$R" && find . -type f ! -name s4.xml -print0 | sort -z | xargs -0 sha256sum)"
check_eq "current tvm s4: now current" "s4" "$(x current tvm)"
check_rc "current tvm s4: the file is as extsnap wrote it first" 0 cmp -s "$B$SD/s4.xml" "$R$SD/s4.xml"
verify_clean "current tvm s4"

# Already current: nothing to do, nothing written.
before=$(root_sums "$R")
out=$(x current tvm s4)
grep -q "Nothing to do" <<<"$out" || fail "current, already: $out"
check_eq "current, already: JSON plan without files" "0" \
    "$(x current tvm s4 --output=json | json_get 'len(j["xml-files"])')"
check_eq "current, already: nothing changed" "$before" "$(root_sums "$R")"

# --- current NAME: the marker on the wrong snapshot: two files change -------------
# W: s2 marked current by hand, though the config is on s4's overlays.
W=$T/wrong
rm -rf "$W" && cp -a "$B" "$W"
sed -i 's|<active>1</active>|<active>0</active>|' "$W$SD/s4.xml"
sed -i 's|<active>0</active>|<active>1</active>|' "$W$SD/s2.xml"
fresh
rm -rf "$R" && cp -a "$W" "$R"
check_rc "current tvm s4 (from s2)" 0 x current tvm s4 -q
check_eq "current tvm s4 (from s2): s2.xml's <active> only" "<active>0</active>|<active>1</active>|" \
    "$(changed_lines "$W$SD/s2.xml" "$R$SD/s2.xml")"
check_eq "current tvm s4 (from s2): s4.xml's <active> only" "<active>0</active>|<active>1</active>|" \
    "$(changed_lines "$W$SD/s4.xml" "$R$SD/s4.xml")"
validates "$R$SD/s2.xml"
validates "$R$SD/s4.xml"
check_eq "current tvm s4 (from s2): the domain's files as extsnap made them" \
    "$(cd "$B" && find . -type f -print0 | sort -z | xargs -0 sha256sum)" \
    "$(cd "$R" && find . -type f -print0 | sort -z | xargs -0 sha256sum)"
verify_clean "current tvm s4 (from s2)"

# --- current NAME: two snapshots marked current: the others lose the marker ------
fresh
sed -i 's|<active>0</active>|<active>1</active>|' "$R$SD/s2.xml"
refused "two markers: the other commands refuse the domain" "both claim to be current" \
    x describe tvm s1 --description x
out=$(x current tvm 2>"$T/err")
check_eq "two markers: current prints the first" "s2" "$out"
grep -q "warning: .*both claim to be current" "$T/err" || fail "two markers: no warning: $(cat "$T/err")"
cp "$R$SD/s2.xml" "$T/s2.two"
check_rc "two markers: current tvm s4" 0 x current tvm s4 -q
check_eq "two markers: s2.xml's <active> only" "<active>0</active>|<active>1</active>|" \
    "$(changed_lines "$T/s2.two" "$R$SD/s2.xml")"
validates "$R$SD/s2.xml"
check_eq "two markers: the domain's files as extsnap made them" \
    "$(cd "$B" && find . -type f -print0 | sort -z | xargs -0 sha256sum)" \
    "$(cd "$R" && find . -type f -print0 | sort -z | xargs -0 sha256sum)"
verify_clean "two markers: current tvm s4"

# --- current NAME: refusals -------------------------------------------------------
fresh
refused "current s1: its overlay is s2's frozen image" \
    "cannot make s1 current: disk vda: snapshot s1's overlay $SNAP_IMG/vda.s1 is the frozen image of snapshot s2" \
    x current tvm s1
refused "current s3: its overlay was discarded by the revert" \
    "cannot make s3 current: disk vda: the config's image chain .* reaches snapshot s4's frozen image" \
    x current tvm s3
refused "current s2: the config is not on its state" "cannot make s2 current" x current tvm s2
refused "current s2 --dry-run: refused as the real run" "cannot make s2 current" \
    x current tvm s2 --dry-run
refused "current: unknown snapshot" "domain tvm has no snapshot named 'nope'" x current tvm nope
refused "current: unknown domain" "extsnap: current: " x current nodom s4
sed -i 's|<active>1</active>|<active>0</active>|' "$R$SD/s4.xml"
x revert tvm base -q
refused "current s4 after revert base" "cannot make s4 current" x current tvm s4
fresh
mkdir -p "$T/bin"
cp /bin/sleep "$T/bin/libvirtd"
"$T/bin/libvirtd" 300 </dev/null >/dev/null 2>&1 &
sleeper=$!
echo "$sleeper" >"$R/run/libvirt/qemu/tvm.pid"
refused "current: the VM runs" "domain tvm is running (pid $sleeper" x current tvm s4
refused "describe: the VM runs" "domain tvm is running (pid $sleeper" x describe tvm s1 --description x
rm "$R/run/libvirt/qemu/tvm.pid"
echo "$sleeper" >"$R/run/libvirtd.pid"
refused "current: libvirtd runs" "libvirtd is running (pid $sleeper" x current tvm s4
rm "$R/run/libvirtd.pid"
kill "$sleeper" 2>/dev/null || true
wait "$sleeper" 2>/dev/null || true

# --- describe ------------------------------------------------------------------------
fresh
text=$'<b>&amp; "quoted" \'single\' été 雪\n\tsecond line'
cp "$R$SD/s2.xml" "$T/s2.before"
before=$(root_sums "$R")
x describe tvm s2 --description "$text" --dry-run >/dev/null
check_eq "describe --dry-run changed nothing" "$before" "$(root_sums "$R")"
check_rc "describe s2" 0 x describe tvm s2 --description "$text" -q
validates "$R$SD/s2.xml"
check_eq "describe s2: the file says the text" "$text" \
    "$(xmllint --xpath 'string(/domainsnapshot/description)' "$R$SD/s2.xml")"
check_eq "describe s2: lines added, none removed" 0 \
    "$(diff "$T/s2.before" "$R$SD/s2.xml" | grep -c '^<' || true)"
check_eq "describe s2: the rest of the file as it was" "$(cat "$T/s2.before")" \
    "$(python3 -c 'import re, sys; print(re.sub(r"  <description>.*?</description>\n", "", open(sys.argv[1]).read(), flags=re.S), end="")' "$R$SD/s2.xml")"
check_eq "describe s2: list --output=json says it" "$text" \
    "$(x list tvm --output=json | json_get '[s["description"] for s in j["snapshots"] if s["name"] == "s2"][0]')"
check_eq "describe s2: show --output=json says it" "$text" \
    "$(x show tvm s2 --output=json | json_get 'j["description"]')"
verify_clean "describe s2"
before=$(root_sums "$R")
out=$(x describe tvm s2 --description "$text")
grep -q "Nothing to do" <<<"$out" || fail "describe, same text: $out"
check_eq "describe, same text: nothing changed" "$before" "$(root_sums "$R")"
check_rc "describe s2 ''" 0 x describe tvm s2 --description '' -q
check_rc "describe s2 '': the file byte for byte as before" 0 cmp -s "$T/s2.before" "$R$SD/s2.xml"
cp "$R$SD/s1.xml" "$T/s1.before"
check_rc "describe s1 (replace)" 0 x describe tvm s1 --description "new one" -q
check_eq "describe s1: only the <description> line changed" \
    "<description>first</description>|<description>new one</description>|" \
    "$(changed_lines "$T/s1.before" "$R$SD/s1.xml")"
validates "$R$SD/s1.xml"
j=$(x describe tvm s1 --description "json" --output=json)
check_eq "describe --output=json: the plan" "describe False 1" \
    "$(json_get 'j["operation"] + " " + str(j["dry-run"]) + " " + str(len(j["xml-files"]))' <<<"$j")"
verify_clean "describe s1"

refused "describe: a control character" "control character U+0007" \
    x describe tvm s1 --description $'bell\a'
refused "describe: a carriage return" "control character U+000D" \
    x describe tvm s1 --description $'a\r\nb'
refused "describe: not UTF-8" "not valid UTF-8" x describe tvm s1 --description $'caf\xe9'
refused "describe: U+FFFE" "XML cannot carry" x describe tvm s1 --description $'a\xef\xbf\xbe'
refused "describe: unknown snapshot" "no snapshot named 'nope'" x describe tvm nope --description x
rc=0
x describe tvm s1 >/dev/null 2>"$T/err" || rc=$?
check_eq "describe without --description: a usage error" 1 "$rc"
grep -q "expected --description" "$T/err" || fail "describe without --description: $(cat "$T/err")"
refused "create: a control character in --description" "control character U+001B" \
    x create tvm s5 --description $'\e[1m'

echo "before the sweeps: $SECONDS s"
# --- crash safety: stopped at every file-system change, then recover ---------------
# sweep LABEL BASE CMD...: on copies of BASE, CMD stopped (exit 86) at its
# n-th file-system change, for every n, or failed with EIO (exit 1) there,
# for every third n and the last (as lib/crash_sweep.sh; not with
# SWEEP_EIO=), then
# 'extsnap recover': every file under the root as before or as after CMD.
sweep() {
    local label=$1 base=$2 before after max n action rc got
    shift 2
    R=$T/sw
    rm -rf "$R" && cp -a "$base" "$R"
    before=$(root_sums "$R")
    rm -f "$T/trace"
    EXTSNAP_FAULT_TRACE=$T/trace x "$@" -q || fail "$label: the reference run failed"
    after=$(root_sums "$R")
    [[ $before != "$after" ]] || fail "$label: the reference run changed nothing"
    verify_clean "$label: reference run"
    max=$(grep -c '^mutate ' "$T/trace")
    ((max > 5)) || fail "$label: only $max fault points traced"
    for action in stop ${SWEEP_EIO-eio}; do
        for ((n = 1; n <= max; n++)); do
            [[ $action == eio ]] && ((n % 3 != 1 && n != max)) && continue
            ((n % ${SWEEP_STEP:-1} == 1 % ${SWEEP_STEP:-1} || n == max)) || continue
            rm -rf "$R" && cp -a "$base" "$R"
            rc=0
            EXTSNAP_FAULT=mutate:$n:$action x "$@" -q >/dev/null 2>"$T/err" || rc=$?
            if [[ $action == stop ]]; then
                check_eq "$label: mutate:$n:stop: exit status" 86 "$rc"
            elif ! grep -q "^mutate $n unlink .*extsnap.lock" "$T/trace"; then
                check_eq "$label: mutate:$n:eio: exit status ($(cat "$T/err"))" 1 "$rc"
            fi
            x recover tvm -q >/dev/null 2>"$T/err" || fail "$label: $n:$action: recover: $(cat "$T/err")"
            got=$(root_sums "$R")
            ES_CHECKS=$((ES_CHECKS + 1))
            [[ $got == "$before" || $got == "$after" ]] ||
                fail "$label: mutate:$n:$action ($(awk -v n="$n" '$1 == "mutate" && $2 == n' "$T/trace")): neither before nor after"
        done
    done
    echo "$label: $max mutate points, stopped at every ${SWEEP_STEP:-1}${SWEEP_EIO-, EIO at every third}; $SECONDS s"
}
# The marker on s2 (W above): current s4 rewrites s2.xml and s4.xml.
sweep "current" "$W" current tvm s4
# describe goes the same way (plan, journal, one file): every other point
# and no EIO keep the test within its time.
SWEEP_EIO= SWEEP_STEP=2 sweep "describe" "$B" describe tvm s3 --description "after a crash"

finish
