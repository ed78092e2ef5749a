#!/usr/bin/env python3
"""How long reading a big dump takes: `heaptrace top` on a rate-1 dump of
clang++ compiling tests/bench/input/compile.cc (some 45,000 stacks and
16,000 addresses), split into its phases (parsing, symbolizing, building
the profile, the table), next to `go tool pprof -top` on the same dump and
`heaptrack_print` on a heaptrack recording of the same compile; then the
small dumps the suite's programs write at rate 1, side by side with `go
tool pprof -top` (and `heaptrack_print` on heaptrack's recording of the same
program), the two timed in turn in one run and given as a ratio. With
`--dumps DIR`, every dump in DIR through `heaptrace top` and `go tool pprof
-top`, to check that heaptrace is nowhere the slower. A benchmark, not a
test: it prints figures (wall seconds and the CPU seconds of the process
and its children, best of --runs) for docs/benchmarks.md. The symbol cache
is warm (one run of each first, in a cache of its own); the command runs
under --python with -S, as its `#!/usr/bin/env -S python3 -S` line runs it
(a python3 on PATH that is a wrapper, such as pyenv's, adds its own start).

  python3 tests/bench/symbolize.py [--dump FILE] [--dumps DIR] [--runs N]
                                   [--small-only] [--python EXE]
"""
import argparse
import glob
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOOL = os.path.join(ROOT, "tools", "heaptrace")
PRELOAD = os.path.join(ROOT, "build", "libheaptrace.so")
PROGS = os.path.join(ROOT, "build", "tests")
# Small programs of the suite: (name, arguments).
SMALL = (("known", []), ("tool_known", ["two-dumps"]), ("cxx_new", []),
         ("leak_sites", []), ("many_stacks", ["5000"]))
INPUT = os.path.join(HERE, "input", "compile.cc")
sys.path.insert(0, os.path.join(ROOT, "tools"))


