#!/usr/bin/env python3
"""A mutation fuzzer for the heaptrace command's dump reader: a tool that
reads files from production must answer every input with a result or with
one line `heaptrace: FILE[:LINE]: what is wrong` and exit status 2, never
with a traceback and never by hanging.

Seeds are real dumps made at run time (build/tests/known at rate 1,
build/tests/hold at the default rate, a gperftools `heapprofile` dump when
tcmalloc is installed) and the hand-written samples of
tests/test_tool_input.py. Each input applies one to three mutations
(truncation, byte flips, junk, swapped sections and lines, duplicated
headers, huge, negative and non-ASCII numbers, deep and long stacks, CRLF,
odd `#` values and maps lines), and half of them get their header totals
recomputed so that they reach past the totals check. REGRESSIONS holds one
input for each class of bug the fuzzer found; they run first, every time.

Inputs run in-process (heaptrace_lib.cli.main with argv, stdout and stderr
captured, SIGALRM as the hang timeout) for speed; the only change to the
tool's path is that addr2line is one long-lived process per file instead of
one per command. A sample of inputs also runs through the real command.

    python3 tests/fuzz_dumps.py --iterations N --seed S [--keep DIR]

Exit status 0 when every input behaved, 1 otherwise (failing inputs are
written to --keep DIR, default a temporary directory, and listed)."""
import argparse
import contextlib
import glob
import io
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402
from test_tool_input import GO_TEXT, SAMPLED  # noqa: E402

sys.path.insert(0, os.path.join(lib.ROOT, "tools"))
sys.dont_write_bytecode = True
from heaptrace_lib import cli, symbols  # noqa: E402

TIMEOUT = 30  # seconds per input; far more than any input needs on a busy machine
SENTINEL = "0xffffffffffffffff"

# One input per class of bug found so far; each was a traceback or a wrong
# exit status before the tool was fixed.
HEADER = "heap profile: {0}: {1} [{0}: {1}] @ heap_v2/{2}\n"
TAIL = "\nMAPPED_LIBRARIES:\n"
REGRESSIONS = {
    # int() of a non-ASCII digit that str.isdigit() accepts.
    "superscript_version": HEADER.format(1, 8, 1) + "# heaptrace: \u00b2\n"
                           "1: 8 [1: 8] @ 0x401000\n" + TAIL,
    "superscript_time": HEADER.format(1, 8, 1) + "# heaptrace: 1\n# time_unix_ns: \u00b2\n"
                        "1: 8 [1: 8] @ 0x401000\n" + TAIL,
    "superscript_dropped": HEADER.format(1, 8, 1) + "# heaptrace: 1\n# dropped_busy: \u00b2\n"
                           "1: 8 [1: 8] @ 0x401000\n" + TAIL,
    # \d matched Unicode digits (Arabic-Indic): read as numbers where
    # pprof, like the format, takes ASCII digits only.
    "arabic_digits": "heap profile: \u0661: \u0668 [\u0661: \u0668] @ heap_v2/1\n"
                     "\u0661: \u0668 [\u0661: \u0668] @ 0x401000\n",
    # A timestamp past the year 9999.
    "far_future": HEADER.format(1, 8, 1) + "# heaptrace: 1\n# time_unix_ns: %d\n"
                  "1: 8 [1: 8] @ 0x401000\n" % 10 ** 22 + TAIL,
    # More digits than int() converts (sys.get_int_max_str_digits).
    "5000_digits": HEADER.format("1" * 5000, 8, 1) + "1: 8 [1: 8] @ 0x401000\n",
    # A number past float range (format_value, scaling).
    "400_digits": HEADER.format(1, "1" * 400, 1) + "1: {0} [1: {0}] @ 0x401000\n".format("1" * 400),
    # 1 - exp(-tiny) == 0: a division by zero in unsampling.
    "tiny_mean": HEADER.format(10 ** 18, 1, 524288)
                 + "{0}: 1 [{0}: 1] @ 0x401000\n".format(10 ** 18),
    # The flame graph's layout recursed once per frame, and cum values took
    # time quadratic in the depth (a minute for this one).
    "deep_stack": HEADER.format(1, 8, 1) + "1: 8 [1: 8] @ " + " ".join(
        hex(0x401000 + 16 * i) for i in range(50000)) + "\n",
    # A carriage return inside a quoted value split the error message in two.
    "cr_in_message": HEADER.format(1, 8, 1) + "# heaptrace: 1 \r \n1: 8 [1: 8] @ 0x401000\n" + TAIL,
    # A maps line naming a FIFO: opening it to read the ELF headers hung.
    "fifo_in_maps": HEADER.format(1, 8, 1) + "1: 8 [1: 8] @ 0x401010\n" + TAIL
                    + "00400000-00402000 r-xp 00000000 08:01 1 {fifo}\n",
}


