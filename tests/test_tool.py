"""The heaptrace command on real dumps from the preload: exact rate-1 values
per function from tests/progs/tool_known.c for all four sample types, diffs,
the pprof export read back by `go tool pprof`, graphs, flame graphs, and the
run and dump verbs."""
import os
import re
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import lib
from test_tool_input import KNOWN, TYPES

# tool_known's first dump (phase 1): before churn_release and grow.
KNOWN_PHASE1 = dict(KNOWN, churn=(20, 40960, 20, 40960), grow=(0, 0, 0, 0))
MID_CUM = {t: KNOWN["mid"][i] + KNOWN["leaf_big"][i] for i, t in enumerate(TYPES)}

_dumps = {}


def known_dumps():
    """(phase-1 dump, exit dump) of tool_known at HEAPTRACE_RATE=1, made
    once per test run."""
    if not _dumps:
        d = lib.tmpdir()
        _, dumps = lib.run_traced([lib.prog("tool_known"), "two-dumps"], dump_dir=d, rate=1)
        if len(dumps) != 2:
            raise AssertionError(f"expected 2 dumps, got {dumps}")
        _dumps["pair"] = tuple(dumps)
    return _dumps["pair"]


def top(*args):
    text = lib.run_tool("top", "--unit", "B", "--nodefraction", "0", *args).stdout
    return lib.parse_top(text)


def test_top_exact_values_all_four_types():
    first, dump = known_dumps()
    for index, sample_type in enumerate(TYPES):
        nodes, _, _ = top("--" + sample_type, first)
        for name, values in KNOWN_PHASE1.items():
            if nodes.get(name, (0,))[0] != values[index]:
                raise AssertionError(f"phase 1 {sample_type} flat {name}: {nodes.get(name)} "
                                     f"!= {values[index]}")
        nodes, order, legend = top("--" + sample_type, dump)
        for name, values in KNOWN.items():
            if nodes.get(name, (None,))[0] != values[index]:
                raise AssertionError(f"{sample_type} flat {name}: {nodes.get(name)} != "
                                     f"{values[index]}")
        if nodes["mid"][1] != MID_CUM[sample_type]:
            raise AssertionError(f"{sample_type} cum mid: {nodes['mid']}")
        expected_total = sum(v[index] for v in KNOWN.values())
        if nodes["main"][1] != expected_total:
            raise AssertionError(f"{sample_type} cum main {nodes['main']} != {expected_total}")
        if f"Type: {sample_type}" not in legend:
            raise AssertionError(legend)
        # Sorted by flat, largest first; the allocator is never a node.
        flats = [nodes[n][0] for n in order]
        if flats != sorted(flats, reverse=True):
            raise AssertionError(f"not sorted by flat: {order}")
        if any(n in nodes for n in ("malloc", "calloc", "free")):
            raise AssertionError(f"allocator frames shown: {order}")


def test_allocator_entry_points_are_not_callers():
    d = lib.tmpdir()
    _, dumps = lib.run_traced([lib.prog("tool_new")], dump_dir=d, rate=1)
    nodes, _, _ = top(dumps[-1])
    objects, _, _ = top("--inuse_objects", dumps[-1])
    expect = {"make_objects()": (3016, 5), "make_aligned()": (7168, 3),
              "make_vector()": (24, 1)}
    for name, (size, count) in expect.items():
        if nodes.get(name, (None,))[0] != size or objects[name][0] != count:
            raise AssertionError(f"{name}: {nodes.get(name)} {objects.get(name)}")
    if nodes["make_vector()"][1] != 424:
        raise AssertionError(f"make_vector cum {nodes['make_vector()']}")
    for name in nodes:
        if re.match(r"(operator new|posix_memalign|aligned_alloc|memalign|malloc)", name) \
                or "allocator<int> >::allocate" in name:
            raise AssertionError(f"allocator frame {name} shown in {list(nodes)}")


