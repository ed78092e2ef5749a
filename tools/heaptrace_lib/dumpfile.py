"""Reading dump files: heaptrace's own dumps (docs/format.md), gperftools
`heapprofile` dumps and Go's legacy `heap` text, which share the legacy heap
profile syntax. Everything wrong with the input is raised here as an
InputError naming the file and line, so the renderers only see valid data."""
import bisect
import math
import os
import re
import zlib

from .errors import InputError
from .record import Factory, record

FORMAT_VERSION = 1
# Counts, sizes and rates are int64 in pprof; larger numbers are corrupt.
INT64_MAX = (1 << 63) - 1

HEADER_RE = re.compile(
    r"^heap profile: *(\d+): *(\d+) *\[ *(\d+): *(\d+) *\] *@ *([a-z_0-9]+)(?:/(\d+))? *$",
    re.ASCII)
# The addresses are checked one by one as they are converted (_HexValues):
# a character class scans a long stack faster than a repeated group.
SAMPLE_RE = re.compile(
    r"^ *(\d+): *(\d+) *\[ *(\d+): *(\d+) *\] *@( [ 0-9a-fA-Fx]*)?$",
    re.ASCII)
# A sample line's numbers and what follows its `@` (_parse_samples).
SAMPLE_HEAD_RE = re.compile(r"(\d+): (\d+) \[(\d+): (\d+)\] @(.*)", re.ASCII | re.DOTALL)
ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]+", re.ASCII)
MAPS_RE = re.compile(
    r"^([0-9a-f]+)-([0-9a-f]+) +([-rwxps]{4}) +([0-9a-f]+) +[0-9a-f]+:[0-9a-f]+ +\d+ *(.*)$",
    re.ASCII)
MAPS_TRIGGERS = ("MAPPED_LIBRARIES:", "--- Memory map: ---")

