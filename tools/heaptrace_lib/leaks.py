"""`heaptrace leaks`: which call stacks keep growing over a series of dumps.

Each stack's in-use bytes per dump are judged by trend.py. A stack is
flagged only when its growth is steady (the line fits, most movement is
upward), is not all at the start of the runs (a cache that filled up and
stopped is not a leak), and is larger than sampling alone could make
it: a sampled estimate of a level of L bytes from blocks of mean size x
varies by about sqrt(w * L), w = x / (1 - exp(-x/R)) being what one sample
stands for, so the fitted growth must reach NOISE_SIGMAS times that.
Memory that churns around a level fails the fit and the upward share.

Also here: how much of the growth of RSS the heap's growth explains, and
the threads leaked per creation stack (exited but never joined, or still
running and growing in number).

A series of several processes is analysed one process (with its restarts)
at a time: levels and lines of two processes alive at once are not one
series. The processes with enough dumps come in order of growth, the
others in one line."""
import math

from .profile import stack_label
from .record import record
from .series import points, stack_values
from .rss import growth_line
from .threads import format_stack, memory_total, thread_groups, thread_memory, totals
from .top import program_name
from .trend import trend
from .units import counted, format_duration, format_time, format_value, percentage

MIN_FIT = 0.6        # R^2 of the line within runs
MIN_MONO = 0.75      # share of the movement between dumps that went up
MIN_CENTER = 0.2     # growth centred in the first fifth of the runs: it stopped
NOISE_SIGMAS = 3
RSS_FLAT = 0.05      # RSS growth below this share of its level, or below
RSS_FLAT_BYTES = 1 << 20  # this, counts as flat
GROWING = "growing"
OTHERS_SHOWN = 5


@record
class Growth:
    """One stack's in-use memory over the series."""

    names: tuple
    values: list     # [[bytes per dump] per run]
    trend: object
    now: float       # bytes at the last dump
    verdict: str     # GROWING, or why it is not flagged
    share: float = 0.0  # of the heap's growth


@record
class ThreadLeak:
    """Threads of one creation stack: leaked = unjoined + steady growth of
    the running ones."""

    names: tuple
    live: int
    unjoined: int
    trend: object
    leaked: int
    stack_bytes: int = 0  # their stacks and guards at the last dump


@record
class Analysis:
    runs: list
    selection: object
    enough: bool         # at least 3 dumps of one process
    heap: object         # Trend of the estimated heap in use
    rss: object          # Trend of RSS, None when a dump lacks it
    growing: list        # [Growth] flagged, fastest first
    others: list         # [Growth] changed but not flagged, largest change first
    threads: list        # [ThreadLeak] with leaked > 0, most first
    stacks_seen: int

    @property
    def first(self):
        return self.runs[0].points[0]

    @property
    def last(self):
        return self.runs[-1].points[-1]

    @property
    def rss_grew(self):
        return self.rss is not None and self.rss.growth > max(RSS_FLAT * self.last.rss,
                                                              RSS_FLAT_BYTES)

    @property
    def explained(self):
        """The heap's growth as a share of RSS growth, or None."""
        return self.heap.slope / self.rss.slope if self.rss_grew else None


def _verdict(t, noise, enough):
    if not enough:
        return "too few dumps"
    if t.slope <= 0:
        return "not growing"
    if t.mono < MIN_MONO:
        return "fluctuates"
    if t.center < MIN_CENTER:
        return "stopped growing"
    if t.fit < MIN_FIT:
        return "uneven growth"
    if t.growth < NOISE_SIGMAS * noise:
        return "within sampling noise"
    return GROWING


def _noise(runs, rows):
    """Sampling noise of a stack's largest level over the series."""
    (objects, size), dump = max(((v, run.points[i].profile.dump)
                                 for run, values in zip(runs, rows)
                                 for i, v in enumerate(values)), key=lambda e: e[0][1])
    if size <= 0 or objects <= 0 or not dump.scaled or dump.period <= 1:
        return 0.0
    mean = size / objects
    weight = mean / -math.expm1(-mean / dump.period)
    return math.sqrt(weight * size)


def _timed(runs, t0, values):
    """[[(seconds since t0, value)] per run]."""
    return [[(p.time - t0, v) for p, v in zip(run.points, vals)]
            for run, vals in zip(runs, values)]


def _thread_leaks(runs, t0, enough):
    per_point = [[thread_groups(p.profile) for p in run.points] for run in runs]
    stacks = {names for groups in per_point for g in groups for names in g}
    leaks = []
    memory = thread_memory(runs[-1].points[-1].profile)
    for names in stacks:
        live = [[g.get(names, (0, 0))[0] for g in groups] for groups in per_point]
        t = trend(_timed(runs, t0, live))
        live_now, unjoined_now = per_point[-1][-1].get(names, (0, 0))
        # Counts are exact: what was added within the runs, not the fitted line.
        grown = sum(r[-1] - r[0] for r in live) if _verdict(t, 0, enough) == GROWING else 0
        if grown + unjoined_now > 0:
            leaks.append(ThreadLeak(names, live_now, unjoined_now, t, grown + unjoined_now,
                                    memory.get(names, 0)))
    leaks.sort(key=lambda x: (-x.leaked, x.names))
    return leaks


