"""What the preload records over time for leak hunting: allocation ages,
threads by creation stack, and bounded dump files thinned over a run."""
import os

import lib
from lib import prog


def test_ages_old_and_fresh_blocks():
    exe = prog("aging")
    proc, dumps = lib.run_traced([exe, "4"], rate=1, on_exit=0, ages="1,2,3")
    assert proc.stdout.strip() == "dump: 0"
    meta = lib.dump_meta(dumps[0])
    assert meta["age_buckets_s"] == "1 2 3", meta["age_buckets_s"]
    ages = {}
    with open(dumps[0]) as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# ages:"):
            addrs = lib.SAMPLE_RE.match(lines[i - 1]).group(5).split()
            ages[lib.function_at(dumps[0], int(addrs[0], 16))] = [
                int(v) for v in line.split()[2:]]
    # buckets: <1s, <2s, <3s, older; (objects, bytes) each
    assert ages["keep_old"] == [0, 0, 0, 0, 0, 0, 10, 10000], ages
    assert ages["keep_fresh"] == [5, 10000, 0, 0, 0, 0, 0, 0], ages


def test_threads_by_creation_stack():
    exe = prog("thread_leak")
    proc, dumps = lib.run_traced([exe, "7"], on_exit=0)
    assert proc.stdout.strip() == "dump: 0"
    groups = {}
    total = None
    with open(dumps[0]) as f:
        for line in f:
            if line.startswith("# threads: "):
                counts, _, addrs = line[len("# threads: "):].partition(" @ ")
                func = lib.function_at(dumps[0], int(addrs.split()[0], 16))
                groups[func] = tuple(int(v) for v in counts.split()[:2])
            elif line.startswith("# threads_total: "):
                total = tuple(int(v) for v in line.split()[2:4])
    # joined and detached threads are gone; 7 leaked, 3 still running
    assert groups == {"spawn_leaky": (0, 7), "spawn_waiting": (3, 0)}, groups
    assert total == (3, 7), total


def test_keep_thins_evenly():
    exe = prog("api_dumps")
    d = lib.tmpdir()
    other = os.path.join(d, "heaptrace.1.0001.heap")  # another process's file
    open(other, "w").close()
    proc, _ = lib.run_traced([exe, "100"], dump_dir=d, keep=8, on_exit=0)
    assert proc.stdout.strip() == "100 dumps, 0 failed"
    assert os.path.exists(other)
    ours = [f for f in lib.dumps_in(d) if f != other]
    seqs = sorted(int(lib.dump_meta(f)["seq"]) for f in ours)
    assert len(seqs) == 8, seqs
    assert seqs[0] == 1 and seqs[-1] == 100, seqs
    gaps = [b - a for a, b in zip(seqs, seqs[1:])]
    assert max(gaps) <= 2.5 * 99 / 7, f"uneven: {seqs}"


def test_stale_temporary_files_are_swept():
    d = lib.tmpdir()
    dead = os.path.join(d, ".heaptrace.999999999.0003.heap.tmp")
    alive = os.path.join(d, f".heaptrace.{os.getpid()}.0001.heap.tmp")
    for path in (dead, alive):
        open(path, "w").close()
    lib.run_traced([prog("api_dumps"), "1"], dump_dir=d)
    assert not os.path.exists(dead)
    assert os.path.exists(alive)  # its writer still runs
