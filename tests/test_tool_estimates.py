"""Object counts in heaptrace's own tables are estimates, not cut down to
whole numbers per stack: one sampled 1 MiB block at the default rate stands
for 1/(1 - e^-2) = 1.16 objects (go tool pprof reads 1), and blocks of zero
bytes (malloc(0)) count as objects (pprof drops them). The pprof export
keeps pprof's numbers."""
import math
import os

import lib

MAPS = ("\nMAPPED_LIBRARIES:\n"
        "00400000-00401000 r-xp 00000000 00:00 0 /nonexistent/prog\n")
SAMPLED = ("heap profile: 3: 1048576 [3: 1048577] @ heap_v2/524288\n"
           "1: 1048576 [1: 1048576] @ 0x400100\n"
           "2: 0 [2: 0] @ 0x400200\n") + MAPS
EXACT = ("heap profile: 7: 4096 [7: 4097] @ heap_v2/1\n"
         "2: 4096 [2: 4096] @ 0x400100\n"
         "5: 0 [5: 0] @ 0x400200\n") + MAPS


def objects(text, d, name):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    proc = lib.run_tool("top", "--inuse_objects", "--nodefraction", "0", path)
    return lib.parse_top(proc.stdout)[0], path


def test_sampled_count_is_not_cut_down_and_zero_byte_blocks_count():
    d = lib.tmpdir()
    nodes, path = objects(SAMPLED, d, "sampled.heap")
    one_mib = 1 / -math.expm1(-2)
    if nodes != {"prog+0xff": (round(one_mib, 2), round(one_mib, 2)), "prog+0x1ff": (2, 2)}:
        raise AssertionError(nodes)
    # go tool pprof's reading of the same line, and the export, stay pprof's.
    out = os.path.join(d, "sampled.pb.gz")
    lib.run_tool("pprof", path, "-o", out)
    for source in (path, out):
        _, samples = lib.pprof_raw(source)
        # pprof drops the zero-byte line (its objects scale to 0).
        if sorted(v[2] for v, _ in samples if v[2]) != [1]:
            raise AssertionError(f"{source}: in-use objects {samples}")


def test_exact_dump_counts_zero_byte_blocks():
    nodes, _ = objects(EXACT, lib.tmpdir(), "exact.heap")
    if nodes != {"prog+0xff": (2, 2), "prog+0x1ff": (5, 5)}:
        raise AssertionError(nodes)
