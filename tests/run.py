#!/usr/bin/env python3
"""The test runner for `make check`.

Every module tests/test_*.py is imported and each of its functions named
test_* is run in file order. A test fails by raising; it is skipped by
raising lib.Skip. A skip is allowed only when it is on ALLOWED_SKIPS below,
with its reason; any other skip fails (a test that silently does not run
proves nothing). Every skip is named again before the last line, which is
the count CI reads: `N passed, N failed` (with `, N skipped` when any were).
"""
import importlib
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lib  # noqa: E402

# (test name prefix, start of the skip's message, why it may skip, only
# in a partial run?) Keep this list short: each entry is a test that a
# machine may be unable to run for a reason outside the project.
ALLOWED_SKIPS = [
    ("test_faults.", "cannot mount a tmpfs here",
     "the full-disk tests mount a tmpfs, which needs root with CAP_SYS_ADMIN "
     "(containers often drop it)", False),
    ("test_zz_readers.", "no dumps were written before this test",
     "the reader check reads the dumps of the tests run before it", True),
]


def allowed_skip(full, message, partial):
    for prefix, start, why, partial_only in ALLOWED_SKIPS:
        if full.startswith(prefix) and message.startswith(start) and (partial or not partial_only):
            return why
    return None


def discover(patterns):
    tests = []
    for name in sorted(os.listdir(HERE)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        module = importlib.import_module(name[:-3])
        funcs = [
            (f.__code__.co_firstlineno, fname, f)
            for fname, f in vars(module).items()
            if fname.startswith("test_") and callable(f)
        ]
        for _, fname, f in sorted(funcs):
            full = f"{name[:-3]}.{fname}"
            if patterns and not any(p in full for p in patterns):
                continue
            tests.append((full, f))
    return tests


def main():
    patterns = sys.argv[1:]
    lib.keep_removed_dumps()  # every dump is read by test_zz_readers.py
    passed = failed = skipped = 0
    skips = []
    for full, func in discover(patterns):
        start = time.monotonic()
        try:
            func()
        except lib.Skip as e:
            why = allowed_skip(full, str(e), bool(patterns))
            if why:
                skipped += 1
                print(f"SKIP {full}: {e} (allowed: {why})", flush=True)
                skips.append(f"{full}: {e}")
            else:
                failed += 1
                print(f"FAIL {full}: skipped, and this skip is not on run.py's "
                      f"ALLOWED_SKIPS: {e}", flush=True)
                skips.append(f"{full}: {e} (counted as failed)")
            continue
        except Exception as e:  # a test fails by raising anything
            failed += 1
            took = time.monotonic() - start
            print(f"FAIL {full} ({took:.1f}s): {type(e).__name__}: {e}", flush=True)
            if os.environ.get("VERBOSE"):
                traceback.print_exc()
            continue
        passed += 1
        print(f"PASS {full} ({time.monotonic() - start:.1f}s)", flush=True)
    if skips:
        print("Skipped:\n" + "".join(f"  {s}\n" for s in skips), end="")
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
