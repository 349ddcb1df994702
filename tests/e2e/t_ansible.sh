#!/usr/bin/env bash
# The Ansible collection (ansible/ansible_collections/extsnap/vm, issue 16),
# run for real by Debian's ansible-core against localhost (connection
# local) on copies of the sample VM under a temporary root:
#  A. every module's documentation (ansible-doc), ansible-test sanity with
#     the tests that run offline (the others install pinned tools with pip);
#  B. snapshot s1 twice: changed, then changed: false with no file touched
#     (sha256 of everything under the root);
#  C. check mode with --diff: what would change, extsnap's plan, nothing
#     changed; a snapshot asked for with other disks fails;
#  D. libvirtd running: each change fails with extsnap's one line and exit
#     status 1, in check mode too, nothing changed; nothing to do is ok;
#  E. revert (the guest's writes gone: qemu-img's view of the disk is as at
#     s1), delete and commit-to-base (the guest's view kept; progress lines
#     of the merges), each unchanged the second time; an interrupted create
#     (EXTSNAP_FAULT) recovered by the next run; info's facts; verify;
#  F. (the same play) verify: a warning passes, fails with strict;
#  G. README's "Many hosts" playbook snapshots the stopped VM only.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_tool ansible-playbook ansible-doc qemu-img qemu-io xmllint python3 git
SRC=${ES_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
PB=$SRC/tests/e2e/ansible
COLL=$SRC/ansible/ansible_collections/extsnap/vm
EXTSNAP=$(command -v "$EXTSNAP")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT

# Ansible keeps everything under $T and reads no configuration of this host.
export ANSIBLE_COLLECTIONS_PATH=$SRC/ansible ANSIBLE_HOME=$T/ansible-home
export ANSIBLE_LOCAL_TEMP=$T/ansible-local ANSIBLE_REMOTE_TEMP=$T/ansible-remote
export ANSIBLE_CONFIG=$T/ansible.cfg ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0
export ANSIBLE_DEPRECATION_WARNINGS=0 ANSIBLE_LOCALHOST_WARNING=0
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the checkout's collection
: >"$ANSIBLE_CONFIG"
printf 'localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n' \
    >"$T/inventory"
R=$T/root
IMG=/var/lib/libvirt/images/demo

# play BOOK OUT ARGS...: ansible-playbook -v (each task's result as one
# JSON line); the output in OUT, its exit status in PLAY_RC.
play() {
    local book=$1 out=$2
    shift 2
    PLAY_RC=0
    ansible-playbook -v -i "$T/inventory" "$book" -e "root=$R extsnap=$EXTSNAP" "$@" \
        >"$out" 2>&1 || PLAY_RC=$?
}
# res OUT TASK EXPR: a Python expression over task TASK's result r, read
# from its "ok|changed|fatal: [localhost] => {...}" line.
res() {
    python3 - "$@" <<'PY'
import json, re, sys
out, task, expr = sys.argv[1:4]
name = None
lines = iter(open(out, errors="replace").read().splitlines())
for line in lines:
    m = re.match(r"TASK \[(.*)\] \*+$", line)
    if m:
        name = m.group(1)
        continue
    m = re.match(r"(ok|changed|fatal): \[localhost\](: FAILED!)? => (\{.*)$", line)
    if m and name == task:
        text = m.group(3)
        if text == "{":  # debug, assert: indented, up to a line "}"
            for more in lines:
                text += "\n" + more
                if more == "}":
                    break
        r = json.loads(text)
        r["failed"] = m.group(1) == "fatal"
        v = eval(expr)
        print(" ".join(str(x) for x in v) if isinstance(v, tuple) else v)
        sys.exit(0)
print("no result of task '%s'" % task)
PY
}
snaps() { x list demo --output=json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(s["name"] for s in d["snapshots"]), "current:", d["current"])'; }

# The sample VM, as scripts/demo.sh sets it up.
snap_root_new "$R"
mkdir -p "$R$IMG"
install -m 600 "$SRC/tests/fixtures/sample-vm/demo.xml" "$R$SNAP_CFG/demo.xml"
qemu-img create -q -f qcow2 "$R$IMG/vda.qcow2" 64M
qemu-img create -q -f raw "$R$IMG/vdb.raw" 32M
qemu-img create -q -f raw "$R$IMG/install.iso" 1M
qemu-io -f qcow2 -c 'write -P 0x01 0 64k' "$R$IMG/vda.qcow2" >/dev/null

# ---------------------------------------------------------------- A. docs, sanity
modules=(extsnap_snapshot extsnap_verify extsnap_info)
ansible-doc "${modules[@]/#/extsnap.vm.}" >"$T/doc" 2>&1 || fail "ansible-doc: $(oracle_err "$T/doc")"
for m in "${modules[@]}"; do # each module's page: its title line up to the next one
    awk -v t="> EXTSNAP.VM.${m^^} " 'index($0, t) == 1 {on = 1; print; next} /^> / {on = 0} on' \
        "$T/doc" >"$T/doc.$m"
    grep -q "^EXAMPLES:" "$T/doc.$m" || fail "ansible-doc extsnap.vm.$m shows no examples"
    grep -q "^RETURN VALUES:" "$T/doc.$m" || fail "ansible-doc extsnap.vm.$m shows no return values"
done
grep -q "current-committed" "$T/doc.extsnap_snapshot" ||
    fail "ansible-doc extsnap.vm.extsnap_snapshot lacks the states"
# ansible-test runs inside a copy (it writes tests/output into the collection).
if command -v ansible-test >/dev/null; then
    mkdir -p "$T/sanity/ansible_collections/extsnap"
    cp -r "$COLL" "$T/sanity/ansible_collections/extsnap/vm"
    # Its own git repository: inside another one (a build tree in the
    # checkout) ansible-test takes its file list from git, where the copy
    # is untracked, and skips everything.
    git -C "$T/sanity/ansible_collections/extsnap/vm" init -q
    git -C "$T/sanity/ansible_collections/extsnap/vm" add -A
    # Offline: these need pip to install their pinned tools into a venv.
    skip=(ansible-doc import pep8 pylint runtime-metadata validate-modules yamllint)
    (cd "$T/sanity/ansible_collections/extsnap/vm" &&
        ansible-test sanity --local --python 3.11 --python-interpreter /usr/bin/python3 \
            "${skip[@]/#/--skip-test=}") >"$T/sanity.log" 2>&1 ||
        fail "ansible-test sanity: $(grep -v locale "$T/sanity.log" | tail -n 20 | tr '\n' ' ')"
    grep -q 'Running sanity test "compile"' "$T/sanity.log" || fail "ansible-test sanity ran no compile test"
else
    skip_part "ansible-test is not installed"
fi
for f in "$COLL"/plugins/*/*.py; do
    PYTHONPYCACHEPREFIX=$T/pycache /usr/bin/python3 -m py_compile "$f" 2>"$T/pyc" ||
        fail "py_compile $f: $(oracle_err "$T/pyc")"
done

# ---------------------------------------------------------------- B. twice the same
before=$(root_sums "$R")
play "$PB/snapshot.yml" "$T/b1.log"
check_eq "B: first run exit status" 0 "$PLAY_RC"
check_eq "B: first run changed" True "$(res "$T/b1.log" "snapshot s1" 'r["changed"]')"
check_eq "B: s1 exists, current" "s1 current: s1" "$(snaps)"
check_eq "B: its description" "before patching" \
    "$(x show demo s1 --output=json | python3 -c 'import json,sys; print(json.load(sys.stdin)["description"])')"
after=$(root_sums "$R")
# The second run, as a user sees it with -v (kept in the log).
play "$PB/snapshot.yml" "$T/b2.log"
cat "$T/b2.log"
check_eq "B: second run exit status" 0 "$PLAY_RC"
check_eq "B: second run: ok, changed false" "False snapshot s1 of domain demo is present" \
    "$(res "$T/b2.log" "snapshot s1" 'r["changed"], r["msg"]')"
grep -Eq '^localhost +: ok=1 +changed=0 +unreachable=0 +failed=0' "$T/b2.log" ||
    fail "B: second run's recap is not ok=1 changed=0 failed=0"
check_eq "B: second run touched no file" "$after" "$(root_sums "$R")"
[[ $before != "$after" ]] || fail "B: the first run changed no file"

# ---------------------------------------------------------------- C. check mode
before=$(root_sums "$R")
play "$PB/check.yml" "$T/c.log" --check --diff
check_eq "C: exit status" 0 "$PLAY_RC"
check_eq "C: create s2 would change" "True True" \
    "$(res "$T/c.log" "create s2" 'r["changed"], r["plan"]["dry_run"]')"
check_eq "C: create s2's message" "would create snapshot s2 of domain demo" \
    "$(res "$T/c.log" "create s2" 'r["msg"]')"
# (--diff: the plan is printed between the task's title and its result)
sed -n '/^TASK \[create s2\]/,/^changed: /p' "$T/c.log" >"$T/c.diff"
grep -q "^Plan (dry run, nothing changed): create snapshot s2 of domain demo" "$T/c.diff" &&
    grep -q "new overlay  /var/lib/libvirt/images/demo/vda.s2" "$T/c.diff" ||
    fail "C: --diff does not show extsnap's plan for create s2: $(cat "$T/c.diff")"
check_eq "C: delete s1 would change" "True delete" \
    "$(res "$T/c.log" "delete s1" 'r["changed"], r["plan"]["operation"]')"
check_eq "C: commit into base would change" "True commit" \
    "$(res "$T/c.log" "commit into base" 'r["changed"], r["plan"]["operation"]')"
check_eq "C: revert s1 (current, nothing written since) is no change" False \
    "$(res "$T/c.log" "revert s1" 'r["changed"]')"
check_eq "C: s1 with other disks fails" \
    "True snapshot s1 of domain demo exists with disks vda, vdb, not vda: a snapshot's disks cannot change; delete it first or choose another name" \
    "$(res "$T/c.log" "s1 with other disks" 'r["failed"], r["msg"]')"
check_eq "C: new description would change" "True describe" \
    "$(res "$T/c.log" "new description" 'r["changed"], r["plan"]["operation"]')"
check_eq "C: nothing changed under the root" "$before" "$(root_sums "$R")"

# ---------------------------------------------------------------- D. refusals
mkdir -p "$T/bin"
cp /bin/sleep "$T/bin/libvirtd"
"$T/bin/libvirtd" 300 </dev/null >/dev/null 2>&1 &
lpid=$!
PIDS+=("$lpid")
echo "$lpid" >"$R/run/libvirtd.pid"
before=$(root_sums "$R")
play "$PB/refuse.yml" "$T/d.log"
msg="extsnap: create: $R/run/libvirtd.pid: libvirtd is running (pid $lpid): it keeps its own copy of the domain and snapshot files and would overwrite what extsnap writes; stop it first (systemctl stop libvirtd) or use virsh"
for task in "create s2 in check mode" "create s2"; do
    check_eq "D: $task fails with extsnap's message and status" "True 1 $msg" \
        "$(res "$T/d.log" "$task" 'r["failed"], r["rc"], r["msg"]')"
done
check_eq "D: delete s1 fails with extsnap's message" "True 1 ${msg//create:/delete:}" \
    "$(res "$T/d.log" "delete s1" 'r["failed"], r["rc"], r["msg"]')"
check_eq "D: deleting an absent snapshot is no change" "False False" \
    "$(res "$T/d.log" "delete the absent s9" 'r["changed"], r.get("failed", False)')"
check_eq "D: nothing changed under the root" "$before" "$(root_sums "$R")"
kill "$lpid" 2>/dev/null || true
wait "$lpid" 2>/dev/null || true
rm "$R/run/libvirtd.pid"

# ---------------------------------------------------------------- E. lifecycle
at_s1=$(guest_sum "$R" demo vda)
guest_write "$R" demo vda 0x11 0 64k
[[ $(guest_sum "$R" demo vda) != "$at_s1" ]] || fail "E: test setup: the guest's write changed nothing"
# Where a create stops once its journal is written (traced on a copy).
cp -a "$R" "$T/traced"
EXTSNAP_FAULT_TRACE=$T/trace "$EXTSNAP" create demo tracer -q --root "$T/traced"
stop_at=$(($(grep '^mutate ' "$T/trace" | grep -n 'rename .*/demo\.extsnap\.journal$' | head -n1 | cut -d: -f1) + 2))
rm -rf "$T/traced"
# (the guest's write into s2's overlay alone: its backing names are host
# paths, not under the root)
python3 -c 'import json, sys; print(json.dumps({"stop_at": int(sys.argv[1]), "s2_spec": "json:" + json.dumps(
    {"driver": "qcow2", "file": {"driver": "file", "filename": sys.argv[2]}, "backing": None})}))' \
    "$stop_at" "$R$IMG/vda.s2" >"$T/e-vars.json"
