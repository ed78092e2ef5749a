"""C++ under heaptrace: every form of operator new and delete (plain,
nothrow, aligned, sized; scalar and array) is interposed, and `new`,
`new[]`, std::vector and std::string sites are attributed to their
demangled functions with exact counts at rate 1 (tests/progs/cxx_new.cc),
whether the next operator new calls malloc (libstdc++'s: counted once) or
not (tcmalloc's, preloaded after heaptrace). `new` that fails still throws
std::bad_alloc through heaptrace, its new_handler is called as often, and
tracing goes on after. A C program that loads C++ later gets libstdc++'s
behaviour from heaptrace's own forms (tests/progs/cxx_late/). C++
exceptions behave the same with and without the preload, also across a
dlopen()ed library (tests/progs/cxx_throw/), because libunwind is loaded
privately and never takes over the host's unwinder."""
import collections
import os
import re

import lib

TYPES = ("alloc_objects", "alloc_space", "inuse_objects", "inuse_space")
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4"
THROW_TRANSCRIPT = ("caught new\ncaught new[]\ncaught aligned new\ncaught aligned new[]\n"
                    "caught after 3 new_handler calls\nnothrow null null\n")


def cxx_new_truth(stdout):
    """{function: [(alloc objects, alloc bytes, in-use objects, in-use
    bytes) of each of its stacks]} for tests/progs/cxx_new.cc run with
    "throw", with the sizes it printed."""
    sizes = dict(re.findall(r"^(sizeof_\w+) (\d+)$", stdout, re.M))
    widget, kept = int(sizes["sizeof_widget"]), int(sizes["sizeof_kept"])
    aligned = int(sizes["sizeof_aligned"])
    return {
        "make_widgets()": [(7, 7 * widget, 7, 7 * widget)],
        "make_buffers()": [(3, 3000, 3, 3000)],
        "shapes::Store::fill(int)": [(1, 4000, 1, 4000)],
        "make_strings()": [(5, 1005, 5, 1005)],
        "churn()": [(50, 50 * 64, 0, 0)],
        "make_aligned()": [(4, 4 * aligned, 4, 4 * aligned),
                           (2, 4 * aligned, 2, 4 * aligned)],
        "make_nothrow()": [(5, 5 * widget, 5, 5 * widget), (2, 600, 2, 600),
                           (3, 3 * aligned, 3, 3 * aligned),
                           (1, 3 * aligned, 1, 3 * aligned)],
        "delete_forms()": [(1, n, 0, 0) for n in (40, 48, 64, 80, 96, 112, 120,
                                                  128, 144, 160, 176, 192)],
        "after_throw()": [(2, 2 * widget, 2, 2 * widget)],
        "main": [(1, kept, 1, kept)],
    }


def site_of(stack, sites):
    """The innermost frame of a stack (innermost first) that is a site."""
    return next((f for f in stack if f in sites), None)


def loader_samples(dump):
    """The samples (values in TYPES order) of allocations made by the
    constructors the loader ran before main (libstdc++'s emergency
    exception pool), which heaptrace traces from its first allocation
    call on: their outermost frame is in ld.so (_dl_start_user)."""
    loader = [(lo, hi) for lo, hi, _, path in lib.dump_maps(dump) if "/ld-linux" in path]
    return collections.Counter(
        (ac, ab, c, b) for c, b, ac, ab, addrs in lib.dump_samples(dump)
        if addrs and any(lo <= addrs[-1] < hi for lo, hi in loader))


