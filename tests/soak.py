#!/usr/bin/env python3
"""`make soak` (not part of `make check`): redis-server under heaptrace for a
long run, dumping every second, under continuous redis-benchmark load on
127.0.0.1. It checks what a short test cannot: that heaptrace's own memory
(`# tracer_bytes`) stays flat once the service's working set has settled,
that every dump parses, that nothing is dropped at the default capacities,
and that redis answers every request. Prints a summary for
docs/reliability.md; exits 1 when a check fails.

    python3 tests/soak.py [--seconds N]      (default 600)
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
import whole  # noqa: E402

REDIS = "/usr/bin/redis-server"
# Balanced pairs (lpush/lpop, sadd/spop) and random keys from a fixed range,
# so that the keyspace reaches a plateau instead of growing for ever.
TESTS = "set,get,incr,lpush,lpop,sadd,spop,hset"
PER_TEST = 50000


def cli(port, *args):
    return lib.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
                   timeout=30, check=False).stdout


def info(port, section):
    return dict(re.findall(r"^(\w+):(\S*)\r?$", cli(port, "INFO", section), re.M))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600)
    args = ap.parse_args()
    for tool in (REDIS, "/usr/bin/redis-benchmark", "/usr/bin/redis-cli"):
        if not os.path.exists(tool):
            print(f"soak: {tool} is not installed", file=sys.stderr)
            return 1
    d = lib.tmpdir("ht-soak-")
    port = free_port()
    env = lib.traced_env(d, interval="1", keep=0)
    cmd = [REDIS, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
           "--appendonly", "no", "--protected-mode", "yes",
           "--logfile", os.path.join(d, "redis.log"), "--dir", d]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    failures = []
    samples = []  # (seconds since start, tracer_bytes, rss_bytes, dropped)
    checked = set()
    runs = requests = 0
    start = time.monotonic()
    try:
        deadline = start + 10
        while cli(port, "PING").strip() != "PONG":
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"soak: redis-server did not start: {server.poll()}")
            time.sleep(0.1)
        before = info(port, "stats")
        last_pprof = 0.0
        while time.monotonic() - start < args.seconds:
            bench = lib.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-q",
                             "-n", str(PER_TEST), "-P", "16", "-c", "20", "-d", "128",
                             "-r", "100000", "-t", TESTS], timeout=600, check=False)
            runs += 1
            requests += PER_TEST * len(TESTS.split(","))
            if bench.returncode != 0 or "error" in (bench.stdout + bench.stderr).lower():
                failures.append(f"redis-benchmark run {runs}: exit {bench.returncode} "
                                f"{bench.stderr[-300:]!r}")
            # every new dump: whole, and its counters; one a minute through
            # go tool pprof as well
            for path in lib.dumps_in(d, server.pid):
                if path in checked:
                    continue
                checked.add(path)
                try:
                    whole.assert_whole(path)
                    meta = lib.dump_meta(path)
                    dropped = sum(int(meta[k]) for k in
                                  ("dropped_stack_table", "dropped_live_map", "dropped_busy"))
                    samples.append((time.monotonic() - start, int(meta["tracer_bytes"]),
                                    int(meta["rss_bytes"]), dropped))
                    if time.monotonic() - last_pprof > 60:
                        lib.pprof_raw(path, REDIS)
                        last_pprof = time.monotonic()
                except (AssertionError, KeyError, ValueError) as e:
                    failures.append(f"{os.path.basename(path)}: {e}")
        after = info(port, "stats")
        cli(port, "SHUTDOWN", "NOSAVE")
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGKILL)
            server.wait()
        stderr = server.stderr.read()
        server.stderr.close()
    elapsed = time.monotonic() - start

    done = int(after["total_commands_processed"]) - int(before["total_commands_processed"])
    errors = int(after.get("total_error_replies", 0)) - int(before.get("total_error_replies", 0))
    if done < requests or errors or int(after["rejected_connections"]):
        failures.append(f"redis processed {done} commands for {requests} requests, "
                        f"{errors} error replies, {after['rejected_connections']} rejected")
    if server.returncode != 0 or stderr:
        failures.append(f"redis-server exited {server.returncode}: {stderr[-500:]!r}")
    final = lib.dumps_in(d, server.pid)
    for path in final:
        if path not in checked:
            try:
                whole.assert_whole(path)
            except AssertionError as e:
                failures.append(str(e))
    if not final or lib.dump_meta(final[-1])["trigger"] != "exit":
        failures.append("no exit dump")
    if len(samples) < args.seconds * 0.5:
        failures.append(f"only {len(samples)} dumps in {elapsed:.0f} s")
    if any(s[3] for s in samples):
        failures.append(f"samples dropped: {[s for s in samples if s[3]][:3]}")
    # Flat: from the end of the first third (the keyspace has settled) to the
    # end, heaptrace's own memory grows by at most 10% + 256 KiB.
    third = [s for s in samples if s[0] >= elapsed / 3]
    if third:
        base, peak = third[0][1], max(s[1] for s in third)
        if peak > base * 1.1 + (256 << 10):
            failures.append(f"tracer_bytes grew from {base} to {peak} after {elapsed / 3:.0f} s")

    def at(frac):
        s = min(samples, key=lambda s: abs(s[0] - frac * elapsed))
        return f"{s[1] / 1024:.0f} KiB tracer, {s[2] / 2**20:.1f} MiB rss"

    if samples:
        print(f"soak: {elapsed:.0f} s, {runs} redis-benchmark runs, {requests} requests "
              f"({done} commands processed, {errors} error replies), "
              f"{len(checked)} dumps checked whole, {len(samples)} with counters")
        for frac in (0.0, 1 / 3, 2 / 3, 1.0):
            print(f"soak: at {frac * elapsed:4.0f} s: {at(frac)}")
        print(f"soak: tracer_bytes min {min(s[1] for s in samples)} max "
              f"{max(s[1] for s in samples)}; dropped samples {sum(s[3] for s in samples)}")
    for f in failures:
        print(f"soak: FAIL {f}")
    print("soak: " + ("FAILED" if failures else "passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
