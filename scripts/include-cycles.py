#!/usr/bin/env python3
"""Finds include circles between the modules of src/ (issue 9 part 7).

A module is a source file without its extension: core/flow.c and core/flow.h are the one
module core/flow, so flow.c including message.h while message.c includes flow.h is a
circle, even though no header includes itself. A module's internal header X_int.h belongs
to module X. Only `#include "..."` lines count.

usage: scripts/include-cycles.py [--only DIR ...] [--src SRC]
  --only DIR  report only circles that pass through a module under src/DIR (e.g. core)
Prints each circle (a strongly connected component, with one path around it) and exits
1 when there is one, 0 when there is none.
"""
import argparse
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
EXTS = ('.c', '.h', '.cc')


def module_of(rel):
    """core/flow.c -> core/flow; store/store_int.h -> store/store."""
    mod = os.path.splitext(os.path.normpath(rel))[0]
    return mod[:-4] if mod.endswith('_int') else mod


def modules(src):
    """module -> set of modules it includes (itself left out)."""
    graph = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(EXTS):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src)
            mod = module_of(rel)
            with open(path, encoding='utf-8', errors='replace') as fh:
                text = fh.read()
            deps = graph.setdefault(mod, set())
            for inc in INCLUDE.findall(text):
                # "core/flow.h" is relative to src/; a bare "x.h" to the including file.
                target = inc if os.path.exists(os.path.join(src, inc)) else \
                    os.path.relpath(os.path.join(os.path.dirname(rel), inc))
                if not os.path.exists(os.path.join(src, target)):
                    continue  # generated or system-like: no module of ours
                dep = module_of(target)
                if dep != mod:
                    deps.add(dep)
    return graph


def sccs(graph):
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    n = stack.pop()
                    on.discard(n)
                    comp.append(n)
                    if n == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def path_around(graph, comp):
    """One circle through the component's first module, by breadth-first search."""
    members, first = set(comp), comp[0]
    prev, queue = {first: None}, [first]
    while queue:
        n = queue.pop(0)
        for d in sorted(graph.get(n, ())):
            if d == first:
                path = [n]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [first]
            if d in members and d not in prev:
                prev[d] = n
                queue.append(d)
    return comp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--src', default=os.path.join(os.path.dirname(__file__), '..', 'src'))
    ap.add_argument('--only', nargs='*', default=[])
    args = ap.parse_args()
    graph = modules(os.path.normpath(args.src))
    found = 0
    for comp in sccs(graph):
        if args.only and not any(m.split('/')[0] in args.only for m in comp):
            continue
        found += 1
        print('include circle: ' + ' -> '.join(path_around(graph, comp)))
        if len(comp) > 2:
            print('  (all of: ' + ', '.join(comp) + ')')
    if found == 0:
        print('no include circle' + (' through ' + ', '.join(args.only) if args.only else ''))
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
