"""The symbolized profile every verb works from, and the selections the
text and graphic reports share: which sample type, which stacks (--focus,
--ignore, --base), nodes by function or by line, flat and cum per node.

A Profile holds the four pprof heap sample types per stack, each dump line
unsampled as pprof does, with locations (address, mapping, inlined frames).
The allocator's own frames at the leaf end of each stack (malloc, operator
new, libheaptrace.so, ...) are removed here, as pprof's drop_frames does.
Thread creation stacks (`# threads:`) are symbolized along with the rest."""
import itertools
import operator
import os
import re

from .dumpfile import read_dump
from .errors import HeaptraceError
from .record import record
from .symbols import Symbolizer

# pprof's order, so that its default (the last) is inuse_space.
SAMPLE_TYPES = (("alloc_objects", "count"), ("alloc_space", "bytes"),
                ("inuse_objects", "count"), ("inuse_space", "bytes"))
DEFAULT_TYPE = "inuse_space"

# Allocation entry points, wherever they are defined.
ALLOCATOR_RE = re.compile(r"""(?x)
    (__libc_|__)?(malloc|calloc|realloc|free|cfree|memalign|valloc|pvalloc|
      posix_memalign|aligned_alloc|reallocarray)
  | operator\ (new|delete)(\[\])?(\(.*\))?
  | (std|__gnu_cxx)::(__new_allocator|new_allocator|allocator|allocator_traits)<.*>::allocate\(.*\)
""")
# glibc malloc's internals, recognised only inside libc.
LIBC_MALLOC_RE = re.compile(r"_int_\w+|_mid_memalign|tcache_\w+|malloc_\w+|sysmalloc")
LIBC_MODULE = "libc.so"
PRELOAD_MODULE = "libheaptrace.so"


@record(eq=False)
class Location:
    id: int
    address: int
    mapping: object
    frames: tuple

    def __post_init__(self):
        # Node names by function and by line, computed once per location
        # rather than once per frame of every stack.
        self.names = tuple(node_name(f, False) for f in self.frames)
        self.line_names = tuple(node_name(f, True) for f in self.frames)
        self.allocator = all(is_allocator_frame(f) for f in self.frames)
        self.allocator_leaf = bool(self.frames) and is_allocator_frame(self.frames[0])


@record
class Sample:
    values: list  # the estimates (Dump.estimate): counts need not be whole
    locations: list
    raw: object  # the dump's RawSample: the line's own counts and its ages

    def pprof_values(self, dump):
        """The values as pprof reads the line (Dump.scale): whole numbers,
        cut down, and zero-byte lines count no objects."""
        raw = self.raw
        return [*dump.scale(raw.alloc_count, raw.alloc_bytes),
                *dump.scale(raw.inuse_count, raw.inuse_bytes)]


@record
class ThreadGroup:
    """Threads made from one creation stack (locations innermost first)."""

    live: int
    unjoined: int
    locations: list
    stack_bytes: int = 0  # their stacks and guards
    guard_bytes: int = 0


@record
class Profile:
    dump: object
    samples: list
    locations: list
    threads: list
    mmap_at: list = None    # [(start, end, weight, resident bytes, locations)]
    thread_at: list = None  # [(address on the stack, locations)]


def is_allocator_frame(frame):
    module = os.path.basename(frame.module)
    return (module.startswith(PRELOAD_MODULE)
            or ALLOCATOR_RE.fullmatch(frame.name) is not None
            or module.startswith(LIBC_MODULE) and LIBC_MALLOC_RE.fullmatch(frame.name) is not None)


