"""`heaptrace dump PID` and `heaptrace status PID`: ask a running traced
process through its control socket, the abstract UNIX socket
@heaptrace/PID that the preload serves (docs/format.md, "The control
socket"). A dump request is answered with the file's path once the file is
whole; no signal is sent, so it works whatever the program did to its
environment, working directory, signals or credentials. What the process
does now (its dump directory, signal, rate, HTTP address) is learnt from
it, never guessed here.

Only a process without the socket (started under an older heaptrace) is
sent the dump signal: the one its latest dump names, else SIGUSR1, and
only when /proc says the process catches it, so that a signal that would
kill the process is never sent."""
import glob
import os
import signal
import socket
import time

from .errors import HeaptraceError

# How long a traced process may take to open its socket (just started, or
# remaking it after the program closed every descriptor: it looks once a
# second) before it is taken for an older heaptrace without one.
SOCKET_GRACE_S = 3.0


def _read(pid, name):
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise HeaptraceError(f"no process {pid}") from None
    except OSError:
        return None


def _exists(pid):
    if not os.path.exists(f"/proc/{pid}"):
        raise HeaptraceError(f"no process {pid}")


def _traced(pid):
    """True/False when /proc/PID/maps says whether libheaptrace is loaded,
    None when it cannot be read (another user's process)."""
    maps = _read(pid, "maps")
    return None if maps is None else b"libheaptrace" in maps


def control(pid, request, timeout):
    """Sends one request line; returns the answer's `key value` lines as a
    dict, or None when pid has no control socket (or the one connected to
    went away unanswered: the program closed it, and heaptrace makes it
    anew)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    data = b""
    try:
        try:
            sock.connect(f"\0heaptrace/{pid}")
        except (ConnectionRefusedError, FileNotFoundError):
            return None
        sock.sendall(request.encode() + b"\n")
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (BrokenPipeError, ConnectionResetError):
        if not data:
            return None
        raise HeaptraceError(f"process {pid} broke off its answer to `{request}`") from None
    except socket.timeout:
        raise HeaptraceError(f"process {pid} did not answer `{request}` within "
                             f"{timeout:g} s") from None
    except OSError as e:
        raise HeaptraceError(f"control socket of {pid}: {e.strerror or e}") from None
    finally:
        sock.close()
    lines = data.decode(errors="replace").splitlines()
    if not lines:
        raise HeaptraceError(f"process {pid} closed its control socket without an answer")
    if lines[0] != "ok":
        raise HeaptraceError(f"process {pid}: {lines[0].removeprefix('error ')}")
    return dict(line.partition(" ")[::2] for line in lines[1:])


def _control_or_none(pid, request, timeout):
    """control(), waiting a moment for a traced process that is starting."""
    answer = control(pid, request, timeout)
    if answer is not None or not _traced(pid):
        return answer
    deadline = time.monotonic() + SOCKET_GRACE_S
    while answer is None and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = control(pid, request, timeout)
    return answer


def status(pid, timeout):
    _exists(pid)
    answer = _control_or_none(pid, "status", timeout)
    if answer is None:
        raise HeaptraceError(_no_socket(pid))
    return answer


def render_status(answer):
    return "".join(f"{key}: {value}\n" for key, value in answer.items())


def request_dump(pid, timeout):
    """A new dump of pid; returns its path."""
    _exists(pid)
    answer = _control_or_none(pid, "dump", timeout)
    if answer is not None:
        return answer["path"]
    return _signal_dump(pid, timeout)


def _no_socket(pid):
    traced = _traced(pid)
    if traced is None:
        return (f"process {pid} has no control socket and /proc/{pid}/maps cannot "
                "be read (another user's process?)")
    if not traced:
        return (f"process {pid} does not have libheaptrace.so loaded "
                "(start it with `heaptrace run` or LD_PRELOAD)")
    return f"process {pid} has no control socket (an older heaptrace?)"


# What follows is for a process without the control socket only.

def _dumps(pid, dirs):
    found = set()
    for directory in dirs:
        found.update(glob.glob(os.path.join(directory, f"heaptrace.{pid}.[0-9]*.heap")))
    return found


def _seq(path):
    return int(os.path.basename(path).split(".")[2])


def _dump_signal(paths):
    """The newest dump's `# dump_signal:` line: (signal number or None for
    `none`, lost), or (SIGUSR1, False) without a dump to read."""
    if paths:
        try:
            with open(max(paths, key=_seq), errors="replace") as f:
                for _, line in zip(range(200), f):
                    if line.startswith("# dump_signal:"):
                        words = line.split()[2:]
                        if words == ["none"]:
                            return None, False
                        return int(words[-1]), words[0] == "lost"
        except (OSError, ValueError, IndexError):
            pass
    return int(signal.SIGUSR1), False


def _catches(pid, signum):
    status_text = (_read(pid, "status") or b"").decode(errors="replace")
    for line in status_text.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def _signal_dump(pid, timeout):
    traced = _traced(pid)
    if not traced:
        raise HeaptraceError(_no_socket(pid) + "; no signal sent")
    # An older heaptrace wrote into its working directory unless told
    # otherwise; that is where its dumps are looked for.
    dirs = []
    try:
        dirs.append(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        pass
    dirs.append("/tmp")
    before = _dumps(pid, dirs)
    signum, lost = _dump_signal(before)
    if signum is None:
        raise HeaptraceError(f"process {pid} has no control socket and its dumps say "
                             "it has no dump signal (HEAPTRACE_SIGNAL=none); no signal sent")
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if lost:
        raise HeaptraceError(f"process {pid} installed its own {name} handler, so "
                             "heaptrace no longer dumps on it (its latest dump says so); "
                             "no signal sent")
    if not _catches(pid, signum):
        raise HeaptraceError(f"process {pid} has no control socket and does not catch "
                             f"{name}; sending it could kill it, so no signal sent")
    try:
        os.kill(pid, signum)
    except OSError as e:
        raise HeaptraceError(f"cannot signal {pid}: {e.strerror or e}") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = _dumps(pid, dirs) - before
        if new:
            return max(new, key=_seq)
        time.sleep(0.05)
    raise HeaptraceError(f"sent {name} to {pid} (it has no control socket) but no new "
                         f"dump appeared in {' or '.join(dirs)} within {timeout:g} s")
