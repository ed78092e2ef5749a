"""A series of dumps from several processes (issue 13, process families):
`leaks`, `timeline` and `report` analyse each process apart, a restart is
only a later run of the same executable and command line that began after
the earlier one's last dump, and processes with too few dumps are named in
one line. Checked on synthetic dumps with exact values (rate 1), and on
real ones: two concurrent runs of tests/progs/leak_sites.c with the same
command line, a third run after both, and tests/progs/forker.c's parent
and children."""
import os
import pwd
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import lib

T0 = 1_800_000_000
SVG = "{http://www.w3.org/2000/svg}"


def _dump(path, pid, ppid, seq, t, start, cmd, leak, exe="/usr/bin/srv"):
    """One dump at rate 1: `leak` bytes from one stack, 4096 flat from another."""
    with open(path, "w") as f:
        f.write(f"heap profile: 2: {leak + 4096} [2: {leak + 4097}] @ heap_v2/1\n"
                f"# heaptrace: 1\n# pid: {pid}\n# ppid: {ppid}\n# seq: {seq}\n"
                f"# time_unix_ns: {int(t * 1e9)}\n# start_unix_ns: {int(start * 1e9)}\n"
                f"# exe: {exe}\n# cmdline: {cmd}\n# rss_bytes: {(1 << 20) + leak}\n"
                f"1: {leak} [1: {leak}] @ 0x401000 0x402000\n"
                "1: 4096 [1: 4097] @ 0x401100 0x402000\n\nMAPPED_LIBRARIES:\n")


def _synthetic():
    """A master (100) and two workers of the same command line alive at
    once (101 leaks 50000 B a second, 102 is flat), a short-lived `srv -V`
    (103), a worker (104) that begins after 102's last dump and grows
    unevenly, and pid 105 exec()ing from sh into srv: two programs."""
    d = lib.tmpdir()
    files = {}

    def add(pid, ppid, seq, t, start, cmd, leak, exe="/usr/bin/srv"):
        path = os.path.join(d, f"heaptrace.{pid}.{seq:04d}.{int(start)}.heap")
        _dump(path, pid, ppid, seq, t, start, cmd, leak, exe)
        files.setdefault(pid, []).append(path)

    for i in range(6):
        add(100, 1, i + 1, T0 + i, T0, "srv: master", 1000)
        add(101, 100, i + 1, T0 + i + 0.1, T0, "srv: worker", 1000 + 50000 * i)
        add(102, 100, i + 1, T0 + i + 0.2, T0, "srv: worker", 3000)
    add(103, 100, 1, T0 + 2, T0 + 2, "srv -V", 10)
    for i in range(4):
        add(104, 100, i + 1, T0 + 7 + i, T0 + 7, "srv: worker", 3000 + 20000 * (i % 2))
        add(105, 1, i + 1, T0 + 0.5 + i, T0 + 0.5, "sh -c exec srv", 100, "/bin/sh")
        add(105, 1, i + 1, T0 + 5.5 + i, T0 + 5.5, "srv", 200 + 7000 * i)
    return files


