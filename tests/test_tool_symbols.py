"""Symbolization by the heaptrace command: a PIE executable, a non-PIE
executable, a shared library and -O2 C++ with an inlined member function
template, each from a program that writes a dump of itself
(tests/progs/sym/selfdump.h); build-id mismatches, missing files, and one
addr2line process per file."""
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


def test_addr2line_runs_once_per_file():
    d = lib.tmpdir()
    log = os.path.join(d, "calls")
    wrapper = os.path.join(d, "addr2line")
    real = shutil.which("addr2line")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=d + os.pathsep + os.environ["PATH"])
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
        raise AssertionError(f"addr2line calls: {calls}")
