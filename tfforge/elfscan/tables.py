"""ELF tables read straight from the file with pread: section headers, symbol tables, string
tables, .eh_frame_hdr function starts, relocations, PLT, init arrays, version needs and the
x86 ISA-level property note. One open library is a `Library` (its function table)."""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from tfforge.elfscan import arrays
from tfforge.elfscan.arrays import Ints
from tfforge.errors import ConfigError
from tfforge.host import isa
from tfforge.wheel import verneed

ADDRESS_LIMIT = 1 << 47  # x86-64 user space: a library's sections all lie below it
CHUNK = 8 << 20  # bytes per pread; bounds what one read holds
NAME_SLACK = 64 << 10  # read this far past the last wanted name's start first
GAP_BYTES = 64  # code after an FDE's end shorter than this is alignment padding
SYM_DT = np.dtype(
    [
        ("name", "<u4"),
        ("info", "u1"),
        ("other", "u1"),
        ("shndx", "<u2"),
        ("value", "<u8"),
        ("size", "<u8"),
    ]
)
RELA_DT = np.dtype([("offset", "<u8"), ("info", "<u8"), ("addend", "<i8")])
NT_GNU_PROPERTY_TYPE_0 = 5
# GNU_PROPERTY_X86_ISA_1_NEEDED as binutils >= 2.35 writes it and glibc >= 2.33 checks it.
ISA_1_NEEDED = 0xC0008002
R_X86_64_64, R_GLOB_DAT, R_JUMP_SLOT, R_RELATIVE, R_IRELATIVE = 1, 6, 7, 8, 37
# Said of ELF files no x86-64 process maps as code (other machines, 32-bit, object files): a
# wheel may carry them (test data, cross-built tools); verify lists them and scans nothing.
NOT_LOADED = "not code an x86-64 process loads"


@dataclass(frozen=True)
class Section:
    name: str
    offset: int
    size: int
    addr: int
    type: int = 0
    flags: int = 0
    link: int = 0
    entsize: int = 0
    index: int = 0


SHDR_DT = np.dtype(
    [
        ("name", "<u4"),
        ("type", "<u4"),
        ("flags", "<u8"),
        ("addr", "<u8"),
        ("offset", "<u8"),
        ("size", "<u8"),
        ("link", "<u4"),
        ("info", "<u4"),
        ("align", "<u8"),
        ("entsize", "<u8"),
    ]
)
PHDR_DT = np.dtype(
    [
        ("type", "<u4"),
        ("flags", "<u4"),
        ("offset", "<u8"),
        ("vaddr", "<u8"),
        ("paddr", "<u8"),
        ("filesz", "<u8"),
        ("memsz", "<u8"),
        ("align", "<u8"),
    ]
)
PT_LOAD, PF_X = 1, 0x1
SHT_PROGBITS, SHT_RELA, SHT_NOBITS, SHT_VERNEED = 1, 4, 8, 0x6FFFFFFE
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4


def _spans(
    fd: int, strtab: Section, offsets: Iterable[int] | np.ndarray
) -> Iterator[tuple[int, bytes, Ints, Ints]]:
    """The string table in bounded chunks, in order: (chunk offset, chunk, starts and NUL
    ends within it of the wanted strings it holds whole). A string that is unterminated or
    longer than a chunk comes as an empty one."""
    if isinstance(offsets, np.ndarray):
        want = arrays.unique(offsets.astype(np.int64))
    else:
        want = arrays.unique(np.fromiter((int(o) for o in offsets), np.int64))
    i = 0
    while i < len(want):
        lo = int(want[i])
        full = min(CHUNK, max(strtab.size - lo, 0))
        # Read only as far as the wanted names that start within a chunk go (a few names
        # far apart need not cost a chunk each), unless the last one is not over by then.
        last = int(want[max(int(np.searchsorted(want, lo + full)) - 1, i)]) - lo  # >= 0
        size = min(full, last + NAME_SLACK)
        buf = os.pread(fd, size, strtab.offset + lo)
        nul = np.flatnonzero(np.frombuffer(buf, np.uint8) == 0)
        if size < full and (not len(nul) or nul[-1] < last):
            buf = os.pread(fd, full, strtab.offset + lo)
            nul = np.flatnonzero(np.frombuffer(buf, np.uint8) == 0)
        j = int(np.searchsorted(want, lo + len(buf)))
        starts = want[i:j] - lo
        k = np.searchsorted(nul, starts)
        whole = int(np.searchsorted(k, len(nul)))  # names whose NUL is in this buffer
        if whole == 0:  # unterminated or longer than a chunk: an empty name
            yield lo, b"", np.zeros(1, np.int64), np.zeros(1, np.int64)
            whole = 1
        else:
            yield lo, buf, starts[:whole], nul[k[:whole]].astype(np.int64)
        i += whole


