"""Checks that a dump file is whole, in plain Python and fast enough to run
on every one of hundreds of files (tests/test_hostile.py,
tests/test_faults.py, tests/soak.py); the peer readers (`go tool pprof`)
then parse a few of them. Whole means: the header first, every sample
line well formed and summing to the header, the MAPPED_LIBRARIES section,
and every line of the maps complete down to the last one."""
import os
import re

import lib

MAPS_RE = re.compile(r"^[0-9a-f]+-[0-9a-f]+ [-r][-w][-x][ps] [0-9a-f]+ [0-9a-f]+:[0-9a-f]+ \d+ *(\S.*)?$")


def assert_whole(path):
    with open(path) as f:
        text = f.read()
    name = os.path.basename(path)
    head, sep, maps = text.partition("\nMAPPED_LIBRARIES:\n")
    if not sep:
        raise AssertionError(f"{name}: no MAPPED_LIBRARIES section ({len(text)} bytes)")
    lines = head.split("\n")
    m = lib.HEADER_RE.match(lines[0])
    if not m:
        raise AssertionError(f"{name}: header {lines[0][:100]!r}")
    sums = [0, 0, 0, 0]
    for line in lines[1:]:
        zero = lib.zero_byte_counts(line)
        if zero:
            sums[0] += zero[0]
            sums[2] += zero[1]
        if not line or line.startswith("#"):
            continue
        s = lib.SAMPLE_RE.match(line)
        if not s:
            raise AssertionError(f"{name}: sample line {line[:100]!r}")
        for i in range(4):
            sums[i] += int(s.group(i + 1))
    header = [int(m.group(i)) for i in range(1, 5)]
    # the alloc bytes may be raised by one (docs/format.md)
    if sums[:3] != header[:3] or not 0 <= header[3] - sums[3] <= 1:
        raise AssertionError(f"{name}: sample lines sum to {sums}, header says {header}")
    if not maps.endswith("\n"):
        raise AssertionError(f"{name}: does not end with a complete line")
    map_lines = maps[:-1].split("\n")
    bad = [line for line in map_lines if not MAPS_RE.match(line)]
    if bad or not any(line.endswith("[stack]") for line in map_lines):
        raise AssertionError(f"{name}: maps section broken: {bad[:3]} of {len(map_lines)} lines")


def check_dumps(dumps, exe, parse=3):
    """Every dump whole; the first, the last and a few between parsed by
    `go tool pprof -raw -symbolize=local`. Returns the metadata of each."""
    if not dumps:
        raise AssertionError("no dumps")
    for path in dumps:
        assert_whole(path)
    step = max(1, (len(dumps) - 1) // max(1, parse - 1))
    for path in sorted(set(dumps[::step][: parse - 1] + [dumps[-1]])):
        lib.pprof_raw(path, exe)
    return [lib.dump_meta(path) for path in dumps]


def no_tmp_left(directory):
    left = [f for f in os.listdir(directory)
            if f.startswith(".heaptrace.") and f.endswith(".tmp")]
    if left:
        raise AssertionError(f"temporary files left in {directory}: {left[:5]}")
