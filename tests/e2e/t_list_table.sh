#!/usr/bin/env bash
# The list table on a terminal (issue #13): its columns stay aligned for
# names in any script, and it shows each snapshot's description.
# Snapshots named in ASCII, Latin with a precomposed and with a combining
# accent, CJK and Hangul (2 columns a character), fullwidth Latin and an
# emoji; descriptions long (CJK and Latin), over two lines, with tabs, none.
# The oracle is Python's unicodedata (East Asian Width W/F: 2 columns;
# categories Mn/Me/Cf: 0): every cell of every row starts at the display
# column of its header; the Description cell is the description's first
# line, blanks collapsed, cut to 40 columns with "..." when anything is left
# out; the JSON output keeps the whole description; the table is the same
# whatever the locale (LC_ALL=C or C.UTF-8).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/snap.sh"
need_cmd qemu-img qemu-io python3 jq

R=$T/root
snap_make_tvm "$R"
acute=$(printf 'e\u0301')
names=(s1 "café" "caf${acute}" "日本語" "한국어스냅샷" "ＡＢＣ" "x😀y")
descs=(""
    "夜間バックアップ before the upgrade of the kernel and the libvirt packages"
    $'first line\nsecond line'
    $'tabs\tand   spaces   inside'
    "short"
    "exactly forty columns of text, no more.."
    "exactly forty-one columns of text, one more")
for i in "${!names[@]}"; do
    if [[ -n ${descs[$i]} ]]; then
        x create tvm "${names[$i]}" --description "${descs[$i]}" -q
    else
        x create tvm "${names[$i]}" -q
    fi
done
LC_ALL=C x list tvm >"$T/list" 2>"$T/err" || fail "list: $(cat "$T/err")"
LC_ALL=C.UTF-8 x list tvm >"$T/list.utf8" 2>/dev/null || true
x list tvm --output=json >"$T/list.json"
check_eq "list: the same table whatever the locale" "$(cat "$T/list")" "$(cat "$T/list.utf8")"
for i in "${!names[@]}"; do
    check_eq "list --output=json: ${names[$i]}'s whole description" "${descs[$i]}" \
        "$(jq -r --arg n "${names[$i]}" '.snapshots[] | select(.name == $n) | .description // ""' "$T/list.json")"
done

python3 - "$T/list" "$T/list.json" >"$T/misaligned" <<'PY' || fail "the alignment oracle failed: $(cat "$T/misaligned")"
import json, re, sys, unicodedata

def width(s):
    w = 0
    for c in s:
        if unicodedata.category(c) in ("Mn", "Me", "Cf"):
            continue
        w += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return w

def clip(d, most=40):
    lines = d.split("\n")
    more = any(l.strip() for l in lines[1:])
    text = " ".join(lines[0].split())
    if width(text) <= most and not more:
        return text
    out = ""
    for c in text:
        if width(out + c) + 3 > most:
            break
        out += c
    return out.rstrip() + "..."

rows = open(sys.argv[1], encoding="utf-8").read().split("\n")
snaps = json.load(open(sys.argv[2]))["snapshots"]
head = rows[0]
heads = ["Name", "Creation Time", "State", "Parent", "Current", "Disks", "Description"]
heads = [h for h in heads if h in head]  # (a missing column is a check of its own)
col = {h: width(head[:head.index(h)]) for h in heads}
if not re.fullmatch(r"-+", rows[1]):
    print("no rule under the header:", rows[1])
body = [r for r in rows[2:] if r]
if len(body) != len(snaps):
    print("rows", len(body), "snapshots", len(snaps))
for s, row in zip(snaps, body):
    cells = {"Name": s["name"], "Parent": s["parent"] or "-",
             "Disks": "vda vdb vdc", "Description": clip(s["description"] or "")}
    at = 0
    for h in heads:
        if h == "Creation Time":
            m = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}").search(row, at)
            val = m.group(0) if m else None
        elif h == "State":
            val = s["state"]
        elif h == "Current":
            val = "yes" if s["current"] else ""
        else:
            val = cells[h]
        if val == "":
            continue
        pos = row.find(val, at)
        if pos < 0 or val is None:
            print(f"{s['name']}: {h} [{val}] not found in [{row}]")
            break
        if width(row[:pos]) != col[h]:
            print(f"{s['name']}: {h} at column {width(row[:pos])}, header at {col[h]}: [{row}]")
        if h == "Description" and row[pos:] != val:
            print(f"{s['name']}: Description [{row[pos:]}], expected [{val}]")
        at = pos + len(val)
    if width(row) > width(rows[1]):
        print(f"{s['name']}: row wider than the rule: [{row}]")
PY
check_eq "list: every cell in its header's column, descriptions cut" "" "$(cat "$T/misaligned")"
grep -q "Description" "$T/list" || fail "list: no Description column: $(head -n1 "$T/list")"
finish
