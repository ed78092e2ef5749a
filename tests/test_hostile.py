"""Programs that stress the interposition (issue 6): fork storms, daemon(),
posix_spawn, vfork, allocating signal handlers, dump-signal bursts, programs
that own the dump signal, thousands of threads dying with destructors that
allocate, cancellation, allocations outliving a dlclose()d library, very
deep stacks, frames without unwind information, exit() during a dump, and
tables driven full. Each runs under a timeout, checks the program's own
result against an untraced run (or the known result) and checks that every dump written is whole
and parses (tests/whole.py). Results are in docs/reliability.md."""
import os
import re
import shutil
import signal
import subprocess
import time

import lib
import whole


def cleans_up(test):
    """On success, removes the dump directories the test made (and takes
    them off lib.DUMP_DIRS): these tests write thousands of dumps, checked
    here already, which test_zz_readers.py would otherwise read again."""
    def run():
        before = len(lib.DUMP_DIRS)
        test()
        for d in lib.DUMP_DIRS[before:]:
            shutil.rmtree(d, ignore_errors=True)
        del lib.DUMP_DIRS[before:]
    run.__name__ = test.__name__
    # tests/run.py runs a module's tests in the order of their line numbers
    run.__code__ = run.__code__.replace(co_firstlineno=test.__code__.co_firstlineno)
    return run


def untraced(cmd, timeout=120, **kw):
    return lib.run(cmd, timeout=timeout, check=False, **kw)


def same_result(plain, traced, what):
    if (traced.returncode, traced.stdout) != (plain.returncode, plain.stdout):
        raise AssertionError(
            f"{what}: untraced exit {plain.returncode} {plain.stdout[-300:]!r}, "
            f"traced exit {traced.returncode} {traced.stdout[-300:]!r}; "
            f"stderr {traced.stderr[-500:]!r}")


def pids_only(text):
    return re.sub(r"\b(child|daemon) \d+", r"\1 PID", text)


def inuse_by_leaf(dump, exe):
    return {name: (acc["inuse_objects"], acc["inuse_space"])
            for name, acc in lib.pprof_by_leaf(dump, exe).items()}


def expect_sites(dump, exe, want):
    got = inuse_by_leaf(dump, exe)
    for name, pair in want.items():
        if got.get(name, (0, 0)) != pair:
            raise AssertionError(f"{os.path.basename(dump)}: {name} in use {got.get(name)}, want {pair}")


# --- processes -----------------------------------------------------------

@cleans_up
def test_fork_1000_while_threads_allocate_and_dumps_run():
    exe = lib.prog("hostile_fork")
    d = lib.tmpdir()
    proc = lib.run([exe, "loop", "1000"], env=lib.traced_env(d, interval="0.01"),
                   timeout=200, check=False)
    # the untraced result is known (and an untraced run would cost 15-40 s)
    want = "child PID exited 3\n" * 1000 + "done 1000\n"
    if (proc.returncode, pids_only(proc.stdout)) != (0, want):
        raise AssertionError(f"exit {proc.returncode}, {proc.stdout[-300:]!r} {proc.stderr[-500:]!r}")
    kids = [int(p) for p in re.findall(r"^child (\d+) exited 3$", proc.stdout, re.M)]
    # every 50th child exit()s and so writes its own exit dump
    for pid in kids[::50]:
        dumps = lib.dumps_in(d, pid)
        if not dumps or lib.dump_meta(dumps[-1])["trigger"] != "exit":
            raise AssertionError(f"child {pid}: dumps {dumps}")
    whole.check_dumps(lib.dumps_in(d), exe)
    # A child that _exit()s while its dump thread is writing leaves its
    # temporary file, as a kill would; the next traced process to start
    # in the directory removes it (none can be the parent's).
    left = {int(f.split(".")[2]) for f in os.listdir(d) if f.endswith(".heap.tmp")}
    if not left <= set(kids):
        raise AssertionError(f"temporary files of {left - set(kids)}")
    lib.run([lib.prog("exit7")], env=lib.traced_env(d), check=False, timeout=30)
    whole.no_tmp_left(d)
    print(f"  {len(left)} children left a temporary file")