# The sampling kinds of the header's `@ kind/rate`, as pprof reads them:
# kind -> (scaled by the heap_v2 formula?, period from the header rate).
KINDS = {
    "heap_v2": (True, lambda rate: rate),
    "heapz_v2": (True, lambda rate: rate),
    "heapprofile": (False, lambda rate: 1),
    # Go's legacy text: its rate is twice the sampling period.
    "heap": (True, lambda rate: rate // 2),
}


class _HexValues(dict):
    """"0x..." -> its value, each distinct address converted once: a big
    dump repeats a few thousand addresses millions of times."""

    def __missing__(self, text):
        if not ADDRESS_RE.fullmatch(text):
            raise ValueError(text)
        value = self[text] = int(text, 16)
        return value


@record
class Mapping:
    """One line of MAPPED_LIBRARIES (/proc/PID/maps)."""

    start: int
    end: int
    perms: str
    offset: int
    path: str

    def file_offset(self, address):
        return address - self.start + self.offset


@record
class RawSample:
    """A sample line as written: in-use and allocated counts and bytes and
    the return addresses, innermost first; `ages` from the `# ages:` line
    after it, [(objects, bytes)] youngest bucket first, or None."""

    inuse_count: int
    inuse_bytes: int
    alloc_count: int
    alloc_bytes: int
    addresses: list
    ages: list = None


@record
class Smap:
    """A `# smaps:` line: one mapping's resident and anonymous bytes."""

    start: int
    end: int
    perms: str
    rss: int
    anon: int
    name: str


@record
class RawThreads:
    """A `# threads:` line: threads made from one pthread_create call stack
    that are running, and that exited but were never joined or detached,
    and the bytes of their stacks and guards (0 in dumps before they were
    recorded)."""

    live: int
    unjoined: int
    addresses: list
    stack_bytes: int = 0
    guard_bytes: int = 0


@record
class Dump:
    path: str
    kind: str
    period: int
    scaled: bool
    header: tuple
    meta: dict = Factory(dict)
    build_ids: dict = Factory(dict)
    samples: list = Factory(list)
    threads: list = Factory(list)
    threads_total: tuple = None
    thread_stacks_total: tuple = None  # (stack bytes, guard bytes) or None
    mmaps: list = Factory(list)  # RawSample of `# mmap:` lines
    mmap_total: tuple = None  # (mappings, bytes, dropped) or None
    # What `heaptrace rss` reads (rss.py): smaps_rollup {key: bytes}, the
    # allocator (name, {key: bytes}), [Smap], [(start, end, weight,
    # resident bytes, addresses)] of sampled mmaps, [(address on the stack, addresses)] of
    # running threads.
    rollup: dict = None
    allocator: tuple = None
    smaps: list = Factory(list)
    mmap_at: list = Factory(list)
    thread_at: list = Factory(list)
    age_bounds: tuple = None
    mappings: list = Factory(list)
    _starts: list = Factory(list)
    hex_values: dict = Factory(_HexValues)

    @property
    def is_heaptrace(self):
        return "heaptrace" in self.meta

    def scale(self, count, size):
        """One count/bytes pair unsampled exactly as pprof does."""
        if count == 0 or not self.scaled:
            return count, size
        if size == 0:
            return 0, 0
        if self.period <= 1:
            return count, size
        x = (size / count) / self.period
        # pprof's formula; expm1 only where 1 - exp(-x) rounds to 0.
        factor = 1 / ((1 - math.exp(-x)) or -math.expm1(-x))
        return int(count * factor), int(size * factor)

    def estimate(self, count, size):
        """One count/bytes pair as heaptrace's own tables show it: scaled
        like pprof, but the count is not cut down to a whole number (one
        sampled 1 MiB block at 512 KiB stands for 1.16 objects, not 1), and
        a line of zero-byte blocks (malloc(0)) keeps its count."""
        if count == 0 or not self.scaled or self.period <= 1:
            return count, size
        if size == 0:
            return count, 0
        x = (size / count) / self.period
        factor = 1 / ((1 - math.exp(-x)) or -math.expm1(-x))
        return count * factor, int(size * factor)

    def meta_int(self, key):
        """A `#` value as a whole number, None unless it is one (ASCII
        digits, at most INT64_MAX)."""
        value = self.meta.get(key, "")
        if value.isascii() and value.isdigit() and len(value) <= 19 \
                and int(value) <= INT64_MAX:
            return int(value)
        return None

    def build_id_for(self, path):
        """The build id the dump recorded for a file, also when the dump
        names it by another path (/lib/... for /usr/lib/...)."""
        if path in self.build_ids:
            return self.build_ids[path]
        real = os.path.realpath(path)
        for recorded, build_id in self.build_ids.items():
            if os.path.realpath(recorded) == real:
                return build_id
        return ""

    def mapping_for(self, address):
        """The MAPPED_LIBRARIES entry holding address, or None."""
        if len(self._starts) != len(self.mappings):
            self._starts = [m.start for m in self.mappings]
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address < self.mappings[i].end:
            return self.mappings[i]
        return None


def _gunzip(path, data):
    """A gzipped dump (HEAPTRACE_COMPRESS) is read as its contents; a
    gzipped profile.proto is not a legacy heap profile."""
    import gzip  # here: most dumps are plain text
    try:
        data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(path, 1, f"truncated or corrupt gzip data ({e})") from None
    if not data.startswith(b"heap profile:") and b"\0" in data[:4096]:
        raise InputError(path, 1, "gzip-compressed binary data, not a legacy heap profile "
                         "(a profile.proto? read it with go tool pprof)")
    return data


def _decode(path, data):
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(path, data)
    if not data.strip():
        raise InputError(path, 1, "empty file, not a heap profile")
    nul = data.find(b"\0")
    if nul >= 0:
        raise InputError(path, data.count(b"\n", 0, nul) + 1,
                         "binary data, not a heap profile")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, data.count(b"\n", 0, e.start) + 1,
                         "binary data, not a heap profile") from None


def _int64(path, lineno, digits):
    """An ASCII decimal number of a header or sample line (the regular
    expressions take only ASCII digits), at most INT64_MAX."""
    if len(digits) < 19:
        return int(digits)
    digits = digits.lstrip("0") or "0"
    if len(digits) > 19 or int(digits) > INT64_MAX:
        raise InputError(path, lineno, f"number {digits[:24]}{'...' if len(digits) > 24 else ''}"
                         " is out of range")
    return int(digits)