def test_build_id_checked_under_another_path():
    """The preload names libc /lib/x86_64-linux-gnu/libc.so.6, the maps
    /usr/lib/...: a wrong build id must still be caught."""
    _, dump = known_dumps()
    with open(dump) as f:
        text = f.read()
    libc = re.search(r"^# build_id: (\S*/libc\.so\.6) ([0-9a-f]+)$", text, re.M)
    if not libc:
        raise AssertionError("no libc build id in the dump")
    wrong = os.path.join(lib.tmpdir(), "wrong-libc.heap")
    with open(wrong, "w") as f:
        f.write(text.replace(libc.group(0), f"# build_id: {libc.group(1)} {'0' * 40}"))
    proc = lib.run_tool("top", "--unit", "B", "--nodefraction", "0", wrong)
    nodes, _, _ = lib.parse_top(proc.stdout)
    warnings = proc.stderr.splitlines()
    if len(warnings) != 1 or "libc.so.6: build id" not in warnings[0]:
        raise AssertionError(f"warnings: {warnings}")
    if "__libc_start_main_impl" in nodes or not any(n.startswith("libc.so.6+0x") for n in nodes):
        raise AssertionError(f"libc frames symbolized despite the mismatch: {list(nodes)}")
    if nodes["leaf_big"][0] != 196608:
        raise AssertionError(nodes)


def test_incomplete_dump_is_said():
    _, dump = known_dumps()
    with open(dump) as f:
        text = f.read()
    edited = os.path.join(lib.tmpdir(), "incomplete.heap")
    with open(edited, "w") as f:
        f.write(text.replace("# dropped_live_map: 0\n", "# dropped_live_map: 7\n# error: "
                             "unwinder failed\n"))
    stderr = lib.run_tool("top", edited).stderr.splitlines()
    if stderr != [f"heaptrace: warning: {edited}: the tracer stopped sampling: unwinder failed",
                  f"heaptrace: warning: {edited}: 7 samples dropped because the live map "
                  "was full (counted as allocated, not in use; raise HEAPTRACE_LIVE)"]:
        raise AssertionError(stderr)
    if lib.run_tool("top", dump).stderr:
        raise AssertionError("warnings for a complete dump")


def test_top_options():
    _, dump = known_dumps()
    nodes, order, _ = top("--cum", dump)
    cums = [nodes[n][1] for n in order]
    if cums != sorted(cums, reverse=True):
        raise AssertionError(f"--cum not sorted by cum: {order}")
    nodes, order, legend = top("-n", "2", dump)
    if order != ["leaf_big", "grow"] or not any(l.startswith("Showing top 2 nodes out of")
                                                 for l in legend):
        raise AssertionError(f"-n 2: {order} {legend}")
    nodes, _, _ = top("--focus", "^mid$", dump)
    if set(n for n, v in nodes.items() if v[0]) != {"mid", "leaf_big"}:
        raise AssertionError(f"--focus mid: {nodes}")
    nodes, _, _ = top("--ignore", "leaf_big", dump)
    if "leaf_big" in nodes or nodes["mid"] != (2048, 2048):
        raise AssertionError(f"--ignore leaf_big: {nodes}")
    nodes, _, _ = top("--lines", dump)
    with open(os.path.join(lib.ROOT, "tests", "progs", "tool_known.c")) as f:
        grow_line = next(i for i, l in enumerate(f, 1) if "malloc(4096)" in l)
    name = f"grow {os.path.join(lib.ROOT, 'tests', 'progs', 'tool_known.c')}:{grow_line}"
    if nodes.get(name) != (32768, 32768):
        raise AssertionError(f"--lines: no {name!r} in {list(nodes)}")
    # pprof's default cutoff drops nodes at or below 0.5% of the total.
    text = lib.run_tool("top", dump).stdout
    if "192kB 78.12% 78.12%      192kB 78.12%  leaf_big" not in text:
        raise AssertionError(text)


def test_diff_known_deltas():
    first, last = known_dumps()
    expect = {"inuse_space": {"grow": 32768, "churn": -30720},
              "inuse_objects": {"grow": 8, "churn": -15},
              "alloc_space": {"grow": 32768}, "alloc_objects": {"grow": 8}}
    for sample_type, deltas in expect.items():
        text = lib.run_tool("diff", "--" + sample_type, "--unit", "B", "--nodefraction", "0",
                            "--base", first, last).stdout
        nodes, order, legend = lib.parse_top(text)
        flats = {n: v[0] for n, v in nodes.items() if v[0]}
        if flats != deltas:
            raise AssertionError(f"diff {sample_type}: {flats} != {deltas}")
        if nodes["main"][1] != sum(deltas.values()):
            raise AssertionError(f"diff {sample_type} main: {nodes['main']}")
        if order[0] != "grow":
            raise AssertionError(f"largest growth not first: {order}")
        same = lib.run_tool("top", "--" + sample_type, "--unit", "B", "--nodefraction", "0",
                            "--base", first, last).stdout
        if same != text:
            raise AssertionError("top --base differs from diff")