def timed(cmd, env=None):
    """(wall s, CPU s of the children) of one run of cmd."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, timeout=600)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def best(cmd, runs, env=None):
    results = [timed(cmd, env) for _ in range(runs)]
    return min(r[0] for r in results), min(r[1] for r in results)


def clang_dump(work):
    clang = shutil.which("clang++")
    if not clang:
        sys.exit("clang++ is not installed")
    env = dict(os.environ, LD_PRELOAD=PRELOAD, HEAPTRACE_RATE="1", HEAPTRACE_DIR=work,
               HEAPTRACE_SIGNAL="none", HEAPTRACE_INTERVAL="0")
    subprocess.run([clang, "-c", INPUT, "-o", os.path.join(work, "x.o")], env=env, check=True)
    return sorted(glob.glob(os.path.join(work, "heaptrace.*.0001.heap")))[-1]


def heaptrack_run(work):
    """A heaptrack recording of the same compile, or None."""
    if not (shutil.which("heaptrack") and shutil.which("heaptrack_print")):
        return None
    out = os.path.join(work, "ht")
    subprocess.run(["heaptrack", "-o", out, "clang++", "-c", INPUT, "-o",
                    os.path.join(work, "y.o")], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    found = glob.glob(out + "*")
    return found[0] if found else None


def phases(dump):
    """CPU seconds of each phase of `heaptrace top`, in this process."""
    from heaptrace_lib import dumpfile, profile, symbols, top
    symbols._objects.clear()
    symbols._demangled.clear()
    clock = time.process_time
    marks = [clock()]
    d = dumpfile.read_dump(dump)
    marks.append(clock())
    symbolize = symbols.Symbolizer.symbolize
    spent = []

    def measured(self, addresses):
        start = clock()
        try:
            return symbolize(self, addresses)
        finally:
            spent.append(clock() - start)

    symbols.Symbolizer.symbolize = measured
    try:
        builder = profile._Builder(d, lambda message: None)
    finally:
        symbols.Symbolizer.symbolize = symbolize
    p = builder.build()
    marks.append(clock())
    selection = profile.Selection()
    top.render_top(p, selection, profile.select_stacks(p, selection))
    marks.append(clock())
    return {"parse": marks[1] - marks[0], "symbolize (this process)": spent[0],
            "profile": marks[2] - marks[1] - spent[0], "table": marks[3] - marks[2],
            "stacks": len(d.samples),
            "addresses": len({a for s in d.samples for a in s.addresses})}


def small_dumps(work):
    """[(name, dump, heaptrack recording or None)] of the SMALL programs run
    at rate 1 (the last dump of each)."""
    found = []
    for name, args in SMALL:
        out = os.path.join(work, name)
        os.makedirs(out)
        env = dict(os.environ, LD_PRELOAD=PRELOAD, HEAPTRACE_RATE="1", HEAPTRACE_DIR=out)
        subprocess.run([os.path.join(PROGS, name), *args], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True, timeout=120)
        dump = sorted(glob.glob(os.path.join(out, "heaptrace.*.[0-9]*.heap")))[-1]
        recording = None
        if shutil.which("heaptrack") and shutil.which("heaptrack_print"):
            prefix = os.path.join(out, "ht")
            # (a program that signals itself for its dumps ends heaptrack's run)
            done = subprocess.run(["heaptrack", "-o", prefix, os.path.join(PROGS, name), *args],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=120)
            if done.returncode == 0:
                recording = next(iter(glob.glob(prefix + "*")), None)
        found.append((name, dump, recording))
    return found


def side_by_side(commands, runs):
    """Best (wall, CPU) of each command, the commands timed in turn, runs times."""
    results = [[] for _ in commands]
    for _ in range(runs):
        for i, (cmd, env) in enumerate(commands):
            results[i].append(timed(cmd, env))
    return [(min(r[0] for r in rs), min(r[1] for r in rs)) for rs in results]


def small_table(work, ours, go_env, runs):
    print("Small dumps (rate 1, the suite's programs), best of "
          f"{runs}: wall ms (CPU ms)")
    print("| program | dump | heaptrace top | go tool pprof -top | ratio (wall) "
          "| heaptrack_print | ratio (wall) |\n|---|---|---|---|---|---|---|")
    for name, dump, recording in small_dumps(work):
        subprocess.run(ours + ["top", dump], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)  # warms the cache
        commands = [(ours + ["top", dump], None), (["go", "tool", "pprof", "-top", dump], go_env)]
        if recording:
            commands.append((["heaptrack_print", recording], None))
        times = side_by_side(commands, runs)
        cells = [f"{w * 1e3:.0f} ({c * 1e3:.0f})" for w, c in times]
        ht = (f"{cells[2]} | {times[0][0] / times[2][0]:.2f}" if recording else "— | —")
        print(f"| {name} | {os.path.getsize(dump) / 1e3:.0f} kB | {cells[0]} | {cells[1]} | "
              f"{times[0][0] / times[1][0]:.2f} | {ht} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dump", help="a dump to use instead of a new clang++ one")
    parser.add_argument("--dumps", help="a directory of dumps to compare one by one")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small-only", action="store_true",
                        help="only the small dumps of the suite's programs")
    parser.add_argument("--python", default="/usr/bin/python3" if os.path.exists(
        "/usr/bin/python3") else sys.executable, help="the interpreter (default: "
        "/usr/bin/python3)")
    args = parser.parse_args()
    go_env = dict(os.environ, PPROF_TMPDIR=tempfile.mkdtemp(prefix="ht-bench-pprof-"))
    os.environ["HEAPTRACE_CACHE"] = tempfile.mkdtemp(prefix="ht-bench-cache-")
    ours = [args.python, "-S", TOOL]
    print(f"heaptrace runs as: {' '.join(ours)}")
    if args.dumps:
        print("| dump | heaptrace top (s) | go tool pprof -top (s) |\n|---|---|---|")
        for dump in sorted(glob.glob(os.path.join(args.dumps, "**", "*.heap"), recursive=True)):
            mine = best(ours + ["top", dump], args.runs)
            theirs = best(["go", "tool", "pprof", "-top", dump], args.runs, go_env)
            print(f"| {os.path.basename(dump)} | {mine[0]:.2f} | {theirs[0]:.2f} |")
        return
    work = tempfile.mkdtemp(prefix="ht-bench-sym-")
    small_table(work, ours, go_env, max(args.runs, 5))
    if args.small_only:
        return
    dump = args.dump or clang_dump(work)
    size = os.path.getsize(dump)
    parts = phases(dump)
    print(f"dump: {dump}, {size / 1e6:.1f} MB, {parts.pop('stacks')} stacks, "
          f"{parts.pop('addresses')} addresses")
    print("phases of heaptrace top (CPU s): "
          + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()))
    print("| command | wall (s) | CPU (s) |\n|---|---|---|")
    subprocess.run(ours + ["top", dump], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)  # warms the cache
    rows = [("heaptrace top", ours + ["top", dump], None),
            ("go tool pprof -top", ["go", "tool", "pprof", "-top", dump], go_env)]
    recording = heaptrack_run(work) if not args.dump else None
    if recording:
        rows.append(("heaptrack_print (its own recording)", ["heaptrack_print", recording],
                     None))
    for name, cmd, env in rows:
        wall, cpu = best(cmd, args.runs, env)
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
