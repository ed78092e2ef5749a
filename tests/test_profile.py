"""The profiles the HTTP endpoint serves (preload/profile.h), written to
files by build/tests/profile_out (tests/core/profile_out.c), which links the
preload's objects and has a library of known allocations: profile.proto as
`go tool pprof` reads it, its delta, the ?debug=1 page and symbolz, checked
against the exact counts at rate 1 and against the dump of the same
moment."""
import os
import re
import subprocess

import lib

# {function: (alloc_objects, alloc_space, inuse_objects, inuse_space)}
KNOWN = {
    "keep_small": (10, 10000, 10, 10000),
    "churn": (20, 40960, 5, 10240),
    "grow": (8, 32768, 8, 32768),
}
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


def test_delta_holds_what_was_allocated_since_the_base():
    path = os.path.join(profiles(), "delta.pb.gz")
    assert by_leaf(path, None) == {"grow": KNOWN["grow"]}, by_leaf(path, None)
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
    directory = profiles()
    with open(os.path.join(directory, "symbolz.req")) as f:
        asked = [int(a, 16) for a in f.read().split("+")]
    with open(os.path.join(directory, "symbolz.txt")) as f:
        answer = {}
        for line in f.read().splitlines():
            addr, name = line.split("\t")
            answer[int(addr, 16)] = name
    keep, churn, grow, last, after, one = asked
    assert answer.get(keep) == "keep_small" and answer.get(churn) == "churn", answer
    assert answer.get(grow) == "grow" and answer.get(last) == "keep_small", answer
    assert answer.get(after) != "keep_small" and one not in answer, answer
