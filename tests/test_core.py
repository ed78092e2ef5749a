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


# The live map's seqlock fences (see docs/reliability.md, "The seqlock"):
# on x86-64 they compile to nothing, so no run here can see them missing;
# on arm64 each is one barrier instruction. The preload's livemap.c is
# compiled for arm64 and each fence must be there.
SEQLOCK_FENCES = {"livemap_insert": "dmb ish", "livemap_foreach": "dmb ishld"}


def _functions(asm):
    """{function: [its instructions, operands separated by one space]} of
    `clang -S` output."""
    out, name = {}, None
    for line in asm.splitlines():
        m = re.match(r"^([A-Za-z_]\w*):", line)
        if m:
            name = m.group(1)
            out[name] = []
        elif name and line.startswith("\t") and not line.strip().startswith("."):
            out[name].append(" ".join(line.split()))
    return out


def test_live_map_seqlock_fences():
    src = os.path.join(lib.ROOT, "preload", "livemap.c")
    proc = lib.run(["clang", "--target=aarch64-linux-gnu", "-ffreestanding", "-std=c11",
                    "-O2", "-D_GNU_SOURCE", "-S", "-o", "-", src], check=False)
    if proc.returncode:
        raise AssertionError(f"clang cannot compile livemap.c for arm64: {proc.stderr[-1000:]}")
    funcs = _functions(proc.stdout)
    for name, barrier in SEQLOCK_FENCES.items():
        if barrier not in funcs.get(name, []):
            raise AssertionError(
                f"{name} compiled for arm64 has no `{barrier}`: the seqlock's fence is gone "
                f"(the {'writer' if 'insert' in name else 'reader'} side, see preload/livemap.c)")
