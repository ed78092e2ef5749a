"""`heaptrace rss` (issue 15): tests/progs/rss_parts.c maps 64 MiB at
map_site and writes it, mallocs 24 MiB at heap_site in 256 KiB blocks
(which glibc serves with mmaps of its own: they must count once, as heap)
and 8 MiB at small_site in 1 KiB blocks, and starts 100 threads from
thread_site. Under glibc, jemalloc and tcmalloc (preloaded after
heaptrace), `rss` must give map_site its 64 MiB as a program mmap, the
heap sites theirs (sampled at 64 KiB: 384 samples at heap_site, 128 at
small_site, so 15% and 25% are over three standard deviations), the
thread stacks to thread_site, and leave less than 10% of RSS
unexplained."""
import re

import lib
from test_mmaps import run_parts

MIB = 1 << 20
UNITS = {"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


def _bytes(text):
    m = re.fullmatch(r"(-?[\d.]+)(B|kB|MB|GB)?", text)
    return float(m.group(1)) * UNITS[m.group(2) or "B"]


def parse_rss(text):
    """(RSS, {part: bytes}, {part: {stack label: bytes}}) of `heaptrace rss`."""
    rss = _bytes(re.search(r"^RSS (\S+)", text, re.M).group(1))
    parts, stacks, part = {}, {}, None
    for line in text.splitlines():
        m = re.match(r"^  +(-?[\d.]+\w*) +[\d.]+%  (.+)$", line)
        if m:
            part = m.group(2)
            parts[part] = _bytes(m.group(1))
            stacks[part] = {}
            continue
        m = re.match(r"^ {10,}(-?[\d.]+\w*)  (.+)$", line)
        if m and part:
            stacks[part][m.group(2)] = _bytes(m.group(1))
    return rss, parts, stacks


def test_rss_explained_under_each_allocator():
    for allocator in ("glibc", "jemalloc", "tcmalloc"):
        dump = run_parts(allocator, threads="100", rate=65536)
        text = lib.run_tool("rss", dump).stdout
        rss, parts, stacks = parse_rss(text)

        def near(value, want, share, what):
            if abs(value - want) > share * want:
                raise AssertionError(f"{allocator}: {what} {value / MIB:.2f} MiB, want "
                                     f"{want / MIB:.2f}:\n{text}")

        mmaps = stacks["program mmaps"]
        if list(mmaps) != ["map_site < main"]:
            raise AssertionError(f"{allocator}: program mmaps by {list(mmaps)}:\n{text}")
        near(mmaps["map_site < main"], 64 * MIB, 0.02, "map_site")
        heap = stacks["heap in use (sampled estimate)"]
        near(heap.get("heap_site < main", 0), 24 * MIB, 0.15, "heap_site")
        near(heap.get("small_site < main", 0), 8 * MIB, 0.25, "small_site")
        threads = stacks["thread stacks"].get("thread_site < main", 0)
        if not 100 * 4096 <= threads <= 100 * 64 * 1024:
            raise AssertionError(f"{allocator}: thread_site's stacks {threads}:\n{text}")
        if abs(parts["unexplained"]) > 0.1 * rss:
            raise AssertionError(f"{allocator}: unexplained {parts['unexplained']} of "
                                 f"{rss}:\n{text}")


def test_rss_of_a_dump_without_the_lines():
    """A dump from a heaptrace before rss (no `# smaps:` lines): one line."""
    d = lib.tmpdir()
    path = f"{d}/heaptrace.1.0001.heap"
    with open(path, "w") as f:
        f.write("heap profile: 1: 10 [1: 11] @ heap_v2/1\n# heaptrace: 1\n# pid: 1\n"
                "1: 10 [1: 11] @ 0x401000\n\nMAPPED_LIBRARIES:\n")
    proc = lib.run_tool("rss", path, check=False)
    if proc.returncode == 0 or len(proc.stderr.splitlines()) != 1 or "smaps" not in proc.stderr:
        raise AssertionError(f"rss of an old dump: {proc.returncode} {proc.stderr!r}")


def test_leaks_says_where_rss_growth_went():
    """rss_parts with "grow": a dump before anything, one after the
    mappings, one after the heap and threads. leaks' growth line gives the
    program mmaps (64 MiB, map_site) about twice what the heap grew
    (32 MiB, its largest stack heap_site)."""
    d = lib.tmpdir()
    lib.run([lib.prog("rss_parts"), "100", "grow"],
            env=lib.traced_env(d, on_exit=0, rate=65536))
    out = lib.run_tool("leaks", *lib.dumps_in(d)).stdout
    m = re.search(r"^RSS grew (\S+)/min: (.*)$", out, re.M)
    if not m:
        raise AssertionError(f"no growth line:\n{out}")
    parts = {}
    for part in m.group(2).split(", "):
        pm = re.fullmatch(r"(\S+) from (.+?)(?: \((.+)\))?", part)
        parts[pm.group(2)] = (_bytes(pm.group(1)), pm.group(3))
    mmaps, heap = parts.get("program mmaps"), parts.get("the heap")
    if not mmaps or not heap or mmaps[1] != "map_site < main" or heap[1] != "heap_site < main" \
            or not 1.5 < mmaps[0] / heap[0] < 2.7:
        raise AssertionError(f"growth by part {parts}:\n{out}")
