"""Anonymous mmaps by call stack (issue 15). tests/progs/rss_parts.c maps
64 MiB at map_site and 8 MiB there that it gives back with madvise, 16 MiB
from unmap_site that it unmaps in two halves, and 4 MiB from remap_site
grown to 12 MiB by mremap; it mallocs 24 MiB in 256 KiB blocks (glibc
serves those with mmaps of its own) and 8 MiB in 1 KiB blocks. At rate 1
the dump's `# mmap:` lines must hold exactly 64 MiB for map_site and
12 MiB for remap_site, nothing for unmap_site, and the heap must hold the
malloc'd 32 MiB once: the allocator's own mappings are not the program's.
The same under jemalloc and tcmalloc preloaded after heaptrace, whose
chunks are mapped through the interposed mmap."""
import os
import re

import lib

MIB = 1 << 20
ALLOCATORS = {"glibc": None,
              "jemalloc": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
              "tcmalloc": "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4"}


def _flat(text):
    """{function: flat bytes} of `top --unit B`."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^ *(\d+)B +\S+% +\S+% +\S+ +\S+%  (\S+)", line)
        if m:
            out[m.group(2)] = int(m.group(1))
    return out


def mmap_total(dump):
    with open(dump) as f:
        m = re.search(r"^# mmap_total: (.*)$", f.read(), re.M)
    return m.group(1) if m else None


def run_parts(allocator, threads="10", **config):
    """Runs rss_parts under heaptrace (and allocator after it); its dump."""
    lib_path = ALLOCATORS[allocator]
    if lib_path and not os.path.exists(lib_path):
        raise lib.Skip(f"{lib_path} is not installed")
    d = lib.tmpdir()
    env = lib.traced_env(d, on_exit=0, **config)
    if lib_path:
        env["LD_PRELOAD"] = f"{lib.PRELOAD} {lib_path}"
    proc = lib.run([lib.prog("rss_parts"), threads], env=env)
    dumps = lib.dumps_in(d)
    if proc.stdout.strip() != "dump: 0" or len(dumps) != 1:
        raise AssertionError(f"rss_parts under {allocator}: {proc.stdout!r} {dumps}")
    return dumps[0]


def test_mmaps_by_stack_counted_once():
    for allocator in ALLOCATORS:
        dump = run_parts(allocator, rate=1)
        mmaps = _flat(lib.run_tool("top", "--kind", "mmap", "--unit", "B", dump).stdout)
        want = {"map_site": 64 * MIB, "remap_site": 12 * MIB}
        if mmaps != want:
            raise AssertionError(f"{allocator}: top --kind mmap {mmaps}, want {want}")
        heap = _flat(lib.run_tool("top", "--unit", "B", dump).stdout)
        if heap.get("heap_site") != 24 * MIB or heap.get("small_site") != 8 * MIB \
                or "map_site" in heap:
            raise AssertionError(f"{allocator}: the heap {heap}")
        total = mmap_total(dump)
        if total != f"3 {76 * MIB} 0":  # the madvised mapping counts, with 0 bytes
            raise AssertionError(f"{allocator}: # mmap_total: {total}")


def test_mmaps_off_and_alloc_types_refused():
    dump = run_parts("glibc", mmap=0)
    if mmap_total(dump) != "0 0 0":
        raise AssertionError(f"HEAPTRACE_MMAP=0: # mmap_total: {mmap_total(dump)}")
    proc = lib.run_tool("top", "--kind", "mmap", "--alloc_space", dump, check=False)
    if proc.returncode == 0 or len(proc.stderr.splitlines()) != 1:
        raise AssertionError(f"--kind mmap --alloc_space: {proc.returncode} {proc.stderr!r}")