def check_sites(dump, exe, truth):
    """Per site, all four values through google-pprof, which demangles;
    every stack is one of truth's, and go tool pprof reads exactly the
    stacks truth lists (its C++ names are DWARF's short ones, or none, so
    it is compared stack by stack without names). Stacks start at the
    caller of new: no frame is operator new, delete or malloc. The other
    allocations are the exception object of a failing new, which
    libstdc++ mallocs while it throws (freed again, never in use), and
    those of the C++ runtime's constructors, made before main and traced
    as the loader's (loader_samples): set aside by their stacks' outermost
    frame, and then the same in both readers."""
    views = lib.google_pprof_stacks(dump, exe)
    got = {site: [0, 0, 0, 0] for site in truth}
    thrown = {kind: 0 for kind in TYPES}
    early = loader_samples(dump)
    early_seen = [0, 0, 0, 0]
    for k, kind in enumerate(TYPES):
        for stack, value in views[kind].items():
            if stack[0].startswith("__cxa_allocate_exception"):
                thrown[kind] += value
                continue
            if stack[-1] == "_dl_start_user":
                early_seen[k] += value
                continue
            if any(re.match(r"(operator (new|delete)|malloc$|_Zn|_Zd)", f) for f in stack):
                raise AssertionError(f"heaptrace's or the allocator's frame in {stack}")
            site = site_of(stack, truth)
            if site is None:
                raise AssertionError(f"a stack outside the known sites: {stack}")
            got[site][k] += value
    for site, stacks in truth.items():
        want = [sum(values) for values in zip(*stacks)]
        if got[site] != want:
            raise AssertionError(f"{site}: {dict(zip(TYPES, got[site]))}, want "
                                 f"{dict(zip(TYPES, want))}")
    if thrown["inuse_objects"] or thrown["inuse_space"]:
        raise AssertionError(f"exception objects in use: {thrown}")
    if early_seen != [sum(v[k] * n for v, n in early.items()) for k in range(4)]:
        raise AssertionError(f"constructors' allocations: {early_seen} in google-pprof, "
                             f"{sorted(early.elements())} in the dump")
    types, samples = lib.pprof_raw(dump, exe)
    if [t.split("/")[0] for t in types] != list(TYPES):
        raise AssertionError(f"go tool pprof sample types: {types}")
    # libstdc++ is stripped: go tool pprof has no name for the exception
    # objects' stacks; they are what is left over, as google-pprof counted
    theirs = collections.Counter(tuple(values) for values, _ in samples)
    want = collections.Counter(values for stacks in truth.values() for values in stacks)
    want += early
    extra = theirs - want
    if want - theirs or sum(extra.values()) != thrown["alloc_objects"] or \
            sum(v[1] * n for v, n in extra.items()) != thrown["alloc_space"] or \
            any(v[0] != 1 or v[2:] != (0, 0) for v in extra):
        raise AssertionError(f"go tool pprof samples {sorted(theirs.elements())}, want "
                             f"{sorted(want.elements())} and exception objects {thrown}")
    lib.assert_readers_agree(dump, exe, google=False)


def run_cxx_new(preload, **config):
    exe = lib.prog("cxx_new")
    d = lib.tmpdir()
    env = lib.traced_env(d, **config)
    env["LD_PRELOAD"] = preload
    proc = lib.run([exe, "throw"], env=env, timeout=60)
    return exe, proc, lib.dumps_in(d)


def test_cxx_new_sites_by_name():
    """libstdc++'s operator new calls malloc: each new counted once."""
    exe, proc, dumps = run_cxx_new(lib.PRELOAD, rate=1)
    if len(dumps) != 1:
        raise AssertionError(f"expected one exit dump, got {dumps}")
    check_sites(dumps[0], exe, cxx_new_truth(proc.stdout))


def test_cxx_new_with_tcmalloc_after_heaptrace():
    """tcmalloc's operator new does not call malloc: heaptrace's forms
    record it all the same."""
    if not os.path.exists(TCMALLOC):
        raise lib.Skip(f"{TCMALLOC} is not installed (libgoogle-perftools-dev)")
    exe, proc, dumps = run_cxx_new(f"{lib.PRELOAD} {TCMALLOC}", rate=1)
    maps = "".join(path for _, _, _, path in lib.dump_maps(dumps[-1]))
    if "libtcmalloc" not in maps:
        raise AssertionError("tcmalloc is not in the traced process")
    check_sites(dumps[-1], exe, cxx_new_truth(proc.stdout))


