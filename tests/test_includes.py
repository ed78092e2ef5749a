"""No preload module depends on one that depends on it back (issue 13):
module X depends on Y when preload/X.c or preload/X.h includes "Y.h". The
graph's strongly connected components must all be single modules; a
cycle is named with its members."""
import os
import re

PRELOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "preload")


def include_graph():
    deps = {}
    for name in os.listdir(PRELOAD):
        module, ext = os.path.splitext(name)
        if ext not in (".c", ".h"):
            continue
        with open(os.path.join(PRELOAD, name)) as f:
            for line in f:
                m = re.match(r'#include "(\w+)\.h"', line)
                if m and m.group(1) != module:
                    deps.setdefault(module, set()).add(m.group(1))
    return deps


def cycles(deps):
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in deps.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return found


def test_no_preload_module_includes_one_that_includes_it_back():
    deps = include_graph()
    if len(deps) < 15:
        raise AssertionError(f"read too few modules: {sorted(deps)}")
    found = cycles(deps)
    if found:
        raise AssertionError(f"include cycles: {found}")