play "$PB/lifecycle.yml" "$T/e.log" -e "@$T/e-vars.json"
check_eq "E: exit status" 0 "$PLAY_RC"
check_eq "E: revert s1 after the guest wrote" "True revert" \
    "$(res "$T/e.log" "revert s1" 'r["changed"], r["plan"]["operation"]')"
check_eq "E: revert s1 again" False "$(res "$T/e.log" "revert s1 again" 'r["changed"]')"
check_eq "E: create s3 of vda only" True "$(res "$T/e.log" "create s3" 'r["changed"]')"
check_eq "E: s3's disks" "vda" \
    "$(res "$T/e.log" "create s3" '" ".join(d["name"] for d in r["snapshot"]["disks"] if d["snapshot"] == "external")')"
check_eq "E: delete s2 merged both disks" "True delete 2" \
    "$(res "$T/e.log" "delete s2" 'r["changed"], r["plan"]["operation"], len(r["plan"]["merges"])')"
check_eq "E: delete s2's progress (--progress=json): vda's merge, complete" "commit 65536" \
    "$(res "$T/e.log" "delete s2" '"commit", max(p["bytes_done"] for p in r["progress"] if p["disk"] == "vda" and p["phase"] == "commit" and p["bytes_done"] == p["bytes_total"])')"
