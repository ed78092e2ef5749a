"""Shared helpers for the tests: where things are built, running programs
under the preload, and reading dumps back through the peer parsers
(`go tool pprof`, `google-pprof`) so that tests check against a reader we did
not write."""
import atexit
import concurrent.futures
import glob
import gzip
import math
import os
import re
import shutil
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
PRELOAD = os.path.join(BUILD, "libheaptrace.so")
PROGS = os.path.join(BUILD, "tests")
TOOL = os.path.join(ROOT, "tools", "heaptrace")


class Skip(Exception):
    """Raised by a test that cannot run here; the runner counts it apart."""


def prog(name):
    path = os.path.join(PROGS, name)
    if not os.path.exists(path):
        raise AssertionError(f"{path} is not built (run make)")
    return path


def tmpdir(prefix="ht-test-"):
    return tempfile.mkdtemp(prefix=prefix)


# Every directory a traced program wrote dumps into during this run, so
# that test_zz_readers.py can have the peer parsers read all of them.
DUMP_DIRS = []

# Dumps that tests removed, kept for test_zz_readers.py: under tests/run.py
# (keep_removed_dumps), a tree removed with shutil.rmtree (every test's
# cleanup) has its dumps moved here first, gzip ones unpacked (google-pprof
# reads only plain dumps).
KEPT_DIR = None
KEPT = []
KEEP_ERRORS = []  # dumps that could not be kept: the reader check fails on them
# {dump path: {sample type: (true total, allowed difference)}} from tests
# that know the truth of a dump, for test_zz_readers.py to hold the readers to.
TRUTH = {}
_rmtree = shutil.rmtree

# The heaptrace command's cache (tools/heaptrace_lib/cache.py) is one
# directory of this process's own, removed at exit: the tests never touch
# the user's ~/.cache, and the commands they run share answers as a
# user's do (tests/test_tool_cache.py gives each of its checks its own).
CACHE = tempfile.mkdtemp(prefix="ht-test-cache-")
os.environ["HEAPTRACE_CACHE"] = CACHE
atexit.register(_rmtree, CACHE, ignore_errors=True)


def keep_dumps(path):
    """Moves the heaptrace dumps in path (a dump file or a tree) to KEPT_DIR,
    so that test_zz_readers.py reads them after the test has removed them."""
    global KEPT_DIR
    if os.path.isdir(path):
        found = glob.glob(os.path.join(glob.escape(path), "**", "heaptrace.*.heap*"),
                          recursive=True)
    else:
        found = [path] if re.search(r"heaptrace\.[^/]*\.heap(\.gz)?$", path) else []
    for f in found:
        if not os.path.isfile(f) or not re.search(r"\.heap(\.gz)?$", f):
            continue  # a temporary being written, or not a dump
        if KEPT_DIR is None:
            KEPT_DIR = tempfile.mkdtemp(prefix="ht-kept-dumps-")
        dest = os.path.join(KEPT_DIR, f"{len(KEPT):05d}.{os.path.basename(f)}")
        if f.endswith(".gz"):
            with gzip.open(f, "rb") as src, open(dest[:-3], "wb") as out:
                shutil.copyfileobj(src, out)
            dest = dest[:-3]
        else:
            shutil.move(f, dest)
        if f in TRUTH:
            TRUTH[dest] = TRUTH.pop(f)
        KEPT.append(dest)


def _keeping_rmtree(path, *args, **kwargs):
    try:
        keep_dumps(os.fspath(path))
    except OSError as e:  # removed as asked; test_zz_readers.py reports it
        KEEP_ERRORS.append(f"{path}: {e}")
    return _rmtree(path, *args, **kwargs)


def keep_removed_dumps():
    """From now on, shutil.rmtree keeps the dumps of a tree before removing
    it. tests/run.py turns this on for the suite; scripts that use lib on
    their own (make fuzz, make soak) remove what they remove."""
    shutil.rmtree = _keeping_rmtree


