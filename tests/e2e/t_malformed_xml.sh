#!/usr/bin/env bash
# t_malformed.sh's companion for libvirt's files: hand-made malformed domain
# configs and snapshot metadata (entities, external DTDs and entities,
# billion laughs, non-UTF-8, truncation, a second <name>, parent loops, two
# current snapshots, duplicate names, json:/protocol/newline disk sources),
# each run through the domain commands that read it. Every command:
#  - ends (under timeout) with the exit status of README's table: 1 for an
#    error or refusal; verify 1 when it could not check, 2 for problems found
#    (its report on stdout names them); list shows what it can read (0) and
#    warns on ONE line about a snapshot file libvirt would not load;
#  - prints exactly one line on stderr ("extsnap: CMD: ..."), which matches
#    the case's pattern (for verify's problems: the report does);
#  - leaves every file under the root as it was (sha256, mode, size, names).
# An external entity or DTD must never be read: the files they name hold a
# marker that must appear nowhere, or are FIFOs (opening one would hang).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io xmllint sha256sum timeout iconv

# The domain every case starts from: tvm with snapshots s1 <- s2 (current).
GOLD=$T/gold
R=$GOLD
snap_make_tvm "$R"
x create tvm s1 -q
x create tvm s2 -q
SECRET=$T/secret.txt
MARK=EXTSNAP-SECRET-MARK-7f3a
echo "$MARK" >"$SECRET"
mkfifo "$T/fifo.dtd" "$T/fifo.ent"

# Command keys. A trailing ~ means "list shows, warns once"; ! means "verify
# finds problems (2)". The rest must fail with 1.
CFG_ALL="list tree disks verify create delete commit revert refresh"
SNAP_ALL="list~ tree~ verify! create delete commit revert refresh"
cmdline() {
    case ${1%[~!]} in
    list) echo "list tvm" ;;
    tree) echo "list tvm --tree" ;;
    disks) echo "disks tvm --chain" ;;
    verify) echo "verify tvm" ;;
    create) echo "create tvm s3" ;;
    delete) echo "delete tvm s1" ;;
    commit) echo "commit tvm s1 s2" ;;
    revert) echo "revert tvm s1" ;;
    refresh) echo "refresh tvm" ;;
    esac
}

CASES=()
NCASES=0
# xcase NAME "KEYS" PATTERN: the case's root is $T/c/NAME, made by the
# function mk_NAME (run with R set to a fresh copy of the domain);
# PATTERN is an extended regex the error line (verify!: the report) matches.
xcase() {
    CASES+=("$1|$2|$3")
    NCASES=$((NCASES + 1))
}

CFG=$SNAP_CFG/tvm.xml
SD=$SNAP_DIR/tvm
# sub FILE SED-EXPR: edit a file of the case's root.
sub() { sed -i -e "$2" "$R$1"; }
# before_root FILE TEXT: insert TEXT (a line) before the root element.
before_root() { sed -i "0,/^<domain/s//$(sed 's/[\/&]/\\&/g' <<<"$2")\n&/" "$R$1"; }

LOL='<!DOCTYPE domain [<!ENTITY a "lollollollollollollollollollol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;"><!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">]>'