def test_pprof_export_read_by_go_pprof_without_binary():
    d = lib.tmpdir()
    exe = os.path.join(d, "tool_known")
    shutil.copy(lib.prog("tool_known"), exe)
    _, dumps = lib.run_traced([exe], dump_dir=d, rate=1)
    out = os.path.join(d, "out.pb.gz")
    lib.run_tool("pprof", dumps[-1], "-o", out)
    tops = [top("--" + t, dumps[-1]) for t in ("alloc_objects", "alloc_space",
                                               "inuse_objects", "inuse_space")]
    os.unlink(exe)
    types, samples = lib.pprof_raw(out)
    if [t.replace("[dflt]", "") for t in types] != [
            "alloc_objects/count", "alloc_space/bytes", "inuse_objects/count",
            "inuse_space/bytes"]:
        raise AssertionError(f"sample types: {types}")
    raw = lib.go_pprof("-raw", out)
    if "PeriodType: space bytes" not in raw or "Period: 1\n" not in raw:
        raise AssertionError(raw[:400])
    for index, (nodes, _, legend) in enumerate(tops):
        sample_type = types[index].split("/")[0]
        total = sum(v[index] for v, _ in samples)
        if f"of {total}{'B' if 'space' in sample_type else ''} total" not in legend[-1]:
            raise AssertionError(f"{sample_type}: pprof total {total}, top says {legend}")
        for name, values in KNOWN.items():
            flat = sum(v[index] for v, names in samples if names and names[0] == name)
            if flat != nodes[name][0]:
                raise AssertionError(f"{sample_type} {name}: pprof {flat}, top {nodes[name]}")
    pprof_names = {n for _, names in samples for n in names}
    top_names = set(tops[3][0])
    if pprof_names != top_names:
        raise AssertionError(f"names differ: pprof {pprof_names}, top {top_names}")
    # Build ids travel in the mappings.
    build_id = lib.dump_meta(dumps[-1])["build_id"]
    exe_id = next(b.split()[1] for b in build_id if b.startswith(exe + " "))
    if exe_id not in raw:
        raise AssertionError(f"build id {exe_id} not in mappings")


def test_top_matches_go_pprof_on_sampled_dump():
    d = lib.tmpdir()
    _, dumps = lib.run_traced([lib.prog("tool_known")], dump_dir=d, rate=8192)
    ours, _, _ = top(dumps[-1])
    text = lib.go_pprof("-top", "-nodefraction=0", "-unit=B", "-symbolize=local",
                        lib.prog("tool_known"), dumps[-1])
    theirs, _, _ = lib.parse_top(text)
    # Which functions were sampled varies; leaf_big (64 KiB at 8 KiB) always is.
    if "leaf_big" not in theirs:
        raise AssertionError(f"leaf_big not sampled: {text}")
    for name, values in theirs.items():
        if not name.startswith("[") and ours.get(name) != values:
            raise AssertionError(f"{name}: ours {ours.get(name)}, pprof {values}")


def test_graph_outputs():
    _, dump = known_dumps()
    d = lib.tmpdir()
    dot = os.path.join(d, "g.dot")
    lib.run_tool("graph", dump, "-o", dot)
    with open(dot) as f:
        text = f.read()
    for name in KNOWN:
        if f'label="{name}\\n' not in text:
            raise AssertionError(f"{name} not a node in {text}")
    if "N" not in text or "->" not in text or not text.startswith("digraph"):
        raise AssertionError(text)
    svg = os.path.join(d, "g.svg")
    lib.run_tool("graph", "--alloc_space", dump, "-o", svg)
    texts = [t.text for t in ET.parse(svg).iter("{http://www.w3.org/2000/svg}text")]
    for name in KNOWN:
        if name not in texts:
            raise AssertionError(f"{name} not in the SVG")
    if "Type: alloc_space" not in texts:
        raise AssertionError("no legend in the SVG")
    # Pruning is said in the legend.
    lib.run_tool("graph", dump, "-o", dot, "--nodefraction", "0.1")
    with open(dot) as f:
        if "Dropped 2 nodes (cum <= 24.58kB)" not in f.read():
            raise AssertionError("no pruning legend")