def analyze(runs, selection):
    """The Analysis of a series ([Run], from series.load_series)."""
    t0 = runs[0].points[0].time
    enough = any(len(run.points) >= 3 for run in runs)
    heap = trend(_timed(runs, t0, [[p.heap for p in run.points] for run in runs]))
    rss = None
    if all(p.rss is not None for p in points(runs)):
        rss = trend(_timed(runs, t0, [[p.rss for p in run.points] for run in runs]))
    growing, others = [], []
    table = stack_values(runs, selection)
    for names, rows in table.items():
        values = [[b for _, b in run_rows] for run_rows in rows]
        t = trend(_timed(runs, t0, values))
        g = Growth(names, values, t, values[-1][-1], _verdict(t, _noise(runs, rows), enough))
        (growing if g.verdict == GROWING else others).append(g)
    growing.sort(key=lambda g: (-g.trend.slope, g.names))
    others = [g for g in others if g.trend.growth or g.now]
    others.sort(key=lambda g: (-abs(g.trend.growth), g.names))
    whole = max(heap.growth, sum(g.trend.growth for g in growing))
    for g in growing:
        g.share = g.trend.growth / whole if whole > 0 else 0.0
    return Analysis(runs, selection, enough, heap, rss, growing, others,
                    _thread_leaks(runs, t0, enough), len(table))


def _growth_key(a):
    return (-sum(g.trend.growth for g in a.growing), -a.heap.growth, a.first.time)


def analyze_each(chains, selection):
    """([Analysis] of the processes with enough dumps, the largest growth
    first; [[Run]] of those with too few) for [[Run]] from series.choose.
    A single process is analysed whatever its number of dumps."""
    if len(chains) == 1:
        return [analyze(chains[0], selection)], []
    analysed, short = [], []
    for chain in chains:
        if any(len(run.points) >= 3 for run in chain):
            analysed.append(analyze(chain, selection))
        else:
            short.append(chain)
    analysed.sort(key=_growth_key)
    return analysed, short


def process_title(runs):
    """`pid 12 (parent 1): nginx: worker process`, for the runs of one process."""
    pids = ", ".join(str(r.pid) for r in runs)
    parent = f" (parent {runs[0].ppid})" if runs[0].ppid is not None else ""
    what = runs[-1].cmdline or program_name(runs[-1].points[-1].profile.dump) or "?"
    return f"pid{'s' if len(runs) > 1 else ''} {pids}{parent}: {what}"


def describe_processes(analysed, short):
    """The lines above the sections of a series of several processes."""
    every = sorted(p.time for chain in [a.runs for a in analysed] + short
                   for run in chain for p in run.points)
    count = len(analysed) + len(short)
    out = [f"Processes: {count}, {counted(len(every), 'dump')}, {format_time(every[0])} to "
           f"{format_time(every[-1], '%H:%M:%S UTC')} "
           f"({format_duration(every[-1] - every[0])}); each is analysed on its own, "
           "the largest growth first (--pid PID for one)"]
    if short:
        listed = "; ".join(f"{process_title(c)} ({counted(len(points(c)), 'dump')})"
                           for c in short)
        out.append(f"Too few dumps to analyse (fewer than 3): {listed}")
    return out


def describe_series(runs):
    """One line: how many dumps, of which processes, over what time."""
    all_points = points(runs)
    first, last = all_points[0].time, all_points[-1].time
    if len(all_points) == 1:
        return f"Dump: 1 of pid {runs[0].pid}, {format_time(first)}"
    when = (f"{format_time(first)} to {format_time(last, '%H:%M:%S UTC')} "
            f"({format_duration(last - first)})")
    if len(runs) == 1:
        return f"Dumps: {len(all_points)} of pid {runs[0].pid}, {when}"
    pids = ", ".join(str(run.pid) for run in runs)
    return (f"Dumps: {len(all_points)} of {len(runs)} runs (pids {pids}; "
            f"{len(runs) - 1} restart{'s' if len(runs) > 2 else ''}), {when}; "
            "growth is measured within each run")


def _bytes(value):
    return format_value(value, "bytes")


def _level_line(what, first, last, t, single):
    if single:
        return f"{what}: {_bytes(last)}"
    return (f"{what}: {_bytes(first)} at the first dump, {_bytes(last)} at the last; "
            f"{_bytes(t.slope * 60)}/min (fit {t.fit:.2f})")


