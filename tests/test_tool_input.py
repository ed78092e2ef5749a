"""The heaptrace command's input handling: malformed files give one line
`heaptrace: FILE:LINE: ...` and exit status 2; gperftools `heapprofile`
dumps and Go legacy `heap` text are read, and unsampled exactly as
`go tool pprof` does (checked against it)."""
import glob
import os
import re
import shutil

import lib

KNOWN = {  # tests/progs/tool_known.c, exit state: name -> (inuse objs, bytes, alloc objs, bytes)
    "keep_small": (10, 10000, 10, 10000),
    "churn": (5, 10240, 20, 40960),
    "leaf_big": (3, 196608, 3, 196608),
    "mid": (4, 2048, 4, 2048),
    "grow": (8, 32768, 8, 32768),
}
TYPES = ("inuse_objects", "inuse_space", "alloc_objects", "alloc_space")

# A heap_v2 dump written by hand: sampled at 512 KiB, one stack with mixed
# sizes, no maps (addresses stay unsymbolized).
SAMPLED = """heap profile: 7: 1310720 [12: 2359296] @ heap_v2/524288
# heaptrace: 1
3: 786432 [5: 1310720] @ 0x401000 0x402000
4: 524288 [7: 1048576] @ 0x401100 0x402000

MAPPED_LIBRARIES:
"""

# Go's legacy text (runtime/pprof debug=1): rate 1048576 means period 524288.
GO_TEXT = """heap profile: 3: 3072 [9: 1212416] @ heap/1048576
1: 1024 [4: 1048576] @ 0x4a1b2c 0x4a1c3d 0x43b25e
#	0x4a1b2b	main.grow+0x2b	/src/main.go:12

2: 2048 [5: 163840] @ 0x4a1d4e 0x43b25e
#	0x4a1d4d	main.small+0x4d	/src/main.go:20


# runtime.MemStats
# Alloc = 123456
"""

BAD_INPUTS = {
    "empty": b"",
    "blank": b"\n\n",
    "binary": bytes(range(256)),
    "gzip": b"\x1f\x8b\x08\x00" + b"\x00" * 20,
    "foreign": b"Hello, world\nthis is not a profile\n",
    "elf": b"\x7fELF\x02\x01\x01" + b"\x00" * 50,
    "bad_header": b"heap profile: one: two\n",
    "unknown_kind": b"heap profile: 1: 2 [3: 4] @ cpu/10\n",
    "no_rate": b"heap profile: 1: 2 [3: 4] @ heap_v2\n",
    "garbage_sample": SAMPLED.replace("4: 524288", "four: lots").encode(),
    "zero_count": SAMPLED.replace("3: 786432", "0: 786432").encode(),
    "cut_mid_line": SAMPLED.encode()[:120],
    "cut_at_line": SAMPLED.encode()[:SAMPLED.index("4: 524288")],
    "bad_maps": (SAMPLED + "this is not a maps line\n").encode(),
    "totals": SAMPLED.replace("heap profile: 7:", "heap profile: 8:").encode(),
    "newer_version": SAMPLED.replace("# heaptrace: 1", "# heaptrace: 9").encode(),
    "zero_byte_objects_text": SAMPLED.replace(
        "0x402000\n4:", "0x402000\n# zero_byte_objects: 1 x\n4:").encode(),
    "zero_byte_objects_over_bytes": SAMPLED.replace(
        "0x402000\n4:", "0x402000\n# zero_byte_objects: 1 0\n4:").encode(),
    "latin1": b"heap profile: 1: 2 [3: 4] @ heap_v2/1\n\xe9t\xe9\n",
}
ERROR_RE = r"^heaptrace: {path}:\d+: \S.*$"


def _write(directory, name, data):
    path = os.path.join(directory, name)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


def _expect_input_error(args, path):
    proc = lib.run_tool(*args, check=False)
    lines = proc.stderr.splitlines()
    if proc.returncode != 2 or len(lines) != 1 or "Traceback" in proc.stderr:
        raise AssertionError(f"{args}: status {proc.returncode}, stderr {proc.stderr!r}")
    if not re.match(ERROR_RE.format(path=re.escape(path)), lines[0]):
        raise AssertionError(f"{args}: bad error line {lines[0]!r}")
    if proc.stdout:
        raise AssertionError(f"{args}: wrote to stdout: {proc.stdout!r}")
    return lines[0]


def test_malformed_inputs_give_one_line_and_status_2():
    d = lib.tmpdir()
    good = _write(d, "good.heap", SAMPLED)
    out = os.path.join(d, "out")
    for name, data in BAD_INPUTS.items():
        path = _write(d, name + ".heap", data)
        _expect_input_error(["top", path], path)
        if name not in ("binary", "cut_mid_line", "totals"):
            continue
        # Every verb that reads dumps goes through the same reader.
        for args in (["flame", "--folded", path], ["flame", path],
                     ["graph", path, "-o", out + ".dot"], ["pprof", path, "-o", out + ".pb.gz"],
                     ["diff", "--base", good, path], ["diff", "--base", path, good],
                     ["top", "--base", path, good]):
            _expect_input_error(args, path)


