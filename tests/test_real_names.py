"""Names heaptrace gives the frames of real, stripped Debian programs
(redis-server, sqlite3, python3.11, git) are right: every location the
pprof export names lies inside a symbol of that name, with readelf's values
and sizes (`readelf --syms --dyn-syms -W -C` of the file and of its debug
file under /usr/lib/debug/.build-id, when installed), read apart from the
tool's own ELF code. `go tool pprof -raw -symbolize=none` lists the export's
locations, so go's reader, not ours, says which address got which name."""
import os
import re
import shutil

import lib
import test_real

DEBUG_ROOT = "/usr/lib/debug/.build-id"
_MAPPING_RE = re.compile(r"^\s*(\d+): (0x[0-9a-f]+)/(0x[0-9a-f]+)/(0x[0-9a-f]+) (\S+)")
_LOCATION_RE = re.compile(r"^\s*\d+: (0x[0-9a-f]+) M=(\d+) (.*)$")
_LINE_RE = re.compile(r"^(.*?) ?(\S*):-?\d+ s=-?\d+")


def readelf(*args):
    return lib.run(["readelf", "-W", *args]).stdout


def loads(path):
    """[(offset, vaddr, filesz)] of path's PT_LOAD headers."""
    found = []
    for line in readelf("-l", path).splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            found.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))
    return found


def debug_file(path):
    m = re.search(r"Build ID: ([0-9a-f]+)", readelf("-n", path))
    if not m:
        return None
    candidate = os.path.join(DEBUG_ROOT, m.group(1)[:2], m.group(1)[2:] + ".debug")
    return candidate if os.path.exists(candidate) else None


def functions(path):
    """{demangled name: [(start, end)]} of the FUNC symbols readelf lists."""
    found = {}
    for line in readelf("--syms", "--dyn-syms", "-C", path).splitlines():
        f = line.split(None, 7)
        if len(f) == 8 and f[3] in ("FUNC", "IFUNC") and f[6] != "UND":
            start, size = int(f[1], 16), int(f[2], 0)
            name = re.sub(r"@.*$", "", f[7])
            found.setdefault(name, []).append((start, start + size))
    return found


def _same_function(shown, symbol):
    """A shown name is a symbol's: equal, or its short form (DWARF's name of
    a C++ function without a linkage name)."""
    return shown == symbol or symbol.startswith(shown + "(") or f"::{shown}(" in symbol


def export_locations(dump):
    """[(address, mapping file, mapping start, mapping offset, outermost
    name)] of every location with a mapping in the dump's pprof export."""
    out = os.path.join(lib.tmpdir(), "names.pb.gz")
    lib.run_tool("pprof", dump, "-o", out)
    text = lib.go_pprof("-raw", "-symbolize=none", out)
    mappings, locations, current = {}, [], None
    section = None
    for line in text.splitlines():
        if line in ("Locations", "Mappings"):
            section = line
            continue
        if section == "Mappings":
            m = _MAPPING_RE.match(line)
            if m:
                mappings[m.group(1)] = (m.group(5), int(m.group(2), 16), int(m.group(4), 16))
        elif section == "Locations":
            m = _LOCATION_RE.match(line)
            if m:
                current = [int(m.group(1), 16), m.group(2), m.group(3)]
                locations.append(current)
            elif current is not None and line.startswith(" " * 13):
                current[2] = line.strip()  # an outer frame of the inline chain
    result = []
    for address, mapping_id, last in locations:
        if mapping_id not in mappings:
            continue
        m = _LINE_RE.match(last)
        name = m.group(1) if m else last.strip()
        result.append((address, *mappings[mapping_id], name))
    return result


def check_names_inside(dump, min_checked):
    """Every named location lies in a symbol of its name; returns how many
    were checked."""
    tables, problems, checked = {}, [], 0
    for address, path, start, offset, name in export_locations(dump):
        base = os.path.basename(path)
        if not name or name == "??" or name.startswith(base + "+0x") or not os.path.isfile(path):
            continue
        if path not in tables:
            debug = debug_file(path)
            syms = functions(path)
            for key, ranges in (functions(debug) if debug else {}).items():
                syms.setdefault(key, []).extend(ranges)
            tables[path] = (loads(path), syms, debug)
        segments, syms, debug = tables[path]
        file_offset = address - start + offset
        vaddr = next((file_offset - o + v for o, v, size in segments
                      if o <= file_offset < o + size), None)
        ranges = [r for symbol, rs in syms.items() if _same_function(name, symbol) for r in rs]
        if not ranges and debug:
            continue  # a DWARF-only name (no symbol by it): checked by its debug file
        checked += 1
        if vaddr is None or not any(s <= vaddr < e for s, e in ranges):
            problems.append(f"{base} {vaddr and hex(vaddr)} named {name!r}, "
                            f"in none of {[(hex(s), hex(e)) for s, e in ranges[:4]]}")
    if problems:
        raise AssertionError(f"{len(problems)} of {checked} named addresses outside their "
                             f"symbol in {dump}:\n" + "\n".join(problems[:20]))
    if checked < min_checked:
        raise AssertionError(f"only {checked} named addresses checked in {dump}")
    return checked


def traced_exit_dump(cmd, **kw):
    proc, dumps = lib.run_traced(cmd, rate=1, **kw)
    return dumps[-1]


def test_redis_names_lie_inside_their_symbols():
    test_real.need(test_real.REDIS, "redis-benchmark", "redis-cli")
    dump = test_real.run_redis(lib.PRELOAD)[0]
    check_names_inside(dump, 20)


def test_sqlite3_python3_git_names_lie_inside_their_symbols():
    d = lib.tmpdir()
    runs = []
    if shutil.which("sqlite3"):
        runs.append(["sqlite3", os.path.join(d, "t.db"),
                     "create table t(a, b); insert into t values (1, 'x'), (2, 'y');"
                     " create index i on t(b); select count(*) from t;"])
    if os.path.exists("/usr/bin/python3.11"):
        runs.append(["/usr/bin/python3.11", "-c",
                     "import json; json.dumps([dict(a=i) for i in range(2000)])"])
    if shutil.which("git"):
        runs.append(["git", "-C", lib.ROOT, "log", "-3", "--stat"])
    if not runs:
        raise lib.Skip("none of sqlite3, python3.11, git is installed")
    for cmd in runs:
        check_names_inside(traced_exit_dump(cmd), 5)
