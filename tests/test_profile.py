"""The profiles the HTTP endpoint serves (preload/profile.h). First as
files written by build/tests/profile_out (tests/core/profile_out.c), which
links the preload's objects and has a library of known allocations:
profile.proto as `go tool pprof` reads it, its delta, the ?debug=1 page and
symbolz, checked against the exact counts at rate 1 and against the dump of
the same moment. Then from a running service over HTTP, as a user reads
them: go tool pprof from the URL, without the binary (symbolz), ?seconds=N,
?debug=1."""
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

import lib

# {function: (alloc_objects, alloc_space, inuse_objects, inuse_space)}
KNOWN = {
    "keep_small": (10, 10000, 6, 6000),
    "churn": (20, 40960, 5, 10240),
    "grow": (8, 32768, 8, 32768),
}
# profile_out's delta: what grew since its base, in use too, as Go has it
DELTA = {"keep_small": (0, 0, -4, -4000), "grow": (8, 32768, 8, 32768)}
TYPES = ("alloc_objects", "alloc_space", "inuse_objects", "inuse_space")
SITES_LIB = "libprofile_sites.so"


def symbol(lib_path, name):
    """(value, size) of a function symbol, from nm -S."""
    out = lib.run(["nm", "-S", lib_path]).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[3] == name:
            return int(fields[0], 16), int(fields[1], 16)
    raise AssertionError(f"{name} not in {lib_path}")


_OUT = {}


def profiles():
    """The directory profile_out wrote into, run once per test run."""
    if "dir" not in _OUT:
        directory = lib.tmpdir()
        _, size = symbol(lib.prog(SITES_LIB), "keep_small")
        env = lib.traced_env(directory, rate=1)
        del env["LD_PRELOAD"]  # the tracer is linked in
        lib.run([lib.prog("profile_out"), directory, f"{size:x}"], env=env)
        _OUT["dir"] = directory
    return _OUT["dir"]


def symbolz_answer(directory):
    """(the addresses profile_out asked symbolz for, {address: name})."""
    with open(os.path.join(directory, "symbolz.req")) as f:
        asked = [int(a, 16) for a in f.read().split("+")]
    with open(os.path.join(directory, "symbolz.txt")) as f:
        answer = {}
        for line in f.read().splitlines():
            addr, name = line.split("\t")
            answer[int(addr, 16)] = name
    return asked, answer


def by_leaf(path, *exe):
    """{leaf: (the four values)} as go tool pprof -raw reads path."""
    out = {}
    for name, acc in lib.pprof_by_leaf(path, *exe).items():
        if name in KNOWN:
            out[name] = tuple(acc[t] for t in TYPES)
    return out


def test_proto_gives_the_known_sites_exactly():
    path = os.path.join(profiles(), "heap.pb.gz")
    assert by_leaf(path, None) == KNOWN, by_leaf(path, None)
    types, _ = lib.pprof_raw(path)
    assert types == ["alloc_objects/count", "alloc_space/bytes",
                     "inuse_objects/count", "inuse_space/bytes[dflt]"], types
    text = lib.go_pprof("-raw", "-symbolize=none", path)
    assert "PeriodType: space bytes" in text and "Period: 1\n" in text, text
    # mappings with build ids, unsymbolized (pprof names them itself)
    sites = [line for line in text.split("Mappings\n")[1].splitlines()
             if line.split()[2].endswith(SITES_LIB)]
    build_id = re.search(r"Build ID: ([0-9a-f]+)",
                         lib.run(["readelf", "-n", lib.prog(SITES_LIB)]).stdout)
    assert len(sites) == 1 and build_id and build_id.group(1) in sites[0], (sites, build_id)
    assert "[FN]" not in sites[0], sites


def test_allocs_default_to_alloc_space():
    types, _ = lib.pprof_raw(os.path.join(profiles(), "allocs.pb.gz"))
    assert types[1] == "alloc_space/bytes[dflt]", types


def test_proto_and_dump_of_one_moment_name_the_same_lines():
    """The proto's addresses (return address less one) land on the call
    lines that `heaptrace top` and pprof find for the dump's return
    addresses, with the same values."""
    directory = profiles()
    dump = lib.dumps_in(directory)[0]
    exe = lib.prog("profile_out")

    def lines(out):
        rows = {}
        for line in out.splitlines():
            m = re.match(r"^\s*(\d+)B?\s.*  (keep_small|churn|grow) \S*?([\w.]+:\d+)$", line)
            if m:
                rows[m.group(2)] = (int(m.group(1)), m.group(3))
        return rows

    proto = lines(lib.go_pprof("-top", "-lines", "-unit=B", "-sample_index=alloc_space",
                               os.path.join(directory, "heap.pb.gz")))
    legacy = lines(lib.go_pprof("-top", "-lines", "-unit=B", "-sample_index=alloc_space",
                                exe, dump))
    tool = lines(lib.run_tool("top", "--lines", "--unit", "B", "--nodefraction", "0",
                              "--alloc_space", dump).stdout)
    assert proto == legacy == tool and set(proto) == set(KNOWN), (proto, legacy, tool)
    assert {k: v[0] for k, v in proto.items()} == {k: v[1] for k, v in KNOWN.items()}


