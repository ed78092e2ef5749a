"""What symbolization needs from an ELF file, read with struct: its PT_LOAD
segments (to turn a file offset into a link-time virtual address), its GNU
build id (to notice a rebuilt binary and to find its debug file), its
.gnu_debuglink, whether it carries DWARF, and its function symbols with
their sizes (.symtab and .dynsym), so that an address is named only after a
function that contains it."""
import bisect
import os
import stat
import struct

from .record import Factory, record

PT_LOAD = 1
PT_NOTE = 4
NT_GNU_BUILD_ID = 3
SHT_SYMTAB = 2
SHT_NOBITS = 8
SHT_DYNSYM = 11
STT_FUNC = 2
STT_GNU_IFUNC = 10
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
# Among symbols at one address, the name to show: a global, then a weak,
# then a local one (glibc's malloc is also __libc_malloc and __malloc).
BIND_RANK = {STB_GLOBAL: 0, STB_WEAK: 1, STB_LOCAL: 2}
NESTED_LOOKBACK = 4


class NotElf(Exception):
    pass


@record
class Segment:
    offset: int
    vaddr: int
    filesz: int


@record
class Section:
    name: str
    type: int
    offset: int
    size: int
    link: int
    entsize: int


@record
class ElfInfo:
    path: str
    loads: list
    build_id: str
    sections: list = Factory(list)
    is64: bool = True
    endian: str = "<"

    def vaddr(self, file_offset):
        """The link-time virtual address of a file offset, or None when no
        loaded segment holds it."""
        for seg in self.loads:
            if seg.offset <= file_offset < seg.offset + seg.filesz:
                return file_offset - seg.offset + seg.vaddr
        return None

    def section(self, name):
        return next((s for s in self.sections if s.name == name), None)

    @property
    def has_dwarf(self):
        """Whether the file holds DWARF line and function information (a
        separate debug file does; a stripped file does not)."""
        for name in (".debug_info", ".zdebug_info"):
            s = self.section(name)
            if s is not None and s.type != SHT_NOBITS and s.size:
                return True
        return False

    @property
    def has_symtab(self):
        s = self.section(".symtab")
        return s is not None and s.type == SHT_SYMTAB and s.size > 0

    def debuglink(self):
        """The file name in .gnu_debuglink, or ""."""
        s = self.section(".gnu_debuglink")
        if s is None or s.type == SHT_NOBITS:
            return ""
        with open(self.path, "rb") as f:
            f.seek(s.offset)
            data = f.read(s.size)
        return os.fsdecode(data.split(b"\0", 1)[0])

    def add_functions(self, table):
        """Adds the file's sized function symbols (.symtab and .dynsym) to a
        FunctionTable."""
        with open(self.path, "rb") as f:
            for s in self.sections:
                if s.type in (SHT_SYMTAB, SHT_DYNSYM) and s.entsize and \
                        0 <= s.link < len(self.sections):
                    self._read_symbols(f, s, self.sections[s.link], table)

    def _read_symbols(self, f, symtab, strtab, table):
        f.seek(symtab.offset)
        data = f.read(symtab.size - symtab.size % symtab.entsize)
        f.seek(strtab.offset)
        strings = f.read(strtab.size)
        if self.is64:
            fmt = self.endian + "IBBHQQ"
        else:
            fmt = self.endian + "IIIBBH"
        if struct.calcsize(fmt) != symtab.entsize:
            return
        for fields in struct.iter_unpack(fmt, data):
            if self.is64:
                name, info, _, shndx, value, size = fields
            else:
                name, value, size, info, _, shndx = fields
            if size and shndx and (info & 0xf) in (STT_FUNC, STT_GNU_IFUNC):
                table.add(value, size, BIND_RANK.get(info >> 4, 3), name, strings)


