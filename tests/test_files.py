"""Dump files and where they go (issue 13): files private by default
(mode 0600, HEAPTRACE_DUMP_MODE to widen), temporaries that are never a
planted symlink, a sweep that removes only the temporaries of dead writers
of the same uid, dumps that follow a privilege drop into a private per-uid
fallback (and refuse a fallback someone else made), and gzipped dumps
(HEAPTRACE_COMPRESS) that the tool and `go tool pprof` read with the same
exact totals.

These tests change users and chown files: they need root, as CI has. Run
as another user they fail, saying so, rather than skip: a silent skip
would hide the whole subject from CI's count."""
import gzip
import os
import pwd
import re
import shutil
import stat
import subprocess

import lib
import whole

WANT_EXIT7 = (7, "allocated 13600 bytes\n")
KNOWN_INUSE_BYTES = 34385  # tests/progs/known.c at rate 1 (test_preload.KNOWN)


def require_root():
    if os.geteuid() != 0:
        raise AssertionError("this test changes users and owners of files and "
                             "must run as root (as CI does)")


def nobody():
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def shared_base():
    """A directory like /tmp (root's, 1777) to stand for TMPDIR, so that
    tests do not meet each other's fallback directories."""
    base = lib.tmpdir("ht-tmpbase-")
    os.chmod(base, 0o1777)
    return base


def root_only_dir():
    """A dump directory that root may write and nobody may not (0755)."""
    d = lib.tmpdir("ht-rootdir-")
    os.chmod(d, 0o755)
    return d


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_dump_files_are_0600_unless_widened():
    require_root()
    exe = lib.prog("exit7")

    def umask_022():
        os.umask(0o022)

    for setting, want, lines in ((None, 0o600, 0), ("0644", 0o644, 0), ("0640", 0o640, 0),
                                 ("0755", 0o600, 1), ("644x", 0o600, 1), ("0400", 0o600, 1)):
        d = lib.tmpdir()
        config = {"dump_mode": setting} if setting else {}
        proc = lib.run([exe], env=lib.traced_env(d, **config), check=False,
                       preexec_fn=umask_022)
        if (proc.returncode, proc.stdout) != WANT_EXIT7:
            raise AssertionError(f"{setting}: exit7 exited {proc.returncode} {proc.stdout!r}")
        err = proc.stderr.splitlines()
        if len(err) != lines or (lines and not re.search(
                rf"HEAPTRACE_DUMP_MODE='{setting}' .*using the default 0600", err[0])):
            raise AssertionError(f"HEAPTRACE_DUMP_MODE={setting}: stderr {proc.stderr!r}")
        dumps = lib.dumps_in(d)
        if len(dumps) != 1 or mode(dumps[0]) != want:
            raise AssertionError(f"HEAPTRACE_DUMP_MODE={setting}: "
                                 f"{[(p, oct(mode(p))) for p in dumps]}, want {oct(want)}")
        shutil.rmtree(d)
    # The umask only narrows: 0644 under umask 077 is 0600.
    d = lib.tmpdir()
    lib.run([exe], env=lib.traced_env(d, dump_mode="0644"), check=False,
            preexec_fn=lambda: os.umask(0o077))
    if [mode(p) for p in lib.dumps_in(d)] != [0o600]:
        raise AssertionError(f"umask 077: {[oct(mode(p)) for p in lib.dumps_in(d)]}")
    shutil.rmtree(d)


