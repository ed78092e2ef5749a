"""The lock-free core under ThreadSanitizer: build/tests/core_tsan
(tests/core/stress.c) hammers the stack table and the live map from 8
threads without interposition and then checks them against a sequential
model; build/tests/rules_tsan (tests/core/rules.c) does the same for the
cache of frame rules. TSan must report nothing and the models must agree."""
import os
import re

import lib


def test_core_tables_under_tsan_match_the_model():
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1 exitcode=66")
    proc = lib.run([lib.prog("core_tsan"), "4000"], env=env, timeout=300, check=False)
    if proc.returncode == 66 or "ThreadSanitizer" in proc.stderr:
        raise AssertionError(f"ThreadSanitizer report:\n{proc.stderr[-4000:]}")
    if proc.returncode != 0 or proc.stderr:
        raise AssertionError(f"core_tsan exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    lines = proc.stdout.splitlines()
    if len(lines) != 3 or "3000 stacks, 200 colliding pairs" not in lines[0]:
        raise AssertionError(f"unexpected summary: {proc.stdout!r}")


def test_frame_rule_cache_under_tsan_gives_the_rules_read():
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1 exitcode=66")
    proc = lib.run([lib.prog("rules_tsan")], env=env, timeout=300, check=False)
    if proc.returncode == 66 or "ThreadSanitizer" in proc.stderr:
        raise AssertionError(f"ThreadSanitizer report:\n{proc.stderr[-4000:]}")
    if proc.returncode != 0 or proc.stderr:
        raise AssertionError(f"rules_tsan exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    m = re.match(r"rules: 6000 addresses, (\d+) rsp-based, (\d+) rbp-based, "
                 r"(\d+) outermost, (\d+) unknown$", proc.stdout.strip())
    # libc's code is mostly rsp-based; the program's own function has its
    # CFA in rbp once its prologue is done
    if not m or int(m.group(1)) < 3000 or int(m.group(2)) < 100:
        raise AssertionError(f"unexpected summary: {proc.stdout!r}")
