"""The instruction-count check of the hot path (issue 5, issue 14).

Timing is no test: it depends on the machine and on what else runs on it.
Instruction counts under callgrind do not, so this test counts the
instructions of N unsampled rounds of each of malloc+free, calloc+free and
realloc (tests/bench/pairs.c, counted inside run_pairs only) under
heaptrace at its default rate and under the forward-only interposer
(tests/bench/forward.c), and checks what heaptrace adds per round against
the committed baseline in tests/bench/callgrind-baseline.txt. The glibc
allocator's own instructions, and the cost of being an interposer at all,
are in both counts and cancel.

The sampler is seeded (HEAPTRACE_SEED), so the same allocations are sampled
in every run and callgrind's count is exact for a fixed binary: the
allowance is a fraction of one instruction per round, for the libc under
the preload, so one added instruction on any of the four paths fails.

To re-measure the baseline after a deliberate change of the hot path:
HEAPTRACE_UPDATE_BASELINE=1 python3 tests/run.py test_perf
"""
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import lib

BENCH = os.path.join(lib.ROOT, "tests", "bench")
BASELINE = os.path.join(BENCH, "callgrind-baseline.txt")
ROUNDS = 20000
SIZE = 16
SEED = 1
KINDS = ("malloc", "calloc", "realloc")  # malloc and calloc rounds free too
CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-O2", "-g", "-fno-omit-frame-pointer", "-pthread"]


def _build(out):
    cc = os.environ.get("CC", "cc")
    pairs = os.path.join(out, "pairs")
    forward = os.path.join(out, "libforward.so")
    lib.run([cc, *CFLAGS, "-o", pairs, os.path.join(BENCH, "pairs.c")])
    lib.run([cc, *CFLAGS, "-fPIC", "-shared", "-o", forward,
             os.path.join(BENCH, "forward.c"), "-ldl"])
    return pairs, forward


def _count(pairs, preload, kind, dump_dir):
    """Instructions collected inside run_pairs for ROUNDS rounds of kind."""
    out = os.path.join(dump_dir, f"callgrind.{kind}.out")
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("HEAPTRACE_") or k in ("LD_PRELOAD", "MALLOC_CONF"):
            del env[k]
    env.update({"LD_PRELOAD": preload, "HEAPTRACE_DIR": dump_dir, "HEAPTRACE_SEED": str(SEED),
                "HEAPTRACE_INTERVAL": "0", "HEAPTRACE_ON_EXIT": "0"})
    lib.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             "--toggle-collect=run_pairs", pairs, str(ROUNDS), str(SIZE), kind],
            env=env, timeout=300)
    with open(out) as f:
        text = f.read()
    os.unlink(out)
    m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if not m:
        raise AssertionError("no instruction total in callgrind's output")
    return int(m.group(1))


def _read_baseline():
    values = {}
    with open(BASELINE) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                key, value = line.split()
                values[key] = float(value)
    return values


def _write_baseline(added, floor, traced):
    with open(BASELINE, "w") as f:
        f.write(
            "# Instructions heaptrace adds to one unsampled round of each kind, over\n"
            "# the forward-only interposer, counted by callgrind inside run_pairs of\n"
            "# tests/bench/pairs.c with HEAPTRACE_SEED=1 (see tests/test_perf.py):\n"
            "# malloc(16)+free, calloc(1, 16)+free, realloc between 16 and 32 bytes.\n"
            "# Re-measure: HEAPTRACE_UPDATE_BASELINE=1 python3 tests/run.py test_perf\n")
        for kind in KINDS:
            f.write(f"added_{kind} {added[kind]:.2f}\n")
        f.write(
            "# the test fails when a kind's added count exceeds its baseline by more\n"
            "# than tolerance_abs instructions a round (below one: one added\n"
            "# instruction on any path fails)\n"
            f"tolerance_abs 0.5\n"
            "# for reference only (they include glibc's own calls):\n")
        for kind in KINDS:
            f.write(f"floor_{kind} {floor[kind]:.2f}\nheaptrace_{kind} {traced[kind]:.2f}\n")


def test_unsampled_paths_instruction_count():
    if not shutil.which("valgrind"):
        raise lib.Skip("valgrind is not installed")
    if not os.path.exists(lib.PRELOAD):
        raise AssertionError(f"{lib.PRELOAD} is not built (run make)")
    work = lib.tmpdir("ht-perf-")
    try:
        pairs, forward = _build(work)
        jobs = [(kind, lib_) for kind in KINDS for lib_ in (forward, lib.PRELOAD)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = dict(zip(jobs, pool.map(lambda j: _count(pairs, j[1], j[0], work) / ROUNDS,
                                             jobs)))
        floor = {kind: counts[(kind, forward)] for kind in KINDS}
        traced = {kind: counts[(kind, lib.PRELOAD)] for kind in KINDS}
        added = {kind: traced[kind] - floor[kind] for kind in KINDS}
        if os.environ.get("HEAPTRACE_UPDATE_BASELINE") == "1":
            _write_baseline(added, floor, traced)
            return
        base = _read_baseline()
        tol = base["tolerance_abs"]
        grew = [kind for kind in KINDS if added[kind] > base[f"added_{kind}"] + tol]
        if grew:
            raise AssertionError(
                "the unsampled path grew: " + "; ".join(
                    f"{kind}: heaptrace adds {added[kind]:.2f} instructions a round over the "
                    f"forward-only interposer, baseline {base[f'added_{kind}']:.2f} "
                    f"(limit {base[f'added_{kind}'] + tol:.2f}; floor {floor[kind]:.2f}, "
                    f"heaptrace {traced[kind]:.2f})" for kind in grew)
                + ". If the growth is deliberate, re-measure: "
                "HEAPTRACE_UPDATE_BASELINE=1 python3 tests/run.py test_perf")
        print("  added a round: " + ", ".join(
            f"{kind} {added[kind]:.2f} (baseline {base[f'added_{kind}']:.2f})" for kind in KINDS))
        for kind in KINDS:
            if added[kind] < base[f"added_{kind}"] - tol:
                print(f"note: heaptrace now adds {added[kind]:.2f} instructions a {kind} round, "
                      f"below the baseline {base[f'added_{kind}']:.2f}: consider re-measuring it")
    finally:
        shutil.rmtree(work, ignore_errors=True)