def test_error_lines_name_the_right_line():
    d = lib.tmpdir()
    cases = {"garbage_sample": 4, "zero_count": 3, "cut_mid_line": 4, "empty": 1,
             "latin1": 2, "newer_version": 2}
    for name, line in cases.items():
        path = _write(d, name + ".heap", BAD_INPUTS[name])
        message = _expect_input_error(["top", path], path)
        if not message.startswith(f"heaptrace: {path}:{line}: "):
            raise AssertionError(f"{name}: expected line {line}: {message}")


def _converted_like_go_pprof(name, text):
    """text written to NAME.heap and converted by `heaptrace pprof` to
    NAME.pb.gz, whose values must be go tool pprof's reading of the text:
    (the text's path, the profile's path, (sample types, samples) of the
    profile, and of the text as go tool pprof reads it)."""
    d = lib.tmpdir()
    path = _write(d, name + ".heap", text)
    out = os.path.join(d, name + ".pb.gz")
    lib.run_tool("pprof", path, "-o", out)
    ours_types, ours = lib.pprof_raw(out)
    theirs_types, theirs = lib.pprof_raw(path)
    if sorted(v for v, _ in ours) != sorted(v for v, _ in theirs):
        raise AssertionError(f"values {ours} != go tool pprof's {theirs}")
    return path, out, (ours_types, ours), (theirs_types, theirs)


def test_sampled_dump_unsampled_like_go_pprof():
    path, _, (ours_types, ours), (theirs_types, theirs) = \
        _converted_like_go_pprof("sampled", SAMPLED)
    if [t.replace("[dflt]", "") for t in ours_types] != theirs_types:
        raise AssertionError(f"sample types {ours_types} != {theirs_types}")
    # The values really were scaled: 3 objects of 256 KiB at 512 KiB.
    scale = 1 / (1 - 2.718281828459045 ** -0.5)
    if [int(3 * scale), int(786432 * scale)] not in [v[2:] for v, _ in ours]:
        raise AssertionError(f"unscaled values: {ours}")
    nodes, _, legend = lib.parse_top(lib.run_tool("top", "--unit", "B", path).stdout)
    total = sum(v[3] for v, _ in theirs)
    if f"of {total}B total" not in legend[-1]:
        raise AssertionError(f"top total is not {total}: {legend}")


def test_go_legacy_heap_text_matches_go_pprof():
    out = _converted_like_go_pprof("go", GO_TEXT)[1]
    period = lib.go_pprof("-raw", out).split("Period: ")[1].split()[0]
    if period != "524288":
        raise AssertionError(f"period {period}, expected 524288 (rate / 2)")


def test_gperftools_heapprofile_dump():
    tcmalloc = glob.glob("/usr/lib/*/libtcmalloc.so.4")
    if not tcmalloc:
        raise AssertionError("libtcmalloc.so.4 not installed (tests/install-deps.sh)")
    d = lib.tmpdir()
    env = dict(os.environ, LD_PRELOAD=tcmalloc[0], HEAPPROFILE=os.path.join(d, "gp"))
    lib.run([lib.prog("tool_known")], env=env)
    dumps = sorted(glob.glob(os.path.join(d, "gp.*.heap")))
    if not dumps:
        raise AssertionError("gperftools wrote no heap profile")
    with open(dumps[-1]) as f:
        if "@ heapprofile" not in f.readline():
            raise AssertionError("not a heapprofile dump")
    for index, sample_type in enumerate(TYPES):
        text = lib.run_tool("top", "--" + sample_type, "--unit", "B",
                            "--nodefraction", "0", dumps[-1]).stdout
        nodes, _, _ = lib.parse_top(text)
        for name, values in KNOWN.items():
            if nodes.get(name, (None,))[0] != values[index]:
                raise AssertionError(f"{sample_type} {name}: {nodes.get(name)} "
                                     f"!= {values[index]}\n{text}")


def test_missing_file_and_usage_errors():
    proc = lib.run_tool("top", "/nonexistent/x.heap", check=False)
    if proc.returncode != 2 or proc.stderr.strip() != \
            "heaptrace: /nonexistent/x.heap: No such file or directory":
        raise AssertionError(f"{proc.returncode} {proc.stderr!r}")
    proc = lib.run_tool("graph", "-o", "/tmp/x.txt", "/nonexistent", check=False)
    if proc.returncode == 0 or "Traceback" in proc.stderr:
        raise AssertionError(proc.stderr)
    d = lib.tmpdir()
    path = _write(d, "s.heap", SAMPLED)
    proc = lib.run_tool("top", "--focus", "(", path, check=False)
    if proc.returncode != 1 or len(proc.stderr.splitlines()) != 1 or "Traceback" in proc.stderr:
        raise AssertionError(f"bad regexp: {proc.returncode} {proc.stderr!r}")
    if shutil.which("dot"):
        proc = lib.run_tool("graph", path, "-o", os.path.join(d, "g.txt"), check=False)
        if proc.returncode != 1 or ".svg, .png or .dot" not in proc.stderr:
            raise AssertionError(proc.stderr)
