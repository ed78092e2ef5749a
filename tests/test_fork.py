"""fork under heaptrace (tests/progs/forker.c): children forked while another
thread allocates keep tracing under their own pid, with exact counts at rate
1 read back by `go tool pprof`; an exec'd child, which inherits the
preload, writes its own dumps; a forked child answers the dump signal (its
dumper thread is restarted); a vfork()ed child that resets the dump signal
before exec, sharing the parent's memory, leaves the parent's dump signal
alone, and a fork()ed child that does so is not taken for the program
handling the signal. Every run is bounded: a hang fails."""
import os
import re
import signal
import subprocess

import lib

# function -> (in-use objects, in-use bytes) at rate 1
PARENT_KEEP = (4, 2000)
CHILD_KEEP = (9, 27000)
PARENT_AFTER = (6, 4200)


def inuse(dump, exe):
    """{function: (in-use objects, bytes)} by leaf, as go tool pprof reads."""
    return {name: (acc["inuse_objects"], acc["inuse_space"])
            for name, acc in lib.pprof_by_leaf(dump, exe).items()}


def check_sites(dump, exe, want):
    sites = inuse(dump, exe)
    for name, expected in want.items():
        got = sites.get(name, (0, 0))
        if got != expected:
            raise AssertionError(f"{os.path.basename(dump)}: {name} in use {got}, want {expected}")


def run_bounded(cmd, env, timeout=30):
    """Runs cmd in a process group of its own; if it has not finished
    within timeout seconds, kills the whole group (a hung forked child
    too) and fails."""
    proc = subprocess.Popen(cmd, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"{cmd} hung for {timeout}s (killed)") from None
    if proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}: {err[-1000:]!r}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def children(stdout):
    return [(int(pid), int(status)) for pid, status in
            re.findall(r"^child (\d+) exited (\d+)$", stdout, re.M)]


def test_fork_children_trace_under_their_pid():
    exe = lib.prog("forker")
    d = lib.tmpdir()
    proc = run_bounded([exe, "fork", "10"], lib.traced_env(d, rate=1))
    kids = children(proc.stdout)
    if len(kids) != 10 or any(status for _, status in kids):
        raise AssertionError(f"children: {proc.stdout!r}, stderr {proc.stderr[-500:]!r}")
    for pid, _ in kids:
        dumps = lib.dumps_in(d, pid)
        if [os.path.basename(p) for p in dumps] != [f"heaptrace.{pid}.0001.heap"]:
            raise AssertionError(f"child {pid}: dumps {dumps}")
        meta = lib.dump_meta(dumps[0])
        if (meta["pid"], meta["trigger"]) != (str(pid), "exit"):
            raise AssertionError(f"child {pid}: pid {meta['pid']}, trigger {meta['trigger']}")
        # Its own allocations, and what it inherited; not the parent's later ones.
        check_sites(dumps[0], exe, {"child_keep": CHILD_KEEP, "parent_keep": PARENT_KEEP,
                                    "parent_after": (0, 0)})
        lib.assert_readers_agree(dumps[0], exe, google=False)
    parent = lib.dumps_in(d, proc_pid(d, kids))
    if len(parent) != 1:
        raise AssertionError(f"parent dumps: {parent}")
    check_sites(parent[0], exe, {"parent_keep": PARENT_KEEP, "parent_after": PARENT_AFTER,
                                 "child_keep": (0, 0)})


def test_fork_while_dumping():
    """Forks while the parent's dumper thread writes a dump every
    millisecond: no child hangs, and each child writes its exit dump,
    whole, with its own allocations."""
    exe = lib.prog("forker")
    d = lib.tmpdir()
    proc = run_bounded([exe, "fork", "30"], lib.traced_env(d, rate=1, interval="0.001"))
    kids = children(proc.stdout)
    if len(kids) != 30 or any(status for _, status in kids):
        raise AssertionError(f"children: {proc.stdout!r}, stderr {proc.stderr[-500:]!r}")
    exits = []
    for pid, _ in kids:
        dumps = lib.dumps_in(d, pid)
        mine = [p for p in dumps if lib.dump_meta(p)["trigger"] == "exit"]
        if len(mine) != 1:
            raise AssertionError(f"child {pid}: {len(mine)} exit dumps among {dumps}")
        exits += mine
    for dump in exits[::10]:
        check_sites(dump, exe, {"child_keep": CHILD_KEEP})


def proc_pid(d, kids):
    """The parent's pid: the ppid its children's dumps name."""
    ppids = {lib.dump_meta(lib.dumps_in(d, pid)[0])["ppid"] for pid, _ in kids}
    if len(ppids) != 1:
        raise AssertionError(f"children of several parents: {ppids}")
    return int(ppids.pop())


def test_fork_exec_child_traced():
    exe = lib.prog("forker")
    d = lib.tmpdir()
    target = lib.prog("exit7")
    proc = run_bounded([exe, "exec", target], lib.traced_env(d, rate=1))
    kids = children(proc.stdout)
    if len(kids) != 1 or kids[0][1] != 7:
        raise AssertionError(f"children: {proc.stdout!r}, stderr {proc.stderr[-500:]!r}")
    pid = kids[0][0]
    dumps = lib.dumps_in(d, pid)
    if len(dumps) != 1:
        raise AssertionError(f"exec'd child {pid}: dumps {dumps}")
    meta = lib.dump_meta(dumps[0])
    if meta["exe"] != target or meta["seq"] != "1":
        raise AssertionError(f"exec'd child {pid}: exe {meta['exe']}, seq {meta['seq']}")
    # exit7 keeps 16 blocks of 100..1600 bytes from main.
    check_sites(dumps[0], target, {"main": (16, 13600)})
    if len(lib.dumps_in(d, proc_pid(d, kids))) != 1:
        raise AssertionError(f"no parent dump besides the child's: {lib.dumps_in(d)}")