def traced_env(dump_dir, **config):
    """The environment for a program under heaptrace; config keys are the
    HEAPTRACE_ variables without the prefix, in lower case."""
    if dump_dir not in DUMP_DIRS:
        DUMP_DIRS.append(dump_dir)
    env = dict(os.environ)
    env["LD_PRELOAD"] = PRELOAD
    env["HEAPTRACE_DIR"] = dump_dir
    env.setdefault("HEAPTRACE_INTERVAL", "0")
    for key, value in config.items():
        env["HEAPTRACE_" + key.upper()] = str(value)
    return env


def run(cmd, env=None, timeout=120, check=True, **kw):
    """Run a command and return the CompletedProcess (text mode)."""
    proc = subprocess.run(
        cmd, env=env, timeout=timeout, capture_output=True, text=True, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{cmd} exited {proc.returncode}: {proc.stderr[-2000:]}"
        )
    return proc


def run_traced(cmd, dump_dir=None, timeout=120, check=True, **config):
    """Run cmd under the preload; return (CompletedProcess, dumps sorted)."""
    dump_dir = dump_dir or tmpdir()
    proc = run(cmd, env=traced_env(dump_dir, **config), timeout=timeout, check=check)
    return proc, dumps_in(dump_dir)


def dumps_in(directory, pid=None, peak=False):
    """The numbered dumps in directory (of pid), in order; with peak, the
    peak dumps (heaptrace.<pid>.peak.heap) too."""
    pattern = f"heaptrace.{pid if pid else '*'}.*.heap"
    return sorted(p for p in glob.glob(os.path.join(directory, pattern))
                  if peak or not p.endswith(".peak.heap"))


def dump_meta(path):
    """The `# key: value` header lines of a dump, as a dict of strings
    (repeated keys, like build_id, become lists)."""
    meta = {}
    with open(path) as f:
        first = f.readline()
        meta["header"] = first.rstrip("\n")
        for line in f:
            if not line.startswith("# "):
                if line.strip() and not line.startswith("#"):
                    break
                continue
            key, _, value = line[2:].rstrip("\n").partition(": ")
            if key in meta:
                if not isinstance(meta[key], list):
                    meta[key] = [meta[key]]
                meta[key].append(value)
            else:
                meta[key] = value
    return meta


HEADER_RE = re.compile(
    r"^heap profile: *(\d+): *(\d+) *\[ *(\d+): *(\d+) *\] *@ *heap_v2/(\d+)$"
)
SAMPLE_RE = re.compile(r"^(\d+): (\d+) \[(\d+): (\d+)\] @((?: 0x[0-9a-f]+)*)$")


ZERO_BYTE_OBJECTS = "# zero_byte_objects: "


def zero_byte_counts(line):
    """(in use, allocated) of a `# zero_byte_objects:` line, else None."""
    if not line.startswith(ZERO_BYTE_OBJECTS):
        return None
    c, ac = map(int, line[len(ZERO_BYTE_OBJECTS):].split())
    return c, ac


def zero_byte_objects(path):
    """(in use, allocated): the objects of no bytes a dump's `#
    zero_byte_objects:` lines give, which pprof's readers drop."""
    inuse = alloc = 0
    with open(path) as f:
        for line in f:
            zero = zero_byte_counts(line)
            if zero:
                inuse, alloc = inuse + zero[0], alloc + zero[1]
            elif line.startswith("MAPPED_LIBRARIES:"):
                break
    return inuse, alloc


def dump_samples(path):
    """The sample lines of a dump: [(c, b, ac, ab, [addr, ...])], with the
    objects of no bytes a `# zero_byte_objects:` line puts back."""
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("MAPPED_LIBRARIES:"):
                break
            zero = zero_byte_counts(line)
            if zero and out:
                c, b, ac, ab, addrs = out[-1]
                out[-1] = (c + zero[0], b, ac + zero[1], ab, addrs)
                continue
            m = SAMPLE_RE.match(line.rstrip("\n"))
            if m:
                c, b, ac, ab = (int(m.group(i)) for i in range(1, 5))
                addrs = [int(a, 16) for a in m.group(5).split()]
                out.append((c, b, ac, ab, addrs))
    return out


