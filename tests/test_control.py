"""The control socket @heaptrace/PID (issue 12): `heaptrace dump PID` gets
a whole dump with no signal sent from programs that did what real servers
do to the places the tool used to guess from (environment, working
directory, the dump signal, credentials, fork), and the socket refuses a
peer of another uid."""
import os
import pwd
import signal
import socket
import subprocess
import time

import lib
import whole


def _start(env, *actions, ready=1, cwd=None):
    """ctl_target with the actions; returns (Popen, [pid of each `ready`])."""
    proc = subprocess.Popen([lib.prog("ctl_target"), *actions], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = []
    deadline = time.monotonic() + 20
    while len(pids) < ready and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("ready "):
            pids.append(int(line.split()[1]))
    if len(pids) < ready:
        proc.kill()
        raise AssertionError(f"ctl_target {actions} did not start: {proc.stderr.read()!r}")
    return proc, pids


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("ctl_target did not stop on SIGTERM") from None
    return out, err


def _status(pid):
    text = lib.run_tool("status", str(pid)).stdout
    return dict(line.split(": ", 1) for line in text.splitlines())


def _check_dump(path, pid, directory):
    if os.path.dirname(path) != directory or \
            not os.path.basename(path).startswith(f"heaptrace.{pid}."):
        raise AssertionError(f"dump of {pid} at {path}, expected in {directory}")
    whole.assert_whole(path)
    meta = lib.dump_meta(path)
    if meta["pid"] != str(pid) or meta["trigger"] != "control":
        raise AssertionError(f"{path}: pid {meta['pid']} trigger {meta['trigger']}")
    # The 8 blocks of 10000 bytes it holds, exactly at rate 1.
    held = sum(s[1] for s in lib.dump_samples(path))
    if held < 80000:
        raise AssertionError(f"{path}: {held} bytes in use, expected the 80000 held")


def test_dump_after_environ_chdir_own_signal_and_dropping_to_nobody():
    if os.geteuid() != 0:
        raise AssertionError("this test drops from root to nobody; run it as root (CI does)")
    nobody = pwd.getpwnam("nobody").pw_uid
    cwd = lib.tmpdir("ht-ctl-")
    os.chmod(cwd, 0o755)  # root's: nobody cannot write here
    base = lib.tmpdir("ht-ctlbase-")
    os.chmod(base, 0o1777)
    fallback = os.path.join(base, f"heaptrace-{nobody}")
    # A relative HEAPTRACE_DIR, resolved at start: the chdir must not move it.
    os.mkdir(os.path.join(cwd, "dumps"))
    env = lib.traced_env(os.path.join(cwd, "dumps"), rate=1)
    env["HEAPTRACE_DIR"] = "dumps"
    env["TMPDIR"] = base
    proc, (pid,) = _start(env, "environ", "chdir", "usr1", cwd=cwd)
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            if b"HEAPTRACE_" in f.read():
                raise AssertionError("the environment was not overwritten")
        if os.readlink(f"/proc/{pid}/cwd") != "/":
            raise AssertionError("ctl_target did not chdir to /")
        path = lib.run_tool("dump", str(pid)).stdout.strip()
        _check_dump(path, pid, os.path.join(cwd, "dumps"))
        st = _status(pid)
        if (st["signal"], st["signal_state"], st["dir"]) != \
                ("10", "lost", os.path.join(cwd, "dumps")):
            raise AssertionError(st)
    finally:
        out, err = _stop(proc)
    if out.strip() != "usr1 0" or proc.returncode != 0:
        raise AssertionError(f"ctl_target: {out!r} exit {proc.returncode}; a signal was sent?")

    # The same, then from root to nobody: the socket answers root still,
    # and the dump goes where nobody can write.
    proc, (pid,) = _start(env, "environ", "chdir", "usr1", "nobody", cwd=cwd)
    try:
        st = _status(pid)
        if st["euid"] != str(nobody) or st["dir"] != fallback:
            raise AssertionError(st)
        path = lib.run_tool("dump", str(pid)).stdout.strip()
        _check_dump(path, pid, fallback)
        if os.stat(path).st_uid != nobody:
            raise AssertionError(f"{path} is not nobody's")
    finally:
        out, err = _stop(proc)
    if out.strip() != "usr1 0" or proc.returncode != 0:
        raise AssertionError(f"ctl_target as nobody: {out!r} exit {proc.returncode}: {err!r}")


def test_forked_child_serves_its_own_pid():
    d = lib.tmpdir()
    proc, pids = _start(lib.traced_env(d, rate=1, http="127.0.0.1:0"), "fork", ready=2)
    parent = proc.pid
    child = next(p for p in pids if p != parent)
    try:
        for pid in (parent, child):
            _check_dump(lib.run_tool("dump", str(pid)).stdout.strip(), pid, d)
        if _status(child)["http"] != "none":
            raise AssertionError("the forked child serves HTTP")
        address = _status(parent)["http"]
        host, port = address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"GET /debug/pprof/ HTTP/1.0\r\n\r\n")
            if not s.recv(100).startswith(b"HTTP/1.1 200"):
                raise AssertionError("the parent's endpoint does not answer")
        # The child holds no copy of the parent's listener: with the
        # parent gone the port is free while the child lives.
        os.kill(parent, signal.SIGKILL)
        proc.wait()
        time.sleep(0.2)
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
            raise AssertionError(f"{address} still accepts after the parent died")
        except ConnectionRefusedError:
            pass
        _check_dump(lib.run_tool("dump", str(child)).stdout.strip(), child, d)
    finally:
        for pid in (parent, child):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.communicate()


