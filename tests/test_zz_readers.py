"""Reader agreement over everything: every dump that the tests before this
one made the preload write, including those a test removed (lib.py keeps
them, see lib.keep_dumps), is read by `go tool pprof` and by `google-pprof`,
and their totals of the four sample types agree with heaptrace's own `#`
totals: exactly at rate 1, otherwise within the rounding of each line of
that dump (lib.line_rounding). Each dump is also whole (tests/whole.py: its
header line sums its sample lines, its maps are complete). Where a test
knows a dump's truth (lib.TRUTH), go tool pprof's reading is held to it as
well. Runs last (the
runner takes modules in name order).

Totals need no symbols, so the readers are not given the program (it may be
gone): go tool pprof runs with -symbolize=none, google-pprof with /bin/true
as the program. google-pprof sums the profiles it is given, each scaled by
its own rate, so it reads the dumps in batches (one process a batch and
sample type) and a batch's total is held to the sum of its dumps' own
totals within the sum of their allowances; a batch that disagrees is read
again dump by dump to name the one misread. google-pprof is slow (about
0.4 s of CPU for each dump of the hostile tests, and it symbolizes every
library a dump maps): it reads each batch for one sample type, the type
taking turns across batches, while go tool pprof reads all four types of
every dump. Dumps over LARGE bytes (a quarter of the dumps, most of their
bytes) are read by go tool pprof only. The whole pass costs about 0.25 s
of CPU a dump."""
import gzip
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import lib
import whole

LARGE = 1 << 20
BATCH_DUMPS = 100
BATCH_BYTES = 16 << 20


def _go_pprof():
    """The pprof binary itself: `go tool pprof` starts it through the go
    command, which costs more than reading a small dump."""
    tooldir = lib.run(["go", "env", "GOTOOLDIR"]).stdout.strip()
    path = os.path.join(tooldir, "pprof")
    return [path] if os.access(path, os.X_OK) else ["go", "tool", "pprof"]


def plain_dumps():
    """Every dump written, as plain files: those still in the tests'
    directories (gzip ones unpacked next to the kept ones) and those kept."""
    out, unpack = [], lib.tmpdir("ht-readers-")
    for d in dict.fromkeys(lib.DUMP_DIRS):
        if not os.path.isdir(d):
            continue
        out += lib.dumps_in(d, peak=True)
        for i, gz in enumerate(sorted(os.listdir(d))):
            if re.match(r"heaptrace\..*\.heap\.gz$", gz):
                dest = os.path.join(unpack, f"{i:05d}.{gz[:-3]}")
                with gzip.open(os.path.join(d, gz), "rb") as src, open(dest, "wb") as f:
                    shutil.copyfileobj(src, f)
                out.append(dest)
    return list(dict.fromkeys(out + lib.KEPT))


def written_by_heaptrace(path):
    """Tests also plant files under dump names (a dead writer's leftovers);
    the preload's own dumps start with the header and say `# heaptrace:`."""
    meta = lib.dump_meta(path)
    return bool(lib.HEADER_RE.match(meta["header"])) and "heaptrace" in meta


def own_totals(dump):
    """heaptrace's totals as pprof's readers count: without the objects of
    no bytes, which they drop (docs/format.md)."""
    meta = lib.dump_meta(dump)
    totals = {kind: float(meta[key]) for kind, key in lib.OWN_TOTALS.items()}
    zero_inuse, zero_alloc = lib.zero_byte_objects(dump)
    totals["inuse_objects"] -= zero_inuse
    totals["alloc_objects"] -= zero_alloc
    return totals, meta["rate"] == "1"