def test_flame_svg_and_folded():
    _, dump = known_dumps()
    nodes, _, _ = top(dump)
    total = nodes["main"][1]
    folded = lib.run_tool("flame", "--folded", dump).stdout.splitlines()
    if sum(int(l.rsplit(" ", 1)[1]) for l in folded) != total:
        raise AssertionError(f"folded lines do not sum to {total}: {folded}")
    if not any(l.endswith("main;mid;leaf_big 196608") for l in folded):
        raise AssertionError(folded)
    d = lib.tmpdir()
    svg = os.path.join(d, "f.svg")
    lib.run_tool("flame", "--alloc_objects", dump, "-o", svg)
    ns = "{http://www.w3.org/2000/svg}"
    frames = [g for g in ET.parse(svg).iter(ns + "g") if g.get("class") == "fr"]
    root = [g for g in frames if g.get("data-d") == "0"]
    level1 = [g for g in frames if g.get("data-d") == "1"]
    alloc_total = sum(v[2] for v in KNOWN.values())
    if len(root) != 1 or int(root[0].get("data-v")) != alloc_total:
        raise AssertionError(f"root frame {[r.attrib for r in root]} != {alloc_total}")
    if sum(int(g.get("data-v")) for g in level1) != alloc_total:
        raise AssertionError("level-1 values do not add up to the total")
    width = sum(float(g.find(ns + "rect").get("width")) for g in level1)
    if abs(width - float(root[0].find(ns + "rect").get("width"))) > 0.01:
        raise AssertionError(f"level-1 widths {width} != root width")
    titles = [g.find(ns + "title").text for g in frames]
    if "churn (20, 44.44%)" not in titles:
        raise AssertionError(f"no hover text for churn: {titles}")


def test_run_verb():
    d = lib.tmpdir()
    proc = lib.run_tool("run", "--rate", "1", "--dir", d, "--", lib.prog("tool_known"))
    dumps = lib.dumps_in(d)
    if len(dumps) != 1:
        raise AssertionError(f"dumps: {dumps}")
    # The command replaces the tool: same pid, which the tool announces.
    pid = os.path.basename(dumps[0]).split(".")[1]
    if f"pid {pid}: dumps go to {d}/heaptrace.{pid}.NNNN.heap" not in proc.stderr:
        raise AssertionError(f"{dumps} {proc.stderr!r}")
    nodes, _, _ = top(dumps[0])
    if nodes["keep_small"][0] != 10000:
        raise AssertionError(nodes)
    proc = lib.run_tool("run", "--", "sh", "-c", "exit 3", check=False)
    if proc.returncode != 3:
        raise AssertionError(f"exit status {proc.returncode}, expected 3")
    proc = lib.run_tool("run", "--", "/nonexistent/cmd", check=False)
    if proc.returncode != 1 or "/nonexistent/cmd" not in proc.stderr.splitlines()[-1]:
        raise AssertionError(f"{proc.returncode} {proc.stderr!r}")


