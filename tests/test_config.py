"""Bad configuration never changes the program: each HEAPTRACE_* variable
given garbage gets exactly one stderr line naming the variable, the value
and the default used, the default is in force (as the dump's `#` lines
show where they can), and the program's stdout and exit status are those
of an untraced run (tests/progs/exit7.c). An unwritable dump directory is
said once, however many dumps fail."""
import os
import re
import signal
import subprocess
import time

import lib

OVERLONG = "9" * 5000
GARBAGE = ("abc", "-1", "1e99", "", OVERLONG)


def untraced():
    proc = lib.run([lib.prog("exit7")], check=False, timeout=10)
    if proc.returncode != 7 or proc.stderr:
        raise AssertionError(f"exit7 untraced: {proc.returncode} {proc.stderr!r}")
    return proc.stdout


def label(var, value):
    """var=value for messages, an overlong value abbreviated."""
    if len(value) > 40:
        return f"{var}=<{len(value)} characters: {value[:12]}...>"
    return f"{var}={value!r}"


def shown(value):
    """What the message must quote of a value: all of it, or for an
    overlong one a leading part."""
    return value if len(value) <= 64 else value[:32]


def check_message(stderr, var, value, default):
    lines = stderr.splitlines()
    if len(lines) != 1:
        raise AssertionError(f"{label(var, value)}: {len(lines)} stderr lines: {stderr[:1000]!r}")
    line = lines[0]
    for part in ("heaptrace: ", var, f"'{shown(value)}", default):
        if part not in line:
            brief = line if len(line) < 200 else line[:120] + " ... " + line[-60:]
            raise AssertionError(f"{label(var, value)}: {part[:40]!r} not in {brief!r}")


def bad_value(var, default, meta=None, values=GARBAGE):
    """Runs exit7 with var set to each garbage value; meta is (key, value)
    of the dump's header that shows the default in force."""
    want = untraced()
    for value in values:
        d = lib.tmpdir()
        env = lib.traced_env(d, **{var[len("HEAPTRACE_"):].lower(): value})
        proc = lib.run([lib.prog("exit7")], env=env, check=False, timeout=10)
        if (proc.returncode, proc.stdout) != (7, want):
            raise AssertionError(f"{label(var, value)}: exit {proc.returncode}, stdout {proc.stdout!r}")
        check_message(proc.stderr, var, value, default)
        dumps = lib.dumps_in(d)
        if len(dumps) != 1:  # the exit dump, on by default
            raise AssertionError(f"{label(var, value)}: dumps {dumps}")
        if meta:
            got = lib.dump_meta(dumps[0]).get(meta[0])
            if got != meta[1]:
                raise AssertionError(f"{label(var, value)}: # {meta[0]}: {got}, want {meta[1]}")


def test_bad_rate():
    bad_value("HEAPTRACE_RATE", "524288", ("rate", "524288"))


def test_bad_interval():
    bad_value("HEAPTRACE_INTERVAL", "60", ("interval_s", "60.000"))


def test_bad_max_frames():
    bad_value("HEAPTRACE_MAX_FRAMES", "64", ("max_frames", "64"))


def test_bad_seed():
    bad_value("HEAPTRACE_SEED", "(from the clock)")


def test_bad_keep():
    bad_value("HEAPTRACE_KEEP", "64")


def test_bad_on_exit():
    bad_value("HEAPTRACE_ON_EXIT", "1")  # the exit dump is still written


def test_bad_stacks():
    bad_value("HEAPTRACE_STACKS", "2097152", ("stack_capacity", "2097152"))


def test_bad_live():
    bad_value("HEAPTRACE_LIVE", "262144", ("live_capacity", "262144"))


def test_bad_unwind():
    bad_value("HEAPTRACE_UNWIND", "cfi", ("unwinder", "cfi+libunwind"))


def test_bad_peak_step():
    bad_value("HEAPTRACE_PEAK_STEP", "10%")


