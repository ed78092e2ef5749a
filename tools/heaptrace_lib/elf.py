"""The two facts symbolization needs from an ELF file, read with struct:
its PT_LOAD segments (to turn a file offset into the virtual address that
addr2line expects) and its GNU build id (to notice a rebuilt binary)."""
import os
import stat
import struct
from dataclasses import dataclass

PT_LOAD = 1
PT_NOTE = 4
NT_GNU_BUILD_ID = 3


class NotElf(Exception):
    pass


@dataclass
class Segment:
    offset: int
    vaddr: int
    filesz: int


@dataclass
class ElfInfo:
    loads: list
    build_id: str

    def vaddr(self, file_offset):
        """The link-time virtual address of a file offset, or None when no
        loaded segment holds it."""
        for seg in self.loads:
            if seg.offset <= file_offset < seg.offset + seg.filesz:
                return file_offset - seg.offset + seg.vaddr
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
    return ElfInfo(loads, build_id)