def _sleeper(env, command=(), args=()):
    proc = subprocess.Popen([*command, lib.prog("tool_sleeper"), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise AssertionError("tool_sleeper did not start")
    return proc


def test_dump_traced_process():
    d = lib.tmpdir()
    # Started by `heaptrace run`, as a user would: the pid is the program's.
    proc = _sleeper(dict(os.environ, HEAPTRACE_INTERVAL="0"),
                    ["python3", lib.TOOL, "run", "--rate", "1", "--dir", d, "--"])
    try:
        result = lib.run_tool("dump", str(proc.pid), "--timeout", "20")
        path = result.stdout.strip()
        if os.path.dirname(path) != d or not os.path.basename(path).startswith(
                f"heaptrace.{proc.pid}."):
            raise AssertionError(f"dump printed {path!r}")
        nodes, _, _ = top(path)
        if nodes.get("hold", (0,))[0] != 160000:
            raise AssertionError(f"hold: {nodes.get('hold')}")
        second = lib.run_tool("dump", str(proc.pid)).stdout.strip()
        if second == path or not os.path.exists(second):
            raise AssertionError(f"second dump {second}")
        if proc.poll() is not None:
            raise AssertionError("the traced process died")
    finally:
        proc.kill()
        proc.wait()


def test_dump_refuses_untraced_process():
    proc = _sleeper(dict(os.environ))
    try:
        result = lib.run_tool("dump", str(proc.pid), check=False)
        time.sleep(0.2)
        if result.returncode != 1 or "libheaptrace" not in result.stderr \
                or "no signal sent" not in result.stderr:
            raise AssertionError(f"{result.returncode} {result.stderr!r}")
        if proc.poll() is not None:
            raise AssertionError("the untraced process died")
    finally:
        proc.kill()
        proc.wait()
    result = lib.run_tool("dump", "999999999", check=False)
    if result.returncode != 1 or "no process" not in result.stderr:
        raise AssertionError(result.stderr)


def test_dump_without_the_signal():
    """The control socket needs no signal: a process with none, or one
    whose SIGUSR1 would kill it, still dumps, and lives on."""
    for config, args in (({"signal": "none"}, []), ({}, ["reset-usr1"])):
        d = lib.tmpdir()
        proc = _sleeper(lib.traced_env(d, **config), args=args)
        try:
            path = lib.run_tool("dump", str(proc.pid)).stdout.strip()
            # (resetting SIGUSR1 is taking it: a signal_lost dump comes first)
            if lib.dumps_in(d)[-1] != path or lib.dump_meta(path)["trigger"] != "control":
                raise AssertionError(f"{config} {args}: {path} {lib.dumps_in(d)}")
            time.sleep(0.2)
            if proc.poll() is not None:
                raise AssertionError(f"{config} {args}: the process died")
        finally:
            proc.kill()
            proc.wait()


def test_dump_when_the_program_took_the_signal():
    d = lib.tmpdir()
    proc = _sleeper(lib.traced_env(d), args=["own-usr1"])
    try:
        time.sleep(0.3)  # the preload's signal_lost dump is written at once
        triggers = [lib.dump_meta(f)["trigger"] for f in lib.dumps_in(d)]
        if triggers != ["signal_lost"]:
            raise AssertionError(triggers)
        status = lib.run_tool("status", str(proc.pid)).stdout
        if "signal_state: lost" not in status or "signal: 10" not in status:
            raise AssertionError(status)
        path = lib.run_tool("dump", str(proc.pid)).stdout.strip()
        if lib.dump_meta(path)["trigger"] != "control":
            raise AssertionError(path)
        proc.send_signal(signal.SIGUSR1)  # the program's handler, not a dump
        time.sleep(0.2)
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        # The program saw the one SIGUSR1 sent here, none from the tool.
        if out.strip() != "usr1 1" or proc.returncode != 0:
            raise AssertionError(f"{out!r} {proc.returncode}")
        triggers = [lib.dump_meta(f)["trigger"] for f in lib.dumps_in(d)]
        if triggers != ["signal_lost", "control", "exit"]:
            raise AssertionError(triggers)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_installed_tool_finds_package_and_preload():
    prefix = lib.tmpdir("ht-prefix-")
    lib.run(["make", "-s", "-C", lib.ROOT, "install", f"PREFIX={prefix}"], timeout=300)
    tool = os.path.join(prefix, "bin", "heaptrace")
    if not os.path.islink(tool):
        raise AssertionError(f"{tool} is not the symlink make install makes")
    d = lib.tmpdir()
    lib.run([tool, "run", "--rate", "1", "--dir", d, "--", lib.prog("tool_known")],
            cwd=lib.tmpdir())
    dumps = lib.dumps_in(d)
    with open(dumps[-1]) as f:
        maps = f.read().split("MAPPED_LIBRARIES:\n")[1]
    if os.path.join(prefix, "lib", "libheaptrace.so") not in maps:
        raise AssertionError("the installed tool did not preload the installed library")
    nodes, _, _ = lib.parse_top(lib.run([tool, "top", "--unit", "B", dumps[-1]]).stdout)
    if nodes["leaf_big"][0] != 196608:
        raise AssertionError(nodes)