check_eq "E: delete s2 again" "False domain demo has no snapshot s2" \
    "$(res "$T/e.log" "delete s2 again" 'r["changed"], r["msg"]')"
check_eq "E: commit into base" "True commit" \
    "$(res "$T/e.log" "commit into base" 'r["changed"], r["plan"]["operation"]')"
check_eq "E: commit into base again" False "$(res "$T/e.log" "commit into base again" 'r["changed"]')"
check_eq "E: the interrupted create fails with extsnap's status" "True 86" \
    "$(res "$T/e.log" "create s4, interrupted" 'r["failed"], r["rc"]')"
check_eq "E: the next run recovers it first" "True True rolled-back" \
    "$(res "$T/e.log" "create s4" 'r["changed"], r["recovered"]["found"], r["recovered"]["action"]')"
check_eq "E: create s4 again" False "$(res "$T/e.log" "create s4 again" 'r["changed"]')"
check_eq "E: info's facts" "demo s4 False False ['s4'] vda,vdb,sda 2" \
    "$(res "$T/e.log" "info" '" ".join(str(v) for v in (lambda d: (d["name"], d["current"], d["running"], d["pending_journal"], [t["name"] for t in d["tree"]], ",".join(k["target"] for k in d["disks"]), len(d["disks"][0]["chain"])))(r["ansible_facts"]["extsnap_domains"][0]))')"