def test_new_of_zero_bytes_recorded_once():
    """operator new(0) is one object of 0 bytes, though libstdc++'s new mallocs
    1 byte for it: that malloc is not sampled again (at rate 1 it was, and
    the block was recorded twice)."""
    exe = lib.prog("cxx_new")
    _, dumps = lib.run_traced([exe, "empty"], rate=1)
    early = loader_samples(dumps[-1])
    sites = [((c, b, ac, ab), lib.function_at(dumps[-1], addrs[0]))
             for c, b, ac, ab, addrs in lib.dump_samples(dumps[-1])
             if (ac, ab, c, b) not in early]
    if sites != [((4, 0, 4, 0), "_Z10make_emptyv")]:
        raise AssertionError(f"all but the constructors': {sites}")
    # The line says 0: 0 for them, which pprof's Perl readers can divide
    # by (they stop at "Illegal division by zero" on 4: 0), and the next
    # line gives the count.
    with open(dumps[-1]) as f:
        text = f.read()
    if not re.search(r"^0: 0 \[0: 0\] @ .*\n# zero_byte_objects: 4 4$", text, re.M):
        raise AssertionError("no 0: 0 line with '# zero_byte_objects: 4 4' after it")
    top = lib.parse_top(lib.run_tool("top", "--inuse_objects", "--nodefraction", "0",
                                     dumps[-1]).stdout)[0]
    if top.get("make_empty()", (None,))[0] != 4:
        raise AssertionError(f"heaptrace top: {top}")
    for reader in ("google-pprof", "jeprof"):
        proc = lib.run([reader, "--text", "--inuse_objects", exe, dumps[-1]], check=False)
        if proc.returncode or "division" in proc.stderr:
            raise AssertionError(f"{reader}: exit {proc.returncode}: {proc.stderr[-500:]}")


def test_bad_alloc_still_thrown():
    """The transcript of failing news is the untraced one, with and without
    tcmalloc, at rate 1 and at the default rate (at rate 1 the sites test
    above checks what is recorded after the throws)."""
    exe = lib.prog("cxx_new")
    preloads = [("", lib.PRELOAD)]
    if os.path.exists(TCMALLOC):
        preloads.append((TCMALLOC, f"{lib.PRELOAD} {TCMALLOC}"))
    for plain_preload, traced_preload in preloads:
        env = dict(os.environ, LD_PRELOAD=plain_preload)
        plain = lib.run([exe, "throw"], env=env, timeout=60)
        if not plain.stdout.startswith(THROW_TRANSCRIPT):
            raise AssertionError(f"untraced under {plain_preload!r}: {plain.stdout!r}")
        for config in ({"rate": 1}, {}):
            _, traced, _ = run_cxx_new(traced_preload, **config)
            if traced.stdout != plain.stdout or traced.stderr != plain.stderr:
                raise AssertionError(f"under {traced_preload!r} {config}: stdout "
                                     f"{traced.stdout!r}, stderr {traced.stderr[-500:]!r}; "
                                     f"untraced {plain.stdout!r}")


def test_cxx_loaded_after_start_by_a_c_program():
    """No operator new after heaptrace at start: its forms allocate with
    malloc, throw bad_alloc with the library's own runtime (loaded
    RTLD_LOCAL) and call its new_handler, as libstdc++ would."""
    exe = lib.prog("cxx_late")
    proc, dumps = lib.run_traced([exe, os.path.join(lib.PROGS, "libcxx_late.so")],
                                 rate=1, timeout=60)
    if proc.stdout != "late_run 15\n" or proc.stderr:
        raise AssertionError(f"stdout {proc.stdout!r} stderr {proc.stderr[-500:]!r}")
    # go tool pprof names these plain functions from DWARF, and is quicker
    # than symbolizing the whole process with google-pprof
    truth = {"late_widgets": (3, 216, 3, 216), "late_arrays": (4, 2000, 0, 0),
             "late_aligned": (2, 512, 2, 512)}
    _, samples = lib.pprof_raw(dumps[-1])
    got = dict.fromkeys(truth, (0, 0, 0, 0))
    for values, names in samples:
        if names and names[0] in truth:
            got[names[0]] = tuple(a + b for a, b in zip(got[names[0]], values))
    if got != truth:
        raise AssertionError(f"by site {got}, want {truth}")


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
