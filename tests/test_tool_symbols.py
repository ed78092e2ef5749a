"""Symbolization by the heaptrace command: a PIE executable, a non-PIE
executable, a shared library and -O2 C++ with an inlined member function
template, each from a program that writes a dump of itself
(tests/progs/sym/selfdump.h); a lambda inlined into main; a stripped
program with exported symbols, alone and with its debug file found by
.gnu_debuglink and by build id; build-id mismatches, missing files, and one
eu-addr2line process per file."""
import os
import re
import shutil
import stat

import lib

SYM_SRC = os.path.join(lib.ROOT, "tests", "progs", "sym")


def markers(source):
    """{name: line} of the `@name` marker comments in a source file."""
    found = {}
    with open(os.path.join(SYM_SRC, source)) as f:
        for number, line in enumerate(f, 1):
            m = re.search(r"(?:/\*|//) @(\w+)", line)
            if m:
                found[m.group(1)] = number
    return found


def self_dump(program, directory=None, exe=None):
    """Runs a sym_* program (or exe, a copy of it) and returns its dump."""
    directory = directory or lib.tmpdir()
    proc = lib.run([exe or lib.prog(program)])
    path = os.path.join(directory, program + ".heap")
    with open(path, "w") as f:
        f.write(proc.stdout)
    return path


def top_lines(dump, *args, env=None):
    proc = lib.run_tool("top", "--lines", "--unit", "B", "--nodefraction", "0", *args,
                        dump, env=env)
    return lib.parse_top(proc.stdout)[0], proc.stderr


def exe_mapping_start(dump, name):
    with open(dump) as f:
        for line in f.read().split("MAPPED_LIBRARIES:\n")[1].splitlines():
            if line.endswith("/" + name):
                return int(line.split("-")[0], 16)
    raise AssertionError(f"{name} not in the maps of {dump}")


def check_c_program(kind, pie):
    program = f"sym_{kind}"
    dump = self_dump(program)
    start = exe_mapping_start(dump, program)
    if pie != (start != 0x400000):
        raise AssertionError(f"{program} mapped at {start:#x}: PIE={pie} expected")
    src = os.path.join(SYM_SRC, f"{kind}.c")
    line = markers(f"{kind}.c")
    nodes, stderr = top_lines(dump)
    expect = {f"{kind}_first {src}:{line[kind + '_first']}": (100, 100),
              f"{kind}_second {src}:{line[kind + '_second']}": (200, 200),
              f"main {src}:{line[kind + '_main_first']}": (0, 100),
              f"main {src}:{line[kind + '_main_second']}": (0, 200)}
    if nodes != expect or stderr:
        raise AssertionError(f"{program}: {nodes} != {expect} ({stderr!r})")


def test_pie_executable():
    check_c_program("pie", pie=True)


def test_non_pie_executable():
    check_c_program("nopie", pie=False)


def test_shared_library():
    dump = self_dump("sym_shlib")
    line = markers("shlib_lib.c")["shlib_work"]
    main_line = markers("shlib_main.c")["shlib_main"]
    nodes, stderr = top_lines(dump)
    expect = {f"shlib_work {SYM_SRC}/shlib_lib.c:{line}": (100, 100),
              f"main {SYM_SRC}/shlib_main.c:{main_line}": (0, 100)}
    if nodes != expect or stderr:
        raise AssertionError(f"{nodes} != {expect} ({stderr!r})")


def test_cxx_inlined_frames():
    dump = self_dump("sym_inline")
    line = markers("inline.cc")
    src = os.path.join(SYM_SRC, "inline.cc")
    nodes, _ = top_lines(dump)
    expect = {f"shapes::Box<int>::fill() {src}:{line['inline_fill']}": (100, 100),
              f"shapes::make_box(int) {src}:{line['inline_make_box']}": (0, 100),
              f"main {src}:{line['inline_main']}": (0, 100)}
    if nodes != expect:
        raise AssertionError(f"{nodes} != {expect}")
    # In the pprof export, the inlined call is two lines of one location.
    out = os.path.join(lib.tmpdir(), "inline.pb.gz")
    lib.run_tool("pprof", dump, "-o", out)
    _, samples = lib.pprof_raw(out)
    if [names for _, names in samples] != [["shapes::Box::fill", "shapes::make_box", "main"]]:
        raise AssertionError(f"pprof sees {samples}")
    raw = lib.go_pprof("-raw", out)
    if not re.search(r"M=1 shapes::Box::fill \S+inline.cc:%d s=0.*\n\s+shapes::make_box "
                     r"\S+inline.cc:%d" % (line["inline_fill"], line["inline_make_box"]), raw):
        raise AssertionError(raw)


