"""The preload against known truth: exact accounting at rate 1 read back by
the peer parsers, unbiased sampling, threads, dump signals, the corners of
the allocation API, frame caps and dropped samples."""
import math
import os
import signal
import subprocess
import time

import lib
from lib import prog

KNOWN = {  # leaf function: (alloc_objects, alloc_space, inuse_objects, inuse_space)
    "keep_blocks": (10, 10240, 10, 10240),
    "churn_blocks": (100, 51200, 0, 0),
    "use_calloc": (5, 5000, 5, 5000),
    "use_posix_memalign": (4, 1024, 4, 1024),
    "realloc_chain": (5, 496, 1, 256),
    "use_other_api": (8, 17865, 8, 17865),
    "alloc_for_other": (3, 6000, 0, 0),
}
TYPES = ("alloc_objects", "alloc_space", "inuse_objects", "inuse_space")


def test_exact_accounting_at_rate_1():
    exe = prog("known")
    _, dumps = lib.run_traced([exe], rate=1)
    assert len(dumps) == 1, dumps
    meta = lib.dump_meta(dumps[0])
    assert meta["trigger"] == "exit" and meta["seq"] == "1", meta
    assert meta["header"].endswith("@ heap_v2/1"), meta["header"]
    got = lib.pprof_by_leaf(dumps[0], exe)
    ours = {f: v for f, v in got.items() if f in KNOWN or f in ("main", "free_for_other")}
    assert set(ours) == set(KNOWN), f"functions seen: {sorted(got)}"
    for func, want in KNOWN.items():
        have = tuple(got[func][t] for t in TYPES)
        assert have == want, f"{func}: pprof reads {have}, expected {want}"
    for kind, key in lib.OWN_TOTALS.items():
        assert float(meta[key]) == sum(v[kind] for v in got.values()), key
    lib.assert_readers_agree(dumps[0], exe)


def test_google_pprof_reads_exact_functions():
    exe = prog("known")
    _, dumps = lib.run_traced([exe], rate=1)
    out = lib.run(["google-pprof", "--text", "--show_bytes", "--inuse_space", exe, dumps[0]]).stdout
    flat = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[0].isdigit():
            flat[parts[5]] = int(parts[0])
    for func, want in KNOWN.items():
        assert flat.get(func, 0) == want[3], f"{func}: {flat.get(func)} != {want[3]}"


def expected_hold(target_mib):
    """Truth and the estimator's standard deviation for hold.c's pattern."""
    sizes = [1000, 3000, 7000, 20000, 64000, 150]
    rate = 524288
    held, var, i = 0, 0.0, 0
    while held < target_mib << 20:
        s = sizes[i % len(sizes)]
        p = -math.expm1(-s / rate)
        var += s * s * (1 - p) / p
        held += s
        i += 1
    return held, math.sqrt(var)


def scaled_site_bytes(dump, func_addrs=None):
    """In-use bytes of a dump scaled as pprof does for heap_v2."""
    rate = int(lib.dump_meta(dump)["rate"])
    total = 0.0
    for c, b, _, _, _ in lib.dump_samples(dump):
        if c and b:
            total += b / -math.expm1(-(b / c) / rate)
    return total


def test_sampling_is_unbiased():
    runs = 20
    truth, sd = expected_hold(128)
    exe = prog("hold")
    estimates = []
    for seed in range(1, runs + 1):
        proc, dumps = lib.run_traced([exe, "128"], seed=seed)
        assert int(proc.stdout) == truth
        est = lib.pprof_by_leaf(dumps[0], exe)["hold_memory"]["inuse_space"] if not estimates else None
        mine = scaled_site_bytes(dumps[0])
        if est is not None:  # the peer reader agrees with our reading of the file
            assert abs(est - mine) <= 0.001 * mine + 10, (est, mine)
        # each run within 5 standard deviations of the truth
        assert abs(mine - truth) <= 5 * sd + 0.01 * truth, (mine, truth, sd, f"HEAPTRACE_SEED={seed}")
        estimates.append(mine)
    mean = sum(estimates) / runs
    assert abs(mean - truth) <= 0.05 * truth, f"mean {mean:.0f} vs truth {truth} over seeds 1 to {runs} ({estimates})"
    # and it is really sampling: the runs differ
    assert len({round(e) for e in estimates}) > runs // 2


def test_reader_agreement_on_sampled_dump():
    exe = prog("hold")
    _, dumps = lib.run_traced([exe, "64"])
    lib.assert_readers_agree(dumps[0], exe)


def test_threads_churn_exact():
    exe = prog("churn_threads")
    threads, ops = 8, 400000
    proc, dumps = lib.run_traced([exe, str(threads), str(ops)], rate=1, timeout=300)
    assert proc.stdout.strip() == "done"
    meta = lib.dump_meta(dumps[0])
    for key in ("dropped_stack_table", "dropped_live_map", "dropped_busy"):
        assert meta[key] == "0", (key, meta[key])
    got = lib.pprof_by_leaf(dumps[0], exe)["churn_worker"]
    assert got["inuse_objects"] == 0 and got["inuse_space"] == 0, got
    assert got["alloc_objects"] == threads * ops, got
    per_thread = sum(16 + (i % 16) * 16 for i in range(ops))
    assert got["alloc_space"] == threads * per_thread, got
    lib.assert_readers_agree(dumps[0], exe, google=False)


