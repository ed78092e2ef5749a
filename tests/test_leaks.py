"""Leak hunting over a series of dumps: `heaptrace leaks` at the default
sampling rate finds the one steady leak of tests/progs/leak_sites.c among
churning sites of larger volume and flags none of them, also across a
restart and with --min-age; thread leaks are counted by creation stack;
`timeline` draws a well-formed SVG; `report` renders in headless Chromium
without script errors."""
import os
import re
import shutil
import socket
import subprocess
import xml.etree.ElementTree as ET

import lib
from test_tool_input import SAMPLED

CHURNING = ("churn_ring", "churn_wave", "churn_burst", "churn_temp")
ROW_RE = re.compile(r"^\s*(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+%)\s+([\d.]+)\s+([\d.]+)  (.+)$")
ARTIFACTS = os.path.join(lib.BUILD, "artifacts")

_series = {}


def leak_series():
    """The dumps of one run of leak_sites at the default rate (20 dumps,
    one per 150 ms tick), with age buckets of 1 and 2 seconds."""
    if "one" not in _series:
        d = lib.tmpdir()
        proc, dumps = lib.run_traced([lib.prog("leak_sites")], dump_dir=d, on_exit=0,
                                     ages="1,2")
        assert proc.stdout.strip() == "20 dumps, 0 failed", proc.stdout
        assert len(dumps) == 20, dumps
        _series["one"] = dumps
    return _series["one"]


def parse_leaks(text):
    """(growing stack labels in rank order, the not-flagged section's text,
    the leaked-threads line)."""
    growing, others, threads = [], "", ""
    section = None
    for line in text.splitlines():
        if line.startswith("Steadily growing stacks:"):
            section = "growing"
        elif line.startswith("Not flagged:"):
            section = "others"
        elif line.startswith("Leaked threads:"):
            section, threads = None, line
        elif not line.strip():
            section = None if section == "growing" else section
        elif section == "growing" and ROW_RE.match(line):
            growing.append(ROW_RE.match(line).group(8))
        elif section == "others":
            others += line + "\n"
    return growing, others, threads


def test_leaks_ranks_the_leak_first_and_no_churn():
    dumps = leak_series()
    out = lib.run_tool("leaks", *reversed(dumps)).stdout  # order of arguments is irrelevant
    growing, others, _ = parse_leaks(out)
    assert growing and growing[0].startswith("leak_session (leak_sites.c:"), out
    assert not any(site in label for label in growing for site in CHURNING + ("warm_cache",)), out
    # The churning sites held memory and changed; they are listed as not flagged.
    for site in ("churn_ring", "churn_wave"):
        assert re.search(r"(fluctuates|not growing) +%s" % site, others), out
    assert re.search(r"stopped growing +warm_cache", others), out
    assert "Dumps: 20 of pid " in out and "RSS: " in out, out


def test_leaks_min_age_and_top_min_age():
    """Ages are whole seconds since tracing started: an age of 1 means born
    in an earlier second, an age of 2 more than a second ago. The leak's old
    part grows steadily; the ring's blocks live a fraction of a tick (the
    wave's up to 0.75 s, so in 1-second buckets it flickers and is left out
    here); at age 2 no churning block is left."""
    dumps = leak_series()
    out = lib.run_tool("leaks", "--min-age", "1", *dumps).stdout
    growing, _, _ = parse_leaks(out)
    assert any(g.startswith("leak_session (leak_sites.c:") for g in growing), out
    assert not any(site in label for label in growing
                   for site in ("churn_ring", "churn_burst", "churn_temp")), out
    assert "Counting only blocks at least 1 s old" in out, out
    text = lib.run_tool("top", "--unit", "B", "--min-age", "2", dumps[-1]).stdout
    nodes, _, legend = lib.parse_top(text)
    assert "Type: inuse_space (only blocks at least 2 s old)" in legend, legend
    assert not any(site in nodes for site in CHURNING), text
    everything, _, _ = lib.parse_top(lib.run_tool("top", "--unit", "B", dumps[-1]).stdout)
    assert nodes["leak_session"][0] < everything["leak_session"][0], (nodes, everything)
    bad = lib.run_tool("top", "--min-age", "5", dumps[-1], check=False)
    assert bad.returncode == 1 and "not a bound of the age buckets" in bad.stderr, bad.stderr


