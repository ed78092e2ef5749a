"""The frame walker (preload/unwind.c, preload/cfi.c) against libunwind.

heaptrace walks stacks by the call frame rules of .eh_frame and hands the
stacks it cannot finish to libunwind. Both must give the same frames: each
program here runs twice at rate 1, once with HEAPTRACE_UNWIND=libunwind,
with address randomisation off so that the two runs' addresses agree, and
every stack, with its exact counts, must be the same in both dumps.

Allocations made by constructors the loader runs before heaptrace's own
(libstdc++'s exception pool) are the exception: the walker takes their
stacks from the first allocation call on, up to the loader's entry code
(ld.so, which has no unwind information there), while libunwind is loaded
only by heaptrace's constructor, and until then they are counted in
`# untraced_before_start`, exactly what the walker's dump has as the
loader's stacks."""
import os

import lib


def _stacks(dump):
    """{frames: [in_c, in_b, alloc_c, alloc_b]}, lines of one stack summed."""
    out = {}
    for c, b, ac, ab, addrs in lib.dump_samples(dump):
        acc = out.setdefault(tuple(addrs), [0, 0, 0, 0])
        for i, v in enumerate((c, b, ac, ab)):
            acc[i] += v
    return out


def _both(cmd, expect_rc=0):
    """Runs cmd under each unwinder; {mode: (meta, stacks, path)} of its exit
    dump."""
    exe = os.path.realpath(cmd[0])
    got = {}
    for mode in ("cfi", "libunwind"):
        proc, dumps = lib.run_traced(["setarch", "-R"] + cmd, rate=1, unwind=mode,
                                     timeout=120, check=False)
        if proc.returncode != expect_rc:
            raise AssertionError(f"{cmd} under {mode}: exit {proc.returncode} "
                                 f"{proc.stderr[-1000:]}")
        metas = {d: lib.dump_meta(d) for d in dumps}
        mine = [d for d, m in metas.items()
                if m.get("exe") == exe and m.get("trigger") == "exit"]
        if len(mine) != 1:
            raise AssertionError(f"{cmd} under {mode}: exit dumps {mine} of {dumps}")
        got[mode] = (metas[mine[0]], _stacks(mine[0]), mine[0])
    names = (got["cfi"][0]["unwinder"], got["libunwind"][0]["unwinder"])
    if names != ("cfi+libunwind", "libunwind"):
        raise AssertionError(f"{cmd}: unwinders {names}")
    return got


def _loader_stacks(meta, stacks, dump):
    """Takes out of stacks those whose outermost frame is in ld.so: {frames:
    counts} of them."""
    loader = [(lo, hi) for lo, hi, _, path in lib.dump_maps(dump) if "/ld-linux" in path]
    return {k: stacks.pop(k) for k in list(stacks)
            if k and any(lo <= k[-1] < hi for lo, hi in loader)}


def _diff(a, b):
    only_a = {k: v for k, v in a.items() if b.get(k) != v}
    only_b = {k: v for k, v in b.items() if a.get(k) != v}
    lines = [f"  walker:    {[hex(x) for x in k]} {v}" for k, v in list(only_a.items())[:5]]
    lines += [f"  libunwind: {[hex(x) for x in k]} {v}" for k, v in list(only_b.items())[:5]]
    return "\n".join(lines)


def test_walker_gives_libunwinds_stacks():
    programs = [
        [lib.prog("known")],
        [lib.prog("deep")],
        [lib.prog("cxx_new")],
        [lib.prog("leak_sites")],
        # threads: each is walked up to its start, through heaptrace's own
        # thread_start, glibc's start_thread and clone3
        [os.path.join(lib.BUILD, "bench", "workload"), "2", "100000"],
    ]
    for cmd in programs:
        got = _both(cmd)
        walker, libunwind = got["cfi"][1], got["libunwind"][1]
        early = _loader_stacks(*got["cfi"])
        if _loader_stacks(*got["libunwind"]):
            raise AssertionError(f"{cmd}: constructors' stacks under libunwind")
        untraced = [int(x) for x in got["libunwind"][0]["untraced_before_start"].split()]
        if untraced != [sum(v[2] for v in early.values()), sum(v[3] for v in early.values())] \
                or got["cfi"][0]["untraced_before_start"] != "0 0":
            raise AssertionError(f"{cmd}: the walker's constructors' stacks {early}, "
                                 f"untraced under libunwind {untraced}")
        if walker != libunwind:
            raise AssertionError(f"{cmd}: stacks differ\n{_diff(walker, libunwind)}")
        if len(walker) < 3:
            raise AssertionError(f"{cmd}: only {len(walker)} stacks")
        handed = int(got["cfi"][0]["unwind_handed_over"])
        if handed != 0:
            raise AssertionError(f"{cmd}: {handed} stacks handed to libunwind")


def test_walker_hands_over_frames_it_cannot_follow():
    # Frames without any unwind information (and a %rbp that points at an
    # unmapped page, or loops): libunwind takes those stacks whole and
    # guesses, so the dumps still match; the other stacks are the walker's.
    got = _both([lib.prog("hostile_unwind"), "nounwind"])
    walker, libunwind = got["cfi"][1], got["libunwind"][1]
    if walker != libunwind:
        raise AssertionError(f"nounwind: stacks differ\n{_diff(walker, libunwind)}")
    handed = int(got["cfi"][0]["unwind_handed_over"])
    if handed < 300:  # 3 x 100 blocks through frames without CFI
        raise AssertionError(f"nounwind: {handed} stacks handed over")


def test_walker_hands_over_signal_frames():
    # 1000 blocks of 40 B kept by a signal handler: the walk meets the
    # signal frame and libunwind, which knows the kernel's frame, goes on.
    got = _both([lib.prog("hostile_signals")])
    kept = {}
    for mode, (meta, stacks, _) in got.items():
        sites = [k for k, v in stacks.items() if v[:2] == [1000, 40000]]
        if len(sites) != 1:
            raise AssertionError(f"{mode}: stacks with 1000 x 40 B live: {sites}")
        kept[mode] = sites[0]
        if int(meta["unwind_handed_over"]) < (1000 if mode == "cfi" else 0):
            raise AssertionError(f"{mode}: {meta['unwind_handed_over']} handed over")
    if kept["cfi"] != kept["libunwind"]:
        raise AssertionError(f"signal handler's stack: walker "
                             f"{[hex(a) for a in kept['cfi']]}, libunwind "
                             f"{[hex(a) for a in kept['libunwind']]}")
    if len(kept["cfi"]) < 4:  # handler, signal frame, raise, main and up
        raise AssertionError(f"signal handler's stack cut short: {kept['cfi']}")