class FunctionTable:
    """Sized function symbols, sorted by start; lookup names an address only
    when it lies in [start, start + size) of a symbol."""

    def __init__(self):
        self._entries = {}  # start -> (rank, -size, name offset, strings)
        self.starts = []
        self.ends = []
        self._names = []

    def add(self, start, size, rank, name_at, strings):
        key = (rank, -size)
        old = self._entries.get(start)
        if old is None or key < old[:2]:
            self._entries[start] = (rank, -size, name_at, strings)

    def finish(self):
        """Sorts the symbols added; no more may be added after."""
        for start in sorted(self._entries):
            _, neg_size, name_at, strings = self._entries[start]
            self.starts.append(start)
            self.ends.append(start - neg_size)
            self._names.append((name_at, strings))
        self._entries = None

    def __len__(self):
        return len(self.starts)

    def lookup(self, vaddr):
        """The raw (mangled) name of the function containing vaddr, or None.
        A function with a smaller one inside it (rare) is found by looking
        a few symbols back past the nearest start."""
        i = bisect.bisect_right(self.starts, vaddr) - 1
        for i in range(i, max(i - NESTED_LOOKBACK, -1), -1):
            if vaddr < self.ends[i]:
                name_at, strings = self._names[i]
                end = strings.find(b"\0", name_at)
                return strings[name_at:end if end >= 0 else None].decode("utf-8", "replace")
        return None


def _notes_build_id(data, endian):
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(endian + "III", data, pos)
        name_at = pos + 12
        desc_at = name_at + ((namesz + 3) & ~3)
        if ntype == NT_GNU_BUILD_ID and data[name_at:name_at + namesz] == b"GNU\0":
            return data[desc_at:desc_at + descsz].hex()
        pos = desc_at + ((descsz + 3) & ~3)
    return ""


def read_elf(path):
    """ElfInfo of the file at path; raises OSError or NotElf. Only regular
    files are opened: a dump may name a FIFO or a device, where open or
    read would wait forever."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise NotElf(path)
    try:
        return _read_elf(path)
    except struct.error:
        raise NotElf(path) from None


def _read_sections(f, endian, is64, head, path):
    if is64:
        shoff, = struct.unpack_from(endian + "Q", head, 24)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", head, 42)
        shdr = endian + "IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from(endian + "I", head, 16)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", head, 30)
        shdr = endian + "IIIIIIIIII"
    if not shoff or shentsize != struct.calcsize(shdr):
        return []
    f.seek(shoff)
    table = f.read(shentsize * shnum)
    raw = [struct.unpack_from(shdr, table, i * shentsize)
           for i in range(len(table) // shentsize)]
    if not raw or shstrndx >= len(raw):
        return []
    f.seek(raw[shstrndx][4])
    names = f.read(raw[shstrndx][5])
    sections = []
    for name_at, stype, _, _, offset, size, link, _, _, entsize in raw:
        end = names.find(b"\0", name_at)
        name = names[name_at:end if end >= 0 else None].decode("ascii", "replace")
        sections.append(Section(name, stype, offset, size, link, entsize))
    return sections


def _read_elf(path):
    with open(path, "rb") as f:
        ident = f.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            raise NotElf(path)
        is64 = ident[4] == 2
        endian = "<" if ident[5] == 1 else ">"
        head = f.read(48 if is64 else 36)
        if is64:
            phoff, = struct.unpack_from(endian + "Q", head, 16)
            phentsize, phnum = struct.unpack_from(endian + "HH", head, 38)
            phdr = endian + "IIQQQQQQ"
        else:
            phoff, = struct.unpack_from(endian + "I", head, 12)
            phentsize, phnum = struct.unpack_from(endian + "HH", head, 26)
            phdr = endian + "IIIIIIII"
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        if len(table) < phentsize * phnum:
            raise NotElf(path)
        loads, notes = [], []
        for i in range(phnum):
            fields = struct.unpack_from(phdr, table, i * phentsize)
            if is64:
                ptype, _, offset, vaddr, _, filesz = fields[:6]
            else:
                ptype, offset, vaddr, _, filesz = fields[:5]
            if ptype == PT_LOAD:
                loads.append(Segment(offset, vaddr, filesz))
            elif ptype == PT_NOTE:
                notes.append((offset, filesz))
        build_id = ""
        for offset, size in notes:
            f.seek(offset)
            build_id = _notes_build_id(f.read(size), endian)
            if build_id:
                break
        sections = _read_sections(f, endian, is64, head, path)
        if not build_id:
            # A separate debug file keeps its notes in a section.
            for s in sections:
                if s.name == ".note.gnu.build-id" and s.type != SHT_NOBITS:
                    f.seek(s.offset)
                    build_id = _notes_build_id(f.read(s.size), endian)
    return ElfInfo(path, loads, build_id, sections, is64, endian)