def test_bad_rss_limit():
    bad_value("HEAPTRACE_RSS_LIMIT", "0 (off)")


def test_bad_alloc_step():
    bad_value("HEAPTRACE_ALLOC_STEP", "0 (off)")


def test_bad_run():
    """`heaptrace run` sets HEAPTRACE_RUN=[+]PID; anything else, or a pid
    past the kernel's limit (2^22), is said and no watcher is told."""
    bad_value("HEAPTRACE_RUN", "the run's watcher is not told of dumps",
              values=GARBAGE + ("+", "+abc", "+0", "0", "+4194305", "12x"))


def test_bad_signal():
    """The message, and SIGUSR1 (the default) still asks for a dump."""
    want = untraced()
    for value in GARBAGE:
        d = lib.tmpdir()
        proc, err = run_waiting(lib.traced_env(d, signal=value), signal.SIGUSR1, d)
        if (proc.returncode, proc.stdout) != (7, want):
            raise AssertionError(f"{label('HEAPTRACE_SIGNAL', value)}: exit {proc.returncode}, stdout {proc.stdout!r}")
        check_message(err, "HEAPTRACE_SIGNAL", value, "USR1")
        triggers = [lib.dump_meta(p).get("trigger") for p in lib.dumps_in(d)]
        if triggers != ["signal", "exit"]:
            raise AssertionError(f"{label('HEAPTRACE_SIGNAL', value)}: dumps by {triggers}")


def run_waiting(env, sig=None, dump_dir=None, seconds=0.0):
    """Runs `exit7 wait`: sends it sig (when its handler is in place) and
    waits for the dump that asks for, or lets it run for seconds; then ends
    its input. Returns (CompletedProcess-like, stderr)."""
    proc = subprocess.Popen([lib.prog("exit7"), "wait"], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        if sig:
            lib.wait_signal_caught(proc.pid, sig)
            proc.send_signal(sig)
            lib.wait_for_file(os.path.join(dump_dir, f"heaptrace.{proc.pid}.0001.heap"))
        time.sleep(seconds)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), err


def test_bad_dir():
    """An empty or overlong HEAPTRACE_DIR: the dumps go to the working
    directory."""
    want = untraced()
    for value in ("", "/tmp/" + "d" * 5000):
        cwd = lib.tmpdir()
        env = lib.traced_env("unused", dir=value)
        proc = lib.run([lib.prog("exit7")], env=env, check=False, timeout=10, cwd=cwd)
        if (proc.returncode, proc.stdout) != (7, want):
            raise AssertionError(f"{label('HEAPTRACE_DIR', value)}: exit {proc.returncode}, stdout {proc.stdout!r}")
        check_message(proc.stderr, "HEAPTRACE_DIR", value, "working directory")
        if len(lib.dumps_in(cwd)) != 1:
            raise AssertionError(f"{label('HEAPTRACE_DIR', value)}: no dump in the working directory")


def test_unwritable_dir():
    """Dumps that cannot be written (a missing directory, a file where a
    directory should be) are said once, naming the directory; the program
    runs as usual. A dump every 50 ms while it waits 400 ms: many fail."""
    want = untraced()
    missing = os.path.join(lib.tmpdir(), "missing", "dir")
    for target in (missing, "/etc/passwd/dumps"):
        proc, _ = run_waiting(lib.traced_env(target, interval="0.05"), seconds=0.4)
        if (proc.returncode, proc.stdout) != (7, want):
            raise AssertionError(f"{target}: exit {proc.returncode}, stdout {proc.stdout!r}")
        lines = proc.stderr.splitlines()
        if len(lines) != 1 or target not in lines[0] or not lines[0].startswith("heaptrace: "):
            raise AssertionError(f"{target}: stderr {proc.stderr[:1000]!r}")
        if os.path.exists(missing):
            raise AssertionError(f"{missing} was created")
        if not re.search(r"cannot|failed|unable", lines[0]):
            raise AssertionError(f"{target}: does not say what failed: {lines[0]!r}")