# --- the domain config ---------------------------------------------------------
mk_cfg_internal_entity() { before_root $CFG '<!DOCTYPE domain [<!ENTITY n "tvm">]>'; sub $CFG 's|<name>tvm</name>|<name>\&n;</name>|'; }
xcase cfg_internal_entity "$CFG_ALL" "tvm.xml: malformed XML at line 8: document type declarations are not supported"
mk_cfg_undefined_entity() { sub $CFG 's|<name>tvm</name>|&<description>\&x;</description>|'; }
xcase cfg_undefined_entity "$CFG_ALL" "tvm.xml: malformed XML at line 9: Entity 'x' not defined"
mk_cfg_external_entity() {
    before_root $CFG "<!DOCTYPE domain [<!ENTITY x SYSTEM \"file://$SECRET\">]>"
    sub $CFG 's|<name>tvm</name>|&<description>\&x;</description>|'
}
xcase cfg_external_entity "$CFG_ALL" "tvm.xml: .*document type declarations are not supported"
mk_cfg_external_dtd() { before_root $CFG "<!DOCTYPE domain SYSTEM \"$T/fifo.dtd\">"; }
xcase cfg_external_dtd "$CFG_ALL" "tvm.xml: .*document type declarations are not supported"
mk_cfg_parameter_entity() { before_root $CFG "<!DOCTYPE domain [<!ENTITY % p SYSTEM \"file://$T/fifo.ent\"> %p;]>"; }
xcase cfg_parameter_entity "$CFG_ALL" "tvm.xml: .*document type declarations are not supported"
mk_cfg_billion_laughs() { before_root $CFG "$LOL"; sub $CFG 's|<name>tvm</name>|&<description>\&i;</description>|'; }
xcase cfg_billion_laughs "$CFG_ALL" "tvm.xml: .*document type declarations are not supported"
mk_cfg_latin1_bytes() { sub $CFG 's|<name>tvm</name>|&<description>caf\xe9</description>|'; }
xcase cfg_latin1_bytes "$CFG_ALL" "tvm.xml: malformed XML at line 9: Input is not proper UTF-8.*0xE9"
mk_cfg_latin1_declared() { sed -i '1i <?xml version="1.0" encoding="ISO-8859-1"?>' "$R$CFG"; mk_cfg_latin1_bytes; }
xcase cfg_latin1_declared "$CFG_ALL" "tvm.xml: unsupported encoding ISO-8859-1"
mk_cfg_utf16() { iconv -f UTF-8 -t UTF-16 "$R$CFG" >"$T/u16" && cat "$T/u16" >"$R$CFG"; }
xcase cfg_utf16 "$CFG_ALL" "tvm.xml: malformed XML"
mk_cfg_nul_byte() { sub $CFG 's|<name>tvm</name>|<name>tv\x00m</name>|'; }
xcase cfg_nul_byte "$CFG_ALL" "tvm.xml: malformed XML"
mk_cfg_truncated() { truncate -s 900 "$R$CFG"; }
xcase cfg_truncated "$CFG_ALL" "tvm.xml: malformed XML at line [0-9]+: "
mk_cfg_empty() { : >"$R$CFG"; }
xcase cfg_empty "$CFG_ALL" "tvm.xml: malformed XML: no root element"
mk_cfg_text_after_root() { echo "trailing junk" >>"$R$CFG"; }
xcase cfg_text_after_root "$CFG_ALL" "tvm.xml: malformed XML at line [0-9]+: text outside the root element"
mk_cfg_two_names() { sub $CFG 's|<name>tvm</name>|&\n  <name>other</name>|'; }
xcase cfg_two_names "$CFG_ALL" "tvm.xml: line 10: a second <name> element \('tvm' is the first\)"
mk_cfg_name_mismatch() { sub $CFG 's|<name>tvm</name>|<name>other</name>|'; }
xcase cfg_name_mismatch "$CFG_ALL" "tvm.xml: defines domain 'other', not 'tvm'"
mk_cfg_deep_nesting() {
    local open close
    open=$(printf '<a>%.0s' {1..5000}) close=$(printf '</a>%.0s' {1..5000})
    sub $CFG "s|<name>tvm</name>|&<metadata>$open$close</metadata>|"
}
xcase cfg_deep_nesting "$CFG_ALL" "tvm.xml: malformed XML at line 9: "
mk_cfg_dup_target() { sub $CFG "s|<target dev='vdb'|<target dev='vda'|"; }
xcase cfg_dup_target "$CFG_ALL" "tvm.xml: line [0-9]+: target 'vda' duplicated"
mk_cfg_wrong_root() { cp "$R$SD/s1.xml" "$R$CFG"; }
xcase cfg_wrong_root "$CFG_ALL" "tvm.xml: root element is <domainsnapshot>, expected <domain>"
# Namespace errors: libxml2 goes on with the names as written, libvirt
# refuses the file (fuzz_domxml's finding: the scan then disagreed).
mk_cfg_bad_ns_prefix() { sub $CFG "s|<disk type='file'|<disk xmlns:-x='urn:x' type='file'|"; }
xcase cfg_bad_ns_prefix "$CFG_ALL" "tvm.xml: malformed XML at line [0-9]+: Failed to parse QName 'xmlns:'"
mk_cfg_undefined_prefix() { sub $CFG 's|<name>tvm</name>|&<metadata><my:app/></metadata>|'; }
xcase cfg_undefined_prefix "$CFG_ALL" "tvm.xml: malformed XML at line 9: Namespace prefix my on app is not defined"
# Disk sources only create opens as the snapshot's new base (the other
# operations start from the snapshots' files); verify reports them.
mk_cfg_source_newline() { sub $CFG 's|vda\.s2|vda\&#10;.s2|'; }
xcase cfg_source_newline "create verify!" 'vda\\n\.s2'
mk_cfg_source_json() { sub $CFG "s|'$SNAP_IMG/vda.s2'|'json:{\"driver\":\"file\",\"filename\":\"/etc/shadow\"}'|"; }
xcase cfg_source_json "create verify!" 'json:\{"driver":"file","filename":"/etc/shadow"\}'
mk_cfg_source_nbd() {
    sub $CFG "0,/<disk type='file' device='disk'>/s//<disk type='network' device='disk'>/"
    sub $CFG "s|<source file='$SNAP_IMG/vda.s2'/>|<source protocol='nbd' name='x'><host name='nbd.invalid' port='10809'/></source>|"
}
xcase cfg_source_nbd "create" "disk vda is of type 'network'; extsnap snapshots local files only"