def strings_at(
    fd: int,
    strtab: Section,
    offsets: Iterable[int] | np.ndarray,
    keep: Callable[[bytes, Ints, Ints], npt.NDArray[np.bool_]] | None = None,
) -> dict[int, str]:
    """Names at string-table offsets, reading the table in bounded chunks, in order; with
    `keep` (chunk, starts, ends -> mask), only the strings it keeps are decoded."""
    out: dict[int, str] = {}
    for lo, buf, starts, ends in _spans(fd, strtab, offsets):
        if keep is not None:
            kept = keep(buf, starts, ends)
            starts, ends = starts[kept], ends[kept]
        for st, end in zip(starts.tolist(), ends.tolist(), strict=True):
            out[lo + st] = buf[st:end].decode("utf-8", "replace")
    return out


def offsets_matching(
    fd: int,
    strtab: Section,
    offsets: np.ndarray,
    ends: Iterable[str] = (),
    holds: Iterable[str] = (),
    begins: Iterable[str] = (),
) -> Ints:
    """Of the strings at these offsets, those that end with one of `ends`, hold one of
    `holds` or begin with one of `begins` (bytes compared, no string is decoded): numpy
    compares the few bytes before each string's end, bytes.find looks for the others."""
    suffixes = [np.frombuffer(e.encode(), np.uint8) for e in ends if e]
    prefixes = [np.frombuffer(e.encode(), np.uint8) for e in begins if e]
    inner = [h.encode() for h in holds if h]
    found: list[Ints] = []
    for lo, buf, starts, nul in _spans(fd, strtab, offsets):
        b = np.frombuffer(buf, np.uint8)
        hit = np.zeros(len(starts), bool)
        for needles, at in ((suffixes, False), (prefixes, True)):
            for needle in needles:
                fits = np.flatnonzero(nul - starts >= len(needle))
                first = starts[fits] if at else nul[fits] - len(needle)
                window = b[first[:, None] + np.arange(len(needle))]
                hit[fits[(window == needle).all(axis=1)]] = True
        for word in inner:
            pos = buf.find(word)
            while pos >= 0:
                # Wanted strings holding it end at the first NUL after it (several may:
                # a string table shares a tail between names).
                k = int(np.searchsorted(nul, pos))
                if k < len(nul) and pos + len(word) <= nul[k]:
                    same = np.arange(k, int(np.searchsorted(nul, nul[k], side="right")))
                    hit[same[starts[same] <= pos]] = True
                pos = buf.find(word, pos + 1)
        found.append(starts[hit] + lo)
    return np.concatenate(found) if found else np.zeros(0, np.int64)