def _parse_header(path, line):
    m = HEADER_RE.match(line)
    if not m:
        if line.startswith("heap profile:"):
            raise InputError(path, 1, "malformed header line")
        raise InputError(path, 1, "not a heap profile (the first line does not "
                         "start with 'heap profile:')")
    kind, rate = m.group(5), m.group(6)
    if kind not in KINDS:
        raise InputError(path, 1, f"unknown heap profile kind '{kind}'")
    scaled, period_of = KINDS[kind]
    if scaled and not rate:
        raise InputError(path, 1, f"'{kind}' header without a sampling rate")
    header = tuple(_int64(path, 1, m.group(i)) for i in range(1, 5))
    return Dump(path=path, kind=kind, period=period_of(_int64(path, 1, rate or "1")),
                scaled=scaled, header=header)


NUMBER_RES = {int: re.compile(r"\d{1,19}", re.ASCII),
              float: re.compile(r"\d{1,19}(\.\d*)?", re.ASCII)}


# Single-spaced numbers of `# ages:` (_fast_ages).
AGES_RE = re.compile(r"\d{1,19}(\.\d*)?( \d{1,19}(\.\d*)?)*", re.ASCII)


def _numbers(dump, lineno, key, text, kind=int):
    """The non-negative decimal numbers of a `# key:` line."""
    values = text.split()
    if not all(NUMBER_RES[kind].fullmatch(v) for v in values):
        raise InputError(dump.path, lineno, f"malformed '# {key}:' line")
    return [kind(v) for v in values]


def _parse_ages(dump, lineno, value):
    if not dump.samples or dump.samples[-1].ages is not None:
        raise InputError(dump.path, lineno, "'# ages:' line without a sample line before it")
    if dump.age_bounds is None:
        raise InputError(dump.path, lineno, "'# ages:' line without '# age_buckets_s:'")
    values = _numbers(dump, lineno, "ages", value, float)
    if len(values) != 2 * (len(dump.age_bounds) + 1):
        raise InputError(dump.path, lineno, f"'# ages:' line has {len(values)} numbers, "
                         f"not 2 per age bucket ({2 * (len(dump.age_bounds) + 1)})")
    dump.samples[-1].ages = list(zip(values[0::2], values[1::2]))


def _parse_zero_byte_objects(dump, lineno, value):
    """The objects of no bytes the line before left out (it says 0: 0 for
    them, which pprof's Perl readers can divide by): put back, so that
    malloc(0) blocks count as objects."""
    numbers = _numbers(dump, lineno, "zero_byte_objects", value)
    if len(numbers) != 2:
        raise InputError(dump.path, lineno, "malformed '# zero_byte_objects:' line")
    sample = dump.samples[-1] if dump.samples else None
    if sample is None or (numbers[0] and (sample.inuse_count or sample.inuse_bytes)) \
            or (numbers[1] and (sample.alloc_count or sample.alloc_bytes)):
        raise InputError(dump.path, lineno, "'# zero_byte_objects:' line not after "
                         "a sample line whose pairs it fills are 0: 0")
    sample.inuse_count += numbers[0]
    sample.alloc_count += numbers[1]


def _fast_ages(dump, value):
    """An `# ages:` line as the tracer writes it, read without the checks of
    _parse_ages; False (nothing read) when any of them could fail."""
    if not dump.samples or dump.samples[-1].ages is not None or dump.age_bounds is None \
            or not AGES_RE.fullmatch(value):
        return False
    values = list(map(float, value.split(" ")))
    if len(values) != 2 * (len(dump.age_bounds) + 1):
        return False
    dump.samples[-1].ages = list(zip(values[0::2], values[1::2]))
    return True


def _parse_threads(dump, lineno, value):
    counts, sep, addresses = value.partition(" @")
    numbers = _numbers(dump, lineno, "threads", counts)
    if not sep or len(numbers) not in (2, 4) \
            or not re.fullmatch(r"( +0x[0-9a-fA-F]+)*", addresses):
        raise InputError(dump.path, lineno, "malformed '# threads:' line")
    dump.threads.append(RawThreads(*numbers[:2], [int(a, 16) for a in addresses.split()],
                                   *numbers[2:]))


