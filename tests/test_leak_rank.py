"""The whole ranking of `heaptrace leaks` over stacks that change in
different ways (tests/progs/leak_rank.c): a fast leak, a slow leak that
holds more than the fast one, a large flat cache, a sawtooth that grows and
is released, and a small churner. Only the two leaks are flagged, the fast
one first; the others are listed by the size of their change. Ranking by
size, or slowest first, puts the slow leak first and fails. The runs are
seeded (HEAPTRACE_SEED), so a failure can be replayed from its seed."""
import re

import lib
from test_leaks import parse_leaks

SEEDS = (1, 2)
FLAGGED = ["fast_leak", "slow_leak"]
# (function, the verdict shown, or None where sampling decides between
# "fluctuates" and "not growing"), by the size of the change
NOT_FLAGGED = [("sawtooth", "fluctuates"), ("churner", None), ("flat_cache", "not growing")]
OTHER_RE = re.compile(r"^\s+\S+\s+\S+\s+\S+\s+[\d.]+\s+[\d.]+  (.+?) {2,}(\w+) \(leak_rank\.c:\d+\)")


def test_leaks_ranks_every_stack():
    for seed in SEEDS:
        d = lib.tmpdir("ht-rank-")
        proc, dumps = lib.run_traced([lib.prog("leak_rank")], dump_dir=d, on_exit=0, seed=seed)
        assert proc.stdout.strip() == "16 dumps, 0 failed", proc.stdout
        out = lib.run_tool("leaks", *dumps).stdout
        where = f"seed {seed} (replay: HEAPTRACE_SEED={seed} leak_rank; dumps in {d}):\n{out}"
        growing, others, _ = parse_leaks(out)
        names = [label.split(" ")[0] for label in growing]
        if names != FLAGGED:
            raise AssertionError(f"flagged {names}, want {FLAGGED}, {where}")
        listed = [OTHER_RE.match(line).groups()[::-1] for line in others.splitlines()
                  if OTHER_RE.match(line)]
        if [name for name, _ in listed] != [name for name, _ in NOT_FLAGGED]:
            raise AssertionError(f"not flagged {listed}, want {NOT_FLAGGED} in this order, {where}")
        for (name, verdict), (_, want) in zip(listed, NOT_FLAGGED):
            if want and verdict.strip() != want:
                raise AssertionError(f"{name} is '{verdict.strip()}', want '{want}', {where}")
        detail = [line.split()[0] for line in out.split("Growing stacks:\n", 1)[1].splitlines()
                  if line.startswith("        ") and "leak_rank.c" in line
                  and line.split()[0] in FLAGGED]
        if detail != FLAGGED:
            raise AssertionError(f"the stacks section lists {detail}, want {FLAGGED}, {where}")
