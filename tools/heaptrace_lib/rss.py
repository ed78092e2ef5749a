"""`heaptrace rss DUMP`: the process's resident set size, explained. A
dump records /proc/self/smaps_rollup, every mapping's resident and
anonymous bytes, the allocator's own statistics, where each sampled
program mmap and each running thread's stack lies (docs/format.md). From
those, each mapping's resident bytes go to one part:

- file-backed code (executable mappings of files and the kernel's vdso)
  and file-backed data (the rest of file mappings, their written private
  pages included);
- shared memory (shared anonymous mappings, /dev/shm, memfd, SysV);
- thread stacks, by creation stack: the mapping holding a running thread's
  stack (the main thread's is [stack]);
- program mmaps, by stack: the resident bytes of each sampled mmap (the
  preload asks mincore, as the kernel merges neighbouring anonymous
  mappings into one smaps entry), taken out of the entries holding it;
  not scaled by the sample's weight: an unsampled mapping of the
  program's stays in what is left;
- what is left of anonymous memory is the allocator's and heaptrace's own.
  heaptrace's own is its `# tracer_bytes:`; the allocator holds what its
  statistics say it has from the system (glibc: arena + mmap; jemalloc:
  resident; tcmalloc: heap_size less unmapped), and of that the heap in use
  is the sampled estimate (by stack) and the rest the allocator's overhead
  and the free memory it keeps;
- unexplained: RSS less all the parts."""
import bisect
import itertools

from .errors import HeaptraceError
from .profile import Selection, select_stacks, stack_label
from .record import Factory, record
from .top import legend
from .units import format_value, percentage

STACKS_SHOWN = 5


@record
class Part:
    label: str
    bytes: float = 0
    stacks: dict = Factory(dict)  # {stack label: bytes}

    def add(self, value, stack=None):
        self.bytes += value
        if stack is not None:
            self.stacks[stack] = self.stacks.get(stack, 0) + value


@record
class Breakdown:
    rss: int
    parts: list  # [Part], in the order shown; the last is "unexplained"

    def part(self, label):
        return next(p for p in self.parts if p.label == label)


HEAP, OVERHEAD, MMAPS, STACKS, OWN = ("heap in use (sampled estimate)",
                                      "allocator overhead and free memory it holds",
                                      "program mmaps", "thread stacks", "heaptrace's own")
CODE, DATA, SHARED, UNEXPLAINED = ("file-backed code", "file-backed data", "shared memory",
                                   "unexplained")


def _names(locations):
    return list(itertools.chain.from_iterable(loc.names for loc in locations))


def _allocator_held(dump):
    name, stats = dump.allocator
    if name == "glibc":
        return stats.get("arena", 0) + stats.get("mmap", 0)
    if name == "jemalloc":
        return stats.get("resident", 0)
    if name == "tcmalloc":
        return stats.get("heap_size", 0) - stats.get("pageheap_unmapped_bytes", 0)
    return 0


def _is_file(name):
    return name.startswith("/") and not name.startswith(("/dev/shm/", "/memfd:", "/SYSV"))


