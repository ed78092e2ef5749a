"""Thread stacks by creation stack (issue 15): tests/progs/thread_stacks.c
holds 5 threads with the default attributes (RLIMIT_STACK set to 8 MiB
here, so the default stack is 8 MiB and the guard one page), 3 with a
256 KiB stack and a 64 KiB guard, and one on a stack it mapped itself
(the program's memory, not a thread stack). The dump's `# threads:` lines
must carry exactly those bytes per creation stack, and `heaptrace
threads` and `leaks` must show them."""
import os
import resource

import lib

MIB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stack_8m():
    resource.setrlimit(resource.RLIMIT_STACK, (8 * MIB, resource.getrlimit(resource.RLIMIT_STACK)[1]))


def _run():
    d = lib.tmpdir()
    proc = lib.run([lib.prog("thread_stacks"), "5", "3"], env=lib.traced_env(d, on_exit=0),
                   preexec_fn=_stack_8m)
    dumps = lib.dumps_in(d)
    if proc.stdout.strip() != "dump: 0" or len(dumps) != 1:
        raise AssertionError(f"thread_stacks: {proc.stdout!r}, dumps {dumps}")
    return dumps[0]


def test_thread_stack_bytes_by_creation_stack():
    hard = resource.getrlimit(resource.RLIMIT_STACK)[1]
    if hard != resource.RLIM_INFINITY and hard < 8 * MIB:
        raise lib.Skip("the hard RLIMIT_STACK is below 8 MiB")
    dump = _run()
    groups, total = {}, None
    with open(dump) as f:
        for line in f:
            if line.startswith("# threads: "):
                counts, _, addrs = line[len("# threads: "):].partition(" @ ")
                # innermost is the program's start(); its caller names the group
                func = lib.function_at(dump, int(addrs.split()[1], 16))
                groups[func] = tuple(int(v) for v in counts.split())
            elif line.startswith("# threads_total: "):
                total = tuple(int(v) for v in line.split()[2:])
    want = {"spawn_default": (5, 0, 5 * 8 * MIB, 5 * PAGE),
            "spawn_small": (3, 0, 3 * 256 * 1024, 3 * 64 * 1024),
            "spawn_own": (1, 0, 0, 0)}
    if groups != want:
        raise AssertionError(f"# threads: {groups}, want {want}")
    if total != tuple(sum(g[i] for g in want.values()) for i in range(4)):
        raise AssertionError(f"# threads_total: {total}")
    text = lib.run_tool("threads", dump).stdout
    if "Thread stacks: 40.96MB reserved" not in text:
        raise AssertionError(f"heaptrace threads does not show the stacks' memory:\n{text}")


def test_leaks_shows_thread_stack_memory():
    """The unjoined threads of tests/progs/thread_leak.c hold their stacks:
    leaks says how much, for the creation stack that leaked them."""
    hard = resource.getrlimit(resource.RLIMIT_STACK)[1]
    if hard != resource.RLIM_INFINITY and hard < 8 * MIB:
        raise lib.Skip("the hard RLIMIT_STACK is below 8 MiB")
    d = lib.tmpdir()
    lib.run([lib.prog("thread_leak"), "7"], env=lib.traced_env(d, on_exit=0),
            preexec_fn=_stack_8m)
    out = lib.run_tool("leaks", *lib.dumps_in(d)).stdout
    leaked = 7 * (8 * MIB + PAGE)
    if f"7 threads (0 running, 7 unjoined), {leaked / MIB:.2f}MB of stacks" not in out:
        raise AssertionError(f"leaks does not give the leaked threads' stacks:\n{out}")
