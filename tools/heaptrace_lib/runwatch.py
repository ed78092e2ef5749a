"""Which processes a `heaptrace run` traced. The command replaces `heaptrace`
(it keeps the announced pid), so a watcher forked off before the exec
names the processes: the command itself, what it forks (seen in /proc
while they live, or by the `# ppid:` of their dumps when they were too
short-lived to be seen), and a daemon it detaches (a session leader begun
during the run with the preload loaded, whose parent is init or another
of the command's ancestors: nginx's master after its launcher exited). Each is said on stderr once it is traced, and the
list, with its dumps, once none of them is left.

The watcher is a grandchild that its parent reaps at once, so the command
never has it as a child: no SIGCHLD for it, nothing for its wait() to
find. It ignores SIGINT and SIGQUIT (a Ctrl-C for the command), reads
only /proc and the dump directories, and polls a few times a second."""
import glob
import gzip
import os
import signal
import sys
import time

POLL_S = 0.2
HEADER_BYTES = 4096


class _Proc:
    def __init__(self, pid, ppid, start, cmdline):
        self.pid, self.ppid, self.start, self.cmdline = pid, ppid, start, cmdline
        self.traced = False     # the preload seen loaded, or a dump of it seen
        self.dumps = {}         # path: True


def _stat(pid):
    """(state, ppid, session, start ticks) from /proc/PID/stat, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[3]), int(fields[19])


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _loaded(pid, preload):
    return preload.encode() in _read(f"/proc/{pid}/maps")


def _header(path):
    """{key: value} of a dump's first `#` lines; {} when it cannot be read."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            head = f.read(HEADER_BYTES).decode(errors="replace")
    except (OSError, EOFError):
        return {}
    meta = {}
    for line in head.splitlines()[1:]:
        if line.startswith("# ") and ": " in line:
            key, _, value = line[2:].partition(": ")
            meta.setdefault(key, value)
    return meta


def dump_dirs(where, tmpdir):
    """The run's dump directory and the per-uid fallbacks (those we may read)."""
    base = tmpdir if tmpdir else "/tmp"
    return [where] + sorted(glob.glob(os.path.join(base, "heaptrace-[0-9]*")))


def _dumps(dirs):
    """The numbered dumps (a peak dump, peak.py, is one file rewritten)."""
    out = set()
    for d in dirs:
        out.update(glob.glob(os.path.join(d, "heaptrace.*.heap")))
        out.update(glob.glob(os.path.join(d, "heaptrace.*.heap.gz")))
    return {p for p in out if not p.endswith((".peak.heap", ".peak.heap.gz"))}


class Watch:
    """The processes of one run, polled from /proc and the dump directories."""

    def __init__(self, launcher, where, tmpdir, preload):
        self.where, self.tmpdir, self.preload = where, tmpdir, os.path.basename(preload)
        self.before = _dumps(dump_dirs(where, tmpdir))
        self.headers = {}       # path: (pid, ppid, cmdline) of the dumps read
        state = _stat(launcher)
        self.begin = state[3] if state else 0
        self.procs = {launcher: _Proc(launcher, state[1] if state else None, self.begin, None)}
        self.launcher = launcher
        self.said = set()
        # Where a detached daemon can be reparented: init, or a subreaper
        # among the command's ancestors.
        self.reapers = {1}
        pid = state[1] if state else 1
        while pid > 1 and pid not in self.reapers:
            self.reapers.add(pid)
            up = _stat(pid)
            pid = up[1] if up else 1

    def _alive(self, p):
        state = _stat(p.pid)
        return state is not None and state[3] == p.start and state[0] not in "ZX"

    def poll(self):
        """Updates the processes; True while one of them runs."""
        ours = {pid for pid, p in self.procs.items() if self._alive(p)}
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            pid, state = int(name), _stat(name)
            if state is None or state[3] < self.begin or state[0] in "ZX":
                continue
            known = self.procs.get(pid)
            if known is not None and known.start != state[3]:
                continue    # the pid was reused by a process not ours
            if known is None and (state[1] in ours or self._daemon(pid, state)):
                known = self.procs[pid] = _Proc(pid, state[1], state[3], None)
                ours.add(pid)
            if known is not None and _loaded(pid, self.preload):
                known.traced = True
                known.cmdline = known.cmdline or _read(f"/proc/{pid}/cmdline") \
                    .replace(b"\0", b" ").decode(errors="replace").strip()
        self._read_dumps()
        self._say()
        return bool(ours)

    def _daemon(self, pid, state):
        """A session leader begun during the run with the preload loaded,
        whose parent is one a detached process is given."""
        return state[2] == pid and state[1] in self.reapers and _loaded(pid, self.preload)

    def _read_dumps(self):
        for path in sorted(_dumps(dump_dirs(self.where, self.tmpdir)) - self.before):
            if path not in self.headers:
                meta = _header(path)
                self.headers[path] = (_int(meta.get("pid")), _int(meta.get("ppid")),
                                      meta.get("cmdline"))
        grew = True
        while grew:  # a child's dump may name a parent seen only by its dump
            grew = False
            for path, (pid, ppid, cmdline) in self.headers.items():
                if pid is None or (pid in self.procs and path in self.procs[pid].dumps):
                    continue
                if pid not in self.procs:
                    if ppid not in self.procs:
                        continue
                    self.procs[pid] = _Proc(pid, ppid, None, None)
                p = self.procs[pid]
                p.dumps[path] = True
                p.traced = True
                p.cmdline = p.cmdline or cmdline
                grew = True

    def _say(self):
        for p in sorted(self.procs.values(), key=lambda p: p.pid):
            if p.traced and p.pid not in self.said:
                self.said.add(p.pid)
                if p.pid != self.launcher:
                    _say(f"pid {p.pid} (parent {p.ppid}) is traced: {p.cmdline or '?'}")

    def summary(self):
        """The closing line, or None when nothing was traced (the command
        could not be started)."""
        traced = [p for p in self.procs.values() if p.traced]
        if not traced:
            return None
        parts = []
        for p in sorted(traced, key=lambda p: p.pid):
            places = sorted({os.path.dirname(d) for d in p.dumps} - {self.where})
            count = len(p.dumps)
            dumps = f"{count} dump{'' if count == 1 else 's'}" if count else "no dump"
            parts.append(f"{p.pid} ({p.cmdline or '?'}; {dumps}"
                         + "".join(f" in {d}" for d in places) + ")")
        head = (f"traced {len(traced)} processes: " if len(traced) > 1 else "traced pid ")
        return head + ", ".join(parts)


def _int(text):
    return int(text) if text and text.isdigit() else None


def _say(message):
    print(f"heaptrace: {message}", file=sys.stderr, flush=True)


def start(launcher, where, tmpdir, preload):
    """Forks the watcher off (twice, so that it is not the command's child)
    and returns in the launcher."""
    watch = Watch(launcher, where, tmpdir, preload)
    sys.stderr.flush()
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        return
    try:
        if os.fork():
            os._exit(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)
        # Only stderr is kept: a pipe the caller reads to its end must not
        # wait for the watcher, but for the command.
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        while watch.poll():
            time.sleep(POLL_S)
        watch.poll()
        line = watch.summary()
        if line:
            _say(line)
    except Exception as e:  # whatever it was, one line and the command runs on
        _say(f"run: cannot name the traced processes ({e}); the command is not affected")
    finally:
        os._exit(0)