def breakdown(profile):
    dump = profile.dump
    if not dump.smaps or dump.rollup is None or dump.allocator is None:
        raise HeaptraceError(f"{dump.path}: no '# smaps:' lines (written by heaptrace "
                             "since issue 15); rss needs them")
    parts = {label: Part(label) for label in (HEAP, OVERHEAD, MMAPS, STACKS, OWN, CODE,
                                              DATA, SHARED, UNEXPLAINED)}
    threads = sorted((sp, stack_label(_names(locs))) for sp, locs in profile.thread_at)
    sps = [sp for sp, _ in threads]
    mmaps = sorted((lo, hi, res, stack_label(_names(locs)))
                   for lo, hi, _, res, locs in profile.mmap_at)
    pool = 0
    for m in dump.smaps:
        shared = m.perms[3:4] == "s"
        if m.name.startswith("[v"):  # [vdso], [vvar], [vsyscall]
            parts[CODE].add(m.rss)
        elif _is_file(m.name) and not shared:
            parts[CODE if "x" in m.perms else DATA].add(m.rss)
        elif shared or m.name:
            if m.name == "[stack]":
                parts[STACKS].add(m.rss, "the main thread")
            elif m.name == "[heap]" or m.name.startswith("[anon"):
                pool += m.rss
            else:
                parts[SHARED].add(m.rss)
        else:
            inside = threads[bisect.bisect_left(sps, m.start):bisect.bisect_left(sps, m.end)]
            if inside:
                for _, label in inside:
                    parts[STACKS].add(m.rss / len(inside), label)
                continue
            left = m.rss
            for lo, hi, res, label in mmaps:
                overlap = min(hi, m.end) - max(lo, m.start)
                if overlap > 0:  # a mapping in one entry, or over several
                    share = min(res * overlap / (hi - lo), left)
                    parts[MMAPS].add(share, label)
                    left -= share
            pool += left
    own = min(dump.meta_int("tracer_bytes") or 0, pool)
    parts[OWN].add(own)
    allocator = min(_allocator_held(dump), pool - own)
    heap = sorted(((v, stack_label(n)) for v, n in select_stacks(profile, Selection())),
                  reverse=True)
    in_use = min(sum(v for v, _ in heap), allocator)
    scale = in_use / sum(v for v, _ in heap) if heap else 0
    for value, label in heap:
        parts[HEAP].add(value * scale, label)
    parts[OVERHEAD].add(allocator - in_use)
    rss = dump.rollup.get("Rss") or dump.meta_int("rss_bytes") or 0
    parts[UNEXPLAINED].add(rss - sum(p.bytes for p in parts.values()))
    return Breakdown(rss, list(parts.values()))


# Parts named in a growth line, and what their stacks are called there.
GROWTH_NAMES = {HEAP: "the heap", OVERHEAD: "the allocator's overhead and free memory",
                MMAPS: "program mmaps", STACKS: "thread stacks", OWN: "heaptrace's own",
                CODE: "file-backed code", DATA: "file-backed data", SHARED: "shared memory",
                UNEXPLAINED: "unexplained"}


def growth_line(first, last):
    """"RSS grew 150MB/min: 140MB from the heap (stack), ..., 2MB unexplained"
    between two profiles of one process, or None when either lacks the
    lines rss reads or no time passed. Parts that moved less than 2% of the
    RSS's change are left out."""
    seconds = (last.dump.meta_int("time_unix_ns") or 0) - (first.dump.meta_int("time_unix_ns") or 0)
    seconds /= 1e9
    if seconds <= 0:
        return None
    try:
        before, after = breakdown(first), breakdown(last)
    except HeaptraceError:
        return None
    per_min = 60 / seconds
    grew = (after.rss - before.rss) * per_min
    out = []
    for old, new in zip(before.parts, after.parts):
        delta = (new.bytes - old.bytes) * per_min
        if abs(delta) < 0.02 * abs(grew) or not delta:
            continue
        text = f"{format_value(delta, 'bytes')} from {GROWTH_NAMES[new.label]}"
        moved = {k: new.stacks.get(k, 0) - old.stacks.get(k, 0)
                 for k in set(new.stacks) | set(old.stacks)}
        top = max(moved.items(), key=lambda kv: (kv[1], kv[0]), default=None)
        if top and top[1] > 0 and new.label != UNEXPLAINED:
            text += f" ({top[0]})"
        out.append(text)
    return (f"RSS {'grew' if grew >= 0 else 'shrank'} {format_value(abs(grew), 'bytes')}/min: "
            + (", ".join(out) or "no part by more than 2%"))


def render_rss(profile):
    b = breakdown(profile)
    name = profile.dump.allocator[0]
    out = legend(profile)

    def fmt(v):
        return format_value(v, "bytes")

    out.append(f"RSS {fmt(b.rss)} (allocator: {name})")
    for p in b.parts:
        out.append(f"  {fmt(p.bytes):>10} {percentage(p.bytes, b.rss)}  {p.label}")
        ranked = sorted(p.stacks.items(), key=lambda kv: -kv[1])
        for label, value in ranked[:STACKS_SHOWN]:
            out.append(f"  {'':10} {fmt(value):>10}  {label}")
        if len(ranked) > STACKS_SHOWN:
            rest = sum(v for _, v in ranked[STACKS_SHOWN:])
            out.append(f"  {'':10} {fmt(rest):>10}  ({len(ranked) - STACKS_SHOWN} more stacks)")
    return "\n".join(out) + "\n"
