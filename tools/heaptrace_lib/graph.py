"""`heaptrace graph`: a call graph in the spirit of pprof's. Node font size
grows with flat, edge width with the value flowing along it; nodes and edges
below the cutoffs are pruned and the legend says how many. Writes DOT, or
SVG/PNG through graphviz `dot`."""
import math
import os
import subprocess

from .errors import HeaptraceError
from .profile import node_values, total_of
from .top import accounting_lines, legend
from .units import format_value, percentage

NODE_COUNT = 80
EDGE_FRACTION = 0.001
FORMATS = ("dot", "svg", "png")


def _quote(*lines, end="\\n"):
    """A DOT string of the given lines (joined with `end`, \\l to left-align)."""
    escaped = [t.replace("\\", "\\\\").replace('"', '\\"') for t in lines]
    return '"' + end.join(escaped) + ('"' if end == "\\n" else end + '"')


def _edges(stacks, kept):
    """{(caller, callee): value} between kept nodes; a path through pruned
    nodes becomes one residual edge. Each edge counts once per stack."""
    edges, residual = {}, set()
    for value, names in stacks:
        seen = set()
        callee, skipped = None, False
        for name in names:
            if name not in kept:
                skipped = True
                continue
            if callee is not None and callee != name and (name, callee) not in seen:
                seen.add((name, callee))
                edges[(name, callee)] = edges.get((name, callee), 0) + value
                if skipped:
                    residual.add((name, callee))
            callee, skipped = name, False
    return edges, residual


def to_dot(profile, selection, stacks, node_count=NODE_COUNT,
           node_fraction=0.005, edge_fraction=EDGE_FRACTION):
    total = total_of(stacks)
    values = node_values(stacks)
    node_cut = abs(int(total * node_fraction))
    nodes = sorted(((n, f, c) for n, (f, c) in values.items() if abs(c) > node_cut),
                   key=lambda n: (-abs(n[2]), -abs(n[1]), n[0]))
    dropped_nodes = len(values) - len(nodes)
    if node_count > 0 and len(nodes) > node_count:
        dropped_nodes += len(nodes) - node_count
        nodes = nodes[:node_count]
    kept = {name: i + 1 for i, (name, _, _) in enumerate(nodes)}
    edges, residual = _edges(stacks, kept)
    edge_cut = abs(int(total * edge_fraction))
    shown_edges = {k: v for k, v in edges.items() if abs(v) > edge_cut}

    def fmt(value):
        return format_value(value, selection.unit)

    flat_sum = sum(f for _, f, _ in nodes)
    info = legend(profile, selection)
    info += accounting_lines(flat_sum, total, dropped_nodes, node_cut, fmt)
    dropped_edges = len(edges) - len(shown_edges)
    if dropped_edges:
        info.append(f"Dropped {dropped_edges} edge{'s' if dropped_edges > 1 else ''} "
                    f"(freq <= {fmt(edge_cut)})")
    out = ['digraph "heaptrace" {',
           'node [style=filled fillcolor="#f8f8f8"]',
           'subgraph cluster_L { "legend" [shape=box fontsize=16 label=%s] }'
           % _quote(*info, end="\\l")]
    max_flat = max((abs(f) for _, f, _ in nodes), default=0) or 1
    for name, flat, cum in nodes:
        size = 8 + math.ceil(24 * math.sqrt(abs(flat) / max_flat))
        label = [name, f"{fmt(flat)} ({percentage(flat, total).strip()})"]
        if cum != flat:
            label.append(f"of {fmt(cum)} ({percentage(cum, total).strip()})")
        share = min(1.0, abs(cum) / total) if total else 0
        color = "#%02x%02x%02x" % (255, int(255 - 150 * share), int(255 - 200 * share))
        out.append(f"N{kept[name]} [label={_quote(*label)} shape=box fontsize={size} "
                   f"fillcolor=\"{color}\" tooltip={_quote(f'{name} ({fmt(cum)})')}]")
    max_edge = max((abs(v) for v in shown_edges.values()), default=0) or 1
    for (caller, callee), value in sorted(shown_edges.items(), key=lambda e: -abs(e[1])):
        width = 1 + 5 * abs(value) / max_edge
        style = " style=dotted" if (caller, callee) in residual else ""
        out.append(f"N{kept[caller]} -> N{kept[callee]} [label=\" {fmt(value)}\" "
                   f"penwidth={width:.2f} weight={1 + int(100 * abs(value) / max_edge)}"
                   f"{style} tooltip={_quote(f'{caller} -> {callee} ({fmt(value)})')}]")
    out.append("}")
    return "\n".join(out) + "\n"


def write_graph(profile, selection, stacks, output, node_count=NODE_COUNT,
                node_fraction=0.005, edge_fraction=EDGE_FRACTION):
    fmt = os.path.splitext(output)[1].lstrip(".").lower()
    if fmt not in FORMATS:
        raise HeaptraceError(f"{output}: the output name must end in .svg, .png or .dot")
    dot = to_dot(profile, selection, stacks, node_count, node_fraction, edge_fraction)
    if fmt == "dot":
        data = dot.encode()
    else:
        try:
            proc = subprocess.run(["dot", "-T" + fmt], input=dot.encode(),
                                  capture_output=True, timeout=600)
        except FileNotFoundError:
            raise HeaptraceError("graphviz `dot` not found; install graphviz "
                                 "or write a .dot file") from None
        if proc.returncode != 0:
            raise HeaptraceError("dot failed: " + proc.stderr.decode(errors="replace").strip())
        data = proc.stdout
    try:
        with open(output, "wb") as f:
            f.write(data)
    except OSError as e:
        raise HeaptraceError(f"{output}: {e.strerror or e}") from None