def go_pprof(*args, timeout=120):
    """`go tool pprof` with the given arguments; stdout as text."""
    env = dict(os.environ, PPROF_TMPDIR=tmpdir("ht-pprof-"), HOME=os.environ.get("HOME", "/root"))
    return run(["go", "tool", "pprof", *args], env=env, timeout=timeout).stdout


def pprof_raw(dump, exe=None):
    """Parse `go tool pprof -raw`: returns (sample_types, samples) where each
    sample is (values, [function names innermost first])."""
    args = ["-raw", "-symbolize=local"]
    args += [exe, dump] if exe else [dump]
    text = go_pprof(*args)
    return parse_pprof_raw(text)


# `go tool pprof -raw` prints each location as
#   "%6d: %#x " ["M=%d "] ["[F] "] then, per line (innermost inlined frame
#   first), "NAME FILE:LINE s=START" ["(SYSTEM NAME)"], or "??" for a line
#   without a function; lines after the first are indented 13 spaces. A
#   location with no lines (unsymbolized) ends after its prefix, and NAME
#   may be empty or hold spaces ("operator new").
_RAW_LOC_RE = re.compile(r"^\s*(\d+): 0x[0-9a-f]+ (?:M=\d+ )?(?:\[F\] )?(.*)$")
_RAW_LINE_RE = re.compile(r"^(.*) (\S*):-?\d+ s=-?\d+(?:\(.*\))?$")
_RAW_SAMPLE_RE = re.compile(r"^((?:\s+-?\d+)+): ((?:\d+ )*)$")


def _raw_function(text):
    """The function name of one printed line; "?" when there is none."""
    m = _RAW_LINE_RE.match(text)
    name = m.group(1) if m else ""
    return name if name and name != "??" else "?"


def parse_pprof_raw(text):
    """`go tool pprof -raw` output: (sample types as printed, e.g.
    "inuse_space/bytes[dflt]", [(values, [function names innermost first])]).
    An unsymbolized location, or a line without a function name, is "?"."""
    types = []
    samples = []
    locations = {}
    section = None
    pending = []
    last = None
    for line in text.splitlines():
        if line == "Samples:":
            section = "types"
        elif line == "Locations":
            section = "locations"
        elif line == "Mappings":
            section = None
        elif section == "types":
            types = line.split()
            section = "samples"
        elif section == "samples":
            m = _RAW_SAMPLE_RE.match(line)
            if m:  # label lines ("bytes:[184]") do not match
                values = [int(v) for v in m.group(1).split()]
                pending.append((values, [int(v) for v in m.group(2).split()]))
        elif section == "locations":
            m = _RAW_LOC_RE.match(line)
            if m:
                last = int(m.group(1))
                rest = m.group(2)
                locations[last] = [_raw_function(rest)] if rest else ["?"]
            elif last is not None and line.startswith(" " * 13):
                locations[last].append(_raw_function(line[13:]))
    for values, ids in pending:
        names = []
        for i in ids:
            names.extend(locations.get(i, ["?"]))
        samples.append((values, names))
    return types, samples


