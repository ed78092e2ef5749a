"""The peak dump of a process: `heaptrace.<pid>.peak.heap` beside its
numbered series, written when the heap estimate passed its last peak by
HEAPTRACE_PEAK_STEP and replaced by each higher one (docs/format.md). It
shows what held memory at the highest point of the run even when that was
freed long before the last dump. `top --peak` and the report find it from
any dump of the same process."""
import os

from .dumpfile import read_dump
from .errors import HeaptraceError

TRIGGER = "peak"


def is_peak(dump):
    return dump.meta.get("trigger") == TRIGGER


def beside(dump):
    """The path of the peak dump of dump's process in dump's directory, if
    there is one of the same run (same pid and start), else None."""
    pid = dump.meta_int("pid")
    if pid is None:
        return None
    directory = os.path.dirname(dump.path) or "."
    for suffix in ("", ".gz"):
        path = os.path.join(directory, f"heaptrace.{pid}.peak.heap{suffix}")
        if os.path.exists(path):
            try:
                peak = read_dump(path)
            except HeaptraceError:
                return None
            if peak.meta.get("start_unix_ns") == dump.meta.get("start_unix_ns"):
                return path
    return None


def find(path):
    """The peak dump for `top --peak PATH`: PATH itself when it is one, else
    the peak dump of its process beside it."""
    dump = read_dump(path)
    if is_peak(dump):
        return path
    found = beside(dump)
    if found is None:
        raise HeaptraceError(
            f"{path}: no peak dump of its process beside it (heaptrace.<pid>.peak.heap is "
            "written once the heap passes 16 MiB, or HEAPTRACE_PEAK_STEP, above its last "
            "peak; HEAPTRACE_PEAK_STEP=0 turns it off)")
    return found
