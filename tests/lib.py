"""Shared helpers for the tests: where things are built, running programs
under the preload, and reading dumps back through the peer parsers
(`go tool pprof`, `google-pprof`) so that tests check against a reader we did
not write."""
import glob
import os
import re
import subprocess
import tempfile

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


def traced_env(dump_dir, **config):
    """The environment for a program under heaptrace; config keys are the
    HEAPTRACE_ variables without the prefix, in lower case."""
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


def dumps_in(directory, pid=None):
    pattern = f"heaptrace.{pid if pid else '*'}.*.heap"
    return sorted(glob.glob(os.path.join(directory, pattern)))


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


def dump_samples(path):
    """The sample lines of a dump: [(c, b, ac, ab, [addr, ...])]."""
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("MAPPED_LIBRARIES:"):
                break
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


def parse_pprof_raw(text):
    lines = text.splitlines()
    types = []
    samples = []
    locations = {}
    section = None
    pending = []
    for line in lines:
        if line.startswith("Samples:"):
            section = "samples"
            continue
        if line.startswith("Locations"):
            section = "locations"
            continue
        if line.startswith("Mappings"):
            section = None
            continue
        if section == "samples":
            if not types:
                types = line.split()
                continue
            m = re.match(r"^\s*([-\d ]+):((?: \d+)*)\s*$", line)
            if m:
                values = [int(v) for v in m.group(1).split()]
                ids = [int(v) for v in m.group(2).split()]
                pending.append((values, ids))
        elif section == "locations":
            m = re.match(r"^\s*(\d+): 0x[0-9a-f]+ M=\d+ (\S+)", line)
            if m:
                locations[int(m.group(1))] = [m.group(2)]
                last = int(m.group(1))
            else:
                # pprof appends "(system name)" when it simplified a C++ name.
                m = re.match(r"^\s+(\S+) \S+:\d+ s=\d+(?:\(.*\))?$", line)
                if m and locations:
                    locations[last].append(m.group(1))
    for values, ids in pending:
        names = []
        for i in ids:
            names.extend(locations.get(i, ["?"]))
        samples.append((values, names))
    return types, samples


def run_tool(*args, check=True, env=None, timeout=120):
    """The heaptrace command (tools/heaptrace) with the given arguments."""
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