def run_tool(*args, check=True, env=None, timeout=120):
    """The heaptrace command (tools/heaptrace) with the given arguments.
    Without an env of its own it asks no debuginfod server: Debian's
    /etc/profile.d sets DEBUGINFOD_URLS in login shells, and the tests
    must not download (tests/test_debuginfod.py passes its own)."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "DEBUGINFOD_URLS"}
    return run(["python3", TOOL, *args], env=env, timeout=timeout, check=check)


TOP_ROW_RE = re.compile(
    r"^\s*(\S+)\s+(\S+%)\s+(\S+%)\s+(\S+)\s+(\S+%)  (.+)$"
)


def _number(text):
    return float(re.sub(r"[A-Za-z]+$", "", text) or 0)


def parse_top(text):
    """A `heaptrace top` table: ({name: (flat, cum)}, [names in order],
    legend lines). Values are numbers; pass --unit B for exact bytes."""
    nodes, order, legend = {}, [], []
    rows = False
    for line in text.splitlines():
        if not rows:
            if line.split() == ["flat", "flat%", "sum%", "cum", "cum%"]:
                rows = True
            else:
                legend.append(line)
            continue
        m = TOP_ROW_RE.match(line)
        if not m:
            raise AssertionError(f"not a top row: {line!r}")
        nodes[m.group(6)] = (_number(m.group(1)), _number(m.group(4)))
        order.append(m.group(6))
    if not rows:
        raise AssertionError(f"no table header in: {text!r}")
    return nodes, order, legend


def pprof_by_leaf(dump, exe):
    """{leaf function: {sample type: value}} as `go tool pprof` reads the
    dump, summed over samples (pprof itself drops allocator frames)."""
    types, samples = pprof_raw(dump, exe)
    names = [t.split("/")[0] for t in types]
    out = {}
    for values, frames in samples:
        leaf = frames[0] if frames else "?"
        acc = out.setdefault(leaf, dict.fromkeys(names, 0))
        for name, v in zip(names, values):
            acc[name] += v
    return out


def pprof_totals(dump, exe):
    """{sample type: total} as `go tool pprof` reads the dump."""
    totals = {}
    for acc in pprof_by_leaf(dump, exe).values():
        for name, v in acc.items():
            totals[name] = totals.get(name, 0) + v
    return totals


def google_pprof_total(dump, exe, kind):
    """The `Total:` google-pprof (the perl pprof) prints for one of
    inuse_space, inuse_objects, alloc_space, alloc_objects."""
    out = run(["google-pprof", "--text", "--show_bytes", "--" + kind, exe, dump]).stdout
    m = re.search(r"^Total: (-?[\d.]+) (B|objects)$", out, re.M)
    column = {"inuse_objects": 0, "inuse_space": 1, "alloc_objects": 2, "alloc_space": 3}[kind]
    if not m and not any(s[column] for s in dump_samples(dump)):
        return 0.0  # nothing of this kind: google-pprof prints no total
    if not m:
        raise AssertionError(f"google-pprof printed no total: {out[:500]}")
    return float(m.group(1))


OWN_TOTALS = {
    "inuse_space": "inuse_bytes",
    "inuse_objects": "inuse_objects",
    "alloc_space": "alloc_bytes",
    "alloc_objects": "alloc_objects",
}


def line_rounding(dump):
    """{sample type: how far a reader's total may be from heaptrace's own
    unrounded `#` total}, summed from each line. A line's (c, b) are its
    stack's estimate (objects, bytes) times q = 1 - exp(-x/rate), x the mean
    size, each rounded to a whole number: the unrounded pair lies within 1/2
    of (c, b), and its count is at least 1 (objects times q is at least the
    number of samples, q being concave). A reader scales the pair by
    1/(1 - exp(-(b/c)/rate)); the line's allowance is the farthest that
    scaling lands from its reading over the corners of that box, plus 1 for
    the reader's whole numbers. 0 at rate 1, where lines are exact."""
    rate = int(dump_meta(dump)["rate"])
    out = dict.fromkeys(OWN_TOTALS, 0.0)
    if rate == 1:
        return out

    def scaled(c, b):
        q = -math.expm1(-(b / c) / rate)
        return c / q, b / q

    for c, b, ac, ab, _ in dump_samples(dump):
        for objs, space, n, m in (("inuse_objects", "inuse_space", c, b),
                                  ("alloc_objects", "alloc_space", ac, ab)):
            if not n or not m:
                continue
            o0, s0 = scaled(n, m)
            corners = [scaled(cn, cm) for cn in (max(n - 0.5, 1.0), n + 0.5)
                       for cm in (m - 0.5, m + 0.5)]
            out[objs] += max(abs(o - o0) for o, _ in corners) + 1
            out[space] += max(abs(sp - s0) for _, sp in corners) + 1
    return out