class _Builder:
    def __init__(self, dump, warn):
        self.dump = dump
        self.locations = []
        self.trimmed = {}
        # Every return address once, in order of first appearance (the
        # locations' ids follow it), gathered at C speed: a big dump has
        # millions of frames.
        raw = dict.fromkeys(itertools.chain.from_iterable(
            itertools.chain((s.addresses for s in itertools.chain(dump.samples, dump.threads)),
                            (m[4] for m in dump.mmap_at), (t[1] for t in dump.thread_at))))
        raw.pop(0, None)
        symbols = Symbolizer(dump, warn).symbolize(sorted(a - 1 for a in raw))
        # Keyed by the address as written; the location is of address - 1.
        self.by_raw = {a: self._new_location(a - 1, *symbols[a - 1]) for a in raw}

    def _new_location(self, address, mapping, frames):
        loc = Location(len(self.locations) + 1, address, mapping, frames)
        self.locations.append(loc)
        return loc

    def locations_of(self, addresses):
        if 0 in addresses:
            addresses = [a for a in addresses if a]
        return list(map(self.by_raw.__getitem__, addresses))

    def prune(self, locs):
        """Drops allocator frames from the leaf end; the leaf location keeps
        only its frames outside the allocator."""
        i = 0
        while i < len(locs) and locs[i].allocator:
            i += 1
        if i == len(locs):
            return locs
        if i:
            locs = locs[i:]
        if not locs[0].allocator_leaf:
            return locs
        frames = locs[0].frames
        leaf = self.trimmed.get(locs[0].id)
        if leaf is None:
            j = 1
            while is_allocator_frame(frames[j]):
                j += 1
            leaf = self.trimmed[locs[0].id] = self._new_location(
                locs[0].address, locs[0].mapping, frames[j:])
        return [leaf] + locs[1:]

    def build(self):
        samples = []
        scale = self.dump.estimate
        for raw in self.dump.samples:
            values = [*scale(raw.alloc_count, raw.alloc_bytes),
                      *scale(raw.inuse_count, raw.inuse_bytes)]
            samples.append(Sample(values, self.prune(self.locations_of(raw.addresses)), raw))
        threads = [ThreadGroup(t.live, t.unjoined, self.locations_of(t.addresses),
                               t.stack_bytes, t.guard_bytes)
                   for t in self.dump.threads]
        mmap_at = [(lo, hi, w, res, self.prune(self.locations_of(a)))
                   for lo, hi, w, res, a in self.dump.mmap_at]
        thread_at = [(sp, self.locations_of(a)) for sp, a in self.dump.thread_at]
        return Profile(self.dump, samples, self.locations, threads, mmap_at, thread_at)


DROPPED = {"dropped_stack_table": "the stack table was full (raise HEAPTRACE_STACKS)",
           "dropped_live_map": "the live map was full (counted as allocated, not in use; "
                               "raise HEAPTRACE_LIVE)",
           "dropped_busy": "a stack being inserted was busy"}


def _warn_incomplete(dump, warn):
    """Says when the tracer reported that the dump misses samples."""
    if "error" in dump.meta:
        warn(f"{dump.path}: the tracer stopped sampling: {dump.meta['error']}")
    for key, why in DROPPED.items():
        count = dump.meta_int(key)
        if count:
            warn(f"{dump.path}: {count} samples dropped because {why}")


KINDS = ("heap", "mmap")


def load_profile(path, warn, kind="heap"):
    """Read, unsample and symbolize one dump file; kind "mmap" takes the
    program's anonymous mappings (`# mmap:` lines) as its samples instead
    of the heap's. Their values are estimates already, and the mappings of
    now only: the alloc_* types repeat the in-use ones."""
    dump = read_dump(path)
    _warn_incomplete(dump, warn)
    if kind == "mmap":
        if not dump.is_heaptrace:
            raise HeaptraceError(f"{path}: --kind mmap needs a heaptrace dump")
        dump.samples, dump.scaled = dump.mmaps, False
    return _Builder(dump, warn).build()


def type_index(name):
    for i, (sample_type, _) in enumerate(SAMPLE_TYPES):
        if sample_type == name:
            return i
    raise HeaptraceError(f"unknown sample type {name}")


def node_name(frame, lines):
    if lines and frame.file:
        return f"{frame.name} {frame.file}:{frame.line}"
    return frame.name


LINE_SUFFIX_RE = re.compile(r" (\S*):(\d+)$")