def summary_lines(a):
    """The header of the report: the series, heap and RSS levels."""
    single = a.first is a.last
    out = [f"File: {program_name(a.last.profile.dump) or '?'}", describe_series(a.runs)]
    if a.selection.min_age is not None:
        out.append(f"Counting only blocks at least {a.selection.min_age:g} s old "
                   "(from the dumps' allocation ages)")
    out.append(_level_line("Heap in use", a.first.heap, a.last.heap, a.heap, single))
    if a.rss is not None:
        line = _level_line("RSS", a.first.rss, a.last.rss, a.rss, single)
        if a.rss_grew:
            line += (f"; the heap's growth amounts to {percentage(a.explained, 1).strip()} "
                     "of it")
        elif not single:
            line += (f"; flat (grew less than {RSS_FLAT:.0%} or "
                     f"{_bytes(RSS_FLAT_BYTES)})")
        out.append(line)
        if a.rss_grew:  # where it went, from the last run's dumps (rss.py)
            parts = growth_line(a.runs[-1].points[0].profile, a.last.profile)
            if parts:
                out.append(parts)
    return out


def _growth_lines(a, count):
    shown = a.growing[:count] if count > 0 else a.growing
    share = sum(g.share for g in a.growing)
    out = [f"Steadily growing stacks: {len(a.growing) or 'none'} of {a.stacks_seen} that "
           "held memory" + (f" ({percentage(share, 1).strip()} of the heap's growth)"
                            if a.growing else "")]
    if shown:
        out.append(f"{'':3}{'rate/min':>10} {'in use':>10} {'growth':>10} "
                   f"{'share':>7} {'fit':>5} {'mono':>5}  stack")
    for i, g in enumerate(shown, 1):
        out.append(f"{i:>3}{_bytes(g.trend.slope * 60):>10} {_bytes(g.now):>10} "
                   f"{_bytes(g.trend.growth):>10} {percentage(g.share, 1):>7} "
                   f"{g.trend.fit:5.2f} {g.trend.mono:5.2f}  {stack_label(g.names)}")
    if a.others:
        out += ["", f"Not flagged: {counted(len(a.others), 'stack')} changed without steady growth; "
                "the largest changes:",
                f"{'':3}{'rate/min':>10} {'in use':>10} {'growth':>10} "
                f"{'fit':>5} {'mono':>5}  {'why':<22} stack"]
    for g in a.others[:OTHERS_SHOWN]:
        out.append(f"{'':3}{_bytes(g.trend.slope * 60):>10} {_bytes(g.now):>10} "
                   f"{_bytes(g.trend.growth):>10} {g.trend.fit:5.2f} "
                   f"{g.trend.mono:5.2f}  {g.verdict:<22} {stack_label(g.names)}")
    return out


def _thread_lines(a):
    live, unjoined = totals(a.last.profile)
    leaked = sum(x.leaked for x in a.threads)
    where = (f"{leaked} from {len(a.threads)} creation stack"
             f"{'' if len(a.threads) == 1 else 's'}" if a.threads else "none")
    memory = memory_total(a.last.profile)
    held = f"; their stacks {_bytes(memory)}" if memory is not None else ""
    out = [f"Leaked threads: {where} ({live} running, {unjoined} exited but not joined "
           f"at the last dump{held})"]
    if a.threads:
        out.append(f"{'':3}{'leaked':>8} {'running':>8} {'unjoined':>9} {'rate/min':>9} "
                   f"{'stacks':>10}  created at")
    for i, x in enumerate(a.threads, 1):
        out.append(f"{i:>3}{x.leaked:>8} {x.live:>8} {x.unjoined:>9} "
                   f"{x.trend.slope * 60:>9.0f} {_bytes(x.stack_bytes):>10}  "
                   f"{stack_label(x.names)}")
    return out


def render_sections(analysed, short, count=10):
    """render_leaks for one process; for several, a section for each."""
    if len(analysed) == 1 and not short:
        return render_leaks(analysed[0], count)
    out = "\n".join(describe_processes(analysed, short)) + "\n"
    for a in analysed:
        out += f"\n=== {process_title(a.runs)} ===\n" + render_leaks(a, count)
    return out


def render_leaks(a, count=10):
    out = summary_lines(a) + [""]
    if a.enough:
        out += _growth_lines(a, count)
    else:
        out.append("Growth needs at least 3 dumps of one process; "
                   f"given {len(points(a.runs))}. Threads are counted below.")
    out += [""] + _thread_lines(a)
    if a.enough and a.growing:
        out += ["", "Growing stacks:"]
        for i, g in enumerate(a.growing[:count] if count > 0 else a.growing, 1):
            out.append(f"{i:>3} {_bytes(g.now)} in use, +{_bytes(g.trend.slope * 60)}/min")
            out.append(format_stack(g.names).rstrip("\n"))
    if a.threads:
        out += ["", "Leaked threads created at:"]
        for i, x in enumerate(a.threads, 1):
            out.append(f"{i:>3} {x.leaked} threads ({x.live} running, {x.unjoined} unjoined), "
                       f"{_bytes(x.stack_bytes)} of stacks")
            out.append(format_stack(x.names or ("(no stack)",)).rstrip("\n"))
    return "\n".join(out) + "\n"
