"""A set of dumps as a series in time: read and symbolized, ordered by the
time each was taken, and split into runs, one per traced process (a new
pid, or a new start time under the same pid after exec, is a restart).
`leaks`, `timeline` and `report` all start from here."""
from dataclasses import dataclass

from .errors import InputError
from .profile import Selection, load_profile, select_stacks, type_index


@dataclass
class Point:
    """One dump of the series."""

    profile: object
    time: float      # seconds since the epoch
    rss: int         # resident set size in bytes, None when not recorded
    heap: float      # estimated heap in use, all stacks


@dataclass
class Run:
    """The dumps of one traced process, in time order."""

    pid: int
    start: float
    points: list


def _required(dump, key):
    value = dump.meta_int(key)
    if value is None:
        raise InputError(dump.path, None, f"no '# {key}:' line (a series needs heaptrace "
                         "dumps, which record when they were taken)")
    return value


def load_series(paths, warn):
    """[Run] in the order the processes started."""
    runs = {}
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
        run = runs.setdefault((pid, start), Run(pid, start, []))
        run.points.append(Point(profile, time, dump.meta_int("rss_bytes"), heap))
    ordered = sorted(runs.values(), key=lambda r: (min(p.time for p in r.points), r.start))
    for run in ordered:
        run.points.sort(key=lambda p: p.time)
    return ordered


def points(runs):
    """Every dump of the series in time order."""
    return [p for run in runs for p in run.points]


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
