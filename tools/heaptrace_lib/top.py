"""`heaptrace top` and `heaptrace diff`: the pprof text table (flat, flat%,
sum%, cum, cum%, name) with pprof's legend. A diff is a top of the new
profile with the base subtracted, largest growth first."""
import datetime

from .profile import node_values, total_of
from .units import format_value, percentage

# pprof's default: nodes whose |cum| is at most this share of the total
# are dropped from tables and graphs.
NODE_FRACTION = 0.005


def legend(profile, selection):
    """The report's description lines, as pprof starts them."""
    lines = []
    meta = profile.dump.meta
    exe = meta.get("exe") or next((m.path for m in profile.dump.mappings
                                   if m.path.startswith("/")), None)
    if exe:
        lines.append(f"File: {exe.rsplit('/', 1)[-1]}")
    lines.append(f"Type: {selection.sample_type}")
    if meta.get("time_unix_ns", "").isdigit():
        when = datetime.datetime.fromtimestamp(int(meta["time_unix_ns"]) / 1e9,
                                               datetime.timezone.utc)
        lines.append(f"Time: {when:%Y-%m-%d %H:%M:%S} UTC")
    return lines


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
    out.append(f"Showing nodes accounting for {fmt(flat_sum)}, "
               f"{percentage(flat_sum, total).strip()} of {fmt(total)} total")
    if dropped:
        out.append(f"Dropped {dropped} node{'s' if dropped > 1 else ''} "
                   f"(cum <= {fmt(cutoff)})")
    if len(shown) < len(kept):
        out.append(f"Showing top {len(shown)} nodes out of {len(kept)}")
    out.append(f"{'flat':>10} {'flat':>5}% {'sum':>5}% {'cum':>10} {'cum':>5}%")
    running = 0
    for name, flat, cum in shown:
        running += flat
        out.append(f"{fmt(flat):>10} {percentage(flat, total)} {percentage(running, total)} "
                   f"{fmt(cum):>10} {percentage(cum, total)}  {name}")
    return "\n".join(out) + "\n"
