"""Symbolization: from a return address in a dump to the source frames it
stands for. Each address is placed in its MAPPED_LIBRARIES entry, turned
into the file's link-time address through the ELF program headers (right for
PIE executables, shared libraries and non-PIE executables alike), and all
addresses of one file go to a single `addr2line -a -f -i -C` process. A file
that is missing, unreadable or rebuilt (its GNU build id differs from the
dump's) is reported once and its frames stay `module+0xoffset`. Answers are
kept for the life of the command: the dumps of a series share their files
and most of their addresses."""
import os
import re
import subprocess
from dataclasses import dataclass

from .elf import NotElf, read_elf
from .errors import HeaptraceError

ADDRESS_LINE_RE = re.compile(r"^0x[0-9a-f]+$")

# {(path, inode, size, mtime): {vaddr: [(function, file, line)]}}
_answers = {}


@dataclass(frozen=True)
class Frame:
    """One source-level frame; inlined calls give several per address."""

    name: str
    file: str = ""
    line: int = 0
    module: str = ""


def _module_frame(mapping, address):
    if mapping is None:
        return Frame(f"0x{address:x}")
    base = os.path.basename(mapping.path) or "anon"
    return Frame(f"{base}+0x{mapping.file_offset(address):x}", module=mapping.path)


def _parse_addr2line(text):
    """addr2line -a -f -i output -> {vaddr: [(function, file, line)]}."""
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
        location = lines[i + 1].split(" (discriminator")[0]
        file, _, lineno = location.rpartition(":")
        current.append((line, "" if file in ("", "??") else file,
                        int(lineno) if lineno.isdigit() else 0))
        i += 2
    return result


def run_addr2line(path, vaddrs):
    """All frames of vaddrs (link-time addresses) in the ELF file at path,
    from one addr2line process: {vaddr: [(function, file, line)]}."""
    request = "".join(f"0x{a:x}\n" for a in vaddrs)
    try:
        proc = subprocess.run(["addr2line", "-a", "-f", "-i", "-C", "-e", path],
                              input=request, capture_output=True, text=True,
                              timeout=600)
    except FileNotFoundError:
        raise HeaptraceError("addr2line not found; install binutils") from None
    except subprocess.TimeoutExpired:
        raise HeaptraceError(f"addr2line on {path} did not finish in 600 s") from None
    if proc.returncode != 0:
        return {}
    return _parse_addr2line(proc.stdout)


def _lookup(path, vaddrs):
    """run_addr2line's answers for vaddrs, asking only for the ones this
    file (as it is on disk now) has not been asked about before."""
    st = os.stat(path)
    known = _answers.setdefault((path, st.st_ino, st.st_size, st.st_mtime_ns), {})
    missing = sorted(v for v in vaddrs if v not in known)
    if missing:
        found = run_addr2line(path, missing)
        for vaddr in missing:
            known[vaddr] = found.get(vaddr, [])
    return known


class Symbolizer:
    """Symbolizes the addresses of one dump. `warn` receives one message per
    problem file."""

    def __init__(self, dump, warn):
        self.dump = dump
        self.warn = warn

    def _usable_file(self, real):
        """The ElfInfo of a mapping's file if its frames can be trusted."""
        if not real.startswith("/"):
            return None
        try:
            info = read_elf(real)
        except OSError as e:
            self.warn(f"{real}: {e.strerror or e}; its frames are shown as module+offset")
            return None
        except NotElf:
            self.warn(f"{real}: not a readable ELF file; its frames are shown as module+offset")
            return None
        expected = self.dump.build_id_for(real)
        if expected and info.build_id and expected != info.build_id:
            self.warn(f"{real}: build id {info.build_id} differs from the dump's "
                      f"{expected} (rebuilt since?); its frames are shown as module+offset")
            return None
        return info

    def symbolize(self, addresses):
        """{address: (mapping, tuple of Frame innermost first)}."""
        result = {}
        by_file = {}
        for address in addresses:
            mapping = self.dump.mapping_for(address)
            result[address] = (mapping, (_module_frame(mapping, address),))
            if mapping is not None and mapping.path:
                by_file.setdefault(mapping.path, []).append((address, mapping))
        for path, entries in by_file.items():
            # A file replaced while mapped: the build id check decides.
            real = path.removesuffix(" (deleted)")
            info = self._usable_file(real)
            if info is None:
                continue
            vaddrs = {}
            for address, mapping in entries:
                vaddr = info.vaddr(mapping.file_offset(address))
                if vaddr is not None:
                    vaddrs[address] = vaddr
            found = _lookup(real, set(vaddrs.values()))
            for address, vaddr in vaddrs.items():
                mapping, (fallback,) = result[address]
                frames = tuple(
                    Frame(fallback.name if func == "??" else func, file, line, path)
                    for func, file, line in found.get(vaddr, ()))
                if frames and any(f.name != fallback.name for f in frames):
                    result[address] = (mapping, frames)
        return result
