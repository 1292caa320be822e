#!/usr/bin/env python3
"""Checks the layout rules of ARCHITECTURE.md for each Rust crate in the workspace:

- no import cycle between the files of a crate (an edge A -> B when A names an item of B's
  module through `use` or a `crate::`/`super::`/`self::`/child-module path; `mod` declarations
  and a module's `pub use` re-exports of its own descendants are not imports);
- no source file over 500 lines (tests in `*_tests.rs` files excepted).

Exit 1 with the cycles and the long files listed; `--graph` prints every edge.
"""
import os
import re
import sys

MAX_LINES = 500
CRATES = ["sidecar/src", "control/src", "integration/src"]


def module_files(root):
    """Maps module path tuples to files (`lib.rs`/`main.rs` are the root, `()`)."""
    mods = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            full = os.path.join(dirpath, f)
            rel = os.path.relpath(full, root)[:-3].split(os.sep)
            if rel[-1] in ("lib", "main") and len(rel) == 1:
                key = ()
                if f == "main.rs" and os.path.exists(os.path.join(root, "lib.rs")):
                    key = ("<main>",)
            elif rel[-1] == "mod":
                key = tuple(rel[:-1])
            else:
                key = tuple(rel)
            mods[key] = full
    return mods


def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    out = []
    for line in src.splitlines():
        # Drop line comments (doc comments included); keep string contents as they are.
        i = line.find("//")
        out.append(line if i < 0 else line[:i])
    return "\n".join(out)


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e] (as lists of segments)."""
    tree = tree.strip()
    m = re.match(r"^(.*?)\{(.*)\}$", tree, flags=re.S)
    if not m:
        seg = re.sub(r"\s+as\s+\w+$", "", tree).strip()
        return [[s for s in seg.split("::") if s]]
    prefix = [s for s in m.group(1).split("::") if s.strip()]
    inner, depth, cur, parts = m.group(2), 0, "", []
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    paths = []
    for p in parts:
        if p.strip():
            for sub in expand_use(p):
                paths.append([s.strip() for s in prefix] + sub)
    return paths


def resolve(module, path, children, mods):
    """The module (key in mods) that `path`, used inside `module`, names; None if external."""
    if not path:
        return None
    head = path[0]
    if head == "crate":
        base, rest = (), path[1:]
    elif head == "self":
        base, rest = module, path[1:]
    elif head == "super":
        base, rest = module, path
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif head in children:
        base, rest = module, path
    else:
        return None
    full = tuple(base) + tuple(s for s in rest if s not in ("*", "self"))
    for n in range(len(full), -1, -1):
        if full[:n] in mods:
            return full[:n]
    return None


def inline_modules(src):
    """For each offset where an inline `mod name { ... }` is open, the names: a list of
    (start, end, name) spans."""
    spans, stack, depth = [], [], 0
    for m in re.finditer(r"\bmod\s+(\w+)\s*\{|[{}]", src):
        tok = m.group(0)
        if tok.startswith("mod"):
            depth += 1
            stack.append((m.start(), depth, m.group(1)))
        elif tok == "{":
            depth += 1
        else:
            if stack and stack[-1][1] == depth:
                start, _, name = stack.pop()
                spans.append((start, m.end(), name))
            depth -= 1
    return spans


def module_at(module, spans, pos):
    names = [name for (a, b, name) in sorted(spans) if a <= pos < b]
    return tuple(module) + tuple(names)


def edges_of(module, path_, mods):
    src = strip_comments(open(path_, encoding="utf-8").read())
    src = re.sub(r'"(?:\\.|[^"\\])*"', '""', src)
    children = set(re.findall(r"\bmod\s+(\w+)\s*;", src))
    spans = inline_modules(src)
    found = set()
    for m in re.finditer(r"\b(pub(?:\([\w:]+\))?\s+)?use\s+([^;]+);", src):
        here = module_at(module, spans, m.start())
        for p in expand_use(m.group(2)):
            t = resolve(here, p, children, mods)
            # A re-export of a descendant (`pub use child::Item` in a mod.rs) is the module's
            # facade, not a dependency: its children may still use what the module defines.
            if t is not None and not (m.group(1) and t[: len(module)] == module):
                found.add(t)
    pattern = r"\b((?:crate|super|self)(?:::\w+)+)"
    if children:
        pattern = r"\b((?:crate|super|self|" + "|".join(children) + r")(?:::\w+)+)"
    # Paths in code; `use` items were resolved above (blanked so that a re-export such as
    # `pub(crate) use child::item;` is not read a second time as a dependency).
    code = re.sub(r"\b(pub(?:\([\w:]+\))?\s+)?use\s+[^;]+;", lambda u: " " * len(u.group(0)), src)
    for m in re.finditer(pattern, code):
        here = module_at(module, spans, m.start())
        t = resolve(here, m.group(1).split("::"), children, mods)
        if t is not None:
            found.add(t)
    found.discard(module)
    return found


def sccs(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    show = "--graph" in sys.argv
    bad = False
    for crate in CRATES:
        root = os.path.join(top, crate)
        mods = module_files(root)
        graph = {m: edges_of(m, f, mods) for m, f in mods.items()}
        name = lambda m: os.path.relpath(mods[m], top)
        if show:
            for m in sorted(graph):
                for t in sorted(graph[m]):
                    print(f"{name(m)} -> {name(t)}")
        for comp in sccs(graph):
            bad = True
            files = sorted(name(m) for m in comp)
            print(f"import cycle in {crate}: " + ", ".join(files))
            for m in comp:
                for t in sorted(graph[m]):
                    if t in comp:
                        print(f"    {name(m)} -> {name(t)}")
        for m, f in sorted(mods.items()):
            n = sum(1 for _ in open(f, encoding="utf-8"))
            if n > MAX_LINES and not f.endswith("_tests.rs"):
                bad = True
                print(f"{os.path.relpath(f, top)}: {n} lines (limit {MAX_LINES})")
    if bad:
        sys.exit(1)
    print("layout: no import cycles, no file over 500 lines")


if __name__ == "__main__":
    main()