# --- snapshot metadata -----------------------------------------------------------
# s1 <- s2: s1 gets s2 as parent.
mk_snap_parent_loop() { sub $SD/s1.xml 's|  <creationTime>|  <parent>\n    <name>s2</name>\n  </parent>\n&|'; }
xcase snap_parent_loop "$SNAP_ALL" "s[12]\.xml: .*(snapshot 's[12]' is in a parent cycle|snapshot s[12]'s parents loop)"
mk_snap_self_parent() { sub $SD/s1.xml 's|  <creationTime>|  <parent>\n    <name>s1</name>\n  </parent>\n&|'; }
xcase snap_self_parent "$SNAP_ALL" "s1\.xml: .*(snapshot 's1' is in a parent cycle|snapshot s1's parents loop)"
mk_snap_parent_missing() { sub $SD/s2.xml '/<parent>/,/<\/parent>/s|<name>s1</name>|<name>ghost</name>|'; }
xcase snap_parent_missing "$SNAP_ALL" "s2\.xml: .*(snapshot 's2' has parent 'ghost', which does not exist|snapshot s2's parent ghost does not exist)"
mk_snap_two_current() { sub $SD/s1.xml 's|<active>0</active>|<active>1</active>|'; }
xcase snap_two_current "$SNAP_ALL" "snapshots 's1' and 's2' both claim to be current|2 snapshots claim to be current \(s1, s2\)"
mk_snap_dup_name() { sed 's|<active>1</active>|<active>0</active>|' "$R$SD/s2.xml" >"$R$SD/s3.xml"; }
xcase snap_dup_name "$SNAP_ALL" "snapshot 's2' is defined twice, in s2\.xml and s3\.xml|s3\.xml: a second snapshot named s2"
mk_snap_name_file_mismatch() { sub $SD/s2.xml '0,/<name>s2<\/name>/s//<name>s9<\/name>/'; }
xcase snap_name_file_mismatch "$SNAP_ALL" "s2\.xml: .*holds snapshot 's9', but libvirt reads and writes it only as s9\.xml|s2\.xml: holds snapshot s9, but libvirt writes and deletes s9\.xml only"
mk_snap_source_json() { sub $SD/s2.xml "s|'$SNAP_IMG/vda.s2'|'json:{\"driver\":\"file\",\"filename\":\"/x\"}'|"; }
xcase snap_source_json "$SNAP_ALL" "s2\.xml: .*line 17: disk snapshot image path 'json:\{.*\}' must be absolute"
mk_snap_source_url() { sub $SD/s2.xml "s|'$SNAP_IMG/vda.s2'|'nbd://nbd.invalid:10809/x'|"; }
xcase snap_source_url "$SNAP_ALL" "s2\.xml: .*line 17: disk snapshot image path 'nbd://nbd.invalid:10809/x' must be absolute"
mk_snap_external_entity() {
    sed -i "0,/^<domainsnapshot>/s||<!DOCTYPE domainsnapshot [<!ENTITY x SYSTEM \"file://$SECRET\">]>\n&|" "$R$SD/s2.xml"
    sub $SD/s2.xml 's|<name>s2</name>|&\n  <description>\&x;</description>|'
}
xcase snap_external_entity "$SNAP_ALL" "s2\.xml: .*document type declarations are not supported"
mk_snap_external_dtd() { sed -i "0,/^<domainsnapshot>/s||<!DOCTYPE domainsnapshot SYSTEM \"$T/fifo.dtd\">\n&|" "$R$SD/s2.xml"; }
xcase snap_external_dtd "$SNAP_ALL" "s2\.xml: .*document type declarations are not supported"
mk_snap_billion_laughs() {
    sed -i "0,/^<domainsnapshot>/s||${LOL//&/\\&}\n&|" "$R$SD/s2.xml"
    sub $SD/s2.xml 's|<name>s2</name>|&\n  <description>\&i;</description>|'
}
xcase snap_billion_laughs "$SNAP_ALL" "s2\.xml: .*document type declarations are not supported"
mk_snap_undefined_entity() { sub $SD/s2.xml 's|<name>s2</name>|&\n  <description>\&x;</description>|'; }
xcase snap_undefined_entity "$SNAP_ALL" "s2\.xml: .*malformed XML at line [0-9]+: Entity 'x' not defined"
mk_snap_latin1_bytes() { sub $SD/s2.xml 's|<name>s2</name>|&\n  <description>caf\xe9</description>|'; }
xcase snap_latin1_bytes "$SNAP_ALL" "s2\.xml: .*malformed XML at line [0-9]+: Input is not proper UTF-8.*0xE9"
mk_snap_truncated() { truncate -s 500 "$R$SD/s2.xml"; }
xcase snap_truncated "$SNAP_ALL" "s2\.xml: .*malformed XML at line [0-9]+: "
mk_snap_creation_time() { sub $SD/s2.xml 's|<creationTime>[0-9]*<|<creationTime>yesterday<|'; }
xcase snap_creation_time "$SNAP_ALL" "s2\.xml: .*line [0-9]+: creationTime 'yesterday' is not an integer"
mk_snap_domain_two_names() { sub $SD/s2.xml 's|^    <name>tvm</name>|&\n    <name>other</name>|'; }
xcase snap_domain_two_names "$SNAP_ALL" "s2\.xml: .*line [0-9]+: a second <name> element \('tvm' is the first\)"
mk_snap_wrong_root() { cp "$R$CFG" "$R$SD/s2.xml"; }
xcase snap_wrong_root "$SNAP_ALL" "s2\.xml: .*root element is <domain>, expected <domainsnapshot>"