def test_delta_is_now_less_the_base_in_every_sample_type():
    """Go's delta: what was allocated since the base, and what is in use
    less what was then (negative for the blocks freed meanwhile)."""
    path = os.path.join(profiles(), "delta.pb.gz")
    assert by_leaf(path, None) == DELTA, by_leaf(path, None)
    text = lib.go_pprof("-raw", "-symbolize=none", path)
    assert re.search(r"^Duration: ", text, re.M), text


def test_debug_page_names_the_sites_and_pprof_reads_it():
    path = os.path.join(profiles(), "heap.txt")
    with open(path) as f:
        text = f.read()
    head = re.match(r"heap profile: (\d+): (\d+) \[(\d+): (\d+)\] @ heap_v2/1\n", text)
    assert head, text[:200]
    want = [sum(v[i] for v in KNOWN.values()) for i in (2, 3, 0, 1)]
    assert [int(g) for g in head.groups()] >= want, (head.groups(), want)
    for name, values in KNOWN.items():
        block = re.search(r"^%d: %d \[%d: %d\] @(?: 0x[0-9a-f]+)+\n#\t0x[0-9a-f]+\t%s\+0x[0-9a-f]+\t\n"
                          % (values[2], values[3], values[0], values[1], name), text, re.M)
        assert block, (name, text)
    assert re.search(r"^# rss_bytes = [1-9]\d*$", text, re.M), text
    assert re.search(r"^# dropped = 0$", text, re.M), text
    # the page is a legacy heap profile with the counts pprof expects
    assert by_leaf(path, lib.prog("profile_out")) == KNOWN


def test_symbolz_names_only_addresses_inside_a_function():
    asked, answer = symbolz_answer(profiles())
    keep, churn, grow, last, after, one, qsort = asked
    assert answer.get(keep) == "keep_small" and answer.get(churn) == "churn", answer
    assert answer.get(grow) == "grow" and answer.get(last) == "keep_small", answer
    assert answer.get(after) != "keep_small" and one not in answer, answer
    assert answer.get(qsort) == "qsort", answer  # a stripped library: .dynsym


def test_a_deleted_library_is_still_named():
    """A library deleted under the running program (as a package upgrade
    does) is read through /proc/self/map_files, which only CAP_SYS_ADMIN
    may open."""
    if os.geteuid() != 0:
        raise lib.Skip("/proc/self/map_files opens only for root (CAP_SYS_ADMIN)")
    directory = lib.tmpdir()
    for name in ("profile_out", SITES_LIB):
        shutil.copy(lib.prog(name), directory)
    _, size = symbol(lib.prog(SITES_LIB), "keep_small")
    env = lib.traced_env(directory, rate=1)
    del env["LD_PRELOAD"]
    lib.run([os.path.join(directory, "profile_out"), directory, f"{size:x}",
             os.path.join(directory, SITES_LIB)], env=env)
    assert not os.path.exists(os.path.join(directory, SITES_LIB))
    asked, answer = symbolz_answer(directory)
    assert [answer.get(a) for a in asked[:3]] == ["keep_small", "churn", "grow"], answer
    with open(os.path.join(directory, "heap.txt")) as f:
        assert re.search(r"^#\t0x[0-9a-f]+\tgrow\+0x", f.read(), re.M)