def stack_label(names, depth=4):
    """A stack of node names (leaf first) in one short line: its first
    functions up to `main`, leaf first, `<` pointing to the caller; the
    leaf's source line, when the names have lines, tells apart two sites in
    one function."""
    functions = []
    for name in names:
        function = LINE_SUFFIX_RE.sub("", name)
        if not functions or functions[-1] != function:
            functions.append(function)
        if function == "main":
            break
    m = LINE_SUFFIX_RE.search(names[0]) if names else None
    if m:
        functions[0] += f" ({os.path.basename(m.group(1))}:{m.group(2)})"
    label = " < ".join(functions[:depth])
    return label + " < ..." if len(functions) > depth else label


@record
class Selection:
    """What a report shows: the sample type, the granularity and filters."""

    sample_type: str = DEFAULT_TYPE
    lines: bool = False
    focus: str = None
    ignore: str = None
    min_age: float = None  # count only live blocks at least this many seconds old

    @property
    def unit(self):
        return SAMPLE_TYPES[type_index(self.sample_type)][1]


def _compile(pattern, flag):
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as e:
        raise HeaptraceError(f"{flag} {pattern!r}: bad regular expression: {e}") from None


def first_old_bucket(dump, min_age):
    """The index of the first `# ages:` bucket whose blocks are all at least
    min_age seconds old; min_age must be one of the buckets' bounds."""
    if dump.age_bounds is None:
        raise HeaptraceError(f"{dump.path}: no allocation ages in this dump "
                             "(--min-age needs heaptrace dumps with '# ages:' lines)")
    lower = (0,) + dump.age_bounds
    if min_age not in lower:
        raise HeaptraceError(
            f"--min-age {min_age:g}: not a bound of the age buckets of {dump.path} "
            f"({', '.join(map(str, lower))} s; HEAPTRACE_AGES sets them)")
    return lower.index(min_age)


def _sample_value(sample, index, first_old):
    """The sample's value of type index; with first_old, only the part in
    that age bucket and the older ones."""
    if first_old is None:
        return sample.values[index]
    buckets = (sample.raw.ages or ())[first_old:]
    return sum(b if SAMPLE_TYPES[index][1] == "bytes" else c for c, b in buckets)


def select_stacks(profile, selection, base=None):
    """[(value, [node names, leaf first])] of the chosen sample type; with a
    base profile, its stacks are subtracted (added negated)."""
    index = type_index(selection.sample_type)
    focus = _compile(selection.focus, "--focus")
    ignore = _compile(selection.ignore, "--ignore")
    if selection.min_age is not None and not selection.sample_type.startswith("inuse"):
        raise HeaptraceError("--min-age applies to the in-use types only")
    names_of = operator.attrgetter("line_names" if selection.lines else "names")
    merged = {}
    for sign, prof in ((1, profile), (-1, base)):
        if prof is None:
            continue
        first_old = (None if selection.min_age is None
                     else first_old_bucket(prof.dump, selection.min_age))
        for sample in prof.samples:
            names = tuple(itertools.chain.from_iterable(map(names_of, sample.locations)))
            if focus and not any(focus.search(n) for n in names):
                continue
            if ignore and any(ignore.search(n) for n in names):
                continue
            value = _sample_value(sample, index, first_old)
            merged[names] = merged.get(names, 0) + sign * value
    return [(value, list(names)) for names, value in merged.items() if value]


def total_of(stacks):
    return sum(abs(value) for value, _ in stacks)


def node_values(stacks):
    """{node: [flat, cum]}, nodes in order of first appearance; a node
    counts once per stack in cum (dict.fromkeys drops repeats at C speed:
    stacks may be thousands of frames deep, and big dumps have millions)."""
    nodes = {}
    for value, names in stacks:
        if not names:
            continue
        for name in dict.fromkeys(names):
            entry = nodes.get(name)
            if entry is None:
                entry = nodes[name] = [0, 0]
            entry[1] += value
        nodes[names[0]][0] += value
    return nodes