@cleans_up
def test_daemon_keeps_tracing_under_its_pid():
    exe = lib.prog("hostile_fork")
    d = lib.tmpdir()
    note = os.path.join(d, "daemon.txt")
    proc = lib.run([exe, "daemon", note], env=lib.traced_env(d), timeout=30, check=False)
    if (proc.returncode, proc.stdout) != (0, ""):
        raise AssertionError(f"daemon()'s parent exited {proc.returncode}: {proc.stdout!r} {proc.stderr!r}")
    lib.wait_for_file(note, timeout=20)
    text, deadline = "", time.monotonic() + 20
    while not re.match(r"^daemon \d+\n$", text) and time.monotonic() < deadline:
        with open(note) as f:
            text = f.read()
        time.sleep(0.02)
    pid = int(text.split()[1])
    dumps = lib.wait_for_file(os.path.join(d, f"heaptrace.{pid}.0001.heap"), timeout=20)
    meta = whole.check_dumps(dumps, exe)[0]
    if (meta["trigger"], meta["pid"]) != ("exit", str(pid)):
        raise AssertionError(f"daemon's dump: {meta['trigger']} {meta['pid']}")
    # daemon() leaves its parent by _exit(): the daemon's is the only dump
    if lib.dumps_in(d) != dumps:
        raise AssertionError(f"dumps: {lib.dumps_in(d)}")


def exec_child(mode, target_argv, **config):
    """hostile_fork spawn|vfork: (child's exit status, its pid, dump dir)."""
    exe = lib.prog("hostile_fork")
    d = lib.tmpdir()
    proc = lib.run([exe, mode, *target_argv], env=lib.traced_env(d, rate=1, **config),
                   timeout=30, check=False)
    m = re.search(r"^child (\d+) exited (\d+)$", proc.stdout, re.M)
    if proc.returncode != 0 or not m or not proc.stdout.endswith("done 1\n"):
        raise AssertionError(f"{mode}: exit {proc.returncode} {proc.stdout!r} {proc.stderr[-500:]!r}")
    return int(m.group(2)), int(m.group(1)), d


@cleans_up
def test_posix_spawn_and_vfork_children_are_traced():
    target = lib.prog("exit7")
    for mode in ("spawn", "vfork"):
        status, pid, d = exec_child(mode, [target])
        if status != 7:
            raise AssertionError(f"{mode}: child exited {status}")
        dumps = lib.dumps_in(d, pid)
        meta = whole.check_dumps(dumps, target)[0]
        if meta["exe"] != target or meta["trigger"] != "exit":
            raise AssertionError(f"{mode}: child's dump {meta['exe']} {meta['trigger']}")
        expect_sites(dumps[0], target, {"main": (16, 13600)})


@cleans_up
def test_exec_children_not_followed_when_asked():
    """Two ways out: HEAPTRACE_FOLLOW_EXEC=0 (heaptrace takes itself out of
    LD_PRELOAD at start, so no child inherits it), or a child exec'd with
    libheaptrace removed from its LD_PRELOAD (here by env -u)."""
    target = lib.prog("exit7")
    for mode, argv, config in (("spawn", [target], {"follow_exec": 0}),
                               ("vfork", [target], {"follow_exec": 0}),
                               ("spawn", ["/usr/bin/env", "-u", "LD_PRELOAD", target], {})):
        status, pid, d = exec_child(mode, argv, **config)
        if status != 7 or lib.dumps_in(d, pid):
            raise AssertionError(f"{mode} {argv[0]} {config}: child exited {status}, "
                                 f"dumps {lib.dumps_in(d, pid)}")
        parent = lib.dumps_in(d)
        if len(parent) != 1 or lib.dump_meta(parent[0])["trigger"] != "exit":
            raise AssertionError(f"{mode} {config}: the parent's dumps {parent}")


# --- signals -------------------------------------------------------------

@cleans_up
def test_signal_handler_that_allocates_at_rate_1():
    exe = lib.prog("hostile_signals")
    plain = untraced([exe], timeout=60)
    proc, dumps = lib.run_traced([exe], rate=1, timeout=60, check=False)
    same_result(plain, proc, "allocating handler")
    whole.check_dumps(dumps, exe)
    expect_sites(dumps[-1], exe, {"signal_keep": (1000, 40000)})
    # unwound through the signal frame, back to main
    _, samples = lib.pprof_raw(dumps[-1], exe)
    stacks = [frames for _, frames in samples if frames and frames[0] == "signal_keep"]
    if not stacks or not all("on_usr2" in f and "main" in f for f in stacks):
        raise AssertionError(f"signal_keep's stacks: {stacks}")