def test_leaks_across_a_restart():
    """Two runs of the same command, one after the other: the drop at the
    restart is not shrinkage, and the leak is still found first; the
    timeline marks the restart."""
    first = leak_series()
    d = lib.tmpdir()
    _, second = lib.run_traced([lib.prog("leak_sites")], dump_dir=d, on_exit=0)
    out = lib.run_tool("leaks", *first, *second).stdout
    growing, _, _ = parse_leaks(out)
    assert "Dumps: 40 of 2 runs" in out and "1 restart" in out, out
    assert growing and growing[0].startswith("leak_session (leak_sites.c:"), out
    assert not any(site in label for label in growing for site in CHURNING), out
    svg = os.path.join(d, "timeline.svg")
    lib.run_tool("timeline", *first, *second, "-o", svg)
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    restarts = [e for e in root.iter(ns + "line") if e.get("class") == "restart"]
    pid = lib.dump_meta(second[0])["pid"]
    texts = [t.text or "" for t in root.iter(ns + "text")]
    assert len(restarts) == 1 and f"restart: pid {pid}" in texts, texts
    # Each run is its own line: RSS and heap have two polylines each.
    lines = [e.get("class") for e in root.iter(ns + "polyline")]
    assert sorted(lines) == ["heap", "heap", "rss", "rss"], lines


def test_timeline_svg():
    dumps = leak_series()
    d = lib.tmpdir()
    svg = os.path.join(d, "timeline.svg")
    lib.run_tool("timeline", *dumps, "-o", svg)
    root = ET.parse(svg).getroot()  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    stacks = [g.get("data-stack") for g in root.iter(ns + "g") if g.get("class") == "stack"]
    assert stacks and re.match(r"leak_session \(leak_sites\.c:\d+\)", stacks[0]), stacks
    assert not any(s.startswith(CHURNING) for s in stacks), stacks
    texts = [t.text or "" for t in root.iter(ns + "text")]
    assert any(re.fullmatch(r"\d+(\.\d+)?MB", t) for t in texts), texts  # byte axis
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d(\.\d)?", t) for t in texts), texts  # time axis
    assert any(t.startswith("time (UTC") for t in texts), texts
    assert any(t.startswith("memory (MB") for t in texts), texts
    kinds = {e.get("class") for e in root.iter(ns + "polyline")}
    assert kinds == {"rss", "heap"}, kinds


def test_threads_leaked_by_creation_stack():
    proc, dumps = lib.run_traced([lib.prog("thread_leak"), "7"], on_exit=0)
    assert proc.stdout.strip() == "dump: 0" and len(dumps) == 1
    out = lib.run_tool("threads", dumps[0]).stdout
    assert "Threads: 3 running, 7 exited but not joined or detached" in out, out
    rows = re.findall(r"^ +(\d+) +(\d+) +\S+  (\w+) \S+thread_leak\.c:\d+$", out, re.M)
    assert sorted(rows) == [("0", "7", "spawn_leaky"), ("3", "0", "spawn_waiting")], out
    out = lib.run_tool("leaks", dumps[0]).stdout
    _, _, threads = parse_leaks(out)
    assert threads.startswith("Leaked threads: 7 from 1 creation stack "), out
    assert re.search(r"^ +1 +7 +0 +7 +0 +\S+  spawn_leaky \(thread_leak\.c:\d+\) < main$", out, re.M), out
    assert re.search(r"^ +spawn_leaky \S+thread_leak\.c:\d+$", out, re.M), out