def test_peer_of_another_uid_is_refused():
    if os.geteuid() != 0:
        raise AssertionError("this test connects as nobody; run it as root (CI does)")
    nobody = pwd.getpwnam("nobody")
    proc, (pid,) = _start(lib.traced_env(lib.tmpdir()))
    try:
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # as nobody, ask for the status
            try:
                os.close(read)
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(5)
                s.connect(f"\0heaptrace/{pid}")
                try:
                    s.sendall(b"status\n")
                except OSError:
                    pass  # refused before the request was read
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
                os.write(write, data)
            except OSError as e:
                os.write(write, f"{e}".encode())
            finally:
                os._exit(0)
        os.close(write)
        answer = b""
        while chunk := os.read(read, 4096):
            answer += chunk
        os.close(read)
        os.waitpid(child, 0)
        if not answer.startswith(b"error permission denied") or b"pid " in answer:
            raise AssertionError(f"nobody got {answer!r}")
        # The owner still gets its answer.
        if _status(pid)["pid"] != str(pid):
            raise AssertionError("the owner was refused")
    finally:
        _stop(proc)


def test_program_that_closes_every_descriptor():
    """A daemon closes every descriptor and reuses the numbers: the server
    makes its sockets anew and never touches the program's."""
    d = lib.tmpdir()
    proc, (pid,) = _start(lib.traced_env(d, rate=1, http="127.0.0.1:0"), "closefds")
    try:
        _check_dump(lib.run_tool("dump", str(pid)).stdout.strip(), pid, d)
        address = _status(pid)["http"]
        host, port = address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            if not s.recv(100).startswith(b"HTTP/1.1 200"):
                raise AssertionError("the endpoint does not answer after the close")
    finally:
        out, err = _stop(proc)
    if out.split() != ["usr1", "0", "fds", "ok"] or proc.returncode != 0:
        raise AssertionError(f"ctl_target: {out!r} exit {proc.returncode}: {err!r}")


def _hold_control_name():
    """In the child before exec: take @heaptrace/<pid> first (bound, never
    listening), so the traced program cannot make its socket, as under a
    heaptrace older than the socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(f"\0heaptrace/{os.getpid()}")
    os.set_inheritable(s.detach(), True)


def test_dump_falls_back_to_the_signal_without_a_socket():
    d = lib.tmpdir()
    env = lib.traced_env(d)
    del env["HEAPTRACE_DIR"]  # the default: the working directory
    proc = subprocess.Popen([lib.prog("tool_sleeper")], env=env, cwd=d, close_fds=False,
                            preexec_fn=_hold_control_name, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        if proc.stdout.readline() != "ready\n":
            raise AssertionError("tool_sleeper did not start")
        path = lib.run_tool("dump", str(proc.pid)).stdout.strip()
        if os.path.dirname(path) != d or lib.dump_meta(path)["trigger"] != "signal":
            raise AssertionError(f"{path}: {lib.dump_meta(path)['trigger']}")
        whole.assert_whole(path)
    finally:
        proc.kill()
        _, err = proc.communicate()
    if f"cannot make the control socket @heaptrace/{proc.pid}" not in err:
        raise AssertionError(f"not said: {err!r}")