class Hang(Exception):
    pass


class Addr2line:
    """symbols.run_addr2line's answers from one long-lived eu-addr2line per
    file: the batch, then a sentinel address to know where its answer ends."""

    def __init__(self):
        self.procs = {}

    def __call__(self, path, vaddrs):
        proc = self.procs.get(path)
        if proc is None:
            proc = self.procs[path] = subprocess.Popen(
                [*symbols.EU_ADDR2LINE, "-e", path], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        proc.stdin.write("".join(f"0x{a:x}\n" for a in vaddrs) + SENTINEL + "\n")
        proc.stdin.flush()
        out = []
        while True:
            line = proc.stdout.readline()
            if not line:  # not an object addr2line reads: as run_addr2line
                del self.procs[path]
                proc.wait()
                return {}
            if line.rstrip("\n") == SENTINEL:
                proc.stdout.readline()
                proc.stdout.readline()
                return symbols._parse_addr2line("".join(out))
            out.append(line)

    def close(self):
        for proc in self.procs.values():
            proc.stdin.close()
            proc.wait()


# ---- seeds ----------------------------------------------------------------

def make_seeds(workdir):
    """{name: bytes} of real and hand-written dumps."""
    seeds = {"sampled": SAMPLED.encode(), "go_text": GO_TEXT.encode()}
    runs = {"known": ([lib.prog("known")], {"rate": 1}),
            "hold": ([lib.prog("hold"), "16"], {})}
    for name, (cmd, config) in runs.items():
        d = os.path.join(workdir, "seed-" + name)
        os.makedirs(d)
        lib.run(cmd, env=lib.traced_env(d, **config))
        for i, path in enumerate(lib.dumps_in(d)):
            with open(path, "rb") as f:
                seeds[f"{name}{i}"] = f.read()
    tcmalloc = glob.glob("/usr/lib/*/libtcmalloc.so.4")
    if tcmalloc:
        prefix = os.path.join(workdir, "gperf")
        lib.run([lib.prog("tool_known")],
                env=dict(os.environ, LD_PRELOAD=tcmalloc[0], HEAPPROFILE=prefix))
        found = sorted(glob.glob(prefix + ".*.heap"))
        if found:
            with open(found[-1], "rb") as f:
                seeds["gperftools"] = f.read()
    return seeds


# ---- mutations --------------------------------------------------------------

NUMBER_RE = re.compile(rb"0x[0-9a-f]+|\d+")
HUGE = [b"9" * 19, b"9223372036854775808", b"18446744073709551616", b"9" * 400,
        b"1" * 5000, b"0" * 50 + b"7", b"\xc2\xb2", "\u0663\u0664".encode()]
META_KEYS = [b"heaptrace", b"time_unix_ns", b"rate", b"dropped_busy", b"dropped_live_map",
             b"dropped_stack_table", b"age_buckets_s", b"ages", b"threads", b"threads_total",
             b"build_id", b"error", b"exe", b"samples_live", b"stacks", b"pid", b"seq",
             b"start_unix_ns", b"rss_bytes"]
META_VALUES = [b"", b" ", b"-1", b"0", b"1e999", b"nan", b"inf", b"-0", b"\xc2\xb2", b"9" * 30, b"9" * 5000,
               b"x" * 10000, b"1 2 3", b"60 600 3600", b"3 1 @ 0x401000", b"@", b"/ 00",
               b"0x10 0x20", b"1 1 1 1 1 1 1 1", "\u0661\u0662".encode()]
MAPS_PATHS = [b"", b"/nonexistent/lib.so", b"/", b"/dev/null", b"/dev/stdin", b"/proc/self/cmdline",
              b"relative.so", b"/usr/bin/env (deleted)", b"[heap]", b"\xe2\x98\x83"]


def _lines(data):
    return data.split(b"\n")


def _pick_line(rng, lines, pattern=None):
    choices = [i for i, l in enumerate(lines) if pattern is None or re.search(pattern, l)]
    return rng.choice(choices) if choices else None


def truncate(rng, data):
    return data[:rng.randrange(len(data) + 1)]


def truncate_at_line(rng, data):
    lines = _lines(data)
    return b"\n".join(lines[:rng.randrange(len(lines) + 1)]) + b"\n"


def flip_bytes(rng, data):
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def insert_junk(rng, data):
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.randbytes(rng.randint(1, 64)) + data[at:]


def swap_sections(rng, data):
    head, sep, maps = data.partition(b"MAPPED_LIBRARIES:\n")
    if not sep:
        return data[len(data) // 2:] + data[:len(data) // 2]
    lines = _lines(head)
    first_sample = _pick_line(rng, lines, rb"^\d+: \d+ \[") or 1
    if rng.random() < 0.5:
        return sep + maps + head
    # The sample lines before the `#` header block.
    return b"\n".join([lines[0]] + lines[first_sample:] + lines[1:first_sample]) + sep + maps


def swap_lines(rng, data):
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def duplicate_line(rng, data):
    lines = _lines(data)
    i = 0 if rng.random() < 0.4 else rng.randrange(len(lines))  # often the header
    lines.insert(rng.randrange(len(lines) + 1), lines[i])
    return b"\n".join(lines)


def delete_lines(rng, data):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    del lines[i:i + rng.randint(1, 3)]
    return b"\n".join(lines)


def replace_number(rng, data, make):
    numbers = list(NUMBER_RE.finditer(data))
    if not numbers:
        return data
    m = rng.choice(numbers)
    return data[:m.start()] + make(m.group()) + data[m.end():]


def huge_number(rng, data):
    return replace_number(rng, data, lambda old: (b"0x" + b"f" * rng.choice([16, 17, 40])
                                                  if old.startswith(b"0x") else rng.choice(HUGE)))


def negative_number(rng, data):
    return replace_number(rng, data, lambda old: b"-" + old)


def zero_number(rng, data):
    return replace_number(rng, data, lambda old: b"0x0" if old.startswith(b"0x") else b"0")


def deep_stack(rng, data):
    lines = _lines(data)
    i = _pick_line(rng, lines, rb"@( 0x[0-9a-f]+)+$")
    if i is None:
        return data
    head, _, addrs = lines[i].partition(b" @ ")
    frames = addrs.split()
    depth = rng.choice([200, 1100, 5000, 30000])
    lines[i] = head + b" @ " + b" ".join(frames[j % len(frames)] for j in range(depth))
    return b"\n".join(lines)


def many_stacks(rng, data):
    lines = _lines(data)
    i = _pick_line(rng, lines, rb"^\d+: \d+ \[")
    if i is None:
        return data
    copies = []
    # At most about 1 MB: a deep stack copied 20000 times would be gigabytes.
    for k in range(min(rng.choice([100, 3000, 20000]), (1 << 20) // len(lines[i]))):
        # Distinct stacks: the leaf differs.
        copies.append(re.sub(rb"@ 0x[0-9a-f]+", b"@ 0x%x" % (0x401000 + 16 * k), lines[i]))
    return b"\n".join(lines[:i] + copies + lines[i:])


def crlf(rng, data):
    if rng.random() < 0.5:
        return data.replace(b"\n", b"\r\n")
    lines = _lines(data)
    for _ in range(rng.randint(1, 5)):
        i = rng.randrange(len(lines))
        lines[i] += rng.choice([b"\r", b"\r\r", b" \r"])
    return b"\n".join(lines)


def odd_meta(rng, data):
    lines = _lines(data)
    key, value = rng.choice(META_KEYS), rng.choice(META_VALUES)
    existing = [i for i, l in enumerate(lines) if l.startswith(b"# " + key + b":")]
    line = b"# " + key + b": " + value
    if existing and rng.random() < 0.7:
        lines[rng.choice(existing)] = line
    else:
        lines.insert(rng.randint(1, max(1, len(lines) - 1)), line)
    return b"\n".join(lines)


def drop_version(rng, data):
    """Without `# heaptrace:` the file is read as a plain legacy profile:
    no totals check, no maps required."""
    return re.sub(rb"(?m)^# heaptrace: .*\n", b"", data)


def odd_header(rng, data):
    lines = _lines(data)
    kind = rng.choice([b"heap_v2", b"heap", b"heapprofile", b"heapz_v2", b"heap_v3", b""])
    rate = rng.choice([b"/0", b"/1", b"/2", b"", b"/" + b"9" * 19, b"/" + b"9" * 30, b"/-1"])
    lines[0] = re.sub(rb"@ .*$", b"@ " + kind + rate, lines[0])
    return b"\n".join(lines)


def odd_maps(rng, data):
    lines = _lines(data)
    i = _pick_line(rng, lines, rb"^[0-9a-f]+-[0-9a-f]+ ")
    if i is None:
        return data + b"MAPPED_LIBRARIES:\n0-ffffffffffffffff r-xp 0 00:00 0 /\n"
    fields = lines[i].split(None, 5)
    choice = rng.randrange(3)
    if choice == 0 and len(fields) == 6:
        fields[5] = rng.choice(MAPS_PATHS)
    elif choice == 1:
        lo, _, hi = fields[0].partition(b"-")
        fields[0] = hi + b"-" + lo
    else:
        fields[2] = rng.choice([b"ffffffffffffffffff", b"0", b"7fffffffffffffff"])
    lines[i] = b" ".join(fields)
    return b"\n".join(lines)


MUTATORS = [truncate, truncate_at_line, flip_bytes, insert_junk, swap_sections, swap_lines,
            duplicate_line, delete_lines, huge_number, negative_number, zero_number,
            deep_stack, many_stacks, crlf, odd_meta, drop_version, odd_header, odd_maps]

# Numbers too long to sum are left alone (the header stays wrong).
SAMPLE_LINE_RE = re.compile(rb"^(\d{1,30}): (\d{1,30}) \[(\d{1,30}): (\d{1,30})\] @")


def fix_totals(data):
    """The header's totals recomputed from the sample lines (and the bracket
    bump when they are equal), so content mutations get past the check."""
    lines = _lines(data)
    sums = [0, 0, 0, 0]
    for line in lines[1:]:
        if line.startswith(b"MAPPED_LIBRARIES:"):
            break
        m = SAMPLE_LINE_RE.match(line)
        if m:
            sums = [s + int(v) for s, v in zip(sums, m.groups())]
    if sums[:2] == sums[2:]:
        sums[3] += 1
    lines[0] = re.sub(rb"^heap profile: *\d+: *\d+ *\[ *\d+: *\d+ *\]",
                      b"heap profile: %d: %d [%d: %d]" % tuple(sums), lines[0])
    return b"\n".join(lines)


def mutate(rng, data):
    names = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        mutator = rng.choice(MUTATORS)
        names.append(mutator.__name__)
        data = mutator(rng, data)
    if rng.random() < 0.5:
        data = fix_totals(data)
        names.append("fix_totals")
    return data, names


# ---- running and judging ------------------------------------------------------

def verbs(rng, path, good, out):
    """`top` and one other verb that reads dumps."""
    other = rng.choice([
        ["diff", "--base", good, path], ["diff", "--base", path, good],
        ["flame", "--folded", path], ["flame", path], ["pprof", path, "-o", out],
        ["top", "--alloc_objects", "--lines", path], ["graph", path, "-o", out + ".dot"],
    ])
    return [["top", path], other]


def _alarm(signum, frame):
    raise Hang()


def run_in_process(argv):
    """(status, stdout, stderr) of heaptrace_lib.cli.main(argv); a traceback
    is returned as stderr text with status None."""
    stdout, stderr = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIMEOUT)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = cli.main(argv)
    except SystemExit as e:
        status = e.code
    except Hang:
        return "hang", stdout.getvalue(), stderr.getvalue()
    except BaseException:  # a traceback is what the fuzzer looks for
        return None, stdout.getvalue(), stderr.getvalue() + traceback.format_exc()
    finally:
        signal.alarm(0)
    return status, stdout.getvalue(), stderr.getvalue()


def run_subprocess(argv):
    try:
        proc = lib.run_tool(*argv, check=False, timeout=TIMEOUT * 3)
    except subprocess.TimeoutExpired:
        return "hang", "", ""
    return proc.returncode, proc.stdout, proc.stderr


def judge(argv, path, status, stdout, stderr):
    """None when the command behaved; otherwise what was wrong."""
    lines = stderr.splitlines()
    if status == "hang":
        return f"no answer in {TIMEOUT} s"
    if status is None or "Traceback" in stderr:
        return "traceback:\n" + stderr[-3000:]
    if status == 0:
        if any(not l.startswith("heaptrace: warning: ") for l in lines):
            return f"status 0 with stderr {stderr[-500:]!r}"
        out = argv[argv.index("-o") + 1] if "-o" in argv else None
        if out is None and not stdout and "--folded" not in argv:
            return "status 0 without output"
        if out is not None and not (os.path.exists(out) and os.path.getsize(out)):
            return f"status 0 without writing {out}"
        return None
    if status != 2:
        return f"status {status}, stderr {stderr[-500:]!r}"
    error = re.compile(rf"^heaptrace: {re.escape(path)}(:\d+)?: \S")
    if len(lines) != 1 or not error.match(lines[0]) or stdout:
        return f"status 2 but stderr {stderr[-500:]!r}, stdout {stdout[:200]!r}"
    return None


class Fuzzer:
    def __init__(self, workdir, keep):
        self.workdir, self.keep = workdir, keep
        self.failures = []
        self.count = 0

    def check(self, name, data, argvs_of, runner=run_in_process):
        path = os.path.join(self.workdir, "input.heap")
        with open(path, "wb") as f:
            f.write(data)
        for argv in argvs_of(path):
            self.count += 1
            problem = judge(argv, path, *runner(argv))
            if problem:
                saved = os.path.join(self.keep, f"{len(self.failures):04d}-{name}.heap")
                shutil.copyfile(path, saved)
                self.failures.append((saved, argv, problem))
                return False
        return True


def fuzz(iterations, seed, keep, subprocess_sample=8, log=print):
    workdir = lib.tmpdir("ht-fuzz-")
    os.makedirs(keep, exist_ok=True)
    addr2line = Addr2line()
    symbols.run_addr2line = addr2line
    try:
        seeds = make_seeds(workdir)
        good = os.path.join(workdir, "good.heap")
        with open(good, "wb") as f:
            f.write(seeds["known0"])
        out = os.path.join(workdir, "out.pb.gz")
        fuzzer = Fuzzer(workdir, keep)
        rng = random.Random(seed)

        def all_verbs(path):
            return [["top", path], ["flame", path], ["flame", "--folded", path],
                    ["pprof", path, "-o", out], ["diff", "--base", good, path]]

        fifo = os.path.join(workdir, "fifo")
        os.mkfifo(fifo)
        for name, text in REGRESSIONS.items():
            text = text.replace("{fifo}", fifo)
            fuzzer.check("regression-" + name, text.encode(), all_verbs)
            # The flame graph goes through the reader, the legend and the
            # number formatting: the paths of all the bugs above.
            fuzzer.check("regression-" + name, text.encode(),
                         lambda path: [["flame", path]], run_subprocess)
        for name, data in seeds.items():
            fuzzer.check("seed-" + name, data, all_verbs)
        names = sorted(seeds)
        start = time.monotonic()
        sampled = set(rng.sample(range(iterations), min(subprocess_sample, iterations)))
        for i in range(iterations):
            seed_name = rng.choice(names)
            data, how = mutate(rng, seeds[seed_name])
            name = f"{seed_name}-{'+'.join(how)}"
            argvs = verbs(rng, "PATH", good, out)
            runner = run_subprocess if i in sampled else run_in_process
            fuzzer.check(name, data, lambda path: [[path if a == "PATH" else a for a in argv]
                                                   for argv in argvs], runner)
        log(f"fuzz_dumps: seed {seed}: {iterations} inputs, {fuzzer.count} runs, "
            f"{len(REGRESSIONS)} regressions, {len(fuzzer.failures)} failures "
            f"in {time.monotonic() - start:.1f} s")
        return fuzzer.failures
    finally:
        addr2line.close()
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", default=None, help="directory for failing inputs")
    args = parser.parse_args()
    keep = args.keep or lib.tmpdir("ht-fuzz-failures-")
    failures = fuzz(args.iterations, args.seed, keep)
    for saved, argv, problem in failures:
        print(f"FAIL {saved}: heaptrace {' '.join(argv)}: {problem}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
