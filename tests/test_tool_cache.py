"""The heaptrace command's symbol cache (tools/heaptrace_lib/symcache.py):
a second report on a dump answers from it without eu-addr2line, and never
with a stale name: a binary rebuilt at the same path (with a build id or
without, with DWARF or only exported symbols) gets its new names, a debug
file found later is used. An unwritable cache directory or a damaged entry
costs one line and changes no name; HEAPTRACE_CACHE=off writes nothing."""
import marshal
import os
import shutil
import stat
import struct

import lib

SYM_SRC = os.path.join(lib.ROOT, "tests", "progs", "sym")

# One site in a function whose name the build chooses (-DSITE=...).
REBUILT_SRC = r"""
#include "selfdump.h"

__attribute__((noinline)) void SITE(void)
{
	void *site = capture();
	selfdump_record(site, __builtin_return_address(0));
}

int main(void)
{
	SITE();
	selfdump_write();
	return 0;
}
"""


def fresh_cache():
    return lib.tmpdir("ht-test-cache-")


def env_with(**values):
    env = {k: v for k, v in os.environ.items() if k != "DEBUGINFOD_URLS"}
    env.update(values)
    return env


def self_dump(exe, directory):
    """Runs a program built on tests/progs/sym/selfdump.h; its dump's path."""
    path = os.path.join(directory, os.path.basename(exe) + ".heap")
    with open(path, "w") as f:
        f.write(lib.run([exe]).stdout)
    return path


def top(dump, cache, env=None):
    """(the table's lines naming functions, stderr) of a top of dump."""
    proc = lib.run_tool("top", "--lines", "--unit", "B", "--nodefraction", "0", dump,
                        env=env or env_with(HEAPTRACE_CACHE=cache))
    return lib.parse_top(proc.stdout)[0], proc.stderr


def counting_wrapper(directory, tool, log):
    """A wrapper script for tool in directory that logs each call to log."""
    wrapper = os.path.join(directory, tool)
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\necho "$*" >> {log}\nexec {shutil.which(tool)} "$@"\n')
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IEXEC)


def calls(log):
    if not os.path.exists(log):
        return []
    with open(log) as f:
        lines = f.read().splitlines()
    os.unlink(log)
    return lines


def test_second_report_answers_from_the_cache():
    d = lib.tmpdir()
    log = os.path.join(d, "calls")
    for tool in ("eu-addr2line", "c++filt"):
        counting_wrapper(d, tool, log)
    path = d + os.pathsep + os.environ["PATH"]
    # C (DWARF through eu-addr2line) and -O2 C++ with inlined frames.
    for program in ("sym_pie", "sym_inline", "sym_shlib"):
        dump = self_dump(lib.prog(program), d)
        uncached, _ = top(dump, None, env_with(HEAPTRACE_CACHE="off", PATH=path))
        first_calls = calls(log)
        cache = fresh_cache()
        first, err1 = top(dump, cache, env_with(HEAPTRACE_CACHE=cache, PATH=path))
        if calls(log) != first_calls:
            raise AssertionError(f"{program}: a cold cache ran other tools than {first_calls}")
        second, err2 = top(dump, cache, env_with(HEAPTRACE_CACHE=cache, PATH=path))
        again = calls(log)
        if again or not first_calls:
            raise AssertionError(f"{program}: tools run with the cache warm: {again} "
                                 f"(cold: {first_calls})")
        if not (uncached == first == second) or err1 or err2:
            raise AssertionError(f"{program}: {uncached} / {first} / {second} "
                                 f"({err1!r}, {err2!r})")
    # One cache for two programs: each file's entry holds the demangled forms
    # of its own symbols only, not every name the command has seen.
    # (Traced C++ programs: their dumps hold libstdc++'s and libc's frames.)
    cache = fresh_cache()
    for program in ("tool_new", "cxx_new"):
        _, dumps = lib.run_traced([lib.prog(program)], dump_dir=lib.tmpdir(), rate=1)
        top(dumps[-1], cache)
    held = entry_names(cache)
    if not any(demangled for _, demangled in held.values()):
        raise AssertionError(f"no entry holds a demangled name: {sorted(held)}")
    for entry, (own, demangled) in held.items():
        if not demangled <= own:
            raise AssertionError(f"{entry} holds other files' names: {demangled - own}")


def entry_names(cache):
    """{entry file: (its answers' symbol names, the names it holds demangled
    forms of)}, read as symcache.py writes an entry: a 19-byte header (magic,
    CRC-32, length), then marshal's (key, ((vaddr, frames, symbol), ...),
    {name: demangled})."""
    held = {}
    directory = os.path.join(cache, "symbols")
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), "rb") as f:
            _, answers, demangled = marshal.loads(f.read()[struct.calcsize("<7sIQ"):])
        held[name] = ({symbol for _, _, symbol in answers if symbol}, set(demangled))
    return held


def build(src, exe, site, build_id, stripped):
    cmd = ["cc", "-std=c11", "-O0", "-g", "-fPIE", "-pie", "-I", SYM_SRC, f"-DSITE={site}",
           "-Wl,--build-id" + ("" if build_id else "=none"), "-o", exe, src]
    if stripped:
        cmd.insert(1, "-rdynamic")
    lib.run(cmd)
    if stripped:
        lib.run(["strip", exe])


