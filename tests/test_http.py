"""The HTTP endpoint HEAPTRACE_HTTP (issue 12), beyond the profiles'
content (tests/test_profile.py): /metrics as Prometheus reads it (promtool,
and a real Prometheus server scraping a leaking program), /threads, the
index, the bearer token, a port in use, an exec'd child that inherits the
variable, and hostile clients that must change nothing in the program.
Every server here listens on 127.0.0.1."""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import lib


class Service:
    """tests/progs/web_service under heaptrace with HTTP on a free port
    (port 0: the control socket says which)."""

    def __init__(self, leak=0, env_extra=None, **config):
        self.dir = lib.tmpdir()
        config.setdefault("http", "127.0.0.1:0")
        config.setdefault("rate", 1)
        env = lib.traced_env(self.dir, **config)
        env.update(env_extra or {})
        self.proc = subprocess.Popen([lib.prog("web_service"), str(leak)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        if self.proc.stdout.readline() != "ready\n":
            self.proc.kill()
            raise AssertionError(f"web_service did not start: {self.proc.stderr.read()!r}")
        status = lib.run_tool("status", str(self.proc.pid)).stdout
        self.address = re.search(r"^http: (\S+)$", status, re.M).group(1)
        self.url = f"http://{self.address}"

    def port(self):
        return int(self.address.rsplit(":", 1)[1])

    def stop(self):
        """SIGTERM; the program's own output and status must be as always."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError("web_service did not stop on SIGTERM") from None
        if out != "done\n" or self.proc.returncode != 0:
            raise AssertionError(f"web_service: {out!r} exit {self.proc.returncode}: {err!r}")
        return err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def curl(url, *args):
    """curl's body and status code."""
    proc = lib.run(["curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}", *args, url])
    body, _, code = proc.stdout.rpartition("\n")
    return body, int(code)


def metrics(service):
    body, code = curl(service.url + "/metrics")
    if code != 200:
        raise AssertionError(f"/metrics: {code}")
    values = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split()
            values[name] = float(value)
    return body, values


def test_metrics_threads_and_index():
    service = Service()
    try:
        body, m = metrics(service)
        check = subprocess.run(["promtool", "check", "metrics"], input=body, text=True,
                               capture_output=True, timeout=60)
        if check.returncode != 0:
            raise AssertionError(f"promtool check metrics: {check.stdout}{check.stderr}")
        # Rate 1: exact. 16 blocks of 10000 held (stdio and thread start-up
        # add a few more), 3 threads running, 2 unjoined.
        if not (160000 <= m["heaptrace_heap_inuse_bytes"] < 200000) or \
                m["heaptrace_heap_allocated_objects_total"] < 16 or \
                m["heaptrace_samples_total"] < 16 or \
                (m["heaptrace_threads_running"], m["heaptrace_threads_unjoined"]) != (3, 2) or \
                m["process_resident_memory_bytes"] < 160000 or m["heaptrace_sample_rate_bytes"] != 1:
            raise AssertionError(m)
        if any("{" in line for line in body.splitlines() if not line.startswith("#")):
            raise AssertionError("/metrics has labels")
        lib.run_tool("dump", str(service.proc.pid))
        if metrics(service)[1]["heaptrace_dumps_written_total"] != 1:
            raise AssertionError("the dump is not counted")

        page, code = curl(service.url + "/debug/pprof/threads")
        groups = re.findall(r"^(\d+) running, (\d+) unjoined, created at:\n"
                            r"#\t0x[0-9a-f]+\t(\w+)\+0x", page, re.M)
        if code != 200 or not page.startswith(
                "Threads: 3 running, 2 exited but not joined or detached") or \
                sum(int(g[0]) for g in groups) != 3 or sum(int(g[1]) for g in groups) != 2 or \
                {g[2] for g in groups} != {"start_threads"}:
            raise AssertionError(f"/threads {code}:\n{page}")
        index, code = curl(service.url + "/debug/pprof/")
        if code != 200 or not all(f'href="{p}' in index for p in ("heap", "allocs", "threads",
                                                                  "symbol", "/metrics")):
            raise AssertionError(f"index {code}: {index}")
        _, code = curl(service.url + "/nothing")
        if code != 404:
            raise AssertionError(f"/nothing: {code}")
        _, code = curl(service.url + "/metrics", "-X", "DELETE")
        if code != 405:
            raise AssertionError(f"DELETE /metrics: {code}")
        service.stop()
    finally:
        service.kill()


def test_delta_waits_without_blocking_other_clients():
    service = Service()
    try:
        answers = []
        delta = threading.Thread(target=lambda: answers.append(
            ("delta", curl(service.url + "/debug/pprof/heap?seconds=2&debug=1")[1])))
        delta.start()
        time.sleep(0.3)
        answers.append(("metrics", metrics(service) and 200))
        delta.join(30)
        if answers != [("metrics", 200), ("delta", 200)]:
            raise AssertionError(answers)
        _, code = curl(service.url + "/debug/pprof/heap?seconds=x")
        if code != 400:
            raise AssertionError(f"?seconds=x: {code}")
        service.stop()
    finally:
        service.kill()


def test_token():
    d = lib.tmpdir()
    token_file = os.path.join(d, "token")
    with open(token_file, "w") as f:
        f.write("s3cret-token\n")
    service = Service(http_token_file=token_file)
    try:
        for args in ([], ["-H", "Authorization: Bearer wrong"],
                     ["-H", "Authorization: Bearer s3cret-token-and-more"]):
            _, code = curl(service.url + "/metrics", *args)
            if code != 401:
                raise AssertionError(f"{args}: {code}, expected 401")
        auth = ["-H", "Authorization: Bearer s3cret-token"]
        body, code = curl(service.url + "/metrics", *auth)
        if code != 200 or "heaptrace_heap_inuse_bytes" not in body:
            raise AssertionError(f"with the token: {code}")
        out = os.path.join(d, "heap.pb.gz")
        _, code = curl(service.url + "/debug/pprof/heap", *auth, "-o", out)
        with open(out, "rb") as f:
            if code != 200 or f.read(2) != b"\x1f\x8b":
                raise AssertionError(f"profile with the token: {code}")
        service.stop()
    finally:
        service.kill()
    # A token file that cannot be read turns HTTP off, said once.
    proc = subprocess.run([lib.prog("web_service")], env=lib.traced_env(
        d, http="127.0.0.1:0", http_token_file=os.path.join(d, "missing")),
        capture_output=True, text=True, timeout=30, input="",
        preexec_fn=lambda: signal.alarm(2))
    said = [line for line in proc.stderr.splitlines() if "HEAPTRACE_HTTP_TOKEN_FILE" in line]
    if len(said) != 1 or "HTTP is not served" not in said[0]:
        raise AssertionError(proc.stderr)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_port_in_use():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        service = Service(http=f"127.0.0.1:{port}")
        try:
            if service.address != "none":
                raise AssertionError(f"serves {service.address} on a taken port")
            path = lib.run_tool("dump", str(service.proc.pid)).stdout.strip()
            if not os.path.exists(path):
                raise AssertionError("no dump to a file")
            err = service.stop()
        finally:
            service.kill()
    finally:
        taken.close()
    lines = [line for line in err.splitlines() if "HTTP" in line]
    if len(lines) != 1 or f"127.0.0.1:{port}" not in lines[0] or "in use" not in lines[0]:
        raise AssertionError(err)


def test_exec_child_inheriting_the_address_stays_quiet():
    """The exec'd child finds HEAPTRACE_HTTP_OWNER alive: it does not try
    the port, whoever of the two starts first."""
    port = _free_port()
    d = lib.tmpdir()
    proc = subprocess.Popen([lib.prog("ctl_target"), "exec"],
                            env=lib.traced_env(d, http=f"127.0.0.1:{port}"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # "child PID" and "ready PID" from ctl_target, "ready" from the child
        lines = [proc.stdout.readline().split() for _ in range(3)]
        child = next(int(w[1]) for w in lines if w[0] == "child")
        parent = lib.run_tool("status", str(proc.pid)).stdout
        if f"http: 127.0.0.1:{port}\n" not in parent:
            raise AssertionError(parent)
        mine = lib.run_tool("status", str(child)).stdout
        if "http: none\n" not in mine:
            raise AssertionError(mine)
    finally:
        os.kill(child, signal.SIGKILL)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    if "HTTP" in err:
        raise AssertionError(f"the exec'd child spoke: {err!r}")


def test_daemon_takes_the_port_over_from_the_parent_that_exits():
    """A daemon forks and lets the parent exit (nginx, redis): the child,
    which may not serve its living parent's port, takes it over."""
    port = _free_port()
    proc = subprocess.Popen([lib.prog("ctl_target"), "daemon"],
                            env=lib.traced_env(lib.tmpdir(), http=f"127.0.0.1:{port}"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    daemon = int(proc.stdout.readline().split()[1])
    try:
        deadline = time.monotonic() + 10
        status = ""
        while time.monotonic() < deadline and f"http: 127.0.0.1:{port}\n" not in status:
            time.sleep(0.2)
            status = lib.run_tool("status", str(daemon)).stdout
        if f"http: 127.0.0.1:{port}\n" not in status:
            raise AssertionError(f"the daemon did not take the port over: {status}")
        body, code = curl(f"http://127.0.0.1:{port}/metrics")
        if code != 200 or "heaptrace_heap_inuse_bytes" not in body:
            raise AssertionError(f"/metrics of the daemon: {code}")
    finally:
        os.kill(daemon, signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    if out.split()[-2:] != ["usr1", "0"] or "HTTP" in err:
        raise AssertionError(f"{out!r} {err!r}")


PROMETHEUS_CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: heaptrace
    static_configs:
      - targets: ["{target}"]
"""


def test_prometheus_scrapes_a_growing_heap():
    prometheus = shutil.which("prometheus")
    if not prometheus:
        raise AssertionError("prometheus is not installed (tests/install-deps.sh installs it)")
    service = Service(leak=20000)  # 200 kB a second
    d = lib.tmpdir("ht-prom-")
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write(PROMETHEUS_CONFIG.format(target=service.address))
    port = _free_port()
    prom = subprocess.Popen([prometheus, f"--config.file={d}/prometheus.yml",
                             f"--storage.tsdb.path={d}/data",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        query = urllib.parse.quote("heaptrace_heap_inuse_bytes[1m]")
        values = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(values) < 5:
            time.sleep(1)
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/api/v1/query?query={query}", timeout=5) as r:
                    result = json.load(r)["data"]["result"]
            except (OSError, ValueError, KeyError):
                continue  # still starting
            if result:
                values = [float(v) for _, v in result[0]["values"]]
        if len(values) < 5:
            raise AssertionError(f"Prometheus scraped {values} in 40 s")
        if not all(b >= a for a, b in zip(values, values[1:])) or values[-1] <= values[0]:
            raise AssertionError(f"heap in use as Prometheus saw it does not grow: {values}")
        service.stop()
    finally:
        prom.terminate()
        try:
            prom.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.communicate()
        service.kill()


def _exchange(address, data, timeout=10):
    """Sends data, half-closes, returns what came back (b"" if closed)."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # closed on us early: answered already
        reply = b""
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return reply


GOOD = [b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /debug/pprof/ HTTP/1.0\r\n\r\n",
        b"HEAD /debug/pprof/heap HTTP/1.1\r\n\r\n",
        b"GET /debug/pprof/threads HTTP/1.1\r\nUser-Agent: fuzz\r\n\r\n",
        b"GET /debug/pprof/symbol HTTP/1.1\r\n\r\n",
        b"POST /debug/pprof/symbol HTTP/1.1\r\nContent-Length: 9\r\n\r\n0x1+0x2+3",
        b"GET /debug/pprof/heap?debug=1&gc=1 HTTP/1.1\r\n\r\n",
        b"GET /nope HTTP/1.1\r\n\r\n"]


def _mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            del data[pos % len(data)]
        elif op == 1:
            data[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2 and data:
            data[pos % len(data)] = rng.choice(b" \r\n:\0?&=%\x7f\xff")
        elif op == 3:
            data[pos:pos] = rng.choice([b"Content-Length: 99999999999\r\n",
                                        b"Transfer-Encoding: chunked\r\n",
                                        b"Content-Length: 5\r\nContent-Length: 6\r\n",
                                        b"\r\n\r\n", b" HTTP/2.0", b"X" * 3000])
        elif op == 4:
            data = data[:pos]
        else:
            data = data * rng.randint(2, 4)
    return bytes(data)


STATUS_RE = re.compile(rb"^HTTP/1\.1 (200|400|401|404|405|413|414|431|501|503|505) ")


def _fuzz(address, seed, count, bad):
    rng = random.Random(seed)
    for _ in range(count):
        data = rng.choice(GOOD)
        if rng.random() < 0.7:
            data = _mutate(rng, data)
        reply = _exchange(address, data)
        # Truncated requests time out on the server (closed, no answer) only
        # after 10 s: the client half-closes, so the server sees the end.
        if reply and not STATUS_RE.match(reply):
            bad.append((data[:200], reply[:200]))


def _tracer_memory(service):
    return metrics(service)[1]["heaptrace_tracer_memory_bytes"]


def _rss(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1)) * 1024


def test_hostile_clients():
    service = Service()
    try:
        address = service.address
        host, port = address.rsplit(":", 1)
        tracer_before, rss_before = _tracer_memory(service), _rss(service.proc.pid)

        # Slowloris: connections that trickle a header, never ending it.
        slow = []
        for _ in range(6):
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
            slow.append(s)
        # The fuzzer, 10,000 requests from 4 clients, meanwhile.
        bad = []
        clients = [threading.Thread(target=_fuzz, args=(address, seed, 2500, bad))
                   for seed in range(4)]
        for c in clients:
            c.start()
        trickle_until = time.monotonic() + 12
        closed = 0
        while time.monotonic() < trickle_until and closed < len(slow):
            time.sleep(1)
            closed = 0
            for s in slow:
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    closed += 1
        for c in clients:
            c.join(300)
        if bad:
            raise AssertionError(f"{len(bad)} malformed answers, e.g. {bad[:3]}")
        if closed < len(slow):
            raise AssertionError(f"{len(slow) - closed} slow connections still open after 12 s")
        for s in slow:
            s.close()

        # Oversized: headers, their count, the target, the body.
        big = [(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
               (b"GET /metrics HTTP/1.1\r\n" + b"X-H: 1\r\n" * 100 + b"\r\n", b"431"),
               (b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n\r\n", b"414"),
               (b"POST /debug/pprof/symbol HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", b"413")]
        for data, status in big:
            reply = _exchange(address, data)
            if not reply.startswith(b"HTTP/1.1 " + status):
                raise AssertionError(f"{data[:40]!r}...: {reply[:80]!r}")

        # 200 at once: 16 are served, the rest told 503 and closed at once.
        many = [socket.create_connection((host, int(port)), timeout=10) for _ in range(200)]
        refused = 0
        for s in many:
            s.settimeout(0.5)
            try:
                if s.recv(100).startswith(b"HTTP/1.1 503"):
                    refused += 1
            except (socket.timeout, ConnectionResetError):
                pass
        for s in many:
            s.close()
        if refused < 200 - 16:
            raise AssertionError(f"{refused} of 200 concurrent connections told 503")

        # The next good request is answered; memory stayed bounded.
        time.sleep(0.5)
        if not _exchange(address, GOOD[0]).startswith(b"HTTP/1.1 200"):
            raise AssertionError("no answer after the hostile clients")
        tracer_growth = _tracer_memory(service) - tracer_before
        rss_growth = _rss(service.proc.pid) - rss_before
        if tracer_growth > 4 << 20 or rss_growth > 16 << 20:
            raise AssertionError(f"heaptrace grew {tracer_growth} bytes, RSS {rss_growth}")
        print(f"  tracer memory +{tracer_growth / 1024:.0f} KiB, RSS +{rss_growth / 1024:.0f} KiB")
        service.stop()
    finally:
        service.kill()