def go_check(item):
    """None, or what is wrong with go tool pprof's reading of dump."""
    pprof, dump = item
    try:  # the header line sums the sample lines, the maps are complete
        whole.assert_whole(dump)
    except AssertionError as e:
        return f"{dump}: {e}"
    env = dict(os.environ, PPROF_TMPDIR=lib.tmpdir("ht-pprof-"))
    proc = subprocess.run([*pprof, "-raw", "-symbolize=none", dump], env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode:
        return f"{dump}: go tool pprof cannot read it: {proc.stderr[-500:]}"
    types, samples = lib.parse_pprof_raw(proc.stdout)
    names = [t.split("/")[0] for t in types]
    got = dict.fromkeys(lib.OWN_TOTALS, 0)
    for values, _ in samples:
        for name, v in zip(names, values):
            got[name] += v
    own, exact = own_totals(dump)
    bounds = lib.line_rounding(dump)
    for kind in lib.OWN_TOTALS:
        if not lib.readers_agree(own[kind], got[kind], bounds[kind], exact):
            return (f"{dump}: go tool pprof reads {kind}={got[kind]}, heaptrace says "
                    f"{own[kind]} (allowed +-{bounds[kind]:.1f})")
        if dump in lib.TRUTH:
            truth, allowed = lib.TRUTH[dump][kind]
            if abs(got[kind] - truth) > allowed + bounds[kind]:
                return (f"{dump}: go tool pprof reads {kind}={got[kind]}, the truth is "
                        f"{truth} (allowed +-{allowed + bounds[kind]:.1f})")
    return None


def google_total(dumps, kind):
    """google-pprof's Total of kind over the dumps, summed by it."""
    proc = subprocess.run(["google-pprof", "--text", "--show_bytes", "--" + kind, "/bin/true",
                           *dumps], capture_output=True, text=True, timeout=600)
    m = re.search(r"^Total: (-?[\d.]+) (B|objects)$", proc.stdout, re.M)
    if m:
        return float(m.group(1))
    return None  # nothing of this kind, or unreadable: the caller decides


def google_check(item):
    """None, or what is wrong with google-pprof's reading of a batch."""
    dumps, kind = item
    own, allowed, exact = 0.0, 0.0, True
    for dump in dumps:
        totals, dump_exact = own_totals(dump)
        own += totals[kind]
        exact &= dump_exact
        # + 1: each dump's whole-number reading (alone, an exact dump must
        # round to its total; summed, those half units add up)
        allowed += lib.line_rounding(dump)[kind] + 1
    exact &= len(dumps) == 1
    got = google_total(dumps, kind)
    if got is None and round(own) == 0:
        got = 0.0
    if got is not None and lib.readers_agree(own, got, allowed, exact):
        return None
    if len(dumps) > 1:  # which one
        wrong = [google_check(([d], kind)) for d in dumps]
        wrong = [w for w in wrong if w]
        return "; ".join(wrong) if wrong else (
            f"google-pprof reads {kind}={got} from {len(dumps)} dumps together, heaptrace "
            f"says {own} (allowed +-{allowed:.1f}), though each alone agrees: {dumps}")
    return (f"{dumps[0]}: google-pprof reads {kind}={got}, heaptrace says {own} "
            f"(allowed +-{allowed:.1f})")


def batches(dumps):
    out, cur, size = [], [], 0
    for d in dumps:
        n = os.path.getsize(d)
        if cur and (len(cur) == BATCH_DUMPS or size + n > BATCH_BYTES):
            out.append(cur)
            cur, size = [], 0
        cur.append(d)
        size += n
    return out + ([cur] if cur else [])


def test_every_dump_the_tests_wrote_is_read_alike():
    if lib.KEEP_ERRORS:
        raise AssertionError("dumps removed before they could be kept: "
                             + "; ".join(lib.KEEP_ERRORS[:5]))
    found = plain_dumps()
    dumps = [d for d in found if written_by_heaptrace(d)]
    if not dumps:
        raise lib.Skip("no dumps were written before this test (run it with the others)")
    small = [d for d in dumps if os.path.getsize(d) <= LARGE]
    pprof = _go_pprof()
    jobs = [(go_check, (pprof, d)) for d in dumps]
    # google-pprof reads each batch for one sample type, the type taking
    # turns across batches; go tool pprof reads all four of every dump.
    kinds = list(lib.OWN_TOTALS)
    jobs += [(google_check, (b, kinds[i % 4])) for i, b in enumerate(batches(small))]
    with ThreadPoolExecutor(max_workers=2) as pool:
        wrong = [w for w in pool.map(lambda j: j[0](j[1]), jobs) if w]
    if wrong:
        raise AssertionError(f"{len(wrong)} readings disagree: " + " | ".join(wrong[:5]))
    print(f"  {len(dumps)} dumps read by go tool pprof, {len(small)} of them by google-pprof "
          f"too, for one sample type a batch ({len(dumps) - len(small)} over {LARGE >> 20} MiB by go tool pprof only; "
          f"{len(lib.KEPT)} kept from removed directories; {len(lib.TRUTH)} held to the truth; "
          f"{len(found) - len(dumps)} files under dump names that heaptrace did not write)")
