"""Bad input to the heaptrace command, bounded for `make check`: the fuzzer
(tests/fuzz_dumps.py) with a fixed seed, its regression inputs first. Every
input must give a result, or one `heaptrace: FILE[:LINE]: ...` line and
status 2; never a traceback or a hang. `make fuzz` runs it longer."""
import os
import sys

import lib

SEED = 20261126
ITERATIONS = 200


def test_fuzz_dumps_fixed_seed():
    script = os.path.join(lib.ROOT, "tests", "fuzz_dumps.py")
    keep = lib.tmpdir("ht-fuzz-failures-")
    proc = lib.run([sys.executable, script, "--iterations", str(ITERATIONS),
                    "--seed", str(SEED), "--keep", keep], timeout=600, check=False)
    if proc.returncode != 0 or proc.stderr:
        raise AssertionError(f"fuzz_dumps exited {proc.returncode} (inputs kept in {keep}):\n"
                             f"{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