def _parse_mmap(dump, lineno, value):
    """`# mmap: <mappings> <bytes> @ addrs`: estimates, already unsampled;
    what is mapped now only, so the allocated values repeat them."""
    counts, sep, addresses = value.partition(" @")
    numbers = _numbers(dump, lineno, "mmap", counts)
    if not sep or len(numbers) != 2 or not re.fullmatch(r"( +0x[0-9a-fA-F]+)*", addresses):
        raise InputError(dump.path, lineno, "malformed '# mmap:' line")
    c, b = numbers
    dump.mmaps.append(RawSample(c, b, c, b, [int(a, 16) for a in addresses.split()]))


def _parse_rss_line(dump, lineno, key, value):
    try:
        if key == "smaps_rollup":
            dump.rollup = {k: int(v) for k, v in (kv.split("=") for kv in value.split())}
        elif key == "allocator":
            name, *pairs = value.split()
            dump.allocator = (name, {k: int(v) for k, v in (kv.split("=") for kv in pairs)})
        elif key == "smaps":
            rng, perms, rss, anon, name = value.split(" ", 4)
            lo, hi = rng.split("-")
            dump.smaps.append(Smap(int(lo, 16), int(hi, 16), perms, int(rss), int(anon),
                                   "" if name == "-" else name))
        else:
            head, sep, addresses = value.partition(" @")
            if not sep or not re.fullmatch(r"( +0x[0-9a-fA-F]+)*", addresses):
                raise ValueError
            addrs = [int(a, 16) for a in addresses.split()]
            fields = head.split()
            if key == "mmap_at":
                dump.mmap_at.append((int(fields[0], 16), int(fields[1], 16),
                                     float(fields[2]), int(fields[3]), addrs))
            else:
                dump.thread_at.append((int(fields[0], 16), addrs))
    except (ValueError, IndexError):
        raise InputError(dump.path, lineno, f"malformed '# {key}:' line") from None


def _parse_meta(dump, lineno, text):
    key, sep, value = text[2:].partition(": ")
    if not sep:
        return
    if key == "ages":
        _parse_ages(dump, lineno, value)
    elif key == "zero_byte_objects":
        _parse_zero_byte_objects(dump, lineno, value)
    elif key == "threads":
        _parse_threads(dump, lineno, value)
    elif key == "mmap":
        _parse_mmap(dump, lineno, value)
    elif key in ("smaps_rollup", "allocator", "smaps", "mmap_at", "thread_at"):
        _parse_rss_line(dump, lineno, key, value)
    elif key == "mmap_total":
        numbers = _numbers(dump, lineno, key, value)
        if len(numbers) != 3:
            raise InputError(dump.path, lineno, "malformed '# mmap_total:' line")
        dump.mmap_total = tuple(numbers)
    elif key == "threads_total":
        numbers = _numbers(dump, lineno, key, value)
        if len(numbers) not in (2, 4):
            raise InputError(dump.path, lineno, "malformed '# threads_total:' line")
        dump.threads_total = tuple(numbers[:2])
        if len(numbers) == 4:
            dump.thread_stacks_total = tuple(numbers[2:])
    elif key == "age_buckets_s":
        bounds = _numbers(dump, lineno, key, value)
        if not bounds or bounds != sorted(set(bounds)) or bounds[0] <= 0:
            raise InputError(dump.path, lineno, "'# age_buckets_s:' is not increasing seconds")
        dump.age_bounds = tuple(bounds)
    elif key == "build_id":
        file, _, hexid = value.rpartition(" ")
        if file:
            dump.build_ids[file] = hexid.lower()
    elif key == "heaptrace":
        dump.meta[key] = value
        version = dump.meta_int(key)
        if version is None:
            raise InputError(dump.path, lineno, f"bad format version '{value[:40]}'")
        if version > FORMAT_VERSION:
            raise InputError(dump.path, lineno, f"dump format version {value} is newer "
                             f"than this heaptrace reads ({FORMAT_VERSION})")
    elif not dump.samples and key not in dump.meta:
        # The header block; per-sample lines (`# ages:`) come later.
        dump.meta[key] = value


def _parse_sample(dump, lineno, text):
    m = SAMPLE_RE.match(text)
    if not m:
        raise InputError(dump.path, lineno, "malformed sample line")
    c, b, ac, ab = (_int64(dump.path, lineno, m.group(i)) for i in range(1, 5))
    for count, size, what in ((c, b, "in-use"), (ac, ab, "allocated")):
        if count == 0 and size != 0:
            raise InputError(dump.path, lineno,
                             f"{what} count is 0 but {what} bytes is {size}")
    try:
        addresses = list(map(dump.hex_values.__getitem__, (m.group(5) or "").split()))
    except ValueError as e:
        raise InputError(dump.path, lineno, f"malformed address {str(e)[:24]!r}") from None
    dump.samples.append(RawSample(c, b, ac, ab, addresses))