check_eq "E: info's facts are the play's facts" False "$(res "$T/e.log" "info facts" 'r["failed"]')"
check_eq "E: verify is clean" "False clean" \
    "$(res "$T/e.log" "verify" 'r["changed"], r["ansible_facts"]["extsnap_verify"][0]["result"]')"
check_eq "E: the snapshots at the end" "s4 current: s4" "$(snaps)"
# The guest's data: s2's write (0x22) survived the merges, s1's (0x11) not.
oracle qemu-io -c 'read -P 0x22 0 64k' "$(chain_spec "$R" "$(cfg_source "$R" demo vda)" qcow2)" >/dev/null
oracle qemu-img check -q "$R$IMG/vda.qcow2"

check_eq "F: a warning passes" "False 0 1" \
    "$(res "$T/e.log" "verify, a stray image" 'r["failed"], r["exit_status"], r["ansible_facts"]["extsnap_verify"][0]["warnings"]')"
check_eq "F: strict fails" "True 2" "$(res "$T/e.log" "verify strict" 'r["failed"], r["rc"]')"
check_eq "F: strict's message names the problem" True \
    "$(res "$T/e.log" "verify strict" '"unreferenced-image" in r["msg"] and "stray.qcow2" in r["msg"]')"
check_eq "F: fail_on_problems false" "False problems" \
    "$(res "$T/e.log" "verify strict, no failure" 'r["failed"], r["ansible_facts"]["extsnap_verify"][0]["result"]')"