def sections(text):
    """{section title: its text} of `leaks` output over several processes."""
    parts = re.split(r"^=== (.+) ===$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_synthetic_processes_apart_and_one_restart():
    files = _synthetic()
    every = [p for paths in files.values() for p in paths]
    out = lib.run_tool("leaks", *every).stdout
    head = out.split("\n\n", 1)[0].splitlines()
    assert head[0].startswith("Processes: 6, 31 dumps, "), out
    assert head[1] == ("Too few dumps to analyse (fewer than 3): "
                       "pid 103 (parent 100): srv -V (1 dump)"), out
    got = sections(out)
    # Largest growth first: 101 (250 kB), then the exec()ed srv in 105 (21 kB).
    assert list(got) == ["pid 101 (parent 100): srv: worker", "pid 105 (parent 1): srv",
                         "pids 102, 104 (parent 100): srv: worker",
                         "pid 100 (parent 1): srv: master",
                         "pid 105 (parent 1): sh -c exec srv"], list(got)
    worker = got["pid 101 (parent 100): srv: worker"]
    assert re.search(r"^Dumps: 6 of pid 101, ", worker, re.M), worker
    assert re.search(r"^Steadily growing stacks: 1 of 2 .*\n.*\n  1 +2\.86MB +245\.12kB +244\.14kB "
                     r"+100% +1\.00 +1\.00  0x400fff", worker, re.M), worker
    restarted = got["pids 102, 104 (parent 100): srv: worker"]
    assert re.search(r"^Dumps: 10 of 2 runs \(pids 102, 104; 1 restart\), ", restarted,
                     re.M), restarted
    assert "Steadily growing stacks: none of 2" in restarted, restarted
    for title, text in got.items():
        if title != "pids 102, 104 (parent 100): srv: worker":
            assert "restart" not in text, (title, text)
    assert "Steadily growing stacks: none of 2" in got["pid 100 (parent 1): srv: master"]
    # One process alone reads exactly as the dumps of that process alone.
    alone = lib.run_tool("leaks", *files[101]).stdout
    assert lib.run_tool("leaks", "--pid", "101", *every).stdout == alone
    assert alone.strip() == worker.strip(), (alone, worker)
    # --pid 100 --children: the master and its children, not pid 105.
    family = lib.run_tool("leaks", "--pid", "100", "--children", *every).stdout
    assert list(sections(family)) == ["pid 101 (parent 100): srv: worker",
                                      "pids 102, 104 (parent 100): srv: worker",
                                      "pid 100 (parent 1): srv: master"], family
    assert family.startswith("Processes: 4, ") and "pid 103 " in family, family
    bad = lib.run_tool("leaks", "--pid", "7", *every, check=False)
    assert bad.returncode == 1 and bad.stderr == (
        "heaptrace: --pid 7: no dump of that process among those given "
        "(pids 100, 101, 102, 105, 103, 104)\n"), bad.stderr
    # The timeline: a panel per analysed process; the one restart in its own.
    d = os.path.dirname(every[0])
    svg = os.path.join(d, "t.svg")
    lib.run_tool("timeline", *every, "-o", svg)
    panels = list(ET.parse(svg).getroot())
    assert len(panels) == 5 and all(p.tag == SVG + "svg" for p in panels), panels
    marks = [[t.text for t in p.iter(SVG + "text") if (t.text or "").startswith("restart")]
             for p in panels]
    assert marks == [[], [], ["restart: pid 104"], [], []], marks
    page = os.path.join(d, "r.html")
    lib.run_tool("report", *every, "-o", page)
    with open(page) as f:
        html = f.read()
    assert re.findall(r"<h2>([^<]*)</h2>", html) == [
        "pid 101 (parent 100): srv: worker", "pid 105 (parent 1): srv",
        "pids 102, 104 (parent 100): srv: worker", "pid 100 (parent 1): srv: master",
        "pid 105 (parent 1): sh -c exec srv",
        "The latest dump of pid 101 (parent 100): srv: worker"], html


def _leak_sites(d):
    """leak_sites for 10 ticks of 100 ms at a rate that finds 10 MiB of leak."""
    return subprocess.Popen([lib.prog("leak_sites"), "10", "100"],
                            env=lib.traced_env(d, on_exit=0, rate=65536),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc):
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.strip() == "10 dumps, 0 failed", (out, err)
    return proc.pid


def test_real_concurrent_runs_and_a_restart():
    """leak_sites twice at once, then once more after both: the third is a
    restart of the one that ended last, the first two are not restarts of
    each other, and each process's leak is found first in its section;
    forker's parent and two children, one dump each, are named in the
    one line of processes with too few dumps."""
    d = lib.tmpdir()
    a, b = _leak_sites(d), _leak_sites(d)
    first, second = _finish(a), _finish(b)
    third = _finish(_leak_sites(d))
    forker = lib.run([lib.prog("forker"), "fork", "2"], env=lib.traced_env(d))
    children = [int(x) for x in re.findall(r"child (\d+) exited 0", forker.stdout)]
    assert len(children) == 2, forker.stdout
    last = {pid: lib.dump_meta(lib.dumps_in(d, pid)[-1])["time_unix_ns"]
            for pid in (first, second)}
    earlier = max(last, key=lambda pid: int(last[pid]))
    other = first if earlier == second else second
    out = lib.run_tool("leaks", *lib.dumps_in(d)).stdout
    got = sections(out)
    prog = lib.prog("leak_sites")
    assert sorted(got) == sorted([f"pid {other} (parent {os.getpid()}): {prog} 10 100",
                                  f"pids {earlier}, {third} (parent {os.getpid()}): "
                                  f"{prog} 10 100"]), out
    for title, text in got.items():
        growing = re.findall(r"^  1 .*  (\S+) \(leak_sites\.c:\d+\)", text, re.M)
        assert growing[:1] == ["leak_session"], (title, text)
        if title.startswith("pids "):
            assert f"Dumps: 20 of 2 runs (pids {earlier}, {third}; 1 restart)" in text, text
        else:
            assert f"Dumps: 10 of pid {other}, " in text and "restart" not in text, text
    short = out.splitlines()[1]
    parent = {lib.dump_meta(p)["ppid"] for c in children for p in lib.dumps_in(d, c)}
    assert len(parent) == 1, parent
    ppid = parent.pop()
    assert short.startswith("Too few dumps to analyse (fewer than 3): "), out
    # The parent, alive throughout, is not a restart of its children; the
    # children follow one another under the same command line.
    assert f"pid {ppid} (parent {os.getpid()}): " in short, short
    assert f"pids {children[0]}, {children[1]} (parent {ppid}): " in short, short


def _summary(stderr):
    """{pid: dumps} from `heaptrace run`'s closing line."""
    last = stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith("heaptrace: traced "), stderr
    return {int(pid): 0 if n == "no" else int(n)
            for pid, n in re.findall(r"(\d+) \([^;]*; (\d+|no) dumps?\b", last)}


def test_run_finds_dumps_where_the_process_says():
    """`heaptrace run` is told of each dump by the process that wrote it,
    and works out no directory: a program that drops from root to nobody
    writes its later dumps in nobody's private fallback under a TMPDIR
    that only the program was given (`env TMPDIR=...`), and the run finds
    them there, says so, and `leaks` reads them as one series."""
    if os.geteuid() != 0:
        raise AssertionError("this test drops from root to nobody; run it as root (CI does)")
    nobody = pwd.getpwnam("nobody").pw_uid
    d = lib.tmpdir()
    os.chmod(d, 0o755)  # root's: nobody cannot write here
    base = lib.tmpdir("ht-runbase-")
    os.chmod(base, 0o1777)
    fallback = os.path.join(base, f"heaptrace-{nobody}")
    env = dict(os.environ, HEAPTRACE_INTERVAL="0")
    env.pop("TMPDIR", None)
    proc = lib.run_tool("run", "--rate", "1", "--dir", d, "--", "env", f"TMPDIR={base}",
                        lib.prog("drop_priv"), "3", env=env)
    assert proc.stdout.strip() == f"uid {nobody}, 0 dumps failed", proc.stdout
    first = lib.dumps_in(d)
    moved = lib.dumps_in(fallback)
    pid = int(lib.dump_meta(first[0])["pid"]) if first else None
    # One before the drop; three after it, and the exit dump, in the fallback.
    assert len(first) == 1 and len(moved) == 4 and \
        {int(lib.dump_meta(p)["pid"]) for p in moved} == {pid}, (first, moved)
    lines = proc.stderr.splitlines()
    # Said once, by the command (env, then drop_priv in the same pid).
    assert [x for x in lines if "dumps go to" in x] == \
        [f"heaptrace: pid {pid}: dumps go to {d}/heaptrace.{pid}.NNNN.heap"], proc.stderr
    assert f"heaptrace: {d} is not writable for uid {nobody}; dumps now go to {fallback}" \
        in lines, proc.stderr
    assert _summary(proc.stderr) == {pid: 5} and \
        lines[-1].endswith(f"; 5 dumps in {fallback})"), proc.stderr
    out = lib.run_tool("leaks", *first, *moved).stdout
    assert f"Dumps: 5 of pid {pid}, " in out, out
    shutil.rmtree(d)
    shutil.rmtree(base)


def _dump_counts(d):
    counts = {}
    for path in lib.dumps_in(d):
        pid = int(lib.dump_meta(path)["pid"])
        counts[pid] = counts.get(pid, 0) + 1
    return counts


def test_run_names_the_processes_it_traced():
    """`heaptrace run` says each process it traced beyond the command
    itself, and closes with the list and their dumps: forker's children
    (short-lived, known by their dumps), and a daemon that `setsid -f`
    detaches, whose launcher is gone long before it ends."""
    d = lib.tmpdir()
    env = dict(os.environ, HEAPTRACE_INTERVAL="0")
    proc = lib.run_tool("run", "--dir", d, "--", lib.prog("forker"), "fork", "2", env=env)
    children = [int(x) for x in re.findall(r"child (\d+) exited 0", proc.stdout)]
    counts = _dump_counts(d)
    assert len(children) == 2 and len(counts) == 3, (proc.stdout, counts)
    assert _summary(proc.stderr) == counts, (proc.stderr, counts)
    for child in children:
        assert re.search(rf"^heaptrace: pid {child} \(parent \d+\) is traced: "
                         rf"{re.escape(lib.prog('forker'))} fork 2$", proc.stderr, re.M), \
            proc.stderr
    d = lib.tmpdir()
    env["HEAPTRACE_ON_EXIT"] = "0"
    proc = lib.run_tool("run", "--dir", d, "--", "setsid", "-f", lib.prog("leak_sites"),
                        "4", "100", env=env)
    counts = _dump_counts(d)
    daemon = [pid for pid in counts
              if lib.dump_meta(lib.dumps_in(d, pid)[0])["cmdline"].startswith(
                  lib.prog("leak_sites"))]
    assert len(daemon) == 1 and counts[daemon[0]] == 4, counts
    summary = _summary(proc.stderr)
    launcher = int(re.match(r"heaptrace: pid (\d+): dumps go to ", proc.stderr).group(1))
    # setsid itself may end unseen; nothing else without a dump is named
    # (the other tests' traced programs running meanwhile are not ours).
    assert summary.get(daemon[0]) == 4 and {p: n for p, n in summary.items() if n} == counts \
        and set(summary) <= set(counts) | {launcher}, (proc.stderr, counts)
    assert re.search(rf"^heaptrace: pid {daemon[0]} \(parent \d+\) is traced: ", proc.stderr,
                     re.M), proc.stderr