def _with_build_id(dump, path, build_id):
    with open(dump) as f:
        text = f.read()
    header, rest = text.split("\n", 1)
    out = dump + ".id"
    with open(out, "w") as f:
        f.write(f"{header}\n# build_id: {path} {build_id}\n{rest}")
    return out


def test_build_id_mismatch_is_reported_not_misread():
    dump = self_dump("sym_pie")
    exe = lib.prog("sym_pie")
    real_id = re.search(r"Build ID: ([0-9a-f]+)",
                        lib.run(["readelf", "-n", exe]).stdout).group(1)
    nodes, stderr = top_lines(_with_build_id(dump, exe, real_id))
    if stderr or not any(n.startswith("pie_first ") for n in nodes):
        raise AssertionError(f"matching build id: {nodes} {stderr!r}")
    nodes, stderr = top_lines(_with_build_id(dump, exe, "00" * 20))
    warnings = stderr.splitlines()
    if len(warnings) != 1 or exe not in warnings[0] or "build id" not in warnings[0]:
        raise AssertionError(f"warnings: {warnings}")
    if not all(re.fullmatch(r"sym_pie\+0x[0-9a-f]+", n) for n in nodes):
        raise AssertionError(f"frames of a mismatched file were symbolized: {nodes}")


def test_missing_file_keeps_module_offset():
    d = lib.tmpdir()
    exe = os.path.join(d, "sym_pie")
    shutil.copy(lib.prog("sym_pie"), exe)
    dump = self_dump("sym_pie", d, exe)
    os.unlink(exe)
    nodes, stderr = top_lines(dump)
    if len(stderr.splitlines()) != 1 or exe not in stderr:
        raise AssertionError(f"warning: {stderr!r}")
    # The file offset of the first call site (return address - 1).
    address = lib.dump_samples(dump)[0][4][0] - 1
    with open(dump) as f:
        maps = f.read().split("MAPPED_LIBRARIES:\n")[1].splitlines()
    for entry in maps:
        fields = entry.split()
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if fields[-1] == exe and start <= address < end:
            offset = address - start + int(fields[2], 16)
    if f"sym_pie+{offset:#x}" not in nodes:
        raise AssertionError(f"sym_pie+{offset:#x} not in {nodes}")


def test_line_tool_runs_once_per_file():
    d = lib.tmpdir()
    log = os.path.join(d, "calls")
    wrapper = os.path.join(d, "eu-addr2line")
    real = shutil.which("eu-addr2line")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IEXEC)
    # A cache of its own: the suite's may hold these answers already.
    env = dict(os.environ, PATH=d + os.pathsep + os.environ["PATH"],
               HEAPTRACE_CACHE=lib.tmpdir("ht-test-cache-"))
    dump = self_dump("sym_pie")
    nodes, _ = top_lines(dump, env=env)
    with open(log) as f:
        calls = f.read().splitlines()
    if len(calls) != 1 or not calls[0].endswith("sym_pie") or len(nodes) != 4:
        raise AssertionError(f"{calls} for 4 addresses in one file")
    os.unlink(log)
    top_lines(self_dump("sym_shlib"), env=env)
    with open(log) as f:
        calls = sorted(c.rsplit("/", 1)[1] for c in f.read().splitlines())
    if calls != ["libsym_shlib.so", "sym_shlib"]:
        raise AssertionError(f"eu-addr2line calls: {calls}")


def test_lambda_inlined_into_main_keeps_its_frame():
    dump = self_dump("sym_lambda")
    line = markers("lambda.cc")
    src = os.path.join(SYM_SRC, "lambda.cc")
    nodes, _ = top_lines(dump)
    expect = {f"operator() {src}:{line['lambda_body']}": (100, 100),
              f"main {src}:{line['lambda_main']}": (0, 100)}
    if {k: v for k, v in nodes.items() if k.startswith(("main ", "operator"))} != expect:
        raise AssertionError(f"{nodes} lacks {expect}")


# ---- stripped files and their separate debug files -----------------------

STRIPPED = "sym_stripped"


def stripped_copy(with_debug=None):
    """A directory holding a copy of the stripped program, alone or with its
    debug file (with_debug: "beside" or ".debug"); returns (dir, exe)."""
    d = lib.tmpdir()
    exe = os.path.join(d, STRIPPED)
    shutil.copy(lib.prog(STRIPPED), exe)
    if with_debug:
        target = os.path.join(d, with_debug) if with_debug != "beside" else d
        os.makedirs(target, exist_ok=True)
        shutil.copy(lib.prog(STRIPPED) + ".debug", target)
    return d, exe


def build_id(path):
    return re.search(r"Build ID: ([0-9a-f]+)", lib.run(["readelf", "-n", path]).stdout).group(1)