# The same profiles served over HTTP by a running service
# (tests/progs/http_service.c), read as a user would: go tool pprof from the
# URL, with and without the binary, and the ?debug=1 page.
SERVICE = "http_service"
# its sites, as KNOWN; grow's once per grow()
SERVICE_KNOWN = {
    "keep_small": (10, 10000, 10, 10000),
    "churn": (20, 40960, 5, 10240),
    "grow": (8, 32768, 8, 32768),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """http_service under heaptrace with HEAPTRACE_HTTP on a free port."""

    def __init__(self, exe=None, cwd=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/debug/pprof/"
        env = lib.traced_env(lib.tmpdir(), rate=1, http=f"127.0.0.1:{self.port}")
        self.proc = subprocess.Popen([exe or lib.prog(SERVICE)], env=env, cwd=cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.expect("ready")
        for _ in range(100):  # the server thread may still be binding
            try:
                self.get("")
                return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise AssertionError(f"nothing answers on {self.url}: {self.proc.stderr.read()}")

    def expect(self, word):
        line = self.proc.stdout.readline()
        if line != word + "\n":
            raise AssertionError(f"{SERVICE} said {line!r}, not {word}: "
                                 f"{self.proc.stderr.read() if not line else ''}")

    def grow(self):
        self.proc.stdin.write("grow\n")
        self.proc.stdin.flush()
        self.expect("grown")

    def get(self, path, timeout=30):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return r.read()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def pprof_top(*args, cwd=None, env=None):
    """{function: flat} of `go tool pprof -top -unit=B` (bytes or counts)."""
    cmd = ["go", "tool", "pprof", "-top", "-unit=B", "-nodefraction=0", *args]
    env = dict(os.environ, PPROF_TMPDIR=lib.tmpdir("ht-pprof-"), **(env or {}))
    out = lib.run(cmd, env=env, cwd=cwd).stdout
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^\s*(-?\d+)B?\s+\S+%\s+\S+%\s+-?\d+B?\s+\S+%\s+(\S+)", line)
        if m:
            rows[m.group(2)] = rows.get(m.group(2), 0) + int(m.group(1))
    return rows


def sites(rows):
    return {name: rows.get(name) for name in SERVICE_KNOWN}


def service_sites(index, grown=0):
    """What sites() gives for a service that grew `grown` times."""
    want = {name: v[index] for name, v in SERVICE_KNOWN.items()}
    want["grow"] = want["grow"] * grown or None
    return want


def test_go_pprof_reads_the_heap_from_the_url():
    with Service() as svc:
        got = sites(pprof_top("-sample_index=inuse_space", svc.url + "heap"))
        assert got == service_sites(3), got
        svc.grow()
        got = sites(pprof_top("-alloc_objects", svc.url + "heap"))
        assert got == service_sites(0, grown=1), got
        # /allocs: alloc_space unless asked otherwise
        got = sites(pprof_top(svc.url + "allocs"))
        assert got == service_sites(1, grown=1), got


def test_go_pprof_names_the_sites_through_symbolz_without_the_binary():
    """The binary is copied, run, and deleted: pprof, run from an empty
    directory, can only name frames through /debug/pprof/symbol. (A rename
    would not take it away: the kernel's maps follow the file to its new
    name, and pprof would find it there.)"""
    directory = lib.tmpdir()
    exe = os.path.join(directory, SERVICE)
    shutil.copy(lib.prog(SERVICE), exe)
    with Service(exe=exe, cwd=directory) as svc:
        os.unlink(exe)
        empty = lib.tmpdir()
        rows = pprof_top("-sample_index=inuse_space", svc.url + "heap", cwd=empty,
                         env={"PPROF_BINARY_PATH": empty})
        assert sites(rows) == service_sites(3) and "main" in rows, rows


def test_delta_over_seconds_holds_what_was_allocated_meanwhile():
    with Service() as svc:
        svc.grow()  # before the base: not in the delta
        answer = {}

        def fetch():
            answer["body"] = svc.get("heap?seconds=2")

        t = threading.Thread(target=fetch)
        t.start()
        time.sleep(0.7)
        svc.grow()
        t.join(timeout=60)
        path = os.path.join(lib.tmpdir(), "delta.pb.gz")
        with open(path, "wb") as f:
            f.write(answer["body"])
        for index, kind in enumerate(TYPES):
            got = pprof_top("-sample_index=" + kind, path)
            assert {k: v for k, v in got.items() if k in SERVICE_KNOWN} == \
                {"grow": SERVICE_KNOWN["grow"][index]}, (kind, got)


def test_debug_page_over_http_names_the_sites():
    with Service() as svc:
        text = svc.get("heap?debug=1").decode()
    assert text.startswith("heap profile: "), text[:200]
    for name, values in SERVICE_KNOWN.items():
        if name == "grow":
            continue
        assert re.search(r"^%d: %d \[%d: %d\] @(?: 0x[0-9a-f]+)+\n#\t0x[0-9a-f]+\t%s\+0x"
                         % (values[2], values[3], values[0], values[1], name), text, re.M), \
            (name, text)


def test_google_pprof_reads_the_debug_page():
    if not shutil.which("google-pprof"):
        raise lib.Skip("google-pprof is not installed")
    with Service() as svc:
        page = os.path.join(lib.tmpdir(), "heap.txt")
        with open(page, "wb") as f:
            f.write(svc.get("heap?debug=1"))
        out = lib.run(["google-pprof", "--text", "--show_bytes", "--inuse_space",
                       lib.prog(SERVICE), page]).stdout
    flat = {}
    for line in out.splitlines():
        m = re.match(r"^\s*(\d+)\s+\S+%\s+\S+%\s+\d+\s+\S+%\s+(\S+)$", line)
        if m:
            flat[m.group(2)] = int(m.group(1))
    assert flat.get("keep_small") == 10000 and flat.get("churn") == 10240, out
