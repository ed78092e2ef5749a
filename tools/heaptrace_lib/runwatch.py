"""Which processes a `heaptrace run` traced. The command replaces `heaptrace`
(it keeps the announced pid), so a watcher forked off before the exec
names the processes: the command itself, what it forks (seen in /proc
while they live, or by the `# ppid:` of their dumps when they were too
short-lived to be seen), and a daemon it detaches (a session leader begun
during the run with the preload loaded, whose parent is init or another
of the command's ancestors: nginx's master after its launcher exited).
Each is said on stderr once it is traced, and the list, with its dumps,
once none of them is left.

Where the dumps are is not worked out here: each traced process of the
run tells the watcher the path of every dump it writes, on the abstract
socket @heaptrace/run/<command pid> (HEAPTRACE_RUN carries the pid down;
docs/format.md, "The run socket"), so a dump in the per-uid fallback of a
process that dropped privileges is found as one in the run's directory.
A path counts only when its header names the process that sent it
(SO_PEERCRED).

The watcher is a grandchild that its parent reaps at once, so the command
never has it as a child: no SIGCHLD for it, nothing for its wait() to
find. It ignores SIGINT and SIGQUIT (a Ctrl-C for the command), reads
only /proc, its socket and the dumps it is told of, and polls a few times
a second."""
import gzip
import os
import select
import signal
import socket
import stat
import struct
import sys

POLL_S = 0.2
HEADER_BYTES = 4096
NOTICE_BYTES = 8192     # `path <file>\n`; a path is at most 4096 bytes


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
    """{key: value} of a dump's first `#` lines; {} when it cannot be read
    or is not a regular file (a named path is opened without waiting on
    a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return {}
        with os.fdopen(os.dup(fd), "rb") as raw:
            opener = gzip.open(raw) if path.endswith(".gz") else raw
            with opener as f:
                head = f.read(HEADER_BYTES).decode(errors="replace")
    except (OSError, EOFError):
        return {}
    finally:
        os.close(fd)
    meta = {}
    for line in head.splitlines()[1:]:
        if line.startswith("# ") and ": " in line:
            key, _, value = line[2:].partition(": ")
            meta.setdefault(key, value)
    return meta


def listen(launcher):
    """The run socket, bound before the command starts so that no notice
    is lost; None (and one line) when it cannot be."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(f"\0heaptrace/run/{launcher}")
        sock.listen(socket.SOMAXCONN)
    except OSError as e:
        sock.close()
        _say(f"run: cannot listen on @heaptrace/run/{launcher} ({e.strerror or e}); "
             "processes are named only while seen in /proc, without their dumps")
        return None
    sock.setblocking(False)
    return sock


def _notice(conn):
    """(sender pid, key, value) of one connection: `path <dump>` or, from
    the command, `dir <the run's directory>`; None when it is neither."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid = struct.unpack("3i", creds)[0]
    conn.settimeout(0.2)  # the sender wrote before it closed
    data = b""
    try:
        while len(data) < NOTICE_BYTES:
            chunk = conn.recv(NOTICE_BYTES)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    key, _, value = data.decode(errors="replace").rstrip("\n").partition(" ")
    return (pid, key, value) if key in ("path", "dir") and value.startswith("/") else None


class Watch:
    """The processes of one run, polled from /proc and told by the run
    socket of their dumps."""

    def __init__(self, launcher, sock, preload):
        self.sock, self.preload = sock, os.path.basename(preload)
        self.where = None       # the run's directory, as the command said
        self.headers = {}       # path: (pid, ppid, cmdline) of the dumps told of
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

    def wait(self, seconds):
        """Waits up to seconds for a notice on the run socket."""
        if self.sock is not None:
            select.select([self.sock], [], [], seconds)
        else:
            select.select([], [], [], seconds)

    def _read_dumps(self):
        while self.sock is not None:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            with conn:
                told = _notice(conn)
            if told is None:
                continue
            sender, key, value = told
            if key == "dir":
                if sender == self.launcher:
                    self.where = value
                continue
            if value in self.headers:
                continue
            meta = _header(value)
            pid = _int(meta.get("pid"))
            if pid == sender:
                self.headers[value] = (pid, _int(meta.get("ppid")), meta.get("cmdline"))
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


def start(launcher, preload):
    """Binds the run socket, forks the watcher off (twice, so that it is
    not the command's child) and returns in the launcher."""
    sock = listen(launcher)
    watch = Watch(launcher, sock, preload)
    sys.stderr.flush()
    child = os.fork()
    if child:
        if sock is not None:
            sock.close()
        os.waitpid(child, 0)
        return
    try:
        if os.fork():
            os._exit(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)
        # Only stderr and the run socket are kept: a pipe the caller reads
        # to its end must not wait for the watcher, but for the command.
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        keep = sock.fileno() if sock is not None else 2
        os.closerange(3, keep)
        os.closerange(max(keep + 1, 3), os.sysconf("SC_OPEN_MAX"))
        while watch.poll():
            watch.wait(POLL_S)
        watch.poll()
        line = watch.summary()
        if line:
            _say(line)
    except Exception as e:  # whatever it was, one line and the command runs on
        _say(f"run: cannot name the traced processes ({e}); the command is not affected")
    finally:
        os._exit(0)