check_eq "F: a domain that cannot be checked fails with extsnap's reason" \
    "True 1 1 domain checked; could not check nosuch: $R$SNAP_CFG/nosuch.xml: no domain 'nosuch' is defined (no config file)" \
    "$(res "$T/e.log" "verify a domain that is not there" 'r["failed"], r["rc"], r["msg"]')"
rm "$R$IMG/stray.qcow2"

# ---------------------------------------------------------------- G. README
# The playbook of README's "Many hosts", on this root (module_defaults
# added), with a second domain that runs.
python3 - "$SRC/README.md" >"$T/readme.yml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
sec = text.split("## Many hosts", 1)[1]
print(re.search(r"```yaml\n(.*?)```", sec, re.S).group(1), end="")
PY
sed -i '/^  hosts:/a\  module_defaults:\n    group/extsnap.vm.all: {root: "{{ root }}", binary: "{{ extsnap }}"}' "$T/readme.yml"
sed -i 's/^- hosts: .*/- hosts: vmhosts/; s/^  hosts: .*/  hosts: vmhosts/' "$T/readme.yml"
check_eq "G: README's playbook is at most 10 lines" 1 "$(( $(grep -c . "$T/readme.yml") <= 12 ))"
printf '[vmhosts]\nlocalhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n' \
    >"$T/inventory"
sed -e 's|<name>demo</name>|<name>busy</name>|' -e '/<uuid>/d' -e "s|$IMG/|$IMG/busy-|" \
    "$R$SNAP_CFG/demo.xml" >"$R$SNAP_CFG/busy.xml"
for f in "$R$IMG"/*; do [[ $f == */busy-* ]] || cp "$f" "$R$IMG/busy-$(basename "$f")"; done
"$T/bin/libvirtd" 300 </dev/null >/dev/null 2>&1 & # any live process: the VM runs
PIDS+=("$!")
echo "$!" >"$R/run/libvirt/qemu/busy.pid"
busy_before=$(root_sums "$R" | grep -e busy || true)
play "$T/readme.yml" "$T/g.log"
check_eq "G: exit status" 0 "$PLAY_RC"
check_eq "G: the stopped VM has the snapshot" "s4 pre-patch current: pre-patch" "$(snaps)"
check_eq "G: the running VM is untouched" "$busy_before" "$(root_sums "$R" | grep -e busy || true)"
finish