def readers_agree(own, got, allowance, exact):
    """Whether a reader's total got matches heaptrace's own estimate own."""
    if exact:
        return round(got) == round(own)
    return abs(got - own) <= allowance + 1e-9 * abs(own)


def assert_readers_agree(dump, exe, google=True):
    """go tool pprof (and google-pprof) totals match the dump's own `#`
    estimates: exactly at rate 1; otherwise within the rounding of each
    line (see line_rounding)."""
    meta = dump_meta(dump)
    exact = meta["rate"] == "1"
    go = pprof_totals(dump, exe)
    bounds = line_rounding(dump)
    for kind, key in OWN_TOTALS.items():
        own = float(meta[key])
        readers = {"go tool pprof": go.get(kind, 0)}
        if google:
            readers["google-pprof"] = google_pprof_total(dump, exe, kind)
        for reader, got in readers.items():
            if not readers_agree(own, got, bounds[kind], exact):
                raise AssertionError(
                    f"{reader} reads {kind}={got} from {dump}, heaptrace says {own} "
                    f"(allowed +-{bounds[kind]:.1f})")


def google_pprof_stacks(dump, exe, kinds=("alloc_objects", "alloc_space",
                                          "inuse_objects", "inuse_space")):
    """google-pprof's (the perl pprof's) `--collapsed` views: {kind: {(function,
    ... innermost first): value}} for kinds among inuse_space, inuse_objects,
    alloc_space, alloc_objects, with demangled C++ names ("f(int)").
    `go tool pprof` names C and C++ functions from DWARF alone (no
    demangling, none for out-of-line members), so C++ names come from here.
    Each run symbolizes anew (about a second), so the kinds run in parallel."""
    def view(kind):
        out = run(["google-pprof", "--collapsed", "--" + kind, exe, dump]).stdout
        stacks = {}
        for line in out.splitlines():
            frames, _, value = line.rpartition(" ")
            names = tuple(re.sub(r"<[0-9a-f]+>$", "", f)
                          for f in reversed(frames.split(";")))
            stacks[names] = stacks.get(names, 0) + int(value)
        return stacks

    with concurrent.futures.ThreadPoolExecutor(len(kinds)) as pool:
        return dict(zip(kinds, pool.map(view, kinds)))


def dump_maps(path):
    """The MAPPED_LIBRARIES lines of a dump: [(start, end, offset, path)]."""
    maps, inside = [], False
    with open(path) as f:
        for line in f:
            if line.startswith("MAPPED_LIBRARIES:"):
                inside = True
                continue
            parts = line.split()
            if inside and len(parts) >= 6:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                maps.append((lo, hi, int(parts[2], 16), parts[5]))
    return maps


def function_at(dump, addr):
    """The function a return address in a dump falls in, by addr2line on
    the mapped file (file offset taken as the ELF address, true of the
    test programs' text)."""
    for lo, hi, off, path in dump_maps(dump):
        if lo <= addr < hi:
            out = run(["addr2line", "-f", "-e", path, hex(addr - 1 - lo + off)]).stdout
            return out.splitlines()[0]
    return "?"


def wait_signal_caught(pid, sig, timeout=10):
    """Waits until process pid has a handler for signal number sig (from
    /proc/PID/status SigCgt), so that sending it cannot kill the process
    before heaptrace has set itself up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status") as f:
                caught = next(int(line.split()[1], 16) for line in f
                              if line.startswith("SigCgt:"))
        except (OSError, StopIteration):
            caught = 0
        if caught & (1 << (sig - 1)):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} does not catch signal {sig} after {timeout}s")


def wait_for_file(pattern, timeout=10):
    """Polls until a file matching the glob pattern exists; returns the
    sorted matches."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(glob.glob(pattern))
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no {pattern} after {timeout}s")