def open_elf(path: Path, f: BinaryIO) -> tuple[ELFFile, list[Section]]:
    """The ELF header (pyelftools) and the section headers, read straight from the table:
    pyelftools' iter_sections would build every section object, and parsing a 1.6 MB
    .gnu.hash costs ~0.3 s per pass."""
    try:
        elf = ELFFile(f)
        count = elf.num_sections()
        shstrndx = elf.get_shstrndx()
    except (ELFError, ValueError) as exc:
        raise ConfigError(f"{path}: not an ELF file ({exc})") from None
    if elf["e_machine"] != "EM_X86_64" or elf.elfclass != 64:
        raise ConfigError(
            f"{path}: ELF for machine {elf['e_machine']}, {elf.elfclass}-bit: {NOT_LOADED}"
        )
    if elf["e_type"] not in ("ET_DYN", "ET_EXEC"):
        raise ConfigError(f"{path}: ELF of type {elf['e_type']}: {NOT_LOADED}")
    fd = f.fileno()
    file_size = os.fstat(fd).st_size
    segments = exec_segments(path, fd, elf, file_size)
    if not count or elf.header["e_shentsize"] != SHDR_DT.itemsize:
        if segments:
            raise ConfigError(
                f"{path}: ELF file whose executable segments no section header describes: "
                "the loader runs code the scan cannot find"
            )
        return elf, []
    shoff = int(elf.header["e_shoff"])
    if shoff + count * SHDR_DT.itemsize > file_size:
        raise ConfigError(
            f"{path}: truncated or damaged ELF file (section headers at {shoff} "
            f"run past its {file_size} bytes)"
        )
    raw = np.frombuffer(os.pread(fd, count * SHDR_DT.itemsize, shoff), SHDR_DT)
    if len(raw) != count:
        raise ConfigError(f"{path}: truncated ELF file (section headers missing)")
    # The one bounds rule: every offset and size read from the file is checked against the
    # file before anything is read or allocated with it (a crafted sh_size of 2**63 would
    # otherwise mean minutes of reading and gigabytes of memory, or an OverflowError), and
    # every address is one a process can have (the decoder packs addresses into int64 keys).
    for i, h in enumerate(raw):
        off, size, addr = int(h["offset"]), int(h["size"]), int(h["addr"])
        in_file = int(h["type"]) == SHT_NOBITS or off + size <= file_size
        if not in_file or addr + size > ADDRESS_LIMIT:
            raise ConfigError(
                f"{path}: damaged ELF file (section {i} at offset {off}, "
                f"{size} bytes, address {addr:#x} lies outside its "
                f"{file_size} bytes or the address space)"
            )
    execs = sorted(
        (int(h["addr"]), int(h["addr"]) + int(h["size"]))
        for h in raw
        if int(h["flags"]) & SHF_EXECINSTR and int(h["type"]) == SHT_PROGBITS and int(h["size"])
    )
    for (_, hi), (lo, _) in zip(execs, execs[1:], strict=False):
        if lo < hi:
            raise ConfigError(
                f"{path}: damaged ELF file (executable sections overlap at {lo:#x}); "
                "no linker writes that"
            )
    names: dict[int, str] = {}
    if shstrndx < count:
        shstr = Section("", int(raw[shstrndx]["offset"]), int(raw[shstrndx]["size"]), 0)
        names = strings_at(fd, shstr, raw["name"])
    for seg_off, seg_end, seg_addr in segments:
        for h in raw:
            off, size, addr = int(h["offset"]), int(h["size"]), int(h["addr"])
            exe = int(h["flags"]) & SHF_EXECINSTR and int(h["type"]) == SHT_PROGBITS and size
            mapped = seg_addr <= addr < seg_addr + seg_end - seg_off
            if exe and mapped and off - seg_off != addr - seg_addr:
                raise ConfigError(
                    f"{path}: damaged ELF file (executable section at {addr:#x} is read "
                    f"from offset {off}, the loader maps offset {addr - seg_addr + seg_off})"
                )
    return elf, [
        Section(
            names.get(int(h["name"]), ""),
            int(h["offset"]),
            int(h["size"]),
            int(h["addr"]),
            int(h["type"]),
            int(h["flags"]),
            int(h["link"]),
            int(h["entsize"]),
            i,
        )
        for i, h in enumerate(raw)
    ]


