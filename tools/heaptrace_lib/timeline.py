"""`heaptrace timeline`: one self-contained SVG of memory over time. RSS and
the estimated heap in use are lines; the steadily growing stacks that
`leaks` finds are stacked areas underneath; each run is drawn apart, so a
restart shows as the drop it is, marked with the new pid. Axes carry byte
units and times of day (UTC). A series of several processes gets one such
panel per process, one above the other, in the order `leaks` gives."""
import math
from xml.sax.saxutils import escape

from .errors import HeaptraceError
from .leaks import process_title
from .profile import stack_label
from .series import points
from .top import program_name
from .units import BYTE_UNITS, format_duration, format_time, format_value

WIDTH, HEIGHT = 1000, 460
LEFT, RIGHT, TOP, BOTTOM = 78, 250, 46, 56
STACKS_SHOWN = 5
COLORS = ("#e4572e", "#f3a712", "#a8c686", "#669bbc", "#b07bac", "#8d6a9f")
RSS_COLOR, HEAP_COLOR = "#333333", "#1f5fbf"
TIME_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
              3600, 7200, 10800, 21600, 43200, 86400)


def nice_step(span, ticks=6):
    """A step of 1, 2 or 5 times a power of ten giving about `ticks` ticks."""
    raw = span / ticks if span > 0 else 1
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _byte_axis(top):
    """(unit factor, unit name, step in bytes) for values from 0 to top."""
    factor, name = 1, "B"
    for unit_name, unit_factor in BYTE_UNITS:
        if top / unit_factor >= 1:
            factor, name = unit_factor, unit_name
    return factor, name, nice_step(top / factor) * factor


def _time_label(seconds, step):
    if step < 1:
        return format_time(seconds, "%H:%M:%S.") + f"{seconds % 1:.1f}"[2:]
    return format_time(seconds, "%H:%M:%S" if step < 60 else "%H:%M")


class _Plot:
    """Maps seconds and bytes to the plot area."""

    def __init__(self, t0, t1, top):
        if t1 <= t0:
            t0, t1 = t0 - 1, t1 + 1
        self.t0, self.t1, self.top = t0, t1, top
        self.w = WIDTH - LEFT - RIGHT
        self.h = HEIGHT - TOP - BOTTOM

    def x(self, t):
        return LEFT + (t - self.t0) / (self.t1 - self.t0) * self.w

    def y(self, value):
        return TOP + self.h - value / self.top * self.h


def _path(plot, pts):
    return " ".join(f"{plot.x(t):.1f},{plot.y(v):.1f}" for t, v in pts)


def _axes(plot, out):
    factor, unit, step = _byte_axis(plot.top)
    value = 0.0
    while value <= plot.top * 1.0001:
        y = plot.y(value)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot.w}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#e6e6e6"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{escape(format_value(value, "bytes", unit))}</text>')
        value += step
    tstep = next((s for s in TIME_STEPS if (plot.t1 - plot.t0) / s <= 8), TIME_STEPS[-1])
    t = math.ceil(plot.t0 / tstep) * tstep
    while t <= plot.t1:
        x = plot.x(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot.h}" '
                   f'stroke="#f0f0f0"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + plot.h + 16}" text-anchor="middle">'
                   f'{_time_label(t, tstep)}</text>')
        t += tstep
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot.w}" height="{plot.h}" '
               f'fill="none" stroke="#999"/>')
    out.append(f'<text x="{LEFT + plot.w / 2:.0f}" y="{HEIGHT - 12}" text-anchor="middle">'
               f'time (UTC, {format_time(plot.t0, "%Y-%m-%d")})</text>')
    out.append(f'<text transform="translate(16 {TOP + plot.h / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle">memory ({unit}'
               + (f' = {factor} bytes' if factor > 1 else '') + ')</text>')


def _legend(out, entries):
    """entries: [(color, label, hover text, line?)]."""
    x, y = WIDTH - RIGHT + 16, TOP + 6
    for color, label, hover, line in entries:
        mark = (f'<line x1="{x}" x2="{x + 16}" y1="{y}" y2="{y}" stroke="{color}" '
                f'stroke-width="2.5"/>' if line else
                f'<rect x="{x}" y="{y - 6}" width="16" height="12" fill="{color}"/>')
        out.append(f'<g><title>{escape(hover)}</title>{mark}'
                   f'<text x="{x + 22}" y="{y + 4}">{escape(label)}</text></g>')
        y += 20


