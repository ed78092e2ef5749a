"""A set of dumps as a series in time: read and symbolized, ordered by the
time each was taken, and split into runs, one per traced process (a pid,
and a new start time under the same pid after exec). Runs of one program
are chained into a process and its restarts: a run restarts an earlier one
when it has the same executable and command line and it began (its first
dump, and the start of tracing in it) after the earlier one's last dump,
so processes alive at the same time (a server's workers, a backend beside
its postmaster) are never restarts of each other. A peak dump (peak.py) is
not a point of the series, whose spacing in time the trends rely on: it
is kept apart as its run's `peak`, whether given or found beside the run's
dumps. `leaks`, `timeline` and `report` all start from here."""
from . import peak as peak_dump
from .errors import HeaptraceError, InputError
from .profile import Selection, load_profile, select_stacks, type_index
from .record import record


@record
class Point:
    """One dump of the series."""

    profile: object
    time: float      # seconds since the epoch
    rss: int         # resident set size in bytes, None when not recorded
    heap: float      # estimated heap in use, all stacks


@record(eq=False)
class Run:
    """The dumps of one traced process, in time order."""

    pid: int
    start: float
    points: list
    ppid: int = None
    exe: str = None
    cmdline: str = None
    peak: object = None  # the Point of its peak dump, or None
    restart_of: object = None  # the earlier Run
    restarted_by: object = None

    @property
    def begin(self):
        return self.points[0].time

    @property
    def end(self):
        return self.points[-1].time


def _required(dump, key):
    value = dump.meta_int(key)
    if value is None:
        raise InputError(dump.path, None, f"no '# {key}:' line (a series needs heaptrace "
                         "dumps, which record when they were taken)")
    return value


def load_series(paths, warn):
    """[Run] in the order the processes started."""
    runs = {}
    peaks = {}
    seen = set()
    for path in paths:
        profile = load_profile(path, warn)
        dump = profile.dump
        time = _required(dump, "time_unix_ns") / 1e9
        pid = _required(dump, "pid")
        start = dump.meta_int("start_unix_ns")
        start = time if start is None else start / 1e9
        seq = dump.meta.get("seq")
        if (pid, start, seq) in seen:
            warn(f"{path}: the same dump as another file given; read once")
            continue
        seen.add((pid, start, seq))
        heap = sum(s.values[type_index("inuse_space")] for s in profile.samples)
        if peak_dump.is_peak(dump):
            peaks[(pid, start)] = Point(profile, time, dump.meta_int("rss_bytes"), heap)
            continue
        run = runs.setdefault((pid, start), Run(pid, start, []))
        run.points.append(Point(profile, time, dump.meta_int("rss_bytes"), heap))
    for key, point in peaks.items():
        if key in runs:
            runs[key].peak = point
        else:
            warn(f"{point.profile.dump.path}: a peak dump, read only with the other dumps "
                 "of its process (`top --peak` shows it alone)")
    ordered = sorted(runs.values(), key=lambda r: (min(p.time for p in r.points), r.start))
    for run in ordered:
        run.points.sort(key=lambda p: p.time)
        # As the process began: a server may retitle itself later
        # ("nginx: worker process is shutting down").
        first = run.points[0].profile.dump
        run.ppid, run.exe = first.meta_int("ppid"), first.meta.get("exe")
        run.cmdline = first.meta.get("cmdline")
        if run.peak is None:
            path = peak_dump.beside(run.points[-1].profile.dump)
            if path:
                profile = load_profile(path, warn)
                run.peak = Point(profile, profile.dump.meta_int("time_unix_ns") / 1e9,
                                 profile.dump.meta_int("rss_bytes"),
                                 sum(s.values[type_index("inuse_space")]
                                     for s in profile.samples))
    _link_restarts(ordered)
    return ordered


def _link_restarts(runs):
    """Sets restart_of: each run (in order of first dump) follows the run of
    the same program that ended last before it began, if one did and has
    no successor yet. It began when tracing started in it (a forked child:
    at the fork), so a parent and the child it forked, or two processes
    alive at once, are never one the other's restart whenever they dumped."""
    for run in runs:
        earlier = [r for r in runs if r is not run and r.restarted_by is None
                   and (r.exe, r.cmdline) == (run.exe, run.cmdline)
                   and r.end < min(run.start, run.begin)
                   and run.ppid != r.pid and r.ppid != run.pid]
        if earlier:
            before = max(earlier, key=lambda r: r.end)
            run.restart_of, before.restarted_by = before, run


def processes(runs):
    """[[Run]]: each process with its restarts, in order of first dump."""
    return [_chain(run) for run in runs if run.restart_of is None]


def _chain(run):
    out = [run]
    while out[-1].restarted_by is not None:
        out.append(out[-1].restarted_by)
    return out


def choose(runs, pid=None, children=False):
    """[[Run]] to analyse: every process, or the one with a run of pid
    (and, with children, every process descended from it)."""
    chains = processes(runs)
    if pid is None:
        if children:
            raise HeaptraceError("--children needs --pid PID (whose children)")
        return chains
    chosen = [c for c in chains if any(r.pid == pid for r in c)]
    if not chosen:
        pids = ", ".join(str(p) for p in dict.fromkeys(r.pid for r in runs))
        raise HeaptraceError(f"--pid {pid}: no dump of that process among those given "
                             f"(pids {pids})")
    if children:
        family = {r.pid for r in chosen[0]}
        grew = True
        while grew:
            grew = False
            for c in chains:
                if c not in chosen and any(r.ppid in family for r in c):
                    chosen.append(c)
                    family |= {r.pid for r in c}
                    grew = True
    return chosen


def points(runs):
    """Every dump of the series in time order."""
    return sorted((p for run in runs for p in run.points), key=lambda p: p.time)


def stack_values(runs, selection):
    """{stack (node names, leaf first): [[(objects, bytes) per dump] per run]}
    with (0, 0) where the stack held nothing, for the in-use types of
    selection (its filters and --min-age apply)."""
    kinds = [Selection(kind, selection.lines, selection.focus, selection.ignore,
                       selection.min_age) for kind in ("inuse_objects", "inuse_space")]
    table = {}
    for r, run in enumerate(runs):
        for i, point in enumerate(run.points):
            for k, kind in enumerate(kinds):
                for value, names in select_stacks(point.profile, kind):
                    names = tuple(names)
                    if names not in table:
                        table[names] = [[[0, 0] for _ in x.points] for x in runs]
                    table[names][r][i][k] = value
    return table