@cleans_up
def test_10000_dump_signals_in_a_burst():
    exe = lib.prog("busy_signals")
    d = lib.tmpdir()
    p = subprocess.Popen([exe, "4"], env=lib.traced_env(d), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if p.stdout.readline().strip() != "ready":
            raise AssertionError("busy_signals did not start")
        lib.wait_signal_caught(p.pid, signal.SIGUSR1)
        for _ in range(10000):
            os.kill(p.pid, signal.SIGUSR1)
        time.sleep(0.5)
        out, err = p.communicate("", timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if p.returncode != 0 or err:
        raise AssertionError(f"busy_signals exited {p.returncode}: {err[-500:]!r}")
    metas = whole.check_dumps(lib.dumps_in(d), exe)
    made = int(metas[-1]["seq"])
    if metas[-1]["trigger"] != "exit" or not 2 <= made <= 10001:
        raise AssertionError(f"{made} dumps, the last by {metas[-1]['trigger']}")
    whole.no_tmp_left(d)


def own_handler(mode, traced):
    """hostile_sigown: five SIGUSR1, each acknowledged by the program's
    handler; returns (transcript, stderr, dumps)."""
    exe = lib.prog("hostile_sigown")
    d = lib.tmpdir()
    env = lib.traced_env(d) if traced else dict(os.environ)
    if mode == "early":
        env["HOSTILE_EARLY"] = "1"
    p = subprocess.Popen([exe] + (["late"] if mode == "late" else []), env=env, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    transcript = []
    try:
        transcript.append(p.stdout.readline())
        for sent in range(1, 6):
            lib.wait_signal_caught(p.pid, signal.SIGUSR1)
            os.kill(p.pid, signal.SIGUSR1)
            deadline = time.monotonic() + 10
            while True:  # the handler runs asynchronously: ask until it did
                p.stdin.write("?\n")
                p.stdin.flush()
                line = p.stdout.readline()
                if line == f"handled {sent}\n" or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            transcript.append(line)
        out, err = p.communicate("", timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    transcript.append(out)
    return p.returncode, "".join(transcript), err, lib.dumps_in(d)


def check_handler_kept(mode, says):
    """The program's handler runs for every SIGUSR1 with and without
    heaptrace; heaptrace says once that the signal is the program's and
    writes one dump at once (trigger signal_lost), then no signal dumps."""
    plain = own_handler(mode, False)
    rc, transcript, err, dumps = own_handler(mode, True)
    if (rc, transcript) != plain[:2] or "total 5" not in transcript:
        raise AssertionError(f"untraced {plain[:2]}, traced {(rc, transcript)}, stderr {err!r}")
    lines = err.splitlines()
    if len(lines) != 1 or says not in lines[0]:
        raise AssertionError(f"stderr {err!r}")
    triggers = [m["trigger"] for m in whole.check_dumps(dumps, lib.prog("hostile_sigown"))]
    if triggers != ["signal_lost", "exit"]:
        raise AssertionError(f"dumps by {triggers}")
    return dumps


@cleans_up
def test_program_handler_installed_before_heaptrace():
    """libhostile_first.so's constructor (a DT_NEEDED library: ld.so runs
    it before the preload's) installs the handler."""
    check_handler_kept("early", "installed before heaptrace started")


@cleans_up
def test_program_handler_installed_after_heaptrace():
    """main() installs its handler over heaptrace's. Ten runs: the
    signal_lost dump races the exit dump unless it is taken under the dump
    lock (it was lost about one run in ten)."""
    for _ in range(10):
        check_handler_kept("late", "installed a handler after heaptrace started")


# --- threads -------------------------------------------------------------

@cleans_up
def test_10000_threads_allocating_in_destructors():
    exe = lib.prog("hostile_threads")
    plain = untraced([exe, "tls", "10000"])
    d = lib.tmpdir()
    proc = lib.run([exe, "tls", "10000"], env=lib.traced_env(d, interval="0.01"),
                   timeout=120, check=False)
    same_result(plain, proc, "10000 threads")
    whole.check_dumps(lib.dumps_in(d), exe)
    whole.no_tmp_left(d)
    # exact at rate 1 (1000 threads: unwinding every allocation of a new
    # thread is slow)
    proc, dumps = lib.run_traced([exe, "tls", "1000"], rate=1, interval="0.01", timeout=120, check=False)
    if proc.returncode or proc.stdout != "threads 1000 tls_dtors 1000 key_dtors 2000\n":
        raise AssertionError(f"rate 1: exit {proc.returncode} {proc.stdout!r} {proc.stderr[-500:]!r}")
    whole.check_dumps(dumps, exe)
    expect_sites(dumps[-1], exe, {"tls_dtor_keep": (1000, 19000), "key_dtor_keep": (2000, 34000)})


@cleans_up
def test_pthread_cancel_and_pthread_exit():
    exe = lib.prog("hostile_threads")
    plain = untraced([exe, "cancel", "200"])
    proc, dumps = lib.run_traced([exe, "cancel", "200"], rate=1, interval="0.01",
                                 timeout=120, check=False)
    same_result(plain, proc, "cancel/exit")
    whole.check_dumps(dumps, exe)
    expect_sites(dumps[-1], exe, {"exit_keep": (200, 4600), "cancel_thread": (0, 0)})
    with open(dumps[-1]) as f:
        totals = re.findall(r"^# threads_total: (.*)$", f.read(), re.M)
    if totals != ["0 0 0 0"]:  # every thread joined, no stack held
        raise AssertionError(f"threads_total {totals}")


# --- code and stacks -----------------------------------------------------

@cleans_up
def test_allocations_outliving_a_dlclosed_library():
    exe = lib.prog("hostile_dlopen")
    plugin = lib.prog("libhostile_plugin.so")
    proc, dumps = lib.run_traced([exe, plugin], rate=1, timeout=60, check=False)
    if (proc.returncode, proc.stdout) != (0, "loaded 200 dump 0\n"):
        raise AssertionError(f"exit {proc.returncode} {proc.stdout!r} {proc.stderr[-500:]!r}")
    metas = whole.check_dumps(dumps, exe)
    if [m["trigger"] for m in metas] != ["api", "exit"]:
        raise AssertionError(f"dumps by {[m['trigger'] for m in metas]}")
    # the plugin is gone from the maps, and its 200 live blocks are all
    # there, at a leaf address outside every mapping
    maps = lib.dump_maps(dumps[0])
    orphans = [(c, b) for c, b, _, _, addrs in lib.dump_samples(dumps[0])
               if addrs and not any(lo <= addrs[0] < hi for lo, hi, _, _ in maps)]
    if (sum(c for c, _ in orphans), sum(b for _, b in orphans)) != (200, 800000):
        raise AssertionError(f"in use outside the maps: {orphans}")
    top = lib.run_tool("top", "--unit", "B", dumps[0], check=False)
    if top.returncode != 0 or "Traceback" in top.stderr or "800000B" not in top.stdout:
        raise AssertionError(f"heaptrace top: {top.returncode} {top.stdout[-500:]!r} {top.stderr[-500:]!r}")


@cleans_up
def test_stacks_far_deeper_than_max_frames():
    exe = lib.prog("hostile_unwind")
    for frames in (None, 256):
        config = {"max_frames": frames} if frames else {}
        proc, dumps = lib.run_traced([exe, "deep", "100000"], rate=1, timeout=60, check=False,
                                     **config)
        if (proc.returncode, proc.stdout) != (0, "deep 100000 kept 17\n"):
            raise AssertionError(f"exit {proc.returncode} {proc.stdout!r} {proc.stderr[-500:]!r}")
        whole.check_dumps(dumps, exe)
        cap = frames or 64
        longest = max(len(s[4]) for s in lib.dump_samples(dumps[0]))
        if longest != cap:
            raise AssertionError(f"max_frames {cap}: longest stack {longest}")
        expect_sites(dumps[0], exe, {"deep_keep": (17, 17 * 48)})


@cleans_up
def test_small_thread_stack_at_rate_1_with_256_frames():
    """A thread on a 16 KiB stack of the program's own (tests/progs/
    small_stack.c) allocates at rate 1 with HEAPTRACE_MAX_FRAMES=256: every
    block is counted, and a sample takes at most 1 KiB of the stack below
    the allocating function, whichever unwinder walks it: the frame
    walker's reading of a rule it had not cached included, and libunwind's
    walk, which runs on a stack of the tracer's (preload/altstack.h; the
    frames too are captured into a buffer of the tracer's, not onto the
    stack)."""
    exe = lib.prog("small_stack")
    untraced_leaf = int(untraced([exe]).stdout.split()[3])
    for unwinder in ("cfi", "libunwind"):
        proc, dumps = lib.run_traced([exe], rate=1, max_frames=256, unwind=unwinder,
                                     timeout=60, check=False)
        m = re.fullmatch(r"used (\d+) leaf (\d+)\n", proc.stdout)
        if proc.returncode or not m or proc.stderr:
            raise AssertionError(f"{unwinder}: exit {proc.returncode} {proc.stdout!r} {proc.stderr[-500:]!r}")
        whole.check_dumps(dumps, exe)
        expect_sites(dumps[-1], exe, {"small_leaf": (1000, 48000)})
        leaf = int(m.group(2))
        if leaf > 1024:
            raise AssertionError(f"{unwinder}: a sample took {leaf} bytes of the stack "
                                 f"below the allocating function (untraced: {untraced_leaf})")


@cleans_up
def test_frames_without_unwind_info():
    exe = lib.prog("hostile_unwind")
    plain = untraced([exe, "nounwind"])
    proc, dumps = lib.run_traced([exe, "nounwind"], rate=1, timeout=60, check=False)
    same_result(plain, proc, "no unwind info")
    whole.check_dumps(dumps, exe)
    expect_sites(dumps[0], exe, {"via_nocfi": (100, 3200), "via_badrbp": (100, 6400),
                                 "via_looprbp": (100, 9600)})


@cleans_up
def test_exit_while_the_dumper_writes():
    """A table of 16,000 stacks at rate 1 dumped every 10 ms, and exit()
    from a second thread while the main thread allocates, twice: the exit
    dump waits for the one being written, is whole and is the last."""
    exe = lib.prog("hostile_bigtable")
    for _ in range(2):
        d = lib.tmpdir()
        proc = lib.run([exe, "exit"], env=lib.traced_env(d, rate=1, interval="0.01"),
                       timeout=60, check=False)
        if (proc.returncode, proc.stdout, proc.stderr) != (5, "built\n", ""):
            raise AssertionError(f"exit {proc.returncode} {proc.stdout!r} {proc.stderr[-500:]!r}")
        metas = whole.check_dumps(lib.dumps_in(d), exe, parse=1)
        if metas[-1]["trigger"] != "exit":
            raise AssertionError(f"last dump by {metas[-1]['trigger']}")
        whole.no_tmp_left(d)


@cleans_up
def test_full_tables_drop_and_the_program_does_not_crawl():
    exe = lib.prog("hostile_unwind")
    cmd = [exe, "stacks", "4", "20000"]
    start = time.monotonic()
    plain = untraced(cmd)
    t_plain = time.monotonic() - start
    times = {}
    for name, config in (("default", {}), ("tiny", {"stacks": 16, "live": 64})):
        d = lib.tmpdir()
        start = time.monotonic()
        proc = lib.run(cmd, env=lib.traced_env(d, rate=1, interval="0.05", **config),
                       timeout=120, check=False)
        times[name] = time.monotonic() - start
        same_result(plain, proc, f"{name} tables")
        metas = whole.check_dumps(lib.dumps_in(d), exe, parse=2)
        last = metas[-1]
        if name == "tiny":
            if int(last["stacks"]) > 16 or int(last["dropped_stack_table"]) == 0 \
                    or int(last["dropped_live_map"]) == 0:
                raise AssertionError(f"tiny tables: {last['stacks']} stacks, dropped "
                                     f"{last['dropped_stack_table']} / {last['dropped_live_map']}")
        elif int(last["dropped_stack_table"]) or int(last["dropped_live_map"]):
            raise AssertionError("default tables dropped samples")
    # a hang or crawl check, not a benchmark: full tables cost no more
    # than roomy ones, and the whole stays within reach of the plain run
    if times["tiny"] > 3 * times["default"] + 2 or times["tiny"] > 100 * t_plain + 10:
        raise AssertionError(f"run times: untraced {t_plain:.2f}s, {times}")
