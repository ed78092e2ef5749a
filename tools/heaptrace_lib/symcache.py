"""Symbol answers kept between runs of the heaptrace command (under
cache.root(), in symbols/), so that another report on dumps of the same
binaries neither starts eu-addr2line nor reads whole symbol tables again.

An entry holds, for one ELF file read together with its debug file (or
none), the answers so far, {link-time address: (DWARF frames, the raw name
of the symbol that contains it)}, and the demangled forms of those names.
Its key names the file by GNU build id, size and section table (strip and
objcopy change those but keep the build id); a file without a build id
also by real path, inode and mtime. The debug file is named the same way,
and the key holds the identity of the code that computes the answers
(each module's length and CRC-32): a rebuilt binary, a newly found debug
file or a new heaptrace never meets an old answer. Entries are written whole to a
temporary file and renamed into place, so a reader sees an old entry or a
new one; an entry that does not parse or holds another key is said once
and computed anew."""
import marshal
import os
import struct
import sys
import zlib

from . import cache

# Bumped when what an entry holds changes shape.
FORMAT = 1
# The modules whose code decides the answers an entry holds.
_ANSWERING = ("symbols.py", "elf.py", "symcache.py")
# An entry file: this magic, the CRC-32 and length of the rest, then the
# rest, marshal's encoding of (key, answers, demangled names). marshal (a
# built-in, fast for the tens of thousands of answers of a big program) is
# given only bytes whose checksum holds.
MAGIC = b"HTSYM1\n"
HEADER = struct.Struct("<7sIQ")
_code_id = None


def _code():
    """The identity of the answering code: each module's length and CRC-32."""
    global _code_id
    if _code_id is None:
        here = os.path.dirname(os.path.abspath(__file__))
        parts = []
        for name in _ANSWERING:
            with open(os.path.join(here, name), "rb") as f:
                text = f.read()
            parts.append((name, len(text), zlib.crc32(text)))
        _code_id = tuple(parts)
    return _code_id


def identity(info):
    """What names an ElfInfo's file for the cache (see the top)."""
    st = os.stat(info.path)
    ident = (("build_id", info.build_id), ("size", st.st_size),
             ("sections", tuple((s.name, s.type, s.offset, s.size) for s in info.sections)))
    if not info.build_id:
        ident += (("path", os.path.realpath(info.path)), ("inode", st.st_ino),
                  ("mtime_ns", st.st_mtime_ns))
    return ident


def key(info, debug):
    """The key of the entry for a file read with its debug file (or None)."""
    return (FORMAT, sys.implementation.cache_tag, _code(), identity(info),
            identity(debug) if debug is not None else None)


class Store:
    """The cache directory of one command; `warn` gets one line per problem
    (an unwritable directory, a corrupt entry)."""

    def __init__(self, warn):
        self.warn = warn
        top = cache.root()
        self.directory = os.path.join(top, "symbols") if top is not None else None

    def __bool__(self):
        return self.directory is not None

    def _path(self, info, entry_key):
        """The entry's file: named after the ELF file and a checksum of the
        key (two keys that share a name only take turns in it: the key
        inside decides)."""
        digest = zlib.crc32(repr(entry_key).encode())
        return os.path.join(self.directory, f"{os.path.basename(info.path)}-{digest:08x}")

    def load(self, info, entry_key):
        """({vaddr: (frames, symbol)}, {raw name: demangled}) of the entry,
        empty when there is none."""
        path = self._path(info, entry_key)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except (FileNotFoundError, NotADirectoryError):
            return {}, {}
        except OSError as e:
            self._unusable(e)
            return {}, {}
        try:
            return _decode(data, entry_key)
        except (ValueError, TypeError, AttributeError, EOFError, struct.error) as e:
            self.warn(f"symbol cache entry {path} is unreadable ({e}); its symbols are "
                      "looked up anew and the entry rewritten")
            return {}, {}

    def save(self, info, entry_key, answers, demangled):
        """Writes the entry: answers {vaddr: (frames, symbol)} and the
        demangled forms of their symbols' names."""
        path = self._path(info, entry_key)
        names = {s for _, s in answers.values() if s is not None}
        body = marshal.dumps((
            entry_key,
            tuple((v, tuple(frames), symbol) for v, (frames, symbol) in answers.items()),
            {n: d for n, d in demangled.items() if n in names}))
        partial = f"{path}.{os.getpid()}.tmp"
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(HEADER.pack(MAGIC, zlib.crc32(body), len(body)) + body)
                os.replace(partial, path)
            except BaseException:
                os.unlink(partial)
                raise
        except OSError as e:
            self._unusable(e)

    def _unusable(self, e):
        # One text for reading and writing, so that the command's warn
        # (which says each message once) prints one line for both.
        self.warn(f"symbol cache {self.directory}: {e.strerror or e}; symbols are looked "
                  "up anew on each run (set HEAPTRACE_CACHE to a writable directory, "
                  "or to off)")


def _decode(data, entry_key):
    magic, crc, length = HEADER.unpack_from(data)
    body = data[HEADER.size:]
    if magic != MAGIC or len(body) != length or zlib.crc32(body) != crc:
        raise ValueError("not an entry of this heaptrace, or damaged")
    stored_key, stored, demangled = marshal.loads(body)
    if stored_key != entry_key:
        raise ValueError("its key is not the file's")
    answers = {}
    for vaddr, frames, symbol in stored:
        if not (isinstance(vaddr, int) and (symbol is None or isinstance(symbol, str))
                and all(isinstance(func, str) and isinstance(file, str)
                        and isinstance(line, int) for func, file, line in frames)):
            raise ValueError(f"bad answer for {vaddr!r}")
        answers[vaddr] = (list(frames), symbol)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in demangled.items()):
        raise ValueError("bad demangled names")
    return answers, demangled