def test_rebuilt_binary_at_the_same_path_gets_its_new_names():
    d = lib.tmpdir()
    src = os.path.join(d, "rebuilt.c")
    with open(src, "w") as f:
        f.write(REBUILT_SRC)
    for build_id in (True, False):
        for stripped in (False, True):
            what = f"build id {build_id}, stripped {stripped}"
            cache = fresh_cache()
            exe = os.path.join(d, "rebuilt")
            sizes = []
            for site in ("alpha_site", "omega_site"):
                build(src, exe, site, build_id, stripped)
                sizes.append(os.path.getsize(exe))
                dump = self_dump(exe, d)
                for run in ("cold", "warm"):
                    nodes, err = top(dump, cache)
                    named = {n.split()[0] for n in nodes if n.split()[0].endswith("_site")}
                    if named != {site}:
                        raise AssertionError(f"{what}, {run}: {site} built, {named} shown "
                                             f"in {nodes} ({err!r})")
            if sizes[0] != sizes[1]:
                raise AssertionError(f"{what}: the two builds differ in size {sizes}: "
                                     "the test is meant to give the cache the same size")


def test_debug_file_found_later_names_the_stripped_sites():
    d = lib.tmpdir()
    exe = os.path.join(d, "sym_stripped")
    shutil.copy(lib.prog("sym_stripped"), exe)
    dump = self_dump(exe, d)
    cache = fresh_cache()
    before, _ = top(dump, cache)
    if any(n.startswith("stripped_static_one") for n in before):
        raise AssertionError(f"named without its debug file: {before}")
    shutil.copy(lib.prog("sym_stripped") + ".debug", d)
    after, err = top(dump, cache)
    if not any(n.startswith("stripped_static_one ") for n in after) or err:
        raise AssertionError(f"not named with its debug file beside it: {after} ({err!r})")


def test_unwritable_cache_costs_one_line_and_no_name():
    d = lib.tmpdir()
    dump = self_dump(lib.prog("sym_pie"), d)
    expect, _ = top(dump, None, env_with(HEAPTRACE_CACHE="off"))
    blocker = os.path.join(d, "a-file")
    with open(blocker, "w"):
        pass
    cache = os.path.join(blocker, "cache")
    for _ in range(2):
        nodes, err = top(dump, cache)
        lines = err.splitlines()
        if nodes != expect or len(lines) != 1 or cache not in lines[0] \
                or "HEAPTRACE_CACHE" not in lines[0]:
            raise AssertionError(f"{nodes} vs {expect}, stderr {err!r}")


def test_damaged_entry_costs_one_line_and_is_rewritten():
    d = lib.tmpdir()
    dump = self_dump(lib.prog("sym_pie"), d)
    cache = fresh_cache()
    expect, _ = top(dump, cache)
    entries = [os.path.join(cache, "symbols", n)
               for n in os.listdir(os.path.join(cache, "symbols"))]
    if len(entries) != 1 or "sym_pie" not in entries[0]:
        raise AssertionError(f"entries {entries}")
    size = os.path.getsize(entries[0])
    for damage in ("flip", "truncate", "garbage"):
        with open(entries[0], "r+b") as f:
            if damage == "flip":
                f.seek(size // 2)
                byte = f.read(1)
                f.seek(size // 2)
                f.write(bytes([byte[0] ^ 0xff]))
            elif damage == "truncate":
                f.truncate(size // 3)
            else:
                f.seek(0)
                f.write(os.urandom(64))
        nodes, err = top(dump, cache)
        lines = err.splitlines()
        if nodes != expect or len(lines) != 1 or entries[0] not in lines[0]:
            raise AssertionError(f"{damage}: {nodes} vs {expect}, stderr {err!r}")
        nodes, err = top(dump, cache)
        if nodes != expect or err:
            raise AssertionError(f"{damage}: not rewritten: {err!r}")
        size = os.path.getsize(entries[0])


def test_default_place_and_off():
    d = lib.tmpdir()
    dump = self_dump(lib.prog("sym_pie"), d)
    xdg = os.path.join(d, "xdg")
    env = env_with(XDG_CACHE_HOME=xdg)
    env.pop("HEAPTRACE_CACHE")
    lib.run_tool("top", dump, env=env)
    entries = os.listdir(os.path.join(xdg, "heaptrace", "symbols"))
    if len(entries) != 1:
        raise AssertionError(f"{entries} under $XDG_CACHE_HOME/heaptrace/symbols")
    shutil.rmtree(xdg)
    env["HEAPTRACE_CACHE"] = "off"
    lib.run_tool("top", dump, env=env)
    if os.path.exists(xdg):
        raise AssertionError(f"HEAPTRACE_CACHE=off wrote {list(os.walk(xdg))}")
    # The command's bytecode goes to the cache too, never beside its source.
    if any("__pycache__" in dirs for _, dirs, _ in os.walk(os.path.join(lib.ROOT, "tools"))):
        raise AssertionError("a __pycache__ under tools/")