# --- run -----------------------------------------------------------------------------
mkdir "$T/c"
for entry in "${CASES[@]}"; do
    IFS='|' read -r name keys pattern <<<"$entry"
    R=$T/c/$name
    cp -a "$GOLD" "$R"
    "mk_$name"
    # The case must damage something: a typo in mk_* must not pass silently.
    ES_CHECKS=$((ES_CHECKS + 1))
    [[ $(root_sums "$GOLD") != "$(root_sums "$R")" ]] || fail "$name: test setup: the case changed nothing"
    before=$(root_sums "$R")
    for key in $keys; do
        args=$(cmdline "$key")
        want=1 prefix="extsnap: ${args%% *}: "
        case $key in
        *~) want=0 prefix="extsnap: list: warning: " ;;
        *!) want=2 ;;
        esac
        rc=0
        # shellcheck disable=SC2086
        timeout -k 5 30 "$EXTSNAP" $args --root "$R" >"$T/out" 2>"$T/err" || rc=$?
        ES_CHECKS=$((ES_CHECKS + 1))
        nerr=$(wc -l <"$T/err")
        if ((rc == 124 || rc == 137)); then
            fail "$name: extsnap $args hung (killed after 30 s)"
        elif ((rc > 128)); then
            fail "$name: extsnap $args died of signal $((rc - 128)): $(head -c 500 "$T/err")"
        elif ((rc != want)); then
            fail "$name: extsnap $args exited $rc, expected $want: $(head -c 500 "$T/err")"
        elif [[ $key == *! ]]; then
            ((nerr == 0)) || fail "$name: extsnap $args: stderr not empty: $(cat "$T/err")"
            grep -Eq -- "^  error +[a-z-]+ +.*($pattern)" "$T/out" ||
                fail "$name: extsnap $args: no error in the report matching '$pattern':"$'\n'"$(cat "$T/out")"
            ! grep -qv '^  ' <(tail -n +2 "$T/out") ||
                fail "$name: extsnap $args: a report line is broken:"$'\n'"$(cat "$T/out")"
        elif ((nerr != 1)); then
            fail "$name: extsnap $args printed $nerr lines on stderr, expected one:"$'\n'"$(cat "$T/err")"
        elif ! grep -q "^$prefix" "$T/err"; then
            fail "$name: extsnap $args: error line does not start with '$prefix': $(cat "$T/err")"
        elif ! grep -Eq -- "$pattern" "$T/err"; then
            fail "$name: extsnap $args: error does not match '$pattern': $(cat "$T/err")"
        fi
        ES_CHECKS=$((ES_CHECKS + 1))
        if grep -qF "$MARK" "$T/out" "$T/err"; then
            fail "$name: extsnap $args printed the content of an external entity"
        fi
        after=$(root_sums "$R")
        ES_CHECKS=$((ES_CHECKS + 1))
        [[ $before == "$after" ]] ||
            fail "$name: extsnap $args changed files under the root:"$'\n'"$(diff <(echo "$before") <(echo "$after"))"
    done
    ES_CHECKS=$((ES_CHECKS + 1))
    ! grep -rqF "$MARK" "$R" || fail "$name: the external entity's content was copied under the root"
done
ok_eq "number of cases" 40 "$NCASES"
finish
