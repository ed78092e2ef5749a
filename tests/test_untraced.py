"""Allocations made before heaptrace starts are counted, not lost without
a word: a library linked into its program is initialised before the
preloaded heaptrace, and the blocks its constructor allocates (CTOR_BLOCKS
of 1000 bytes, tests/progs/ctor/) appear in the dump's
`# untraced_before_start: <allocs> <bytes>` and in a line of `heaptrace
top`, exactly: the count with 7 blocks is the count with none plus 7."""
import lib


def run(blocks):
    d = lib.tmpdir()
    env = lib.traced_env(d, rate=1)
    env["CTOR_BLOCKS"] = str(blocks)
    lib.run([lib.prog("ctor_main")], env=env)
    dump = lib.dumps_in(d)[-1]
    allocs, size = map(int, lib.dump_meta(dump)["untraced_before_start"].split())
    return dump, allocs, size


def test_constructor_allocations_before_start_are_counted():
    _, base_allocs, base_bytes = run(0)
    dump, allocs, size = run(7)
    if (allocs - base_allocs, size - base_bytes) != (7, 7000):
        raise AssertionError(f"untraced {allocs} {size}, without the constructor's "
                             f"{base_allocs} {base_bytes}")
    top = lib.run_tool("top", dump).stdout
    line = f"Untraced: {allocs} allocations"
    if line not in top or "before heaptrace started" not in top:
        raise AssertionError(top)