def test_collector_leak_and_its_threads():
    """The demo's service, briefly: the logger clone's stack first, and one
    flush thread leaked per request from the same place."""
    d = lib.tmpdir()
    env = lib.traced_env(d, interval="0.25")
    port = _free_port()
    service = subprocess.Popen([os.path.join(lib.BUILD, "collector"), str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lib.wait_for_file(os.path.join(d, f"heaptrace.{service.pid}.0001.heap"))
        client = lib.run([os.path.join(lib.BUILD, "collector_client"), str(port), "150", "4"])
        sent = int(re.match(r"sent (\d+) reports", client.stdout).group(1))
        last = lib.run_tool("dump", str(service.pid)).stdout.strip()
    finally:
        service.kill()
        service.wait()
    dumps = lib.dumps_in(d, service.pid)
    assert last in dumps and len(dumps) >= 10, (last, dumps)
    out = lib.run_tool("leaks", *dumps).stdout
    growing, _, threads = parse_leaks(out)
    assert growing and re.match(r"logger_clone \(collector\.c:\d+\) < handle_report", growing[0]), out
    m = re.match(r"Leaked threads: (\d+) from 1 creation stack", threads)
    assert m and int(m.group(1)) == sent, (sent, out)
    assert re.search(r"^ +1 +%d +%d +0 +\d+ +\S+  logger_clone \(collector\.c:\d+\) < handle_report"
                     % (sent, sent),
                     out, re.M), out


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium(*args):
    """Headless Chromium with a fresh profile; the CompletedProcess."""
    exe = shutil.which("chromium")
    if not exe:
        raise lib.Skip("chromium is not installed")
    profile = lib.tmpdir("ht-chromium-")
    try:
        return lib.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                       timeout=90, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_report_renders_in_chromium():
    dumps = leak_series()
    _, threads = lib.run_traced([lib.prog("thread_leak"), "4"], on_exit=0)
    d = lib.tmpdir()
    page = os.path.join(d, "report.html")
    lib.run_tool("report", *dumps, "-o", page)
    with open(page) as f:
        text = f.read()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "network reference"
    # The switch's view: a flame graph of the growth since the first dump.
    grown = re.search(r'<div class="figure grown-view">(.*?)</svg>', text, re.S)
    assert 'id="grown"' in text and grown and "leak_session" in grown.group(1)
    url = "file://" + page
    dom = chromium("--enable-logging=stderr", "--v=0", "--dump-dom", url)
    assert '<span id="status">ready</span>' in dom.stdout, dom.stdout[:3000]
    assert '<div id="errors"></div>' in dom.stdout, dom.stdout[:3000]
    assert "leak_session" in dom.stdout and "churn_ring" in dom.stdout
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "report.png")
    if os.path.exists(shot):
        os.remove(shot)
    chromium("--window-size=1280,2200", f"--screenshot={shot}", url)
    assert os.path.getsize(shot) > 20000, "no screenshot"
    # A single dump with leaked threads makes a report too.
    page2 = os.path.join(d, "threads.html")
    lib.run_tool("report", threads[0], "-o", page2)
    with open(page2) as f:
        text = f.read()
    assert "Growth needs at least 3 dumps" in text and "spawn_leaky" in text


def test_malformed_series_lines():
    """`# ages:` and `# threads:` lines are checked like the rest."""
    d = lib.tmpdir()
    header, rest = SAMPLED.split("\n", 1)
    good = header + "\n# time_unix_ns: 1\n# pid: 7\n# age_buckets_s: 60 600\n" + rest
    cases = {
        "ages_count": (good.replace("@ 0x401000 0x402000\n", "@ 0x401000 0x402000\n"
                                    "# ages: 1 2 3\n"), 7, "not 2 per age bucket"),
        "ages_text": (good.replace("@ 0x401000 0x402000\n", "@ 0x401000 0x402000\n"
                                   "# ages: 1 2 x 4 5 6\n"), 7, "malformed '# ages:'"),
        "ages_first": (good.replace("# age_buckets_s: 60 600\n",
                                    "# age_buckets_s: 60 600\n# ages: 1 2 3 4 5 6\n"),
                       5, "without a sample line"),
        "threads": (good.replace("\nMAPPED", "# threads: 3 @ 0x401000\n\nMAPPED"), 8,
                    "malformed '# threads:'"),
    }
    for name, (text, line, message) in cases.items():
        path = os.path.join(d, name + ".heap")
        with open(path, "w") as f:
            f.write(text)
        for verb in ["leaks"] + (["top", "threads"] if name == "ages_count" else []):
            proc = lib.run_tool(verb, path, check=False)
            want = f"heaptrace: {path}:{line}: "
            assert proc.returncode == 2 and proc.stderr.startswith(want), (name, proc.stderr)
            assert message in proc.stderr, (name, proc.stderr)
    # A profile without the time it was taken cannot be placed in a series.
    plain = os.path.join(d, "plain.heap")
    with open(plain, "w") as f:
        f.write(SAMPLED)
    proc = lib.run_tool("leaks", plain, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith(f"heaptrace: {plain}: no '# "), \
        proc.stderr

