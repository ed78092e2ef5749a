"""Symbolization: from a return address in a dump to the source frames it
stands for, never to a wrong name.

Each address is placed in its MAPPED_LIBRARIES entry and turned into the
file's link-time address through the ELF program headers (right for PIE
executables, shared libraries and non-PIE executables alike). A frame is
named only after a function that contains the address: a DWARF subprogram
(with its inlined calls, lambdas included, from one `eu-addr2line -i`
process per file fed all its addresses; binutils addr2line drops some
inline frames and names an address after the nearest preceding symbol
however far past its end), or else a sized .symtab/.dynsym symbol
[value, value + size). Otherwise the frame is `module+0xoffset`, and a
stripped file says so once with where its symbols would come from.

DWARF and .symtab also come from a separate debug file: by build id under
each debug root (/usr/lib/debug, or HEAPTRACE_DEBUG_PATH), by
.gnu_debuglink (beside the file, in .debug/, under each root), and from
debuginfod (DEBUGINFOD_URLS). A file that is missing, unreadable or rebuilt
(its GNU build id differs from the dump's) is reported once and its frames
stay `module+0xoffset`. Answers are kept for the life of the command (the
dumps of a series share their files and most of their addresses) and
between commands in the symbol cache (symcache.py), so that a report on
dumps of binaries seen before starts no eu-addr2line and reads no symbol
table. subprocess and shutil are imported when a process is to be
started: a report the cache answers starts none and need not load them."""
import os
import re
from collections import namedtuple

from . import symcache
from .debuginfod import Client
from .elf import FunctionTable, NotElf, read_elf

ADDRESS_LINE_RE = re.compile(r"^0x[0-9a-f]+$")
LOCATION_RE = re.compile(r"^(.*?):(\d+)(?::\d+)?$")
DEFAULT_DEBUG_ROOTS = "/usr/lib/debug"
# eu-addr2line: -a echoes each address, so answers are matched to requests.
EU_ADDR2LINE = ("eu-addr2line", "-a", "-f", "-i", "-C")

# {(path, inode, size, mtime): _Object}
_objects = {}
# {mangled: demangled}
_demangled = {}
# Per command (its warn callable): the files said to be stripped, once
# and not once per dump of a series, one debuginfod client, so that a
# failed server is not asked again, and the symbol cache.
_commands = {}


class Frame(namedtuple("Frame", "name file line module", defaults=("", 0, ""))):
    """One source-level frame; inlined calls give several per address.
    Immutable, and a dictionary key (Location's names are made from it)."""

    __slots__ = ()


def _module_frame(mapping, address):
    if mapping is None:
        return Frame(f"0x{address:x}")
    base = os.path.basename(mapping.path) or "anon"
    return Frame(f"{base}+0x{mapping.file_offset(address):x}", module=mapping.path)


def _parse_addr2line(text):
    """eu-addr2line -a -f -i output -> {vaddr: [(function, file, line)]},
    innermost frame first. An inlined frame's name reads `f inlined at
    file:line in g`; a location is file:line[:column] or ??:0."""
    result = {}
    current = None
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if ADDRESS_LINE_RE.match(line):
            current = result.setdefault(int(line, 16), [])
            i += 1
            continue
        if current is None or i + 1 >= len(lines):
            break
        name = line.split(" inlined at ", 1)[0]
        m = LOCATION_RE.match(lines[i + 1])
        file, lineno = (m.group(1), int(m.group(2))) if m else ("", 0)
        current.append((name, "" if file in ("", "??") else file, lineno))
        i += 2
    return result


