"""`heaptrace run`: replace this process with the command, with the preload
in LD_PRELOAD and the HEAPTRACE_ settings given on the command line. The
command keeps this process's pid, so `heaptrace run ... & heaptrace dump $!`
works, and signals and the exit status are the command's own. The
processes it leads to are named by runwatch.py. Where dumps go is said by
the command itself, not worked out here."""
import os

from . import runwatch
from .errors import HeaptraceError

PRELOAD_NAME = "libheaptrace.so"


def find_preload():
    """The preload next to the installed tool ($PREFIX/lib/heaptrace/.. ) or
    in the build tree (tools/../build)."""
    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    candidates = [os.path.join(os.path.dirname(here), PRELOAD_NAME),
                  os.path.join(os.path.dirname(here), "build", PRELOAD_NAME)]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise HeaptraceError(f"{PRELOAD_NAME} not found (looked at {', '.join(candidates)}); "
                         "run make, or make install")


def run(command, rate=None, interval=None, directory=None):
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise HeaptraceError("run: no command given (heaptrace run [options] -- CMD ARGS...)")
    env = dict(os.environ)
    preload = find_preload()
    env["LD_PRELOAD"] = " ".join(filter(None, [preload, env.get("LD_PRELOAD")]))
    for name, value in (("RATE", rate), ("INTERVAL", interval), ("DIR", directory)):
        if value is not None:
            env["HEAPTRACE_" + name] = str(value)
    # The command says where its dumps go (the preload knows the rule),
    # once, and each traced process of the run tells the watcher of its
    # dumps (preload/runwatch.c).
    env["HEAPTRACE_RUN"] = f"+{os.getpid()}"
    runwatch.start(os.getpid(), preload)
    try:
        os.execvpe(command[0], command, env)
    except OSError as e:
        raise HeaptraceError(f"run: {command[0]}: {e.strerror or e}") from None
