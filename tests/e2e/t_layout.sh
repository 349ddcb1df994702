#!/usr/bin/env bash
# The source tree keeps its layers (README.md, "Layout"). From the
# #include "..." lines of src/ (a concern is a folder: src/snap/txn and
# src/snap are two), this fails on:
#   - an arrow up or sideways: cmd -> snap, online -> domxml, qmp, qcow2 -> util;
#     online may include snap, never the other way; the offline path
#     (snap) includes no qmp; cmd reads domains through snap, not domxml;
#   - a cycle between concerns (folder A includes from B and B from A,
#     directly or around a loop);
#   - a cycle between the files of src/snap and src/online (foo.c and foo.h
#     are one file; a private header X_priv.h belongs to X.c, a folder's
#     shared one is looked through).
# A folder that is not in the layer table fails too: place it first.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_tool python3
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

python3 - "$SRC/src" >"$T/report" <<'PY' || true
import collections, os, re, sys

src = sys.argv[1]
LAYER = {"cmd": 4, "snap": 3, "online": 3, "domxml": 2, "qmp": 2, "qcow2": 2, "util": 1}
# Arrows that go down but are still forbidden: (from, to) top folders.
FORBIDDEN = {("snap", "qmp"): "the offline path does not depend on QEMU",
             ("cmd", "domxml"): "cmd reads domains through snap"}
ALLOWED_SIDEWAYS = {("online", "snap")}
FILE_CYCLE_ROOTS = ("snap", "online")

inc = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
files = {}
for d, _, names in os.walk(src):
    for n in names:
        if n.endswith((".c", ".h", ".def")):
            p = os.path.relpath(os.path.join(d, n), src)
            files[p] = open(os.path.join(d, n), encoding="utf-8", errors="replace").read()

def resolve(frm, name):
    for c in (os.path.normpath(os.path.join(os.path.dirname(frm), name)), os.path.normpath(name)):
        if c in files:
            return c
    return None

edges = collections.defaultdict(set)
for p, text in files.items():
    for name in inc.findall(text):
        r = resolve(p, name)
        if r is None:
            print(f"UNRESOLVED {p}: #include \"{name}\"")
        else:
            edges[p].add(r)

def top(p):
    return p.split("/", 1)[0]

def concern(p):
    return os.path.dirname(p)

# Arrows between layers.
for a in sorted(edges):
    for b in sorted(edges[a]):
        ta, tb = top(a), top(b)
        if ta == tb:
            continue
        for t in (ta, tb):
            if t not in LAYER:
                print(f"UNPLACED src/{t}: not in this test's layer table")
        if ta not in LAYER or tb not in LAYER:
            continue
        if (ta, tb) in FORBIDDEN:
            print(f"FORBIDDEN {a} -> {b}: {FORBIDDEN[(ta, tb)]}")
        elif LAYER[tb] > LAYER[ta]:
            print(f"UPWARD {a} -> {b}")
        elif LAYER[tb] == LAYER[ta] and (ta, tb) not in ALLOWED_SIDEWAYS:
            print(f"SIDEWAYS {a} -> {b}")

def sccs(graph):
    """Strongly connected components with more than one node."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1
        stack.append(v); on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    sys.setrecursionlimit(100000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out

def witness(graph, comp, detail):
    """One loop through comp, each step with the include that makes it."""
    start, seen, path = comp[0], {comp[0]}, [comp[0]]
    members = set(comp)
    def walk(v):
        for w in sorted(graph[v]):
            if w == start and len(path) > 1:
                return True
            if w in members and w not in seen:
                seen.add(w); path.append(w)
                if walk(w):
                    return True
                path.pop()
        return False
    walk(start)
    loop = path + [start]
    return "; ".join(detail(loop[i], loop[i + 1]) for i in range(len(loop) - 1))

# Cycles between concerns (folders).
cg, why = collections.defaultdict(set), {}
for a in edges:
    for b in edges[a]:
        ca, cb = concern(a), concern(b)
        if ca != cb:
            cg[ca].add(cb)
            why.setdefault((ca, cb), f"{a} -> {b}")
for comp in sccs(cg):
    print(f"CYCLE between concerns {', '.join('src/' + c for c in comp)}: "
          + witness(cg, comp, lambda x, y: why[(x, y)]))

# Cycles between files of the rooms: foo.c + foo.h is one node; X_priv.h is
# X's; a folder's shared private header (no X.c) is looked through.
def unit(p):
    stem = os.path.splitext(p)[0]
    for suffix in ("_priv", "_internal"):
        if stem.endswith(suffix) and stem[: -len(suffix)] + ".c" in files:
            return stem[: -len(suffix)]
    return stem

def shared_private(p):
    stem = os.path.splitext(p)[0]
    return p.endswith(("_priv.h", "_internal.h")) and unit(p) == stem

def targets(p, seen):
    for b in edges.get(p, ()):
        if shared_private(b):
            if b not in seen:
                seen.add(b)
                yield from targets(b, seen)
        else:
            yield b

fg, fwhy = collections.defaultdict(set), {}
for a in edges:
    if top(a) not in FILE_CYCLE_ROOTS or shared_private(a):
        continue
    for b in targets(a, set()):
        ua, ub = unit(a), unit(b)
        if ua != ub and top(b) in FILE_CYCLE_ROOTS:
            fg[ua].add(ub)
            fwhy.setdefault((ua, ub), f"{a} -> {b}")
for comp in sccs(fg):
    print(f"CYCLE between files {', '.join('src/' + c for c in comp)}: "
          + witness(fg, comp, lambda x, y: fwhy[(x, y)]))
print(f"CHECKED {len(files)} files, {sum(len(v) for v in edges.values())} includes")
PY

checked=$(grep -c '^CHECKED ' "$T/report" || true)
ok_eq "the include scan ran to its end" 1 "$checked"
ES_CHECKS=$((ES_CHECKS + 1))
if grep -v '^CHECKED ' "$T/report" >"$T/bad"; then
    fail "the layers do not hold:
$(cat "$T/bad")"
fi
finish