def exec_segments(path: Path, fd: int, elf: ELFFile, file_size: int) -> list[tuple[int, int, int]]:
    """(file offset, end, address) of each loadable segment the loader maps executable
    (PT_LOAD with PF_X), from the program headers, which are what the loader reads."""
    phoff, phnum = int(elf["e_phoff"]), int(elf["e_phnum"])
    if not phnum:
        return []
    if int(elf["e_phentsize"]) != PHDR_DT.itemsize or phoff + phnum * 56 > file_size:
        raise ConfigError(f"{path}: damaged ELF file (program headers outside the file)")
    raw = np.frombuffer(os.pread(fd, phnum * PHDR_DT.itemsize, phoff), PHDR_DT)
    out = []
    for h in raw[(raw["type"] == PT_LOAD) & (raw["flags"] & PF_X != 0) & (raw["filesz"] > 0)]:
        off, size = int(h["offset"]), int(h["filesz"])
        if off + size > file_size:
            raise ConfigError(
                f"{path}: damaged ELF file (an executable segment runs past the file's end)"
            )
        out.append((off, off + size, int(h["vaddr"])))
    return out


def exec_sections(sections: list[Section]) -> list[Section]:
    """The executable sections with bytes in the file, in address order (open_elf checked
    that they do not overlap)."""
    return sorted(
        (s for s in sections if s.flags & SHF_EXECINSTR and s.type == SHT_PROGBITS and s.size),
        key=lambda s: s.addr,
    )