def test_symlink_at_the_temporary_name_is_not_followed():
    """A symlink planted where the exit dump's temporary will be made,
    pointing at a file of the victim's: the file is untouched, the symlink
    stays, and the dump is still written whole under its own name."""
    require_root()
    d = lib.tmpdir()
    victim = os.path.join(lib.tmpdir("ht-victim-"), "precious")
    with open(victim, "w") as f:
        f.write("precious\n")
    proc = subprocess.Popen([lib.prog("exit7"), "wait"], env=lib.traced_env(d),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    planted = []
    try:
        for name in (f".heaptrace.{proc.pid}.0001.heap.tmp", f"heaptrace.{proc.pid}.0001.heap"):
            os.symlink(victim, os.path.join(d, name))
            planted.append(name)
        out, err = proc.communicate("", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if (proc.returncode, out, err) != (*WANT_EXIT7, ""):
        raise AssertionError(f"exit7 exited {proc.returncode} {out!r}, stderr {err!r}")
    with open(victim) as f:
        if f.read() != "precious\n":
            raise AssertionError("the symlink's target was written")
    tmp = os.path.join(d, planted[0])
    if not os.path.islink(tmp) or os.readlink(tmp) != victim:
        raise AssertionError("the planted symlink was removed or replaced")
    # The final name is replaced by rename(2), which never follows it.
    final = os.path.join(d, planted[1])
    if os.path.islink(final):
        raise AssertionError("the dump did not take its final name")
    whole.assert_whole(final)
    if lib.dump_meta(final)["pid"] != str(proc.pid) or mode(final) != 0o600:
        raise AssertionError(f"{final}: {lib.dump_meta(final)['pid']} {oct(mode(final))}")
    left = sorted(f for f in os.listdir(d) if f.endswith(".tmp"))
    if left != [planted[0]]:
        raise AssertionError(f"temporaries left: {left}")
    shutil.rmtree(d)
    shutil.rmtree(os.path.dirname(victim))


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_sweep_removes_only_dead_temporaries_of_its_own_uid():
    """At start a traced process removes the temporaries that dead writers
    of its uid left; another uid's, a live writer's, a symlink and a
    directory stay."""
    require_root()
    uid, gid = nobody()
    d = lib.tmpdir()
    os.chmod(d, 0o1777)
    dead, dead2 = dead_pid(), dead_pid()
    names = {
        f".heaptrace.{dead}.0001.heap.tmp": ("file", 0, False),
        f".heaptrace.{dead}.0002.heap.gz.tmp": ("file", 0, False),
        f".heaptrace.{dead}.0003.heap.5f3a.tmp": ("file", 0, False),
        f".heaptrace.{dead2}.0001.heap.tmp": ("file", uid, True),
        f".heaptrace.{os.getpid()}.0001.heap.tmp": ("file", 0, True),
        f".heaptrace.{dead2}.0004.heap.tmp": ("symlink", 0, True),
        f".heaptrace.{dead2}.0005.heap.tmp": ("dir", 0, True),
        f"heaptrace.{dead}.0001.heap": ("file", 0, True),
    }
    for name, (kind, owner, _) in names.items():
        path = os.path.join(d, name)
        if kind == "file":
            with open(path, "w") as f:
                f.write("partial\n")
            os.chown(path, owner, gid if owner else 0)
        elif kind == "symlink":
            os.symlink("/etc/hostname", path)
        else:
            os.mkdir(path)
    proc = lib.run([lib.prog("exit7")], env=lib.traced_env(d), check=False)
    if (proc.returncode, proc.stdout, proc.stderr) != (*WANT_EXIT7, ""):
        raise AssertionError(f"exit7: {proc.returncode} {proc.stdout!r} {proc.stderr!r}")
    present = set(os.listdir(d))
    for name, (kind, owner, stays) in names.items():
        if (name in present) != stays:
            raise AssertionError(f"{name} ({kind}, uid {owner}) "
                                 f"{'was removed' if stays else 'was left'}")
    shutil.rmtree(d)


def run_dropping(dump_dir, base, after, **config):
    env = lib.traced_env(dump_dir, rate=1, **config)
    env["TMPDIR"] = base
    proc = lib.run([lib.prog("drop_priv"), str(after)], env=env, check=False)
    if proc.returncode != 0 or proc.stdout != f"uid {nobody()[0]}, 0 dumps failed\n":
        raise AssertionError(f"drop_priv exited {proc.returncode} {proc.stdout!r} "
                             f"stderr {proc.stderr!r}")
    return proc


def test_dumps_follow_a_privilege_drop_into_a_private_fallback():
    """Root with a root-only 0755 HEAPTRACE_DIR drops to nobody: its first
    dump is in the directory, the later ones (exit dump included) in
    TMPDIR/heaptrace-<nobody>, made 0700 and owned by nobody, each 0600 and
    owned by nobody; one line says where they go now. HEAPTRACE_KEEP thins
    the files in the fallback."""
    require_root()
    uid, _ = nobody()
    d, base = root_only_dir(), shared_base()
    fallback = os.path.join(base, f"heaptrace-{uid}")
    proc = run_dropping(d, base, 3)
    lines = proc.stderr.splitlines()
    if len(lines) != 1 or lines[0] != (f"heaptrace: {d} is not writable for uid {uid}; "
                                       f"dumps now go to {fallback}"):
        raise AssertionError(f"stderr {proc.stderr!r}")
    st = os.lstat(fallback)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or stat.S_IMODE(st.st_mode) != 0o700:
        raise AssertionError(f"{fallback}: uid {st.st_uid} mode {oct(st.st_mode)}")
    first, later = lib.dumps_in(d), lib.dumps_in(fallback)
    if [lib.dump_meta(p)["seq"] for p in first] != ["1"] \
            or [lib.dump_meta(p)["seq"] for p in later] != ["2", "3", "4", "5"] \
            or lib.dump_meta(later[-1])["trigger"] != "exit":
        raise AssertionError(f"dumps: {first} {later}")
    for path in first + later:
        whole.assert_whole(path)
        st = os.lstat(path)
        owner = 0 if path in first else uid
        if st.st_uid != owner or stat.S_IMODE(st.st_mode) != 0o600:
            raise AssertionError(f"{path}: uid {st.st_uid} mode {oct(st.st_mode)}")
    # The exit dump holds the 1000 bytes before the drop and 3 x 2000 after.
    exe = lib.prog("drop_priv")
    totals = lib.pprof_totals(later[-1], exe)
    by_leaf = lib.pprof_by_leaf(later[-1], exe)
    if by_leaf.get("main", {}).get("inuse_space") != 7000:
        raise AssertionError(f"exit dump: {by_leaf.get('main')} (totals {totals})")
    whole.no_tmp_left(fallback)
    shutil.rmtree(fallback)

    # Thinning works in whichever directory the files went to: with
    # HEAPTRACE_KEEP=3 the root-owned first dump cannot be removed by
    # nobody, and two of the seven later ones remain, the exit dump last.
    proc = run_dropping(d, base, 6, keep=3)
    later = lib.dumps_in(fallback)
    if len(later) != 2 or lib.dump_meta(later[-1])["trigger"] != "exit":
        raise AssertionError(f"keep=3: {later}")
    shutil.rmtree(d)
    shutil.rmtree(base)


def test_a_relative_tmpdir_is_said_once_and_tmp_used():
    """TMPDIR is read at start for the fallback; a relative one is one line
    naming it, and /tmp/heaptrace-<uid> is used instead."""
    require_root()
    uid, _ = nobody()
    d = root_only_dir()
    env = lib.traced_env(d, rate=1)
    env["TMPDIR"] = "relative/tmp"
    proc = lib.run([lib.prog("drop_priv"), "1"], env=env, check=False)
    lines = proc.stderr.splitlines()
    fallback = f"/tmp/heaptrace-{uid}"
    if proc.stdout != f"uid {uid}, 0 dumps failed\n" or len(lines) != 2 \
            or not lines[0].startswith("heaptrace: TMPDIR='relative/tmp' is not an absolute path") \
            or not lines[1].endswith(f"dumps now go to {fallback}"):
        raise AssertionError(f"drop_priv: {proc.stdout!r} {proc.stderr!r}")
    pid = lib.dump_meta(lib.dumps_in(d)[0])["pid"]
    mine = lib.dumps_in(fallback, pid)
    if [lib.dump_meta(p)["trigger"] for p in mine] != ["api", "exit"]:
        raise AssertionError(f"in {fallback}: {mine}")
    for path in mine:
        os.unlink(path)
    shutil.rmtree(d)


def test_a_fallback_someone_else_made_is_refused():
    """/tmp is shared: a heaptrace-<uid> that is root's and 0777, or a
    symlink to a directory of nobody's, is not used. The dumps after the
    drop are skipped, said once; nothing is written there."""
    require_root()
    uid, gid = nobody()
    for kind in ("foreign", "symlink", "open"):
        d, base = root_only_dir(), shared_base()
        fallback = os.path.join(base, f"heaptrace-{uid}")
        elsewhere = lib.tmpdir("ht-elsewhere-")
        if kind == "foreign":
            os.mkdir(fallback)
            os.chmod(fallback, 0o777)
        elif kind == "symlink":
            os.chown(elsewhere, uid, gid)
            os.symlink(elsewhere, fallback)
        else:  # nobody's own, but readable by others
            os.mkdir(fallback)
            os.chown(fallback, uid, gid)
            os.chmod(fallback, 0o755)
        env = lib.traced_env(d, rate=1)
        env["TMPDIR"] = base
        proc = lib.run([lib.prog("drop_priv"), "3"], env=env, check=False)
        if proc.stdout != f"uid {uid}, 3 dumps failed\n":
            raise AssertionError(f"{kind}: drop_priv {proc.returncode} {proc.stdout!r}")
        lines = proc.stderr.splitlines()
        refused = [line for line in lines if line.startswith(f"heaptrace: cannot use {fallback}")]
        failed = [line for line in lines if "cannot write a dump" in line]
        if len(refused) != 1 or len(failed) != 1 or len(lines) != 2:
            raise AssertionError(f"{kind}: stderr {proc.stderr!r}")
        look = elsewhere if kind == "symlink" else fallback
        if os.listdir(look) or len(lib.dumps_in(d)) != 1:
            raise AssertionError(f"{kind}: written {os.listdir(look)} {lib.dumps_in(d)}")
        for path in (d, base, elsewhere):
            shutil.rmtree(path)


def gz_meta(path):
    with gzip.open(path, "rt") as f:
        meta = {}
        for line in f:
            if line.startswith("# ") and ": " in line:
                key, _, value = line[2:].rstrip("\n").partition(": ")
                meta.setdefault(key, value)
            elif line.startswith("MAPPED_LIBRARIES:"):
                break
        return meta


def totals_line(text):
    m = re.search(r"^Showing nodes accounting for .*$", text, re.M)
    if not m:
        raise AssertionError(f"no totals line in {text[:500]!r}")
    return m.group(0)


def test_compressed_dumps_read_with_the_same_totals():
    """HEAPTRACE_COMPRESS=1 writes heaptrace.<pid>.<seq>.heap.gz (0600, a
    gzip stream); `heaptrace top` and `go tool pprof -top` read it with the
    same exact totals as the plain dump of the same program (in use and
    allocated)."""
    require_root()
    exe = lib.prog("known")
    plain_dir, gz_dir = lib.tmpdir(), lib.tmpdir()
    lib.run([exe], env=lib.traced_env(plain_dir, rate=1))
    proc = lib.run([exe], env=lib.traced_env(gz_dir, rate=1, compress=1))
    files = os.listdir(gz_dir)
    if proc.stderr or len(files) != 1 or not re.fullmatch(r"heaptrace\.\d+\.0001\.heap\.gz",
                                                          files[0]):
        raise AssertionError(f"compressed run: {files} {proc.stderr!r}")
    plain, packed = lib.dumps_in(plain_dir)[0], os.path.join(gz_dir, files[0])
    with open(packed, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            raise AssertionError("not gzip data")
    if mode(packed) != 0o600 or gz_meta(packed)["trigger"] != "exit":
        raise AssertionError(f"{packed}: mode {oct(mode(packed))}, {gz_meta(packed)}")
    whole.assert_whole(plain)
    for index in ("inuse_space", "alloc_objects"):
        ours = [totals_line(lib.run_tool("top", "--unit", "B", f"--{index}", p).stdout)
                for p in (plain, packed)]
        theirs = [totals_line(lib.go_pprof("-top", "-unit=B", f"-sample_index={index}",
                                           "-symbolize=none", exe, p))
                  for p in (plain, packed)]
        if theirs[0] != theirs[1] or ours[0] != ours[1]:
            raise AssertionError(f"{index}: plain and gzip differ: {theirs} {ours}")
        if index == "inuse_space":
            want = f"Showing nodes accounting for {KNOWN_INUSE_BYTES}B, 100% of " \
                   f"{KNOWN_INUSE_BYTES}B total"
            if theirs[0] != want or ours[0] != want:
                raise AssertionError(f"inuse_space: {theirs} {ours}, want {want!r}")
    shutil.rmtree(plain_dir)
    shutil.rmtree(gz_dir)


def test_compressed_dumps_are_thinned_and_a_bad_setting_said_once():
    """HEAPTRACE_KEEP thins .heap.gz files as it does plain ones (the first,
    the newest and one between remain of 11); HEAPTRACE_COMPRESS=yes is one
    line and plain dumps."""
    require_root()
    d = lib.tmpdir()
    proc = lib.run([lib.prog("api_dumps"), "10"], env=lib.traced_env(d, compress=1, keep=3))
    names = sorted(os.listdir(d))
    seqs = [int(n.split(".")[2]) for n in names]
    if proc.stderr or len(names) != 3 or not all(n.endswith(".heap.gz") for n in names) \
            or seqs[0] != 1 or seqs[-1] != 11 or gz_meta(os.path.join(d, names[-1]))["trigger"] \
            != "exit":
        raise AssertionError(f"keep=3: {names} {proc.stderr!r}")
    shutil.rmtree(d)
    d = lib.tmpdir()
    proc = lib.run([lib.prog("exit7")], env=lib.traced_env(d, compress="yes"), check=False)
    lines = proc.stderr.splitlines()
    if len(lines) != 1 or "HEAPTRACE_COMPRESS='yes'" not in lines[0] \
            or [os.path.basename(p) for p in lib.dumps_in(d)] != os.listdir(d):
        raise AssertionError(f"compress=yes: {os.listdir(d)} {proc.stderr!r}")
    shutil.rmtree(d)
