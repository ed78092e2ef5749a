"""The preload built with UndefinedBehaviorSanitizer (build/ubsan/, see
tests/progs/extra.mk) under a representative set of the test programs, at
rate 1 (every allocation takes the slow path) and at the default rate: each
program must behave as it does untraced, UBSan must report nothing (a
report aborts the program), and every dump must parse in go tool pprof."""
import concurrent.futures
import os
import signal
import subprocess
import time

import lib

UBSAN_PRELOAD = os.path.join(lib.BUILD, "ubsan", "libheaptrace.so")
PROGRAMS = [["known"], ["churn_threads", "4", "20000"], ["edges"], ["deep", "60"],
            ["thread_leak", "7"]]
# What a program prints only when heaptrace is there to answer it.
TRACED_STDOUT = {"thread_leak": "dump: 0\n"}


def _env(dump_dir, rate):
    if not os.path.exists(UBSAN_PRELOAD):
        raise AssertionError(f"{UBSAN_PRELOAD} is not built (run make)")
    config = {"rate": rate} if rate else {}
    env = lib.traced_env(dump_dir, **config)
    env["LD_PRELOAD"] = UBSAN_PRELOAD
    env["UBSAN_OPTIONS"] = "print_stacktrace=1"
    return env


def _check_clean(what, returncode, stderr):
    if returncode != 0 or "runtime error" in stderr or "Sanitizer" in stderr:
        raise AssertionError(f"{what}: exit {returncode}, stderr:\n{stderr[-3000:]}")


def _check_dumps(what, dumps):
    """Every dump parses in go tool pprof (no symbolization: parsing is
    the point), two at a time."""
    if not dumps:
        raise AssertionError(f"{what}: no dump written")

    def parse(dump):
        text = lib.go_pprof("-raw", "-symbolize=none", dump)
        if "Samples:" not in text:
            raise AssertionError(f"{what}: go tool pprof read no samples from {dump}")

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(parse, dumps))


def test_ubsan_preload_runs_the_programs_clean():
    for args in PROGRAMS:
        exe = lib.prog(args[0])
        plain = lib.run([exe, *args[1:]], timeout=120)
        expected = TRACED_STDOUT.get(args[0], plain.stdout)
        for rate in (1, None):
            what = f"{' '.join(args)} at rate {rate or 'default'}"
            d = lib.tmpdir()
            proc = lib.run([exe, *args[1:]], env=_env(d, rate), timeout=300, check=False)
            _check_clean(what, proc.returncode, proc.stderr)
            if proc.stdout != expected:
                raise AssertionError(f"{what}: stdout {proc.stdout!r}, untraced {expected!r}")
            _check_dumps(what, lib.dumps_in(d))


def test_ubsan_preload_dump_signals():
    exe = lib.prog("busy_signals")
    for rate in (1, None):
        d = lib.tmpdir()
        p = subprocess.Popen([exe, "4"], env=_env(d, rate), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            if p.stdout.readline().strip() != "ready":
                raise AssertionError("busy_signals did not start")
            lib.wait_signal_caught(p.pid, signal.SIGUSR1)
            for _ in range(5):
                p.send_signal(signal.SIGUSR1)
                time.sleep(0.15)
            _, stderr = p.communicate(input="", timeout=60)  # stdin closes: stop
        finally:
            if p.poll() is None:
                p.kill()
        _check_clean(f"busy_signals at rate {rate or 'default'}", p.returncode, stderr)
        _check_dumps(f"busy_signals at rate {rate or 'default'}", lib.dumps_in(d))