def eh_frame_table(fd: int, sections: list[Section]) -> tuple[np.ndarray, np.ndarray]:
    """(function starts, their FDE addresses), int64 in table order, from the .eh_frame_hdr
    binary-search table; empty when there is none or it is not in the one layout linkers
    write."""
    none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    sec = next((s for s in sections if s.name == ".eh_frame_hdr"), None)
    if sec is None or sec.size < 12 or sec.type == SHT_NOBITS:
        return none
    raw = os.pread(fd, sec.size, sec.offset)
    if len(raw) < 12:
        return none
    version, _ptr_enc, count_enc, table_enc = raw[:4]
    # udata4 count and datarel|sdata4 table: what GNU ld, gold and LLD all write.
    if version != 1 or count_enc != 0x03 or table_enc != 0x3B:
        return none
    count = min(int.from_bytes(raw[8:12], "little"), (len(raw) - 12) // 8)
    table = np.frombuffer(raw, "<i4", count * 2, 12).astype(np.int64) + sec.addr
    return table[0::2], table[1::2]


def eh_frame_hdr_starts(fd: int, sections: list[Section]) -> np.ndarray:
    """Function starts (int64, in table order) from the .eh_frame_hdr search table."""
    return eh_frame_table(fd, sections)[0]


def fde_ends(fd: int, sections: list[Section], starts: np.ndarray, fdes: np.ndarray) -> np.ndarray:
    """End address of each function from its FDE's pc_range (int64; -1 where unknown).

    Read for FDEs in the encoding compilers use on x86-64 (pc_begin pcrel|sdata4, then a
    4-byte pc_range); an FDE whose decoded pc_begin is not its table entry's start is
    another encoding and is left unknown. .eh_frame is read in bounded chunks."""
    ends = np.full(len(starts), -1, np.int64)
    sec = next((s for s in sections if s.name == ".eh_frame"), None)
    if sec is None or sec.type == SHT_NOBITS or not len(fdes):
        return ends
    off = fdes - sec.addr
    order = np.argsort(off, kind="stable")
    off_sorted = off[order]
    pos = 0
    while pos < sec.size:
        want = min(CHUNK, sec.size - pos)
        buf = np.frombuffer(os.pread(fd, want + 16, sec.offset + pos), np.uint8)
        lo, hi = np.searchsorted(off_sorted, [pos, pos + want])
        rel = off_sorted[lo:hi] - pos
        rel = rel[rel + 16 <= len(buf)]
        idx = order[lo : lo + len(rel)]
        length = le32(buf, rel, signed=False)
        span = le32(buf, rel + 12, signed=False)
        begin = le32(buf, rel + 8) + fdes[idx] + 8
        ok = (length != 0xFFFFFFFF) & (length >= 12) & (begin == starts[idx])
        ends[idx[ok]] = starts[idx[ok]] + span[ok]
        pos += want
    return ends


def le32(buf: npt.NDArray[np.uint8], at: Ints, *, signed: bool = True) -> Ints:
    """The little-endian 32-bit words of buf (contiguous) at offsets `at`, as int64."""
    words = np.ndarray((max(len(buf) - 3, 0),), "<i4" if signed else "<u4", buf, 0, (1,))
    return words[at].astype(np.int64)


def code_bytes(path: Path | str) -> int:
    """Bytes of machine code in a library: the size of its executable (SHF_EXECINSTR)
    sections; ConfigError if it is not an x86-64 ELF file."""
    path = Path(path)
    with open(path, "rb") as f:
        return sum(s.size for s in exec_sections(open_elf(path, f)[1]))


def inside(lo: np.ndarray, hi: np.ndarray, addrs: np.ndarray) -> np.ndarray:
    """Whether each address lies in one of the sorted ranges [lo, hi) (none when empty)."""
    if not len(lo):
        return np.zeros(len(addrs), bool)
    i = np.searchsorted(lo, addrs, side="right").astype(np.int64) - 1
    return (i >= 0) & (addrs < hi[np.clip(i, 0, None)])


def glibc_needed(path: Path, fd: int, sections: list[Section]) -> str | None:
    """The highest GLIBC_x.y symbol version the library needs (.gnu.version_r), or None;
    ConfigError when the table is damaged (read by the bounded tfforge.wheel.verneed)."""
    best: tuple[int, int] | None = None
    size = os.fstat(fd).st_size
    for hdr in sections:
        if hdr.type != SHT_VERNEED:
            continue
        if hdr.link >= len(sections):
            raise ConfigError(f"{path}: damaged ELF file (version needs name no string table)")
        strtab = sections[hdr.link]
        try:
            needs = verneed.read(fd, (hdr.offset, hdr.size), (strtab.offset, strtab.size), size)
        except ValueError as exc:
            raise ConfigError(f"{path}: damaged ELF file ({exc})") from None
        for _library, names in needs:
            for name in names:
                m = re.fullmatch(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", name)
                if m:
                    v = (int(m[1]), int(m[2]))
                    best = max(best or v, v)
    return f"{best[0]}.{best[1]}" if best else None


def isa_level_note(fd: int, sections: list[Section]) -> str | None:
    """The x86 ISA level GNU ld records with -mneeded / -z x86-64-vN (glibc enforces it):
    GNU_PROPERTY_X86_ISA_1_NEEDED in the NT_GNU_PROPERTY_TYPE_0 note, read from the first
    4 KiB of .note.gnu.property with bounds on every length."""
    hdr = next((s for s in sections if s.name == ".note.gnu.property"), None)
    if hdr is None or hdr.type == SHT_NOBITS:
        return None
    raw = os.pread(fd, min(hdr.size, 4096), hdr.offset)
    pos = 0
    while pos + 12 <= len(raw):
        namesz, descsz, kind = struct.unpack_from("<III", raw, pos)
        name = raw[pos + 12 : pos + 12 + namesz]
        start = pos + 12 + (namesz + 3) // 4 * 4  # name 4-aligned, desc 8-aligned
        desc = raw[start : start + descsz]
        pos = start + (descsz + 7) // 8 * 8
        if kind != NT_GNU_PROPERTY_TYPE_0 or name != b"GNU\0":
            continue
        at = 0
        while at + 8 <= len(desc):
            pr_type, size = struct.unpack_from("<II", desc, at)
            data = desc[at + 8 : at + 8 + size]
            at += 8 + (size + 7) // 8 * 8
            if pr_type == ISA_1_NEEDED and len(data) >= 4:
                bits = int.from_bytes(data[:4], "little")
                levels = [i + 1 for i in range(4) if bits >> i & 1]
                return isa.level_name(max(levels)) if levels else None
    return None


def open_file(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
