#!/usr/bin/env python3
"""`make mutants`: plants each fault of tests/mutants.txt in a scratch copy
of the tree (build/mutants/<name>), builds it, runs the tests that fault
should trip, and prints which faults survive (their tests all passed). A
fault whose text is not found is an error of the list, not a survivor.

The copy is the working tree as it is (tracked and untracked files that git
does not ignore) plus build/, times kept, so make rebuilds only what the
fault touched.

usage: tests/mutants.py [NAME ...]   (default: every fault)
"""
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIST = os.path.join(ROOT, "tests", "mutants.txt")
SCRATCH = os.path.join(ROOT, "build", "mutants")


def parse(path):
    """[{name, what, file, tests, old, new}] from the list's blocks."""
    faults, cur, part = [], None, None
    with open(path) as f:
        for line in f:
            if line.startswith("== "):
                name, _, what = line[3:].rstrip("\n").partition(": ")
                cur = {"name": name, "what": what, "old": [], "new": []}
                faults.append(cur)
                part = "head"
            elif cur is None or (part == "head" and line.startswith("#")):
                continue
            elif part == "head" and line.startswith("file: "):
                cur["file"] = line[6:].strip()
            elif part == "head" and line.startswith("tests: "):
                cur["tests"] = line[7:].split()
            elif line.rstrip("\n") == "---":
                part = "old"
            elif line.rstrip("\n") == "+++":
                part = "new"
            elif part in ("old", "new"):
                cur[part].append(line)
    for f in faults:
        for part in ("old", "new"):  # the blank line before the next block
            while f[part] and not f[part][-1].strip():
                f[part].pop()
            f[part] = "".join(f[part])
        if not f.get("file") or not f.get("tests") or not f["old"]:
            raise SystemExit(f"{path}: fault {f['name']} lacks file, tests or text")
    return faults


def copy_tree(dest):
    if os.path.exists(dest):
        shutil.rmtree(dest)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"],
                           cwd=ROOT, capture_output=True, check=True).stdout
    for rel in files.decode().split("\0"):
        src = os.path.join(ROOT, rel)
        if not rel or not os.path.isfile(src):
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel))
    shutil.copytree(os.path.join(ROOT, "build"), os.path.join(dest, "build"),
                    symlinks=True, ignore=lambda d, names: ["mutants"] if d == os.path.join(ROOT, "build") else [])


def plant(dest, fault):
    path = os.path.join(dest, fault["file"])
    with open(path) as f:
        text = f.read()
    if text.count(fault["old"]) != 1:
        raise SystemExit(f"fault {fault['name']}: its text occurs {text.count(fault['old'])} "
                         f"times in {fault['file']} (the list is out of date)")
    with open(path, "w") as f:
        f.write(text.replace(fault["old"], fault["new"]))


def run_one(fault):
    dest = os.path.join(SCRATCH, fault["name"])
    copy_tree(dest)
    plant(dest, fault)
    start = time.monotonic()
    build = subprocess.run(["make", "-j2", "all"], cwd=dest, capture_output=True, text=True)
    if build.returncode != 0:
        return "killed (does not build)", build.stderr[-300:], time.monotonic() - start
    test = subprocess.run([sys.executable, "tests/run.py", *fault["tests"]], cwd=dest,
                          capture_output=True, text=True, timeout=1800)
    lines = test.stdout.strip().splitlines()
    last = lines[-1] if lines else "(no output)"
    failed = [line for line in lines if line.startswith("FAIL ")]
    took = time.monotonic() - start
    if test.returncode != 0 and failed:
        return "killed", f"{last}; {failed[0][:300]}", took
    if test.returncode != 0:
        return "killed", last, took
    return "SURVIVED", last, took


def main():
    faults = parse(LIST)
    wanted = sys.argv[1:]
    unknown = set(wanted) - {f["name"] for f in faults}
    if unknown:
        raise SystemExit(f"no such fault: {' '.join(sorted(unknown))}")
    faults = [f for f in faults if not wanted or f["name"] in wanted]
    survived = []
    for fault in faults:
        verdict, detail, took = run_one(fault)
        print(f"{verdict:<9} {fault['name']} ({took:.0f}s): {fault['what']}\n          {detail}",
              flush=True)
        if verdict == "SURVIVED":
            survived.append(fault["name"])
        shutil.rmtree(os.path.join(SCRATCH, fault["name"]), ignore_errors=True)
    print(f"{len(faults) - len(survived)} killed, {len(survived)} survived"
          + (f": {' '.join(survived)}" if survived else ""))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
