"""Reader agreement over everything: every dump that the tests before this
one made the preload write is read by `go tool pprof`, and the first of
each test's directory by `google-pprof` too, and their totals agree with
heaptrace's own `#` totals (exactly at rate 1, within the whole-count
rounding of the legacy format otherwise). Runs last (the runner takes
modules in name order)."""
import os
from concurrent.futures import ThreadPoolExecutor

import lib

# Dumps of programs whose files are gone by now, or too big to parse twice
# in reasonable time, are left to the tests that made them.
MAX_BYTES = 8 << 20


def check(item):
    dump, google = item
    exe = lib.dump_meta(dump).get("exe", "")
    if not os.path.exists(exe):
        return None
    try:
        lib.assert_readers_agree(dump, exe, google=google)
    except AssertionError as e:
        raise AssertionError(f"{dump} ({exe}): {e}") from None
    return dump


def test_every_dump_the_tests_wrote_is_read_alike():
    dumps = []
    for d in lib.DUMP_DIRS:
        files = [f for f in lib.dumps_in(d, peak=True) if os.path.getsize(f) <= MAX_BYTES]
        dumps += [(f, i == 0) for i, f in enumerate(files)]
    if not dumps:
        raise lib.Skip("no dumps were written before this test (run it with the others)")
    with ThreadPoolExecutor(max_workers=2) as pool:
        checked = [d for d in pool.map(check, dumps) if d]
    assert len(checked) >= len(dumps) // 2, f"only {len(checked)} of {len(dumps)} checkable"
    print(f"  {len(checked)} dumps read alike by go tool pprof and google-pprof")
