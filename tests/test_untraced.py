"""Allocations made before heaptrace's constructor are traced: a library
linked into its program is initialised before the preloaded heaptrace,
and heaptrace starts at the first allocation call instead. The blocks its
constructor allocates (CTOR_BLOCKS of 1000 bytes, tests/progs/ctor/) are
in the dump at rate 1, with their stacks through the loader's call of the
constructor. What still cannot be traced is counted, exactly, in
`# untraced_before_start: <allocs> <bytes>` and in a line of `heaptrace
top`: under HEAPTRACE_UNWIND=libunwind no stack can be taken before the
constructor loads libunwind, and the count with 7 blocks is the count with
none plus 7.

The known truth for a real program: clang++ (whose libLLVM, libclang-cpp
and libstdc++ allocate thousands of blocks in their constructors) under
heaptrace and a counting interposer stacked after it
(tests/progs/count/count.c), which sees every call heaptrace forwards:
the live objects of the exit dump are the interposer's live blocks."""
import os

import lib

CLANG = "/usr/bin/clang++-14"
COUNT = os.path.join(lib.BUILD, "tests", "libcount.so")


def run(blocks, **config):
    d = lib.tmpdir()
    env = lib.traced_env(d, rate=1, **config)
    env["CTOR_BLOCKS"] = str(blocks)
    lib.run([lib.prog("ctor_main")], env=env)
    dump = lib.dumps_in(d)[-1]
    allocs, size = map(int, lib.dump_meta(dump)["untraced_before_start"].split())
    return dump, allocs, size


def test_constructor_allocations_are_traced():
    dump, allocs, size = run(7)
    if (allocs, size) != (0, 0):
        raise AssertionError(f"untraced {allocs} {size}")
    found = []
    for count, size, _, _, addrs in lib.dump_samples(dump):
        if size == 1000 * count:
            names = [lib.function_at(dump, a) for a in addrs]
            found.append((count, names))
    if len(found) != 1 or found[0][0] != 7 or \
            found[0][1][:3] != ["ctor_lib_start", "call_init", "_dl_init"]:
        raise AssertionError(f"the constructor's blocks: {found}")
    top = lib.run_tool("top", dump).stdout
    if "Untraced:" in top:
        raise AssertionError(top)


def test_allocations_before_libunwind_are_counted():
    _, base_allocs, base_bytes = run(0, unwind="libunwind")
    dump, allocs, size = run(7, unwind="libunwind")
    if (allocs - base_allocs, size - base_bytes) != (7, 7000):
        raise AssertionError(f"untraced {allocs} {size}, without the constructor's "
                             f"{base_allocs} {base_bytes}")
    if any(size == 1000 * count for count, size, _, _, _ in lib.dump_samples(dump)):
        raise AssertionError("the constructor's blocks are both counted and traced")
    top = lib.run_tool("top", dump).stdout
    line = f"Untraced: {allocs} allocations"
    if line not in top or "before heaptrace started" not in top:
        raise AssertionError(top)


def test_clang_live_objects_match_a_counting_interposer():
    if not os.path.exists(CLANG):
        raise lib.Skip(f"{CLANG} is not installed")
    d = lib.tmpdir()
    src = os.path.join(d, "small.cc")
    with open(src, "w") as f:
        f.write("#include <string>\n#include <vector>\n"
                "int main() { std::vector<std::string> v{\"a\", \"b\"};"
                " return (int)v.size(); }\n")
    env = lib.traced_env(d, rate=1, signal="none")
    env["LD_PRELOAD"] = f"{lib.PRELOAD} {COUNT}"
    env["COUNT_OUT"] = os.path.join(d, "count.txt")
    lib.run([CLANG, "-c", src, "-o", os.path.join(d, "small.o")], env=env)
    with open(env["COUNT_OUT"]) as f:
        counted = f.read().split()
    exe = os.path.realpath(CLANG)
    exits = [p for p in lib.dumps_in(d) if lib.dump_meta(p).get("trigger") == "exit"]
    if len(exits) != 1 or counted[0] != "live":
        raise AssertionError(f"exit dumps {exits}, counter {counted}")
    meta = lib.dump_meta(exits[0])
    live = float(meta["inuse_objects"])
    if live != int(counted[1]) or meta["untraced_before_start"] != "0 0":
        raise AssertionError(f"{meta['exe']} (of {exe}): {live} live objects, the "
                             f"interposer's {counted[1]}; untraced "
                             f"{meta['untraced_before_start']}")
    # Constructor-time samples are among them: stacks that end in the
    # loader, which ran the constructors.
    loader = [(lo, hi) for lo, hi, _, path in lib.dump_maps(exits[0]) if "/ld-linux" in path]
    early = sum(c for c, _, _, _, addrs in lib.dump_samples(exits[0])
                if addrs and any(lo <= addrs[-1] < hi for lo, hi in loader))
    if early < 1000:
        raise AssertionError(f"{early} live objects from constructors")
