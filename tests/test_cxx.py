"""C++ under heaptrace: `new`, `new[]`, std::vector and std::string sites
are seen through libstdc++'s malloc and attributed to their demangled
functions with exact counts at rate 1 (tests/progs/cxx_new.cc); C++
exceptions behave the same with and without the preload, also across a
dlopen()ed library (tests/progs/cxx_throw/), because libunwind is loaded
privately and never takes over the host's unwinder."""
import os
import re

import lib

TYPES = ("alloc_objects", "alloc_space", "inuse_objects", "inuse_space")


def cxx_new_truth(stdout):
    """{function: (alloc objects, alloc bytes, in-use objects, in-use bytes)}
    for tests/progs/cxx_new.cc, with the sizes it printed."""
    sizes = dict(re.findall(r"^(sizeof_\w+) (\d+)$", stdout, re.M))
    widget, kept = int(sizes["sizeof_widget"]), int(sizes["sizeof_kept"])
    return {
        "make_widgets()": (7, 7 * widget, 7, 7 * widget),
        "make_buffers()": (3, 3000, 3, 3000),
        "shapes::Store::fill(int)": (1, 4000, 1, 4000),
        "make_strings()": (5, 1005, 5, 1005),
        "churn()": (50, 50 * 64, 0, 0),
        "main": (1, kept, 1, kept),
    }


def site_of(stack, sites):
    """The innermost frame of a stack (innermost first) that is a site."""
    return next((f for f in stack if f in sites), None)


def test_cxx_new_sites_by_name():
    exe = lib.prog("cxx_new")
    proc, dumps = lib.run_traced([exe], rate=1, timeout=30)
    truth = cxx_new_truth(proc.stdout)
    if len(dumps) != 1:
        raise AssertionError(f"expected one exit dump, got {dumps}")
    dump = dumps[0]

    # Names and in-use bytes through google-pprof, which demangles (one
    # view: each run symbolizes anew, which is slow).
    got = dict.fromkeys(truth, 0)
    stacks = lib.google_pprof_stacks(dump, exe, ("inuse_space",))["inuse_space"]
    for stack, value in stacks.items():
        site = site_of(stack, truth)
        if site is None:
            raise AssertionError(f"a stack outside the known sites: {stack}")
        if not any(f.startswith("operator new") for f in stack[:3]):
            raise AssertionError(f"{site}: no operator new at the leaf: {stack}")
        got[site] += value
    for site, want in truth.items():
        if got[site] != want[3]:
            raise AssertionError(f"{site}: {got[site]} B in use, want {want[3]}")

    # go tool pprof reads the same stacks with the same exact values, object
    # counts and allocated totals too (its C++ names are DWARF's short ones,
    # or none); it prints its types in the order of TYPES.
    types, samples = lib.pprof_raw(dump, exe)
    if [t.split("/")[0] for t in types] != list(TYPES):
        raise AssertionError(f"go tool pprof sample types: {types}")
    theirs = sorted(tuple(values) for values, _ in samples)
    if theirs != sorted(truth.values()):
        raise AssertionError(f"go tool pprof samples {theirs}, want {sorted(truth.values())}")
    lib.assert_readers_agree(dump, exe, google=False)


def run_throw(traced, **config):
    exe = lib.prog("cxx_throw")
    cmd = [exe, os.path.join(lib.PROGS, "libcxx_throw.so")]
    d = lib.tmpdir()
    env = lib.traced_env(d, **config) if traced else None
    proc = lib.run(cmd, env=env, timeout=60, check=False)
    return proc, lib.dumps_in(d)


def test_cxx_exceptions_same_with_and_without_heaptrace():
    plain, _ = run_throw(False)
    if plain.returncode != 3:
        raise AssertionError(f"untraced run exited {plain.returncode}: {plain.stderr[-500:]}")
    for marker in ("caught through the library 'from the callback' code 2",
                   "caught from the library 'not a digit: x'",
                   "thread: 1000 caught", "library loop: 1000 skipped"):
        if marker not in plain.stdout:
            raise AssertionError(f"untraced transcript lacks {marker!r}:\n{plain.stdout}")
    for config in ({"rate": 1}, {}):
        proc, dumps = run_throw(True, **config)
        what = f"traced with {config or 'the default rate'}"
        if (proc.returncode, proc.stdout) != (3, plain.stdout):
            raise AssertionError(
                f"{what}: exit {proc.returncode}, transcript:\n{proc.stdout}\n"
                f"stderr: {proc.stderr[-1000:]}")
        if proc.stderr:
            raise AssertionError(f"{what}: stderr {proc.stderr[-1000:]!r}")
        # libunwind was in the process, behind the tracer's own walker.
        meta = lib.dump_meta(dumps[-1])
        if meta.get("unwinder") != "cfi+libunwind":
            raise AssertionError(f"{what}: unwinder {meta.get('unwinder')}")
        if config and int(meta["samples_total"]) < 5000:
            raise AssertionError(f"{what}: only {meta['samples_total']} samples")
        lib.go_pprof("-raw", "-symbolize=none", dumps[-1])


def test_cxx_unwinder_not_taken_over():
    needed = lib.run(["readelf", "-d", lib.PRELOAD]).stdout
    libs = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", needed)
    if not libs or any("unwind" in name for name in libs):
        raise AssertionError(f"libheaptrace.so NEEDs {libs}")
    proc, _ = run_throw(True, rate=1)
    where = dict(re.findall(r"^(\S+) in (\S+)$", proc.stdout, re.M))
    if not os.path.basename(where.get("_Unwind_RaiseException", "")).startswith("libgcc_s.so"):
        raise AssertionError(f"_Unwind_RaiseException resolves to {where}")
    if not os.path.basename(where.get("backtrace", "")).startswith("libc.so"):
        raise AssertionError(f"backtrace resolves to {where}")
