#!/usr/bin/env python3
"""The test runner for `make check`.

Every module tests/test_*.py is imported and each of its functions named
test_* is run in file order. A test fails by raising; it is skipped by
raising lib.Skip. The last line is the count CI reads:
`N passed, N failed` (with `, N skipped` when any were).
"""
import importlib
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lib  # noqa: E402


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
    passed = failed = skipped = 0
    for full, func in discover(patterns):
        start = time.monotonic()
        try:
            func()
        except lib.Skip as e:
            skipped += 1
            print(f"SKIP {full}: {e}", flush=True)
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
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
