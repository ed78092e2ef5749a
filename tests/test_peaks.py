"""Dumps by amount (issue 15): the peak dump, the RSS limit and the
allocation step. tests/progs/peak_spike.c holds 10 MiB from hold_site and
once, for half a second, 200 MiB more from spike_site in 1 MiB blocks,
then frees the spike: the peak dump (heaptrace.<pid>.peak.heap, outside the
numbered series) must show the spike at its top, `top --peak` must name
spike_site with 200 MiB within sampling error, and the exit dump none of
it. Sampled at the default rate, each 1 MiB block is sampled with
probability 1 - exp(-2) and stands for 1.16 MiB: the spike's estimate has
a standard deviation of 5.6 MiB, so 10% is more than three of them."""
import os
import re

import lib

MIB = 1 << 20


def _flat(top_text, name):
    """The flat bytes `top --unit MB` shows for function name, else 0."""
    for line in top_text.splitlines():
        fields = line.split()
        if fields and fields[-1] == name:
            m = re.fullmatch(r"([\d.]+)MB", fields[0])
            return float(m.group(1)) * MIB if m else 0.0
    return 0.0


def _peak_files(d):
    return [p for p in lib.dumps_in(d, peak=True) if p.endswith(".peak.heap")]


def test_peak_dump():
    d = lib.tmpdir()
    _, dumps = lib.run_traced([lib.prog("peak_spike")], d, seed=15)
    peaks = _peak_files(d)
    if len(peaks) != 1 or len(dumps) != 1:
        raise AssertionError(f"want one peak dump and the exit dump: {os.listdir(d)}")
    meta = lib.dump_meta(peaks[0])
    if meta["trigger"] != "peak" or meta["seq"] != "0":
        raise AssertionError(f"peak dump: trigger {meta['trigger']}, seq {meta['seq']}")
    if lib.dump_meta(dumps[0])["trigger"] != "exit":
        raise AssertionError(f"{dumps[0]} is not the exit dump")
    # --peak finds the peak dump from the exit dump of the same process.
    top = lib.run_tool("top", "--peak", "--unit", "MB", dumps[0]).stdout
    spike = _flat(top, "spike_site")
    if abs(spike - 200 * MIB) > 20 * MIB:
        raise AssertionError(f"top --peak: spike_site {spike / MIB:.1f} MiB, want 200:\n{top}")
    if abs(_flat(top, "hold_site") - 10 * MIB) > 5 * MIB:
        raise AssertionError(f"top --peak: hold_site is not about 10 MiB:\n{top}")
    last = lib.run_tool("top", "--unit", "MB", dumps[0]).stdout
    if "spike_site" in last or abs(_flat(last, "hold_site") - 10 * MIB) > 5 * MIB:
        raise AssertionError(f"the exit dump shows the spike, or not the held 10 MiB:\n{last}")
    # The peak dump given itself is the same.
    if lib.run_tool("top", "--peak", "--unit", "MB", peaks[0]).stdout != top:
        raise AssertionError("top --peak of the peak dump differs from top --peak of the exit dump")


def test_only_the_highest_peak_is_kept():
    """Two spikes 1.2 s apart, 100 MiB then 200 MiB from another site: one
    peak file, holding the second spike and none of the first (each peak
    dump replaces the last, and the heap at the second passed the first's
    mark by more than the step)."""
    d = lib.tmpdir()
    _, dumps = lib.run_traced([lib.prog("peak_spike"), "twice"], d, seed=15)
    peaks = _peak_files(d)
    if len(peaks) != 1 or len(dumps) != 1:
        raise AssertionError(f"want one peak dump and the exit dump: {os.listdir(d)}")
    top = lib.run_tool("top", "--peak", "--unit", "MB", dumps[0]).stdout
    if "spike_site" in top.replace("second_spike_site", "") or \
            abs(_flat(top, "second_spike_site") - 200 * MIB) > 20 * MIB:
        raise AssertionError(f"the peak dump is not the second spike's:\n{top}")


def test_peak_off():
    """HEAPTRACE_PEAK_STEP=0: no peak dump; a step larger than the spike:
    none either; `top --peak` then says there is none, in one line."""
    for step in ("0", "512M"):
        d = lib.tmpdir()
        _, dumps = lib.run_traced([lib.prog("peak_spike")], d, peak_step=step)
        if _peak_files(d) or len(dumps) != 1:
            raise AssertionError(f"HEAPTRACE_PEAK_STEP={step}: {os.listdir(d)}")
    proc = lib.run_tool("top", "--peak", dumps[0], check=False)
    if proc.returncode == 0 or len(proc.stderr.splitlines()) != 1 \
            or "no peak dump" not in proc.stderr:
        raise AssertionError(f"top --peak without one: {proc.returncode} {proc.stderr!r}")


def test_rss_limit():
    """RSS crosses 100 MiB once, for half a second, polled every 200 ms:
    exactly one dump by the limit, and its RSS is above it."""
    d = lib.tmpdir()
    _, dumps = lib.run_traced([lib.prog("peak_spike"), "touch"], d, rss_limit="100M",
                              peak_step="0")
    triggers = [lib.dump_meta(p)["trigger"] for p in dumps]
    if triggers != ["rss_limit", "exit"]:
        raise AssertionError(f"HEAPTRACE_RSS_LIMIT=100M: dumps by {triggers}")
    rss = int(lib.dump_meta(dumps[0])["rss_bytes"])
    if rss < 100 * MIB:
        raise AssertionError(f"the rss_limit dump has RSS {rss}, below the limit")


def test_rss_limit_fraction_without_cgroup():
    """A share of memory.max where the cgroup has none: one line, off."""
    if os.path.exists("/sys/fs/cgroup/memory.max") or \
            "0::/\n" not in open("/proc/self/cgroup").read():
        raise lib.Skip("this process's cgroup v2 may have a memory.max")
    d = lib.tmpdir()
    proc, dumps = lib.run_traced([lib.prog("peak_spike")], d, rss_limit="0.8",
                                 peak_step="0")
    lines = proc.stderr.splitlines()
    if len(lines) != 1 or "HEAPTRACE_RSS_LIMIT=0.800" not in lines[0] \
            or "off" not in lines[0] or len(dumps) != 1:
        raise AssertionError(f"RSS_LIMIT=0.8: {proc.stderr!r}, dumps {dumps}")


def test_alloc_step():
    """At rate 1 the allocated bytes are exact: 220 MiB in all, a dump each
    64 MiB (steps passed while a dump is written are skipped, not queued),
    and each such dump was written after the step it stands for."""
    d = lib.tmpdir()
    _, dumps = lib.run_traced([lib.prog("peak_spike")], d, alloc_step="64M",
                              peak_step="0", rate=1)
    steps = [p for p in dumps if lib.dump_meta(p)["trigger"] == "alloc_step"]
    if not 1 <= len(steps) <= 3:
        raise AssertionError(f"ALLOC_STEP=64M over 220 MiB: {len(steps)} dumps")
    for k, path in enumerate(steps, 1):
        allocated = float(lib.dump_meta(path)["alloc_bytes"])
        if allocated < k * 64 * MIB:
            raise AssertionError(f"alloc_step dump {k}: {allocated} bytes allocated")
