"""`heaptrace top` and `heaptrace diff`: the pprof text table (flat, flat%,
sum%, cum, cum%, name) with pprof's legend. A diff is a top of the new
profile with the base subtracted, largest growth first."""
from .profile import node_values, total_of
from .units import format_time, format_value, percentage

# pprof's default: nodes whose |cum| is at most this share of the total
# are dropped from tables and graphs.
NODE_FRACTION = 0.005


def accounting_lines(flat_sum, total, dropped, cutoff, fmt):
    """pprof's lines on what a view shows: the share of the total its
    nodes account for, and how many nodes were left out."""
    lines = [f"Showing nodes accounting for {fmt(flat_sum)}, "
             f"{percentage(flat_sum, total).strip()} of {fmt(total)} total"]
    if dropped:
        lines.append(f"Dropped {dropped} node{'s' if dropped > 1 else ''} "
                     f"(cum <= {fmt(cutoff)})")
    return lines


def program_name(dump):
    """The traced program's file name, from `# exe:` or the first mapping."""
    exe = dump.meta.get("exe") or next((m.path for m in dump.mappings
                                        if m.path.startswith("/")), None)
    return exe.rsplit("/", 1)[-1] if exe else None


def legend(profile, selection=None):
    """The report's description lines, as pprof starts them; no Type line
    without a selection."""
    lines = []
    exe = program_name(profile.dump)
    if exe:
        lines.append(f"File: {exe}")
    if selection is not None:
        kind = selection.sample_type
        if selection.min_age is not None:
            kind += f" (only blocks at least {selection.min_age:g} s old)"
        lines.append(f"Type: {kind}")
    ns = profile.dump.meta_int("time_unix_ns")
    if ns is not None:
        lines.append(f"Time: {format_time(ns / 1e9)}")
    untraced = untraced_line(profile.dump)
    if untraced:
        lines.append(untraced)
    return lines


def untraced_line(dump):
    """What the tracer counted but could not trace (`#
    untraced_before_start: <allocs> <bytes>`): allocations made before it
    started, or, with HEAPTRACE_UNWIND=libunwind, before libunwind was
    loaded (docs/format.md)."""
    fields = dump.meta.get("untraced_before_start", "").split()
    if len(fields) != 2 or not all(f.isascii() and f.isdigit() for f in fields):
        return None
    allocs, size = map(int, fields)
    if not allocs:
        return None
    return (f"Untraced: {allocs} allocation{'s' if allocs != 1 else ''} "
            f"({format_value(size, 'bytes')}) made before heaptrace started "
            "tracing; not in this profile")


def kept_nodes(stacks, node_fraction):
    """(nodes sorted for display as [(name, flat, cum)], total, dropped)."""
    total = total_of(stacks)
    cutoff = abs(int(total * node_fraction))
    nodes = node_values(stacks)
    kept = [(name, flat, cum) for name, (flat, cum) in nodes.items()
            if abs(cum) > cutoff]
    return kept, total, len(nodes) - len(kept), cutoff


def render_top(profile, selection, stacks, count=0, by_cum=False,
               node_fraction=NODE_FRACTION, unit="auto"):
    kept, total, dropped, cutoff = kept_nodes(stacks, node_fraction)
    if by_cum:
        kept.sort(key=lambda n: (-n[2], -n[1], n[0]))
    else:
        kept.sort(key=lambda n: (-n[1], -n[2], n[0]))
    shown = kept[:count] if count > 0 else kept

    def fmt(value):
        return format_value(value, selection.unit, unit)

    flat_sum = sum(flat for _, flat, _ in shown)
    out = legend(profile, selection)
    out += accounting_lines(flat_sum, total, dropped, cutoff, fmt)
    if len(shown) < len(kept):
        out.append(f"Showing top {len(shown)} nodes out of {len(kept)}")
    out.append(f"{'flat':>10} {'flat':>5}% {'sum':>5}% {'cum':>10} {'cum':>5}%")
    running = 0
    for name, flat, cum in shown:
        running += flat
        out.append(f"{fmt(flat):>10} {percentage(flat, total)} {percentage(running, total)} "
                   f"{fmt(cum):>10} {percentage(cum, total)}  {name}")
    return "\n".join(out) + "\n"
