"""Faults around the dump directory (issue 6): read-only, missing, full (a
small tmpfs) or under a file-size limit, each made to work again mid-run
where that is possible; and SIGKILL in the middle of dumps, many times. The
program must run on with its own result unchanged; heaptrace says once that
it cannot write and once that it can again, writes again as soon as the
directory works, never leaves a partial file under a final name, and the
temporary files of killed writers are swept by the next process that
uses the directory. Results are in docs/reliability.md."""
import contextlib
import errno
import os
import random
import resource
import shutil
import signal
import subprocess
import time

import lib
import whole

WANT = (7, "allocated 13600 bytes\n")  # exit7's own result


@contextlib.contextmanager
def tmpfs(size):
    """A fresh tmpfs of the given size (needs root and CAP_SYS_ADMIN)."""
    point = lib.tmpdir("ht-tmpfs-")
    proc = lib.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", point],
                   check=False, timeout=10)
    if proc.returncode:
        os.rmdir(point)
        raise lib.Skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield point
    finally:
        lib.run(["umount", "-l", point], check=False, timeout=10)
        os.rmdir(point)


def start_waiting(dump_dir, **config):
    """exit7, waiting for its input to end, with a dump every 50 ms."""
    env = lib.traced_env(dump_dir, interval="0.05", **config)
    return subprocess.Popen([lib.prog("exit7"), "wait"], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def finish(proc):
    try:
        out, err = proc.communicate("", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if (proc.returncode, out) != WANT:
        raise AssertionError(f"exit7 exited {proc.returncode} {out!r}, stderr {err[-500:]!r}")
    return err


def broken_then_fixed(dump_dir, fix):
    """Runs exit7 while dump_dir is unusable, calls fix() after 0.5 s and
    checks the messages and the dumps written afterwards."""
    proc = start_waiting(dump_dir)
    try:
        time.sleep(0.5)  # ten dumps that fail
        if lib.dumps_in(dump_dir) if os.path.isdir(dump_dir) else []:
            raise AssertionError(f"dumps written into a broken directory: {lib.dumps_in(dump_dir)}")
        fix()
        lib.wait_for_file(os.path.join(dump_dir, "heaptrace.*.heap"), timeout=15)
    finally:
        err = finish(proc)
    lines = err.splitlines()
    failed = [line for line in lines if "cannot write a dump" in line]
    again = [line for line in lines if "work again" in line]
    if len(failed) != 1 or len(again) != 1 or len(lines) != 2 or dump_dir not in failed[0]:
        raise AssertionError(f"stderr: {err!r}")
    metas = whole.check_dumps(lib.dumps_in(dump_dir), lib.prog("exit7"), parse=2)
    if [m["seq"] for m in metas][:1] != ["1"] or metas[-1]["trigger"] != "exit":
        raise AssertionError(f"dumps after the fix: {[(m['seq'], m['trigger']) for m in metas]}")
    whole.no_tmp_left(dump_dir)


def test_read_only_directory_then_writable():
    with tmpfs("4m") as point:
        lib.run(["mount", "-o", "remount,ro", point], timeout=10)
        broken_then_fixed(point, lambda: lib.run(["mount", "-o", "remount,rw", point], timeout=10))


def test_missing_directory_then_created():
    d = os.path.join(lib.tmpdir(), "later")
    broken_then_fixed(d, lambda: os.mkdir(d))
    shutil.rmtree(os.path.dirname(d))


def test_full_directory_then_space_freed():
    with tmpfs("1m") as point:
        filler = os.path.join(point, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"x" * 4096):
                pass
        except OSError:
            pass
        os.close(fd)
        broken_then_fixed(point, lambda: os.unlink(filler))


def test_file_size_limit_never_kills_the_program():
    """RLIMIT_FSIZE below a dump's size: a write past it raises SIGXFSZ,
    which would kill the program; heaptrace's writes fail with EFBIG
    instead, said once, with no file left behind."""
    d = lib.tmpdir()

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    proc = lib.run([lib.prog("exit7")], env=lib.traced_env(d, interval="0.05"),
                   preexec_fn=limit, timeout=30, check=False)
    if (proc.returncode, proc.stdout) != WANT:
        raise AssertionError(f"exit7 exited {proc.returncode} {proc.stdout!r} {proc.stderr!r}")
    lines = proc.stderr.splitlines()
    if len(lines) != 1 or "cannot write a dump" not in lines[0] \
            or os.strerror(errno.EFBIG) not in lines[0]:
        raise AssertionError(f"stderr {proc.stderr!r}")
    if os.listdir(d):
        raise AssertionError(f"left behind: {os.listdir(d)}")
    os.rmdir(d)


def test_sigkill_during_dumps_leaves_no_partial_file():
    """50 processes building a table of up to 16,000 stacks at rate 1
    (dumps of up to 5 MB) and dumping every millisecond, so that the dumper
    is nearly always writing, each killed at a random moment: every file
    under a final name is whole; the temporary files the killed writers
    left are removed by the next traced process started in the directory."""
    exe = lib.prog("hostile_bigtable")
    d = lib.tmpdir()
    env = lib.traced_env(d, rate=1, interval="0.001", keep=8)
    rng = random.Random(6)
    interrupted = 0
    for _ in range(50):
        p = subprocess.Popen([exe, "forever"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.1, 0.8))
        p.kill()
        err = p.communicate(timeout=30)[1]
        if p.returncode != -signal.SIGKILL or err:
            raise AssertionError(f"exited {p.returncode} before the kill: {err[-500:]!r}")
        # (the next process sweeps this one's temporary file at its start)
        interrupted += any(f.startswith(f".heaptrace.{p.pid}.") for f in os.listdir(d))
    dumps = lib.dumps_in(d)
    whole.check_dumps(dumps, exe, parse=2)
    if interrupted < 5:  # the kills did land in the middle of dumps
        raise AssertionError(f"only {interrupted} of 50 kills interrupted a dump")
    proc = lib.run([lib.prog("exit7")], env=lib.traced_env(d), timeout=30, check=False)
    if (proc.returncode, proc.stdout) != WANT:
        raise AssertionError(f"exit7 exited {proc.returncode}")
    whole.no_tmp_left(d)
    print(f"  {len(dumps)} whole dumps, {interrupted} of 50 kills mid-dump")
    shutil.rmtree(d)