def test_fork_child_dumps_on_signal():
    exe = lib.prog("forker")
    d = lib.tmpdir()
    proc = subprocess.Popen([exe, "signal", "-"], env=lib.traced_env(d, rate=1), text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        line = proc.stdout.readline()
        m = re.match(r"^child (\d+) ready$", line)
        if not m:
            raise AssertionError(f"forker printed {line!r}")
        child = int(m.group(1))
        lib.wait_signal_caught(child, signal.SIGUSR1)
        os.kill(child, signal.SIGUSR1)
        first = lib.wait_for_file(os.path.join(d, f"heaptrace.{child}.0001.heap"))[0]
        out, err = proc.communicate(timeout=20)  # ends the child's input
    finally:
        if proc.poll() is None:  # the child, too, is in its group
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if proc.returncode != 0 or children(out) != [(child, 0)]:
        raise AssertionError(f"forker exited {proc.returncode}: {out!r} {err[-500:]!r}")
    meta = lib.dump_meta(first)
    if (meta["trigger"], meta["pid"]) != ("signal", str(child)):
        raise AssertionError(f"child's first dump: trigger {meta['trigger']}, pid {meta['pid']}")
    check_sites(first, exe, {"child_keep": CHILD_KEEP, "parent_keep": PARENT_KEEP})
    triggers = [lib.dump_meta(p)["trigger"] for p in lib.dumps_in(d, child)]
    if triggers != ["signal", "exit"]:
        raise AssertionError(f"child's dumps by {triggers}")


def run_exit7_child(mode, d):
    """forker in mode (vfork, forkexec), its child resetting the dump
    signal and then running exit7, traced into d: the children it reports,
    after checking that there is one, exited 7, and that nothing was said
    on stderr."""
    proc = run_bounded([lib.prog("forker"), mode, lib.prog("exit7")], lib.traced_env(d))
    kids = children(proc.stdout)
    if len(kids) != 1 or kids[0][1] != 7:
        raise AssertionError(f"children: {proc.stdout!r}, stderr {proc.stderr[-500:]!r}")
    if proc.stderr:
        raise AssertionError(f"stderr: {proc.stderr[-1000:]!r}")
    return kids


def test_vfork_child_leaves_parents_dump_signal():
    """Between vfork() and exec the child shares the parent's memory; its
    reset of SIGUSR1 to the default (Python's subprocess does this) is the
    child's own business: the parent says nothing and keeps its dump
    signal (no `signal_lost` dump)."""
    d = lib.tmpdir()
    kids = run_exit7_child("vfork", d)
    parent = lib.dumps_in(d, proc_pid(d, kids))
    triggers = [lib.dump_meta(p)["trigger"] for p in parent]
    if triggers != ["exit"]:
        raise AssertionError(f"the parent's dumps by {triggers}")


def test_fork_then_exec_resetting_signals_is_not_a_lost_signal():
    """A fork()ed child that puts every handled signal back to SIG_DFL
    before exec (git's run-command does) has not taken the dump signal for
    itself: no heaptrace line on stderr, and no `signal_lost` dump from the
    parent, the child or the program it execs."""
    d = lib.tmpdir()
    run_exit7_child("forkexec", d)
    triggers = sorted(lib.dump_meta(p)["trigger"] for p in lib.dumps_in(d))
    if triggers != ["exit", "exit"]:  # forker's and exit7's
        raise AssertionError(f"dumps by {triggers}")


def test_no_fork_stalls_in_children_of_a_threaded_parent():
    """Three threads allocate at rate 1 and fork 2,000 children between
    them, so a fork catches the others in the middle of the tracer's work
    (stack walks, the registry's lock) or of a fork of their own. Each
    child's own fork must not wait: a count of a walk left by a thread the
    child does not have made every fork of that child wait out the fork
    guard's 2-second bound. Under both unwinders: libunwind's walks are
    the ones the fork guard counts."""
    exe = lib.prog("fork_stall")
    for unwinder in ("cfi", "libunwind"):
        d = lib.tmpdir()
        proc = run_bounded([exe, "2000"], lib.traced_env(d, rate=1, unwind=unwinder),
                           timeout=240)
        if proc.stdout != "forks 2000 stalled 0\n" or proc.stderr:
            raise AssertionError(f"{unwinder}: {proc.stdout!r}, stderr {proc.stderr[-500:]!r}")


def test_fork_guard_child_counts_no_walk_of_a_vanished_thread():
    """The race behind a stalled child, made deterministic
    (tests/core/forkguard_child.c): a fork catches another thread inside
    the fork guard; the child's first fork must not wait for that walk."""
    proc = lib.run([lib.prog("forkguard_child")], timeout=30, check=False)
    if proc.returncode or not proc.stdout.startswith("child prefork waited "):
        raise AssertionError(f"exit {proc.returncode}: {proc.stdout!r} {proc.stderr[-500:]!r}")
