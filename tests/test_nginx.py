"""nginx (the Debian package) as production runs it (issue 13): started as
root, `user nobody;`, a master and 2 workers, in a root-owned 0755
directory that is also HEAPTRACE_DIR. The workers cannot write there after
they become nobody: their dumps must go to the private fallback
TMPDIR/heaptrace-<nobody>, said once by each, while the master writes its
own in the directory. Loaded with a bounded number of requests on loopback
and stopped with QUIT, bounded in time. `heaptrace leaks` over both
directories reports the master and each worker apart, with no restarts.

Needs root (nginx switches users only then) and nginx, which
tests/install-deps.sh installs: without either the test fails, saying so."""
import os
import grp
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.request

import lib
import test_families
import whole

REQUESTS = 300
CONFIG = """user nobody {group};
worker_processes 2;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "hello from nginx\\n"; }}
    }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return sorted(int(p) for p in f.read().split())
    except OSError:
        return []


def wait_until(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def get(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
        return r.status, r.read()


def stop(proc, timeout=15):
    """QUIT (graceful), bounded; a master that does not stop is killed and
    the test fails."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"nginx did not stop within {timeout} s of QUIT") from None


def test_nginx_workers_dump_after_dropping_to_nobody():
    if os.geteuid() != 0:
        raise AssertionError("this test starts nginx as root (as CI does); run it as root")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        raise AssertionError("nginx is not installed (tests/install-deps.sh installs it)")
    pw = pwd.getpwnam("nobody")
    uid, group = pw.pw_uid, grp.getgrgid(pw.pw_gid).gr_name
    d = lib.tmpdir("ht-nginx-")
    os.chmod(d, 0o755)
    base = lib.tmpdir("ht-tmpbase-")
    os.chmod(base, 0o1777)
    fallback = os.path.join(base, f"heaptrace-{uid}")
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(d=d, port=port, group=group))
    env = lib.traced_env(d, interval=1, signal="RTMIN+3")
    env["TMPDIR"] = base
    master = subprocess.Popen([nginx, "-p", d, "-e", f"{d}/error.log", "-c", conf],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        workers = wait_until("2 workers", lambda: _started(master, d)
                             and len(children(master.pid)) == 2 and children(master.pid), 15)
        wait_until(f"nginx listening on port {port}", lambda: _answers(port), 15)
        for _ in range(REQUESTS):
            status, body = get(port)
            if status != 200 or body != b"hello from nginx\n":
                raise AssertionError(f"nginx answered {status} {body!r}")
        # Periodic dumps (1 s): two from every worker after the load.
        wait_until("two dumps from each worker",
                   lambda: all(len(lib.dumps_in(fallback, pid)) >= 2 for pid in workers), 20)
        # Two from the master too: with its exit dump, 3 to analyse.
        wait_until("two dumps from the master",
                   lambda: len(lib.dumps_in(d, master.pid)) >= 2, 10)
        _dump_workers_through_the_socket(workers, fallback)
        if children(master.pid) != workers:
            raise AssertionError(f"workers changed: {workers} -> {children(master.pid)}")
    finally:
        out, err = stop(master)
    if master.returncode != 0:
        raise AssertionError(f"nginx exited {master.returncode}: {err[-2000:]!r}")

    for pid in workers:
        dumps = lib.dumps_in(fallback, pid)
        metas = [lib.dump_meta(p) for p in dumps]
        if any(m["pid"] != str(pid) or m["ppid"] != str(master.pid) for m in metas):
            raise AssertionError(f"worker {pid}: dumps name other processes: "
                                 f"{[(m['pid'], m['ppid']) for m in metas]}")
        if metas[-1]["trigger"] != "exit":
            raise AssertionError(f"worker {pid}: no exit dump after QUIT: "
                                 f"{[m['trigger'] for m in metas]}")
        for p in dumps:
            whole.assert_whole(p)
            st = os.lstat(p)
            if st.st_uid != uid or stat.S_IMODE(st.st_mode) != 0o600:
                raise AssertionError(f"{p}: uid {st.st_uid} mode {oct(st.st_mode)}")
        if lib.dumps_in(d, pid):
            raise AssertionError(f"worker {pid} wrote in the root-only directory")
    st = os.lstat(fallback)
    if st.st_uid != uid or stat.S_IMODE(st.st_mode) != 0o700:
        raise AssertionError(f"{fallback}: uid {st.st_uid} mode {oct(st.st_mode)}")
    own = [lib.dump_meta(p) for p in lib.dumps_in(d, master.pid)]
    if not own or own[-1]["trigger"] != "exit" or os.lstat(lib.dumps_in(d, master.pid)[0]).st_uid:
        raise AssertionError(f"master: {[m['trigger'] for m in own]}")
    whole.no_tmp_left(fallback)
    whole.no_tmp_left(d)
    # `heaptrace leaks` over d and the fallback together: the master and
    # each worker analysed as its own process, the workers (one command
    # line, alive at once) not restarts of each other.
    out = lib.run_tool("leaks", *lib.dumps_in(d), *lib.dumps_in(fallback)).stdout
    titles = sorted(test_families.sections(out))
    want = sorted([f"pid {master.pid} (parent {os.getpid()}): nginx: master process "
                   f"{nginx} -p {d} -e {d}/error.log -c {conf}"]
                  + [f"pid {pid} (parent {master.pid}): nginx: worker process"
                     for pid in workers])
    if not out.startswith("Processes: 3, ") or titles != want or "restart" in out:
        raise AssertionError(f"leaks over nginx's dumps: {out}")
    # nginx points its workers' stderr at the error log: each says once
    # where its dumps go, and nothing else comes from heaptrace.
    with open(os.path.join(d, "error.log")) as f:
        ours = [line for line in f.read().splitlines() if line.startswith("heaptrace: ")]
    said = f"heaptrace: {d} is not writable for uid {uid}; dumps now go to {fallback}"
    if ours != [said] * len(workers):
        raise AssertionError(f"heaptrace lines in the error log: {ours}")
    if err:
        raise AssertionError(f"nginx's stderr: {err[-2000:]!r}")
    shutil.rmtree(d)
    shutil.rmtree(base)


def _dump_workers_through_the_socket(workers, fallback):
    """`heaptrace dump WORKER_PID` (issue 12): nginx overwrote the workers'
    environment with its process title and took SIGUSR1 (it reopens its
    logs on it), and the workers are nobody's now; the control socket
    returns a whole dump of each, in the private fallback, no signal sent."""
    for pid in workers:
        path = lib.run_tool("dump", str(pid)).stdout.strip()
        if os.path.dirname(path) != fallback or \
                not os.path.basename(path).startswith(f"heaptrace.{pid}."):
            raise AssertionError(f"worker {pid}: dump at {path}, expected in {fallback}")
        whole.assert_whole(path)
        if lib.dump_meta(path)["trigger"] != "control":
            raise AssertionError(f"{path}: trigger {lib.dump_meta(path)['trigger']}")


def _started(master, d):
    if master.poll() is not None:
        with open(os.path.join(d, "error.log")) as f:
            raise AssertionError(f"nginx exited {master.returncode}: {f.read()[-2000:]}")
    return True


def _answers(port):
    try:
        return get(port)[0] == 200
    except OSError:
        return False