def exported_functions(path):
    """{name: (start, end)} of the FUNC symbols in readelf's view of path."""
    out = lib.run(["readelf", "--syms", "--dyn-syms", "-W", path]).stdout
    found = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "FUNC" and f[6] != "UND":
            start = int(f[1], 16)
            found.setdefault(f[7].split("@")[0], (start, start + int(f[2], 0)))
    return found


def expected_stripped_nodes(src, line):
    return {f"stripped_exported {src}:{line['stripped_exported']}": (100, 100),
            f"stripped_static_one {src}:{line['stripped_static_one']}": (200, 200),
            f"stripped_static_two {src}:{line['stripped_static_two']}": (300, 300),
            f"main {src}:{line['stripped_main_exported']}": (0, 100),
            f"main {src}:{line['stripped_main_one']}": (0, 200),
            f"main {src}:{line['stripped_main_two']}": (0, 300)}


def stripped_nodes(dump, env=None):
    """The program's own nodes of a top of dump (libc's left out)."""
    proc = lib.run_tool("top", "--lines", "--unit", "B", "--nodefraction", "0", dump,
                        env=env)
    nodes = lib.parse_top(proc.stdout)[0]
    return ({k: v for k, v in nodes.items() if "libc" not in k}, proc.stderr)


def check_debug_found(dump, env=None):
    nodes, stderr = stripped_nodes(dump, env)
    line = markers("stripped.c")
    expect = expected_stripped_nodes(os.path.join(SYM_SRC, "stripped.c"), line)
    if nodes != expect:
        raise AssertionError(f"{nodes} != {expect} ({stderr!r})")
    return stderr


def check_stripped_alone(dump, exe, stderr, nodes):
    """Exported functions named (and only where they contain the address),
    static ones module+offset, one warning saying how to get symbols."""
    functions = exported_functions(exe)
    named = {k for k in nodes if not k.startswith(STRIPPED + "+0x")}
    if named != {"stripped_exported", "main"}:
        raise AssertionError(f"named nodes {named} in {nodes}")
    if nodes["stripped_exported"] != (100, 100) or nodes["main"] != (0, 600):
        raise AssertionError(nodes)
    # Every address of the dump in the program lies inside the function
    # readelf gives the name of, or is shown as an offset.
    start = exe_mapping_start(dump, STRIPPED)
    for count, _, _, _, addresses in lib.dump_samples(dump):
        site_offset = addresses[0] - 1 - start
        static = count in (2, 3)
        s, e = functions["stripped_exported"]
        if static == (s <= site_offset < e):
            raise AssertionError(f"site {site_offset:#x} of sample {count} vs {s:#x}-{e:#x}")
    offsets = sorted(k for k in nodes if k.startswith(STRIPPED + "+0x"))
    if len(offsets) != 2 or any(nodes[k][0] not in (200, 300) for k in offsets):
        raise AssertionError(f"static sites {offsets} in {nodes}")
    warnings = [w for w in stderr.splitlines() if exe in w]
    if len(warnings) != 1 or "stripped" not in warnings[0] or "DEBUGINFOD_URLS" not in warnings[0]:
        raise AssertionError(f"warnings: {stderr!r}")


def test_stripped_names_only_functions_that_contain_the_address():
    d, exe = stripped_copy()
    dump = self_dump(STRIPPED, d, exe)
    proc = lib.run_tool("top", "--unit", "B", "--nodefraction", "0", dump)
    nodes = lib.parse_top(proc.stdout)[0]
    check_stripped_alone(dump, exe, proc.stderr, nodes)


def test_debug_file_by_gnu_debuglink_beside_and_in_dot_debug():
    for where in ("beside", ".debug"):
        d, exe = stripped_copy(where)
        stderr = check_debug_found(self_dump(STRIPPED, d, exe))
        if stderr:
            raise AssertionError(f"{where}: {stderr!r}")


def test_debug_file_by_build_id_under_a_debug_root():
    d, exe = stripped_copy()
    root = lib.tmpdir()
    bid = build_id(exe)
    target = os.path.join(root, ".build-id", bid[:2])
    os.makedirs(target)
    shutil.copy(lib.prog(STRIPPED) + ".debug", os.path.join(target, bid[2:] + ".debug"))
    env = dict(os.environ, HEAPTRACE_DEBUG_PATH=root)
    dump = self_dump(STRIPPED, d, exe)
    if check_debug_found(dump, env):
        raise AssertionError("warnings with the debug file found")
    # The same file under root + the program's directory, by debuglink.
    os.makedirs(root + d)
    shutil.copy(lib.prog(STRIPPED) + ".debug", root + d)
    shutil.rmtree(os.path.join(root, ".build-id"))
    check_debug_found(dump, env)