def _parse_samples(dump, lines, first_lineno):
    """The lines before MAPPED_LIBRARIES. A sample line as the tracer writes
    it (single spaces between addresses, numbers under 19 digits) is read
    by the fast path here; anything else, and every error, goes through
    _parse_sample and _parse_meta, so what is accepted and each message
    stay theirs. A big dump has tens of thousands of sample lines."""
    head_match = SAMPLE_HEAD_RE.match
    hex_value = dump.hex_values.__getitem__
    append = dump.samples.append
    for lineno, text in enumerate(lines, start=first_lineno):
        m = head_match(text)
        if m is not None:
            c, b, ac, ab, rest = m.groups()
            if len(c) < 19 and len(b) < 19 and len(ac) < 19 and len(ab) < 19:
                c, b, ac, ab = int(c), int(b), int(ac), int(ab)
                if (c or not b) and (ac or not ab):
                    if not rest:
                        append(RawSample(c, b, ac, ab, []))
                        continue
                    if rest[0] == " ":
                        try:
                            addresses = list(map(hex_value, rest[1:].split(" ")))
                        except ValueError:
                            pass
                        else:
                            append(RawSample(c, b, ac, ab, addresses))
                            continue
        if text.startswith("#"):
            if text.startswith("# ages: ") and _fast_ages(dump, text[8:]):
                continue
            _parse_meta(dump, lineno, text)
        elif text.strip():
            _parse_sample(dump, lineno, text)


def _parse_maps_line(dump, lineno, text):
    """Checks every line; keeps the executable mappings only, as pprof does:
    return addresses lie in code, and a process with thousands of threads
    has thousands of stack mappings besides."""
    m = MAPS_RE.match(text)
    if not m:
        raise InputError(dump.path, lineno, "malformed MAPPED_LIBRARIES line")
    if "x" in m.group(3):
        dump.mappings.append(Mapping(int(m.group(1), 16), int(m.group(2), 16),
                                     m.group(3), int(m.group(4), 16), m.group(5).strip()))


def _check_totals(dump):
    sums = [sum(getattr(s, f) for s in dump.samples)
            for f in ("inuse_count", "inuse_bytes", "alloc_count", "alloc_bytes")]
    c, b, ac, ab = dump.header
    if [c, b, ac] != sums[:3] or ab - sums[3] not in (0, 1):
        raise InputError(dump.path, 1, "the header totals %d: %d [%d: %d] do not match "
                         "the sample lines %d: %d [%d: %d] (truncated or corrupt file)"
                         % (c, b, ac, ab, *sums))


def read_dump(path):
    """Parse one dump file into a Dump, or raise InputError."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(path, None, e.strerror or str(e)) from None
    text = _decode(path, data)
    lines = text.split("\n")
    if lines[-1] != "":
        raise InputError(path, len(lines), "truncated file (the last line is incomplete)")
    lines.pop()
    if "\r" in text:
        lines = [line.rstrip("\r") for line in lines]
    dump = _parse_header(path, lines[0])
    # The first line after the header that holds a trigger starts the maps.
    maps_at = len(lines)
    for trigger in MAPS_TRIGGERS:
        at = text.find(trigger, text.index("\n") + 1)
        if at >= 0:
            maps_at = min(maps_at, text.count("\n", 0, at))
    in_maps = maps_at < len(lines)
    _parse_samples(dump, lines[1:maps_at], 2)
    for lineno, line in enumerate(lines[maps_at + 1:], start=maps_at + 2):
        if line.strip():
            _parse_maps_line(dump, lineno, line)
    # /proc/PID/maps is sorted already; mapping_for relies on it.
    dump.mappings.sort(key=lambda m: m.start)
    if dump.is_heaptrace:
        if not in_maps:
            raise InputError(path, len(lines), "truncated file (no MAPPED_LIBRARIES section)")
        _check_totals(dump)
    return dump
