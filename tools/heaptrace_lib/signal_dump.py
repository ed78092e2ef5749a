"""`heaptrace dump PID`: ask a running traced process for a dump and wait
until the new file is there (the preload renames a whole file into place).
It checks first that the process has libheaptrace loaded and catches the
dump signal, so that it never sends a signal that would kill the process."""
import glob
import os
import signal
import time

from .errors import HeaptraceError

DEFAULT_SIGNAL = "USR1"


def _read(pid, name):
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise HeaptraceError(f"dump: no process {pid}") from None
    except OSError:
        return None


def _environ(pid):
    data = _read(pid, "environ") or b""
    env = {}
    for item in data.split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep and key.startswith("HEAPTRACE_"):
            env[key] = value
    return env


def parse_signal(text):
    """HEAPTRACE_SIGNAL's value (USR1, SIGUSR2, RTMIN+N, a number or none)
    as a signal number, or None for `none`; USR1 for what it cannot read."""
    name = text.strip().upper().removeprefix("SIG")
    if name == "NONE":
        return None
    if name.isdigit():
        return int(name)
    for base, number in (("RTMIN", signal.SIGRTMIN), ("RTMAX", signal.SIGRTMAX)):
        rest = name.removeprefix(base)
        if rest != name and (rest == "" or rest[0] in "+-" and rest[1:].isdigit()):
            return int(number) + int(rest or 0)
    try:
        return int(signal.Signals["SIG" + name])
    except KeyError:
        # The preload falls back to its default too; SigCgt tells the truth.
        return int(signal.SIGUSR1)


def _catches(pid, signum):
    status = (_read(pid, "status") or b"").decode(errors="replace")
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return True


def _dump_dirs(pid, env):
    if env.get("HEAPTRACE_DIR"):
        directory = env["HEAPTRACE_DIR"]
        if not os.path.isabs(directory):
            try:
                directory = os.path.join(os.readlink(f"/proc/{pid}/cwd"), directory)
            except OSError:
                pass
        return [directory]
    dirs = []
    try:
        dirs.append(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        pass
    return dirs + ["/tmp"]


def _dumps(pid, dirs):
    found = set()
    for directory in dirs:
        found.update(glob.glob(os.path.join(directory, f"heaptrace.{pid}.[0-9]*.heap")))
    return found


def _seq(path):
    return int(os.path.basename(path).split(".")[2])


def _signal_lost(paths):
    """True when the newest dump says the program took the dump signal for
    itself (`# dump_signal: lost N`): heaptrace no longer dumps on it, and
    the program would act on the signal in its own way."""
    if not paths:
        return False
    try:
        with open(max(paths, key=_seq), errors="replace") as f:
            for _, line in zip(range(200), f):
                if line.startswith("# dump_signal:"):
                    return line.split()[2] == "lost"
    except OSError:
        pass
    return False


def request_dump(pid, timeout):
    """Signal pid for a dump; return the new file's path."""
    maps = _read(pid, "maps")
    if maps is None:
        raise HeaptraceError(f"dump: cannot read /proc/{pid}/maps (permission?); no signal sent")
    if b"libheaptrace" not in maps:
        raise HeaptraceError(f"dump: process {pid} does not have libheaptrace.so loaded "
                             "(start it with `heaptrace run` or LD_PRELOAD); no signal sent")
    env = _environ(pid)
    signum = parse_signal(env.get("HEAPTRACE_SIGNAL", DEFAULT_SIGNAL))
    if signum is None:
        raise HeaptraceError(f"dump: process {pid} runs with HEAPTRACE_SIGNAL=none; "
                             "no signal sent")
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if not _catches(pid, signum):
        raise HeaptraceError(f"dump: process {pid} does not catch {name} (yet?); "
                             "sending it could kill it, so no signal sent")
    dirs = _dump_dirs(pid, env)
    before = _dumps(pid, dirs)
    if _signal_lost(before):
        raise HeaptraceError(f"dump: process {pid} installed its own {name} handler, so "
                             "heaptrace no longer dumps on it (its latest dump says so); "
                             "no signal sent. Restart it with HEAPTRACE_SIGNAL set to a free "
                             "signal, or have it call heaptrace_dump()")
    try:
        os.kill(pid, signum)
    except OSError as e:
        raise HeaptraceError(f"dump: cannot signal {pid}: {e.strerror or e}") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = _dumps(pid, dirs) - before
        if new:
            return max(new, key=_seq)
        time.sleep(0.05)
    raise HeaptraceError(f"dump: sent {name} to {pid} but no new dump appeared in "
                         f"{' or '.join(dirs)} within {timeout:g} s")
