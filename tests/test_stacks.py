"""The stack table grows by levels up to HEAPTRACE_STACKS (issue 13): a
program with 500,000 distinct stacks at rate 1 (tests/progs/many_stacks.c)
loses nothing with the default settings and every stack's counts are
exact; at a cap, the drops are counted and one line names the variable."""
import collections

import lib

N = 500000


def expected(n):
    """The counts of each stack of many_stacks as its dump line writes them
    (in use, then allocated: b"c: b [ac: ab]"), as a multiset. Stack i's line depends on i modulo
    61 * 3 * 8 only, so each residue is counted once."""
    period = 61 * 3 * 8
    out = collections.Counter()
    for r in range(period):
        times = n // period + (r < n % period)
        size, count, keep = 16 + 8 * (r % 61), 1 + r % 3, r % 8 == 0
        if times:
            out[b"%d: %d [%d: %d]" % (keep, size * keep, count, count * size)] += times
    return out


def sample_lines(dump):
    """(b"c: b [ac: ab]", b"0xaddr 0xaddr ...") for each sample line, read
    more simply than lib.dump_samples does, which for half a million
    lines takes half a minute."""
    with open(dump, "rb") as f:
        data = f.read()
    end = data.find(b"\nMAPPED_LIBRARIES:")
    out = []
    for line in data[:end if end >= 0 else len(data)].split(b"\n"):
        if line[:1].isdigit():
            head, _, stack = line.partition(b" @ ")
            out.append((head, stack))
    return out


def leaf_lines(dump):
    """The program's sample lines: those whose innermost frame is the one
    malloc call of leaf(), the first frame most lines share."""
    samples = sample_lines(dump)
    first = collections.Counter(stack[:stack.find(b" ")] for _, stack in samples)
    leaf = first.most_common(1)[0][0] + b" "
    return [(values, stack) for values, stack in samples if stack.startswith(leaf)]


def test_half_a_million_stacks_exact_at_rate_1():
    exe = lib.prog("many_stacks")
    proc, dumps = lib.run_traced([exe, str(N)], rate=1, timeout=120)
    if proc.stderr or proc.stdout != f"stacks {N} kept {N // 8}\n":
        raise AssertionError(f"stdout {proc.stdout!r} stderr {proc.stderr[-500:]!r}")
    meta = lib.dump_meta(dumps[-1])
    for key in ("dropped_stack_table", "dropped_live_map", "dropped_busy"):
        if meta[key] != "0":
            raise AssertionError(f"{key}: {meta[key]}")
    ours = leaf_lines(dumps[-1])
    distinct = len({stack for _, stack in ours})
    if len(ours) != N or distinct != N:
        raise AssertionError(f"{len(ours)} lines from leaf(), {distinct} distinct stacks; "
                             f"want {N}")
    got = collections.Counter(values for values, _ in ours)
    want = expected(N)
    if got != want:
        raise AssertionError(f"counts differ: missing {list((want - got).items())[:5]}, "
                             f"unexpected {list((got - want).items())[:5]}")
    # The tables, the records and the dump's scratch, all counted: well
    # under 1 KiB a stack (a record alone is 384 bytes at this depth).
    tracer = int(meta["tracer_bytes"])
    if not 0 < tracer <= N * 1024:
        raise AssertionError(f"tracer_bytes {tracer} for {N} stacks")


def test_cap_drops_counted_and_named():
    exe = lib.prog("many_stacks")
    proc, dumps = lib.run_traced([exe, "5000"], rate=1, stacks=1000)
    lines = [line for line in proc.stderr.splitlines() if "HEAPTRACE_STACKS" in line]
    if len(lines) != 1 or "the stack table is full (1000 stacks)" not in lines[0]:
        raise AssertionError(f"stderr: {proc.stderr[-1000:]!r}")
    meta = lib.dump_meta(dumps[-1])
    kept = len(leaf_lines(dumps[-1]))
    # every sample of the stacks that found no room is counted dropped
    dropped = sum(1 + i % 3 for i in range(kept, 5000))
    if int(meta["stacks"]) > 1000 or int(meta["dropped_stack_table"]) != dropped:
        raise AssertionError(f"{meta['stacks']} stacks, {kept} of leaf(), dropped "
                             f"{meta['dropped_stack_table']}, want {dropped}")
    warn = lib.run_tool("top", dumps[-1]).stderr
    if "raise HEAPTRACE_STACKS" not in warn:
        raise AssertionError(f"the tool's warning: {warn!r}")