def run_addr2line(path, vaddrs):
    """All DWARF frames of vaddrs (link-time addresses) in the ELF file at
    path, from one eu-addr2line process: {vaddr: [(function, file, line)]}.
    The process is kept from debuginfod: heaptrace finds the debug file."""
    import subprocess
    request = "".join(f"0x{a:x}\n" for a in vaddrs)
    env = {k: v for k, v in os.environ.items() if k != "DEBUGINFOD_URLS"}
    proc = subprocess.run([*EU_ADDR2LINE, "-e", path], input=request,
                          capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        return {}
    return _parse_addr2line(proc.stdout)


def demangle(names):
    """{name: demangled} for C++ names, from one c++filt process for the
    names not seen before; other names stand for themselves."""
    todo = sorted({n for n in names if n.startswith("_Z") and n not in _demangled})
    if todo:
        import shutil
        import subprocess
        if shutil.which("c++filt"):
            proc = subprocess.run(["c++filt"], input="\n".join(todo) + "\n",
                                  capture_output=True, text=True, timeout=600)
            out = proc.stdout.split("\n")
            if proc.returncode == 0 and len(out) > len(todo):
                _demangled.update(zip(todo, out))
    return {n: _demangled.get(n, n) for n in names}


def debug_roots():
    """The directories separate debug files live under."""
    text = os.environ.get("HEAPTRACE_DEBUG_PATH", DEFAULT_DEBUG_ROOTS)
    return [d for d in text.split(":") if d]


def _candidates(info):
    """Where the debug file of info may be, in gdb's order: by build id,
    then by .gnu_debuglink."""
    roots = debug_roots()
    if len(info.build_id) > 2:
        for root in roots:
            yield os.path.join(root, ".build-id", info.build_id[:2],
                               info.build_id[2:] + ".debug")
    link = info.debuglink()
    if link:
        directory = os.path.dirname(os.path.realpath(info.path))
        yield os.path.join(directory, link)
        yield os.path.join(directory, ".debug", link)
        for root in roots:
            yield os.path.join(root + directory, link)


def _matching(info, path):
    """The ElfInfo of a debug file at path if it belongs to info's file."""
    try:
        debug = read_elf(path)
    except (OSError, NotElf):
        return None
    if os.path.realpath(path) == os.path.realpath(info.path):
        return None
    if info.build_id and debug.build_id != info.build_id:
        return None
    if debug.has_dwarf or debug.has_symtab:
        return debug
    return None


class _Object:
    """What one ELF file can say about its addresses: its DWARF (its own or
    its debug file's), its function symbols, its answers so far."""

    def __init__(self, info, debuginfod):
        self.info = info
        self.debug = None
        if not (info.has_dwarf and info.has_symtab):
            self.debug = next(filter(None, (_matching(info, c) for c in _candidates(info))),
                              None)
            if self.debug is None and debuginfod:
                fetched = debuginfod.debuginfo(info.build_id, info.path)
                if fetched:
                    self.debug = _matching(info, fetched)
        self.dwarf = next((e.path for e in (info, self.debug) if e and e.has_dwarf), None)
        self.stripped = not any(e and (e.has_dwarf or e.has_symtab) for e in (info, self.debug))
        self._functions = None
        # vaddr -> ([(function, file, line)] from DWARF, raw containing symbol)
        self.answers = {}
        self.cache_key = symcache.key(info, self.debug)
        self.cache_read = False
        # Answers added since the cache entry was read, and whether all of
        # them are as good as this file gives (no eu-addr2line failure).
        self.unsaved = False
        self.complete = True

    @property
    def functions(self):
        """The file's function symbols, read at the first address the
        symbol cache does not answer."""
        if self._functions is None:
            self._functions = FunctionTable()
            for e in (self.info, self.debug):
                if e is not None:
                    e.add_functions(self._functions)
            self._functions.finish()
        return self._functions


def _object(path, debuginfod):
    st = os.stat(path)
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
    obj = _objects.get(key)
    if obj is None:
        obj = _objects[key] = _Object(read_elf(path), debuginfod)
    return obj


class Symbolizer:
    """Symbolizes the addresses of one dump. `warn` receives one message per
    problem file."""

    def __init__(self, dump, warn):
        self.dump = dump
        self.warn = warn
        if warn not in _commands:
            _commands[warn] = (set(), Client(warn), symcache.Store(warn))
        self.said_stripped, self.debuginfod, self.cache = _commands[warn]

    def _usable_object(self, real):
        """The _Object of a mapping's file if its frames can be trusted."""
        if not real.startswith("/"):
            return None
        try:
            obj = _object(real, self.debuginfod)
        except OSError as e:
            self.warn(f"{real}: {e.strerror or e}; its frames are shown as module+offset")
            return None
        except NotElf:
            self.warn(f"{real}: not a readable ELF file; its frames are shown as module+offset")
            return None
        expected = self.dump.build_id_for(real)
        if expected and obj.info.build_id and expected != obj.info.build_id:
            self.warn(f"{real}: build id {obj.info.build_id} differs from the dump's "
                      f"{expected} (rebuilt since?); its frames are shown as module+offset")
            return None
        return obj

    def _dwarf_frames(self, obj, vaddrs):
        if obj.dwarf is None or not vaddrs:
            return {}
        import subprocess
        try:
            found = run_addr2line(obj.dwarf, vaddrs)
            # eu-addr2line -a echoes every address it answers: nothing
            # back is a failure, whose answers are not kept in the cache.
            obj.complete = obj.complete and bool(found)
            return found
        except FileNotFoundError:
            self.warn("eu-addr2line not found (install elfutils): frames are named "
                      "from symbol tables only, without file:line or inlined calls")
        except subprocess.TimeoutExpired:
            self.warn(f"eu-addr2line on {obj.dwarf} did not finish in 600 s: its frames "
                      "are named from symbol tables only")
        obj.dwarf = None
        obj.complete = False
        return {}

    def _lookup(self, obj, vaddrs):
        """Fills obj.answers for the vaddrs it has not answered yet: the
        DWARF frames when a subprogram holds the address (the outermost
        has a source line), and the symbol that contains it. The symbol
        cache's entry for obj is read first."""
        if self.cache and not obj.cache_read:
            obj.cache_read = True
            answers, demangled = self.cache.load(obj.info, obj.cache_key)
            for vaddr, answer in answers.items():
                obj.answers.setdefault(vaddr, answer)
            for name, text in demangled.items():
                _demangled.setdefault(name, text)
        missing = sorted(v for v in vaddrs if v not in obj.answers)
        if not missing:
            return
        found = self._dwarf_frames(obj, missing)
        for vaddr in missing:
            frames = found.get(vaddr, [])
            if not (frames and frames[-1][1]):
                frames = []
            obj.answers[vaddr] = (frames, obj.functions.lookup(vaddr))
        obj.unsaved = True

    def symbolize(self, addresses):
        """{address: (mapping, tuple of Frame innermost first)}."""
        result = {}
        by_file = {}
        for address in addresses:
            mapping = self.dump.mapping_for(address)
            result[address] = (mapping, (_module_frame(mapping, address),))
            if mapping is not None and mapping.path:
                by_file.setdefault(mapping.path, []).append((address, mapping))
        named = []
        for path, entries in by_file.items():
            # A file replaced while mapped: the build id check decides.
            real = path.removesuffix(" (deleted)")
            obj = self._usable_object(real)
            if obj is None:
                continue
            vaddrs = {}
            for address, mapping in entries:
                vaddr = obj.info.vaddr(mapping.file_offset(address))
                if vaddr is not None:
                    vaddrs[address] = vaddr
            self._lookup(obj, set(vaddrs.values()))
            unnamed = sum(1 for v in vaddrs.values() if obj.answers[v] == ([], None))
            if obj.stripped and unnamed and real not in self.said_stripped:
                self.said_stripped.add(real)
                server = ("have a server in DEBUGINFOD_URLS serve it" if self.debuginfod
                          else "set DEBUGINFOD_URLS")
                self.warn(f"{real} is stripped: {unnamed} of its {len(vaddrs)} addresses "
                          "lie in no function it exports and are shown as module+offset; "
                          "for names install its debug package (Debian: the -dbgsym one), "
                          f"put its debug file under /usr/lib/debug, or {server}")
            named.append((path, obj, vaddrs))
        names = demangle({obj.answers[v][1] for _, obj, vaddrs in named
                          for v in vaddrs.values()} - {None})
        for _, obj, _ in named:
            if obj.unsaved and obj.complete and self.cache:
                self.cache.save(obj.info, obj.cache_key, obj.answers, _demangled)
                obj.unsaved = False
        for path, obj, vaddrs in named:
            for address, vaddr in vaddrs.items():
                mapping, (fallback,) = result[address]
                frames, symbol = obj.answers[vaddr]
                if symbol is not None:
                    frames = _with_symbol(frames, names[symbol])
                frames = tuple(
                    Frame(fallback.name if func == "??" else func, file, line, path)
                    for func, file, line in frames)
                if frames and any(f.name != fallback.name for f in frames):
                    result[address] = (mapping, frames)
        return result


def _with_symbol(frames, symbol):
    """The frames of an address with the (demangled) name of the symbol
    that contains it: the name itself without DWARF; else the outermost
    frame takes it when DWARF gave only the short name of the same
    function (a static C++ function has no linkage name in DWARF)."""
    if not frames:
        return [(symbol, "", 0)]
    name, file, line = frames[-1]
    if symbol != name and (symbol.startswith(name + "(") or f"::{name}(" in symbol):
        return frames[:-1] + [(symbol, file, line)]
    return frames