def _areas(plot, runs, stacks):
    """The growing stacks stacked from zero, one polygon per stack and run."""
    out, legend = [], []
    for k, g in enumerate(stacks):
        color = COLORS[k % len(COLORS)]
        label = stack_label(g.names, 1)
        hover = (f"{stack_label(g.names, 8)}: {format_value(g.now, 'bytes')} in use, "
                 f"+{format_value(g.trend.slope * 60, 'bytes')}/min")
        legend.append((color, label, hover, False))
        out.append(f'<g class="stack" data-stack="{escape(label)}">'
                   f'<title>{escape(hover)}</title>')
        for r, run in enumerate(runs):
            times = [p.time for p in run.points]
            below = [sum(s.values[r][i] for s in stacks[:k]) for i in range(len(times))]
            upper = [(t, b + v) for t, b, v in zip(times, below, g.values[r])]
            lower = list(zip(times, below))[::-1]
            out.append(f'<polygon points="{_path(plot, upper + lower)}" fill="{color}" '
                       f'fill-opacity="0.85"/>')
        out.append("</g>")
    return out, legend


def _lines(plot, analysis):
    """RSS and heap in use, one polyline per run."""
    out, legend = [], []
    for name, color, key in (("RSS", RSS_COLOR, "rss"), ("heap in use", HEAP_COLOR, "heap")):
        if key == "rss" and analysis.rss is None:
            continue
        last = format_value(getattr(analysis.last, key), "bytes")
        legend.append((color, f"{name} ({last})", f"{name} at the last dump: {last}", True))
        for run in analysis.runs:
            pts = [(p.time, getattr(p, key)) for p in run.points]
            out.append(f'<polyline class="{key}" points="{_path(plot, pts)}" fill="none" '
                       f'stroke="{color}" stroke-width="2"/>')
            out.extend(f'<circle cx="{plot.x(t):.1f}" cy="{plot.y(v):.1f}" r="2" '
                       f'fill="{color}"/>' for t, v in pts)
    return out, legend


def svg(analysis, count=STACKS_SHOWN):
    """The timeline of an Analysis (leaks.analyze) as SVG text."""
    name = program_name(analysis.last.profile.dump) or "heaptrace"
    return "\n".join(_panel(analysis, count, name, "")) + "\n"


def svg_sections(analysed, count=STACKS_SHOWN):
    """svg() of one Analysis; for several, their panels one above the other."""
    if not analysed:
        raise HeaptraceError("timeline: no process has 3 dumps or more; "
                             "choose one with --pid PID")
    if len(analysed) == 1:
        return svg(analysed[0], count)
    height = HEIGHT * len(analysed)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">']
    for k, a in enumerate(analysed):
        out += _panel(a, count, process_title(a.runs), f' y="{k * HEIGHT}"')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _panel(analysis, count, name, place):
    """One plot as an <svg> element (place: its position attributes)."""
    runs = analysis.runs
    every = points(runs)
    top = max([p.heap for p in every] + [p.rss or 0 for p in every]) * 1.08 or 1
    plot = _Plot(every[0].time, every[-1].time, top)
    title = (f"{name}: memory over "
             f"{format_duration(every[-1].time - every[0].time)}, {len(every)} dumps")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg"{place} width="{WIDTH}" '
           f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" '
           'font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{LEFT}" y="24" font-size="15">{escape(title)}</text>']
    _axes(plot, out)
    areas, stack_legend = _areas(plot, runs, analysis.growing[:count])
    lines, line_legend = _lines(plot, analysis)
    out += areas + lines
    for run in runs[1:]:
        x = plot.x(run.points[0].time)
        out.append(f'<line class="restart" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
                   f'y2="{TOP + plot.h}" stroke="#c00" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{x + 4:.1f}" y="{TOP + 14}" fill="#c00">restart: '
                   f'pid {run.pid}</text>')
    if not stack_legend:
        stack_legend.append(("none", "no stack grows steadily", "leaks flags nothing", False))
    _legend(out, line_legend + stack_legend)
    out.append("</svg>")
    return out
