"""Debug files from debuginfod: a real `debuginfod` server (elfutils)
serving a directory with the stripped test program's debug file names every
site, and the download lands in the client's cache; a server that is down
or never answers is named in one message, the frames stay module+offset and
the command exits 0. debuginfod listens on every address and has no option
to bind one, so it runs in a network namespace of its own (`unshare --net`)
where only loopback exists, with the heaptrace command beside it."""
import os
import shutil
import socket
import subprocess
import threading

import lib
from test_tool_symbols import (STRIPPED, build_id, check_debug_found,
                               check_stripped_alone, self_dump, stripped_copy)

# In a new network namespace every port is free.
PORT = 8002
SCAN_WAIT_S = 20

SERVE_AND_RUN = r"""
ip link set lo up || exit 97
debuginfod -F "$FILES" -p "$PORT" -d "$DB" -t 0 -g 0 >"$LOG" 2>&1 &
server=$!
python3 - <<'EOF' || { kill $server; exit 98; }
import os, sys, time, urllib.request
url = f"http://127.0.0.1:{os.environ['PORT']}/buildid/{os.environ['BID']}/debuginfo"
deadline = time.monotonic() + float(os.environ["SCAN_WAIT_S"])
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
DEBUGINFOD_URLS="http://127.0.0.1:$PORT" python3 "$TOOL" top --lines --unit B \
    --nodefraction 0 "$DUMP" >"$OUT" 2>"$ERR"
status=$?
kill $server
wait $server
exit $status
"""


def need_tools():
    for tool in ("debuginfod", "unshare", "ip", "eu-addr2line"):
        if not shutil.which(tool):
            raise lib.Skip(f"{tool} is not installed (tests/install-deps.sh: elfutils, debuginfod)")
    if os.geteuid() != 0:
        raise lib.Skip("unshare --net needs root, and debuginfod cannot bind 127.0.0.1 alone")


def top_env(cache, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEBUGINFOD_")}
    env.update(DEBUGINFOD_CACHE_PATH=cache, HEAPTRACE_DEBUG_PATH="/nonexistent", **extra)
    return env


def test_debug_file_from_a_debuginfod_server():
    need_tools()
    d, exe = stripped_copy()
    dump = self_dump(STRIPPED, d, exe)
    work = lib.tmpdir()
    files = os.path.join(work, "files")
    os.mkdir(files)
    shutil.copy(lib.prog(STRIPPED) + ".debug", files)
    cache = os.path.join(work, "cache")
    bid = build_id(exe)
    out, err = os.path.join(work, "top.out"), os.path.join(work, "top.err")
    env = top_env(cache, FILES=files, PORT=str(PORT), DB=os.path.join(work, "db.sqlite"),
                  LOG=os.path.join(work, "debuginfod.log"), BID=bid, TOOL=lib.TOOL,
                  DUMP=dump, OUT=out, ERR=err, SCAN_WAIT_S=str(SCAN_WAIT_S))
    proc = subprocess.run(["unshare", "--net", "sh", "-c", SERVE_AND_RUN], env=env,
                          capture_output=True, text=True, timeout=SCAN_WAIT_S + 60)
    if proc.returncode in (97, 98):
        with open(env["LOG"]) as f:
            raise AssertionError(f"debuginfod not serving (status {proc.returncode}): "
                                 f"{f.read()[-1500:]}")
    if proc.returncode != 0:
        raise AssertionError(f"heaptrace top exited {proc.returncode}: {open(err).read()!r}")
    cached = os.path.join(cache, bid, "debuginfo")
    with open(cached, "rb") as f, open(lib.prog(STRIPPED) + ".debug", "rb") as g:
        if f.read() != g.read():
            raise AssertionError(f"{cached} is not the debug file")
    with open(err) as f:
        stderr = f.read()
    if [line for line in stderr.splitlines() if "fetching debug info" not in line]:
        raise AssertionError(f"stderr: {stderr!r}")
    if f"fetching debug info for {exe} from http://127.0.0.1:{PORT}" not in stderr:
        raise AssertionError(f"no progress line: {stderr!r}")
    # From the cache now, with no server at all, and silently.
    stderr = check_debug_found(dump, top_env(cache, DEBUGINFOD_URLS=f"http://127.0.0.1:{PORT}"))
    if stderr:
        raise AssertionError(f"from the cache: {stderr!r}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_failed_server(url, env):
    d, exe = stripped_copy()
    dump = self_dump(STRIPPED, d, exe)
    proc = lib.run_tool("top", "--unit", "B", "--nodefraction", "0", dump, env=env)
    nodes = lib.parse_top(proc.stdout)[0]
    failures = [w for w in proc.stderr.splitlines() if url in w and "failed" in w]
    if len(failures) != 1:
        raise AssertionError(f"messages about {url}: {proc.stderr!r}")
    rest = proc.stderr.replace(failures[0] + "\n", "")
    check_stripped_alone(dump, exe, rest, nodes)


def test_debuginfod_server_down_is_one_message():
    url = f"http://127.0.0.1:{free_port()}"
    check_failed_server(url, top_env(lib.tmpdir(), DEBUGINFOD_URLS=url))


def test_debuginfod_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        # Takes connections and never answers, up to a bounded number.
        listener.settimeout(0.2)
        while not stop.is_set() and len(accepted) < 8:
            try:
                accepted.append(listener.accept()[0])
            except socket.timeout:
                pass

    thread = threading.Thread(target=accept)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        check_failed_server(url, top_env(lib.tmpdir(), DEBUGINFOD_URLS=url,
                                         DEBUGINFOD_TIMEOUT="1"))
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