def run_busy(env, threads, during):
    """busy_signals with its threads allocating: call during(process) once
    they run, then stop it and check it exited cleanly."""
    p = subprocess.Popen([prog("busy_signals"), str(threads)], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        during(p)
        p.stdin.close()
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()


def test_dump_signals_while_allocating():
    exe = prog("busy_signals")
    d = lib.tmpdir()
    sent = 25

    def signal_repeatedly(p):
        for _ in range(sent):
            p.send_signal(signal.SIGUSR1)
            time.sleep(0.08)
        time.sleep(0.5)

    run_busy(lib.traced_env(d, on_exit=0), 4, signal_repeatedly)
    dumps = lib.dumps_in(d)
    assert 5 <= len(dumps) <= sent, f"{len(dumps)} dumps for {sent} signals"
    assert not [f for f in os.listdir(d) if f.endswith(".tmp")]
    seqs = [int(lib.dump_meta(f)["seq"]) for f in dumps]
    assert seqs == list(range(1, len(dumps) + 1)), seqs
    for f in dumps:
        meta = lib.dump_meta(f)
        assert meta["trigger"] == "signal"
        with open(f) as fh:
            text = fh.read()
        assert "\nMAPPED_LIBRARIES:\n" in text and text.endswith("\n")
    for f in dumps[:: max(1, len(dumps) // 4)]:
        lib.assert_readers_agree(f, exe, google=False)


def test_api_edges_unchanged_and_unrecorded():
    exe = prog("edges")
    plain = lib.run([exe])
    traced, dumps = lib.run_traced([exe], rate=1)
    assert traced.stdout == plain.stdout, (plain.stdout, traced.stdout)
    assert traced.returncode == plain.returncode
    got = lib.pprof_by_leaf(dumps[0], exe)
    assert "failing_calls" not in got, got.get("failing_calls")
    w = got["working_calls"]
    # realloc(NULL,100) then realloc(p,0) frees it; malloc(10) freed; 24 kept
    assert (w["alloc_objects"], w["alloc_space"]) == (3, 134), w
    assert (w["inuse_objects"], w["inuse_space"]) == (1, 24), w


def test_max_frames_caps_depth():
    exe = prog("deep")
    _, dumps = lib.run_traced([exe, "60"], rate=1, max_frames=8)
    samples = [s for s in lib.dump_samples(dumps[0]) if s[2] > 0]
    assert samples and max(len(s[4]) for s in samples) == 8
    assert lib.dump_meta(dumps[0])["max_frames"] == "8"
    _, dumps = lib.run_traced([exe, "60"], rate=1)
    assert max(len(s[4]) for s in lib.dump_samples(dumps[0])) >= 60


def test_full_tables_drop_and_count():
    exe = prog("deep")
    # 100 distinct stacks into a table of 16: the rest are dropped, counted
    _, dumps = lib.run_traced([exe, "100"], rate=1, stacks=16)
    meta = lib.dump_meta(dumps[0])
    assert int(meta["stacks"]) <= 16
    assert int(meta["dropped_stack_table"]) >= 100 - 16, meta["dropped_stack_table"]
    # 20000 live blocks into a live map of 64 slots: allocation totals stay
    # exact, what could not be remembered is counted and not shown in use
    _, dumps = lib.run_traced([exe, "10", "2000"], rate=1, live=64)
    meta = lib.dump_meta(dumps[0])
    dropped = int(meta["dropped_live_map"])
    assert dropped > 0
    got = lib.pprof_by_leaf(dumps[0], exe)["descend"]
    assert got["alloc_objects"] == 20000, got
    # the map's 64 slots also hold a block or two of libc's own (stdout)
    assert 20000 - dropped <= got["inuse_objects"] <= 20000 - dropped + 2, (got, dropped)


def test_live_map_touches_pages_as_live_samples_need():
    # Many samples, few live at a time: the live map stays in its first
    # level. A map that hashed over all its capacity (262144 slots, 6 MiB)
    # would have touched every page of it.
    exe = prog("churn_threads")
    _, dumps = lib.run_traced([exe, "4", "100000"], rate=64)
    meta = lib.dump_meta(dumps[0])
    assert int(meta["samples_total"]) > 200000, meta["samples_total"]
    assert meta["dropped_live_map"] == "0"
    assert int(meta["tracer_bytes"]) <= 512 << 10, meta["tracer_bytes"]
    # 300000 blocks live at once at rate 1: larger levels open as the map
    # fills, and every block is remembered.
    exe = prog("many_live")
    n = 300000
    _, dumps = lib.run_traced([exe, str(n)], rate=1)
    meta = lib.dump_meta(dumps[0])
    assert meta["dropped_live_map"] == "0"
    got = lib.pprof_by_leaf(dumps[0], exe)["keep_blocks"]
    assert got["inuse_objects"] == n + 1 and got["inuse_space"] == 32 * n + 8 * n, got


def test_interval_dumps():
    d = lib.tmpdir()
    run_busy(lib.traced_env(d, interval="0.2"), 1, lambda p: time.sleep(1.5))
    triggers = [lib.dump_meta(f)["trigger"] for f in lib.dumps_in(d)]
    assert triggers[-1] == "exit"
    assert 4 <= triggers.count("interval") <= 9, triggers


def test_exec_children_followed_unless_turned_off():
    exe = prog("show_preload")
    # sh execs the child in place: its dumps tell whether it was traced
    proc, dumps = lib.run_traced(["sh", "-c", exe])
    assert proc.stdout.strip() == lib.PRELOAD
    assert [lib.dump_meta(f)["exe"] for f in dumps] == [exe]
    proc, dumps = lib.run_traced(["sh", "-c", exe], follow_exec=0)
    assert proc.stdout.strip() == "(unset)"
    assert dumps == []
