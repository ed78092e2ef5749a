"""A debuginfod client (the elfutils HTTP protocol, urllib only): fetches
`<server>/buildid/<id>/debuginfo` into the cache elfutils' own client uses
(`$DEBUGINFOD_CACHE_PATH`, else `$XDG_CACHE_HOME/debuginfod_client`, else
`~/.cache/debuginfod_client`, as `<id>/debuginfo`), so that gdb,
eu-addr2line and heaptrace share downloads. Each fetch has a deadline
(`DEBUGINFOD_TIMEOUT` seconds, 30 by default); a server that fails is named
once and not asked again in this run; a server without the file (404) is
not a failure. urllib and tempfile are imported only when a server is
asked: loading them costs more than a small report takes."""
import os
import sys
import time

DEFAULT_TIMEOUT = 30
CHUNK = 1 << 16


def cache_dir():
    explicit = os.environ.get("DEBUGINFOD_CACHE_PATH")
    if explicit:
        return explicit
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "debuginfod_client")


def _timeout(warn):
    text = os.environ.get("DEBUGINFOD_TIMEOUT", "")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
        if value > 0:
            return value
    except ValueError:
        pass
    warn(f"DEBUGINFOD_TIMEOUT={text!r} is not a positive number of seconds; "
         f"using {DEFAULT_TIMEOUT}")
    return DEFAULT_TIMEOUT


def _reason(e):
    import urllib.error
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        e = e.reason
    if isinstance(e, TimeoutError) and not e.args:
        return "timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


class Progress:
    """One line on stderr while a download runs: rewritten in place on a
    terminal, written once (start and end) otherwise."""

    def __init__(self, what):
        self.what = what
        self.tty = sys.stderr.isatty()
        self.shown = 0
        self.last = 0.0
        sys.stderr.write(f"heaptrace: fetching {what}" + (" ..." if self.tty else " ...\n"))
        sys.stderr.flush()

    def update(self, got):
        now = time.monotonic()
        if self.tty and now - self.last > 0.2:
            self.last = now
            sys.stderr.write(f"\rheaptrace: fetching {self.what}: {got >> 10} KiB")
            sys.stderr.flush()

    def done(self):
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


class Client:
    """Fetches debug files by build id from the servers in DEBUGINFOD_URLS."""

    def __init__(self, warn, urls=None):
        self.warn = warn
        text = os.environ.get("DEBUGINFOD_URLS", "") if urls is None else urls
        self.urls = [u.rstrip("/") for u in text.split() if u]
        self.failed = set()
        self.timeout = _timeout(warn) if self.urls else DEFAULT_TIMEOUT

    def __bool__(self):
        return bool(self.urls)

    def debuginfo(self, build_id, name):
        """The path of the cached debug file of build_id (fetched now when
        not cached yet), or None. name is the file's for the messages."""
        if not self.urls or not build_id or not all(c in "0123456789abcdef" for c in build_id):
            return None
        import urllib.error
        target = os.path.join(cache_dir(), build_id, "debuginfo")
        if os.path.isfile(target) and os.path.getsize(target) > 0:
            return target
        for url in self.urls:
            if url in self.failed:
                continue
            try:
                if self._fetch(f"{url}/buildid/{build_id}/debuginfo", target,
                               f"debug info for {name} from {url}"):
                    return target
            except (OSError, urllib.error.URLError, ValueError) as e:
                self.failed.add(url)
                self.warn(f"debuginfod server {url} failed: {_reason(e)}; not asked again, "
                          "so frames it would name stay module+offset")
        return None

    def _fetch(self, url, target, what):
        """Downloads url to target; False when the server has no such file."""
        import tempfile
        import urllib.error
        import urllib.request
        deadline = time.monotonic() + self.timeout
        try:
            response = urllib.request.urlopen(url, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return False
            raise
        progress = Progress(what)
        directory = os.path.dirname(target)
        os.makedirs(directory, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=".debuginfo.", dir=directory)
        try:
            with response, os.fdopen(fd, "wb") as out:
                got = 0
                while True:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no complete answer in {self.timeout:g} s "
                                           "(DEBUGINFOD_TIMEOUT)")
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    got += len(chunk)
                    progress.update(got)
            os.rename(partial, target)
        except BaseException:
            os.unlink(partial)
            raise
        finally:
            progress.done()
        return True
