"""A real service under heaptrace: Debian's redis-server (linked with
jemalloc), on loopback, at the default rate, loaded by a short
redis-benchmark run and dumped by SIGUSR1. The dump must parse with
`go tool pprof` and put most in-use bytes on redis's own functions (named
from its dynamic symbols by google-pprof: the binary is stripped, and
`go tool pprof` reads only DWARF). The same with tcmalloc preloaded after
heaptrace, which must then serve the allocations instead of jemalloc."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import lib

REDIS = "/usr/bin/redis-server"
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4"
BENCH = ["-q", "-n", "20000", "-P", "16", "-t", "set,lpush,sadd,hset",
         "-d", "128", "-r", "100000"]


def need(*paths):
    for path in paths:
        if not (os.path.exists(path) or shutil.which(path)):
            raise lib.Skip(f"{path} is not installed")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(port, *args, timeout=10):
    return lib.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
                   timeout=timeout, check=False).stdout


def wait_ready(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"redis-server exited {proc.returncode}")
        if cli(port, "PING", timeout=2).strip() == "PONG":
            return
        time.sleep(0.05)
    raise AssertionError(f"redis-server not answering on port {port} after {timeout}s")


def redis_symbols():
    out = lib.run(["nm", "-D", "--defined-only", REDIS]).stdout
    return {line.split()[2] for line in out.splitlines()
            if len(line.split()) == 3 and line.split()[1] in "TtWi"}


def run_redis(preload):
    """Runs redis-server under preload (the LD_PRELOAD value), loads it,
    dumps it by signal and shuts it down. Returns (signal dump, INFO
    memory as a dict, /proc/PID/maps text, dump dir, pid)."""
    d = lib.tmpdir()
    port = free_port()
    env = lib.traced_env(d)
    env["LD_PRELOAD"] = preload
    cmd = [REDIS, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
           "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
           "--logfile", os.path.join(d, "redis.log"), "--dir", d]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(port, proc)
        lib.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), *BENCH],
                timeout=60)
        info = dict(re.findall(r"^(\w+):(\S*)\r?$", cli(port, "INFO", "memory"), re.M))
        with open(f"/proc/{proc.pid}/maps") as f:
            maps = f.read()
        lib.wait_signal_caught(proc.pid, signal.SIGUSR1)
        proc.send_signal(signal.SIGUSR1)
        dump = lib.wait_for_file(os.path.join(d, f"heaptrace.{proc.pid}.0001.heap"))[0]
        cli(port, "SHUTDOWN", "NOSAVE")
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        stderr = proc.stderr.read()
        proc.stderr.close()
    if proc.returncode != 0 or stderr:
        raise AssertionError(f"redis-server exited {proc.returncode}: {stderr[-1000:]!r}")
    return dump, info, maps, d, proc.pid


def check_dump(dump, d, pid):
    meta = lib.dump_meta(dump)
    if meta["trigger"] != "signal" or meta["rate"] != "524288":
        raise AssertionError(f"trigger {meta['trigger']}, rate {meta['rate']}")
    # Parses, and go tool pprof's totals are heaptrace's own.
    types, samples = lib.pprof_raw(dump, REDIS)
    if not samples or len(types) != 4:
        raise AssertionError(f"go tool pprof read {len(samples)} samples, types {types}")
    lib.assert_readers_agree(dump, REDIS, google=False)
    # Most in-use bytes are allocated by redis's own code, and most come
    # from handling the benchmark's requests (processInputBuffer() parses
    # them into the objects the keyspace keeps and runs the commands).
    own = redis_symbols()
    stacks = lib.google_pprof_stacks(dump, REDIS, ("inuse_space",))["inuse_space"]
    total = sum(stacks.values())
    by_own_leaf = sum(v for s, v in stacks.items() if s and s[0] in own)
    by_command = sum(v for s, v in stacks.items() if "processInputBuffer" in s)
    if total < 1 << 20:
        raise AssertionError(f"only {total} bytes in use after the benchmark")
    if by_own_leaf <= total / 2 or by_command <= total / 2:
        raise AssertionError(
            f"of {total} B in use, {by_own_leaf} B at redis functions, {by_command} "
            f"B under processInputBuffer(): {sorted(stacks.items(), key=lambda kv: -kv[1])[:5]}")
    # SHUTDOWN ran the exit dump too.
    if [lib.dump_meta(p)["trigger"] for p in lib.dumps_in(d, pid)] != ["signal", "exit"]:
        raise AssertionError(f"dumps: {lib.dumps_in(d, pid)}")


def test_redis_with_jemalloc():
    need(REDIS, "redis-benchmark", "redis-cli", "google-pprof")
    dump, info, maps, d, pid = run_redis(lib.PRELOAD)
    if "libjemalloc" not in maps or "libtcmalloc" in maps:
        raise AssertionError("expected jemalloc and no tcmalloc in the maps")
    # jemalloc serves redis: its own count covers what redis has in use.
    if int(info["allocator_allocated"]) < int(info["used_memory"]) / 2:
        raise AssertionError(f"jemalloc allocated {info['allocator_allocated']}, "
                             f"redis uses {info['used_memory']}")
    check_dump(dump, d, pid)


def test_redis_with_tcmalloc_after_heaptrace():
    need(REDIS, "redis-benchmark", "redis-cli", "google-pprof", TCMALLOC)
    dump, info, maps, d, pid = run_redis(f"{lib.PRELOAD} {TCMALLOC}")
    if "libtcmalloc" not in maps:
        raise AssertionError("tcmalloc is not mapped")
    # heaptrace forwards to tcmalloc, so jemalloc (linked in, and what
    # INFO's allocator_* fields ask) sees almost nothing of redis's memory.
    used, jemalloc = int(info["used_memory"]), int(info["allocator_allocated"])
    if used < 4 << 20 or jemalloc > used / 10:
        raise AssertionError(f"redis uses {used} B, jemalloc allocated {jemalloc} B")
    check_dump(dump, d, pid)
