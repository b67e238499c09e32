"""ELF tables read straight from the file with pread: section headers, symbol tables, string
tables, .eh_frame_hdr function starts, relocations, PLT, init arrays, version needs and the
x86 ISA-level property note. One open library is a `Library` (its function table)."""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from tfforge.elfscan import arrays
from tfforge.elfscan.rules import rules
from tfforge.errors import ConfigError
from tfforge.host import isa

ADDRESS_LIMIT = 1 << 47  # x86-64 user space: a library's sections all lie below it
CHUNK = 8 << 20  # bytes per pread; bounds what one read holds
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
_RELA_DT = np.dtype([("offset", "<u8"), ("info", "<u8"), ("addend", "<i8")])
_NT_GNU_PROPERTY_TYPE_0 = 5
# GNU_PROPERTY_X86_ISA_1_NEEDED as binutils >= 2.35 writes it and glibc >= 2.33 checks it.
_ISA_1_NEEDED = 0xC0008002
_R_X86_64_64, _R_GLOB_DAT, _R_JUMP_SLOT, _R_RELATIVE, _R_IRELATIVE = 1, 6, 7, 8, 37
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


_SHDR_DT = np.dtype(
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
_SHT_PROGBITS, _SHT_RELA, _SHT_NOBITS, _SHT_VERNEED = 1, 4, 8, 0x6FFFFFFE
_SHF_ALLOC, _SHF_EXECINSTR = 0x2, 0x4


def strings_at(fd: int, strtab: Section, offsets: Iterable[int]) -> dict[int, str]:
    """Names at string-table offsets, reading the table in bounded chunks, in order."""
    want = arrays.unique(np.fromiter((int(o) for o in offsets), np.int64))
    out: dict[int, str] = {}
    i = 0
    while i < len(want):
        lo = int(want[i])
        buf = os.pread(fd, min(CHUNK, max(strtab.size - lo, 0)), strtab.offset + lo)
        nul = np.flatnonzero(np.frombuffer(buf, np.uint8) == 0)
        j = int(np.searchsorted(want, lo + len(buf)))
        starts = want[i:j] - lo
        k = np.searchsorted(nul, starts)
        whole = int(np.searchsorted(k, len(nul)))  # names whose NUL is in this buffer
        for st, end in zip(starts[:whole].tolist(), nul[k[:whole]].tolist()):
            out[lo + st] = buf[st:end].decode("utf-8", "replace")
        if whole == 0:  # unterminated or longer than a chunk: skip it
            out[lo] = ""
            whole = 1
        i += whole
    return out


def open_elf(path: Path, f) -> tuple[ELFFile, list[Section]]:
    """The ELF header (pyelftools) and the section headers, read straight from the table:
    pyelftools' iter_sections would build every section object, and parsing a 1.6 MB
    .gnu.hash costs ~0.3 s per pass."""
    try:
        elf = ELFFile(f)
        count = elf.num_sections()
        shstrndx = elf.get_shstrndx()
    except (ELFError, ValueError) as exc:
        raise ConfigError(f"{path}: not an ELF file ({exc})")
    if elf["e_machine"] != "EM_X86_64" or elf.elfclass != 64:
        raise ConfigError(
            f"{path}: ELF for machine {elf['e_machine']}, {elf.elfclass}-bit: {NOT_LOADED}"
        )
    if elf["e_type"] not in ("ET_DYN", "ET_EXEC"):
        raise ConfigError(f"{path}: ELF of type {elf['e_type']}: {NOT_LOADED}")
    if not count or elf.header["e_shentsize"] != _SHDR_DT.itemsize:
        return elf, []
    fd = f.fileno()
    file_size = os.fstat(fd).st_size
    shoff = int(elf.header["e_shoff"])
    if shoff + count * _SHDR_DT.itemsize > file_size:
        raise ConfigError(
            f"{path}: truncated or damaged ELF file (section headers at {shoff} "
            f"run past its {file_size} bytes)"
        )
    raw = np.frombuffer(os.pread(fd, count * _SHDR_DT.itemsize, shoff), _SHDR_DT)
    if len(raw) != count:
        raise ConfigError(f"{path}: truncated ELF file (section headers missing)")
    # The one bounds rule: every offset and size read from the file is checked against the
    # file before anything is read or allocated with it (a crafted sh_size of 2**63 would
    # otherwise mean minutes of reading and gigabytes of memory, or an OverflowError), and
    # every address is one a process can have (the decoder packs addresses into int64 keys).
    for i, h in enumerate(raw):
        off, size, addr = int(h["offset"]), int(h["size"]), int(h["addr"])
        in_file = int(h["type"]) == _SHT_NOBITS or off + size <= file_size
        if not in_file or addr + size > ADDRESS_LIMIT:
            raise ConfigError(
                f"{path}: damaged ELF file (section {i} at offset {off}, "
                f"{size} bytes, address {addr:#x} lies outside its "
                f"{file_size} bytes or the address space)"
            )
    execs = sorted(
        (int(h["addr"]), int(h["addr"]) + int(h["size"]))
        for h in raw
        if int(h["flags"]) & _SHF_EXECINSTR and int(h["type"]) == _SHT_PROGBITS and int(h["size"])
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


def exec_sections(sections: list[Section]) -> list[Section]:
    """The executable sections with bytes in the file, in address order (open_elf checked
    that they do not overlap)."""
    return sorted(
        (s for s in sections if s.flags & _SHF_EXECINSTR and s.type == _SHT_PROGBITS and s.size),
        key=lambda s: s.addr,
    )


def eh_frame_table(fd: int, sections: list[Section]) -> tuple[np.ndarray, np.ndarray]:
    """(function starts, their FDE addresses), int64 in table order, from the .eh_frame_hdr
    binary-search table; empty when there is none or it is not in the one layout linkers
    write."""
    none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    sec = next((s for s in sections if s.name == ".eh_frame_hdr"), None)
    if sec is None or sec.size < 12 or sec.type == _SHT_NOBITS:
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
    if sec is None or sec.type == _SHT_NOBITS or not len(fdes):
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

        def word(at: np.ndarray) -> np.ndarray:
            return (
                buf[at].astype(np.int64)
                | buf[at + 1].astype(np.int64) << 8
                | buf[at + 2].astype(np.int64) << 16
                | buf[at + 3].astype(np.int64) << 24
            )

        length, begin, span = word(rel), word(rel + 8), word(rel + 12)
        begin = (begin ^ 0x80000000) - 0x80000000 + fdes[idx] + 8
        ok = (length != 0xFFFFFFFF) & (length >= 12) & (begin == starts[idx])
        ends[idx[ok]] = starts[idx[ok]] + span[ok]
        pos += want
    return ends


def code_bytes(path: Path | str) -> int:
    """Bytes of machine code in a library: the size of its executable (SHF_EXECINSTR)
    sections; ConfigError if it is not an x86-64 ELF file."""
    path = Path(path)
    with open(path, "rb") as f:
        return sum(s.size for s in exec_sections(open_elf(path, f)[1]))


def _inside(lo: np.ndarray, hi: np.ndarray, addrs: np.ndarray) -> np.ndarray:
    """Whether each address lies in one of the sorted ranges [lo, hi) (none when empty)."""
    if not len(lo):
        return np.zeros(len(addrs), bool)
    i = np.searchsorted(lo, addrs, side="right").astype(np.int64) - 1
    return (i >= 0) & (addrs < hi[np.clip(i, 0, None)])


class Library:
    """One open ELF library: sections, symbol tables and the function table."""

    def __init__(self, path: Path, f):
        self.path = path
        self.fd = f.fileno()
        self.elf, self.sections = open_elf(path, f)
        self.exec_secs = exec_sections(self.sections)
        self.tables = [self._symbols(".symtab"), self._symbols(".dynsym")]
        self.dynsym = self.tables[1][0]
        fsyms = [self._function_symbols(syms) for syms, _ in self.tables]
        self.symbol_source = (
            ".symtab" if len(fsyms[0]) else ".dynsym" if len(fsyms[1]) else ".eh_frame_hdr"
        )
        eh_starts, eh_fdes = eh_frame_table(self.fd, self.sections)
        starts = arrays.unique(
            np.concatenate(
                [
                    fsyms[0]["value"],
                    fsyms[1]["value"],
                    eh_starts.astype(np.uint64),
                    np.array([s.addr for s in self.exec_secs], np.uint64),
                ]
            ).astype(np.uint64)
        )
        self.fsyms = fsyms
        self.lo = np.array([s.addr for s in self.exec_secs], np.uint64)
        self.hi = np.array([s.addr + s.size for s in self.exec_secs], np.uint64)
        starts = starts[_inside(self.lo, self.hi, starts)]  # unwind entries may point anywhere
        self.code_lo = self.lo[0] if len(self.lo) else np.uint64(0)
        self.code_hi = self.hi[-1] if len(self.hi) else np.uint64(0)
        data = [
            s
            for s in self.sections
            if s.flags & 0x3 == 0x3
            and s.type == _SHT_PROGBITS
            and s.addr
            and not s.flags & _SHF_EXECINSTR
        ]  # SHF_WRITE | SHF_ALLOC
        data.sort(key=lambda s: s.addr)
        self.data_lo = np.array([s.addr for s in data], np.uint64)
        self.data_hi = np.array([s.addr + s.size for s in data], np.uint64)
        top = self.hi.max() if len(self.hi) else 0
        # A function ends at the next start, or earlier where a symbol gives its size: bytes
        # after it (constant tables that hand-written assembly keeps in .text) are not code.
        ends = np.append(starts[1:], top).astype(np.uint64)
        sized_mask = np.zeros(len(starts), bool)
        for syms in fsyms:
            sized = syms[syms["size"] > 0]
            if len(sized):
                first = np.unique(sized["value"], return_index=True)[1]
                span = np.maximum.reduceat(sized["size"], first)
                idx = np.searchsorted(starts, sized["value"][first])
                ends[idx] = np.minimum(ends[idx], sized["value"][first] + span)
                sized_mask[idx] = True
        # Without a symbol size (stripped libraries), the unwind entry (FDE) gives the end.
        # Code after it up to the next start has neither a symbol nor an unwind entry:
        # hand-written assembly or data in .text. Such a gap becomes an *unlabelled* function
        # (rule R5) instead of silently extending its neighbour.
        fe = fde_ends(self.fd, self.sections, eh_starts, eh_fdes)
        known = fe > 0
        idx = np.searchsorted(starts, eh_starts[known].astype(np.uint64))
        fe_known = fe[known].astype(np.uint64)
        shorter = (~sized_mask[idx]) & (fe_known < ends[idx]) & (fe_known > starts[idx])
        idx, fe_known = idx[shorter], fe_known[shorter]
        nxt = ends[idx]
        ends[idx] = fe_known
        gap = nxt >= fe_known + GAP_BYTES
        gaps = fe_known[gap]
        self.unlabelled = np.zeros(len(starts), bool)
        if len(gaps):
            # Entry points inside the gaps (targets of direct calls, jumps and LEAs) start
            # blocks of their own, so one routine's use does not decide its neighbours'.
            gaps = arrays.unique(np.concatenate([gaps, self._entries_in(gaps, nxt[gap])]))
            merged = arrays.unique(np.concatenate([starts, gaps]))
            new_ends = np.append(merged[1:], top).astype(np.uint64)
            at = np.searchsorted(merged, starts)
            new_ends[at] = np.minimum(new_ends[at], ends)
            self.unlabelled = np.isin(merged, gaps) & ~np.isin(merged, starts)
            starts, ends = merged, new_ends
        inside = _inside(self.lo, self.hi, starts)  # gaps after unwind ranges may lie outside
        self.starts = starts[inside]
        self.ends = ends[inside]
        self.unlabelled = self.unlabelled[inside]

    def _entries_in(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Addresses in [lo[i], hi[i]) that a call/jmp rel32 or a RIP-relative LEA anywhere
        in the code targets, found by a byte-pattern pass (no decoding): E8/E9 + rel32, and
        REX.W 8D ModRM(mod=00, rm=101) + disp32. A stray match only splits a block."""
        found = []
        for sec in self.exec_secs:
            pos = 0
            while pos < sec.size:
                want = min(CHUNK, sec.size - pos)
                b = np.frombuffer(
                    os.pread(self.fd, min(want + 8, sec.size - pos), sec.offset + pos), np.uint8
                )
                base = sec.addr + pos
                n = min(want, len(b) - 7)
                if n <= 0:
                    break

                def rel32(at: np.ndarray) -> np.ndarray:
                    v = (
                        b[at].astype(np.int64)
                        | b[at + 1].astype(np.int64) << 8
                        | b[at + 2].astype(np.int64) << 16
                        | b[at + 3].astype(np.int64) << 24
                    )
                    return (v ^ 0x80000000) - 0x80000000

                br = np.flatnonzero((b[:n] == 0xE8) | (b[:n] == 0xE9))
                lea = np.flatnonzero(
                    ((b[:n] & 0xFB) == 0x48)
                    & (b[1 : n + 1] == 0x8D)
                    & ((b[2 : n + 2] & 0xC7) == 0x05)
                )
                targets = np.concatenate(
                    [base + br + 5 + rel32(br + 1), base + lea + 7 + rel32(lea + 3)]
                )
                targets = targets[targets >= 0].astype(np.uint64)
                i = np.searchsorted(lo, targets, side="right").astype(np.int64) - 1
                inside = (i >= 0) & (targets < hi[np.clip(i, 0, None)])
                found.append(targets[inside])
                pos += want
        return np.concatenate(found) if found else np.zeros(0, np.uint64)

    def __len__(self) -> int:
        return len(self.starts)

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    # -- symbols
    def _symbols(self, name: str) -> tuple[np.ndarray, Section | None]:
        sec = self.section(name)
        if sec is None or sec.entsize != SYM_DT.itemsize or sec.link >= len(self.sections):
            return np.zeros(0, SYM_DT), None
        raw = os.pread(self.fd, sec.size - sec.size % SYM_DT.itemsize, sec.offset)
        return np.frombuffer(raw, SYM_DT), self.sections[sec.link]

    def _function_symbols(self, syms: np.ndarray) -> np.ndarray:
        kind = syms["info"] & 0xF  # STT_FUNC = 2, STT_GNU_IFUNC = 10
        syms = syms[((kind == 2) | (kind == 10)) & (syms["shndx"] != 0)]
        value = syms["value"]
        inside = np.zeros(len(syms), bool)
        for s in self.exec_secs:
            inside |= (value >= s.addr) & (value < s.addr + s.size)
        syms = syms[inside]
        return syms[np.argsort(syms["value"], kind="stable")]

    @cached_property
    def special(self) -> dict[str, np.ndarray]:
        """Defined symbols the rules look for: 'variables' (CPU-feature variables, among the
        data symbols: a name that ends with a verify.toml name, any prefix being a Rust crate's
        versioned copy such as ring_core_0_17_8_OPENSSL_ia32cap_P, or holds a `variables_in`
        one, a mangled Rust path) and 'pyinit' (PyInit_*, exported)."""
        r = rules()
        ends = tuple(r.check_variables)
        holds = tuple(r.check_variables_in)
        out: dict[str, list[np.ndarray]] = {"variables": [], "pyinit": []}
        for table, (syms, strtab) in zip((".symtab", ".dynsym"), self.tables, strict=True):
            if strtab is None or not len(syms):
                continue
            defined = syms["shndx"] != 0
            # NOTYPE/OBJECT/COMMON/TLS symbols in a section the program writes at run time
            # (.data, .bss, .tbss ...; not .data.rel.ro, which holds vtables and typeinfo)
            data = syms[
                defined
                & np.isin(syms["info"] & 0xF, (0, 1, 5, 6))
                & np.isin(syms["shndx"], self._runtime_writable)
                & (syms["size"] <= 1 << 16)
            ]
            names = strings_at(self.fd, strtab, data["name"])
            hit = [o for o, t in names.items() if t.endswith(ends) or any(h in t for h in holds)]
            if hit:
                out["variables"].append(data[np.isin(data["name"], hit)])
            if table == ".dynsym":
                funcs = syms[defined & ((syms["info"] & 0xF) == 2)]  # exported functions
                fnames = strings_at(self.fd, strtab, funcs["name"])
                init = [o for o, t in fnames.items() if t.startswith("PyInit_")]
                if init:
                    out["pyinit"].append(funcs[np.isin(funcs["name"], init)])
        return {k: np.concatenate(v) if v else np.zeros(0, SYM_DT) for k, v in out.items()}

    @cached_property
    def _runtime_writable(self) -> list[int]:
        """Indexes of the sections written at run time, where CPU-feature flags can live."""
        return [
            s.index
            for s in self.sections
            if s.flags & 0x3 == 0x3 and not s.name.startswith((".data.rel.ro", ".got"))
        ]

    def imported_variable_slots(self) -> list[tuple[int, int]]:
        """GOT slots (address ranges) holding the address of a CPU-feature variable defined in
        another library (libgfortran reads libgcc_s's __cpu_model through its GOT)."""
        syms, strtab = self.tables[1]
        if strtab is None or not len(syms):
            return []
        r = rules()
        undefined = np.flatnonzero(syms["shndx"] == 0)
        names = strings_at(self.fd, strtab, syms["name"][undefined])
        hit = {
            o
            for o, t in names.items()
            if t.endswith(tuple(r.check_variables)) or any(h in t for h in r.check_variables_in)
        }
        wanted = undefined[np.isin(syms["name"][undefined], sorted(hit))]
        if not len(wanted):
            return []
        out = []
        for sec in self.sections:
            if sec.type != _SHT_RELA or not sec.flags & _SHF_ALLOC:
                continue
            rel = np.frombuffer(
                os.pread(self.fd, sec.size - sec.size % _RELA_DT.itemsize, sec.offset), _RELA_DT
            )
            hit_rel = ((rel["info"] & 0xFFFFFFFF) == _R_GLOB_DAT) & np.isin(
                (rel["info"] >> 32).astype(np.int64), wanted
            )
            out += [(int(w), int(w) + 8) for w in rel["offset"][hit_rel]]
        return out

    def names(self, fns: np.ndarray) -> Iterable[tuple[int, str]]:
        """(function, name) for every symbol at each function's start (aliases included);
        from .symtab, which holds the exported ones too, else from .dynsym."""
        addrs = self.starts[fns]
        for syms, strtab in zip(self.fsyms, (t[1] for t in self.tables), strict=True):
            if strtab is None or not len(syms):
                continue
            lo = np.searchsorted(syms["value"], addrs, side="left")
            cnt = np.searchsorted(syms["value"], addrs, side="right") - lo
            if not cnt.sum():
                continue
            owner = np.repeat(fns, cnt)
            name_off = syms["name"][arrays.spans(lo, cnt)]
            got = strings_at(self.fd, strtab, name_off)
            for fn, off in zip(owner.tolist(), name_off.tolist(), strict=True):
                if got.get(off):
                    yield fn, got[off]
            return  # .symtab had them

    # -- addresses
    def of(self, addrs: np.ndarray) -> np.ndarray:
        """Function containing each address; -1 outside function bodies."""
        if not len(self.starts):
            return np.full(len(addrs), -1, np.int64)
        i = np.searchsorted(self.starts, addrs, side="right").astype(np.int64) - 1
        return np.where((i >= 0) & (addrs < self.ends[np.clip(i, 0, None)]), i, -1)

    def exact(self, addrs: np.ndarray) -> np.ndarray:
        """Function starting exactly at each address, else -1."""
        if not len(self.starts):
            return np.full(len(addrs), -1, np.int64)
        i = np.searchsorted(self.starts, addrs).astype(np.int64)
        ic = np.clip(i, 0, max(len(self.starts) - 1, 0))
        return np.where((i < len(self.starts)) & (self.starts[ic] == addrs), ic, -1)

    def in_code(self, addrs: np.ndarray) -> np.ndarray:
        return _inside(self.lo, self.hi, addrs)

    def in_data(self, addrs: np.ndarray) -> np.ndarray:
        """Whether each address is in initialized writable data (.data, .data.rel.ro ...)."""
        return _inside(self.data_lo, self.data_hi, addrs)

    def code_bytes(self, fn: int) -> tuple[int, bytes]:
        start, end = int(self.starts[fn]), int(self.ends[fn])
        sec = next(s for s in self.exec_secs if s.addr <= start < s.addr + s.size)
        end = min(end, sec.addr + sec.size)
        return start, os.pread(self.fd, end - start, sec.offset + start - sec.addr)

    # -- other ELF facts
    @cached_property
    def plt(self) -> tuple[np.ndarray, np.ndarray]:
        """(PLT entry address, function it reaches) for functions defined in this library:
        with -fPIC, calls to the library's own exported functions go through its PLT."""
        rela = self.section(".rela.plt")
        sec = self.section(".plt.sec") or self.section(".plt")
        if rela is None or sec is None or not len(self.dynsym):
            return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
        rel = np.frombuffer(
            os.pread(self.fd, rela.size - rela.size % _RELA_DT.itemsize, rela.offset), _RELA_DT
        )
        first = 0 if sec.name == ".plt.sec" else 1  # .plt starts with a 16-byte header
        entries = sec.addr + 16 * (first + np.arange(len(rel), dtype=np.uint64))
        idx = np.clip((rel["info"] >> 32).astype(np.int64), 0, len(self.dynsym) - 1)
        sym = self.dynsym[idx]
        ok = (
            ((rel["info"] & 0xFFFFFFFF) == _R_JUMP_SLOT)
            & (sym["shndx"] != 0)
            & (entries < sec.addr + sec.size)
        )
        return entries[ok], sym["value"][ok]

    def through_plt(self, targets: np.ndarray) -> np.ndarray:
        """Targets with PLT entries replaced by the local function they reach."""
        entries, reach = self.plt
        if not len(entries):
            return targets
        i = np.clip(np.searchsorted(entries, targets), 0, len(entries) - 1)
        return np.where(entries[i] == targets, reach[i], targets)

    @cached_property
    def table_slots(self) -> np.ndarray:
        """Sorted addresses in initialized data that hold a pointer into code (function
        tables, vtables): where rule R2's dispatch tables can be."""
        where, target = self.relocations()
        keep = self.in_code(target) & self.in_data(where)
        return arrays.unique(where[keep])

    def relocations(self) -> tuple[np.ndarray, np.ndarray]:
        """(where, target) of every dynamic relocation that stores an address in data."""
        return self._relocations

    @cached_property
    def _relocations(self) -> tuple[np.ndarray, np.ndarray]:
        wheres, targets = [], []
        for sec in self.sections:
            if sec.type != _SHT_RELA or not sec.flags & _SHF_ALLOC:
                continue
            raw = os.pread(self.fd, sec.size - sec.size % _RELA_DT.itemsize, sec.offset)
            rel = np.frombuffer(raw, _RELA_DT)
            kind = rel["info"] & 0xFFFFFFFF
            local = (kind == _R_RELATIVE) | (kind == _R_IRELATIVE)
            wheres.append(rel["offset"][local])
            targets.append(rel["addend"][local].astype(np.uint64))
            # R_X86_64_64 in data, and GOT entries (GLOB_DAT) of functions defined here: a
            # Rust or -fno-plt caller calls through the GOT entry (call [rip+sym@GOTPCREL])
            absolute = (kind == _R_X86_64_64) | (kind == _R_GLOB_DAT)
            if absolute.any() and len(self.dynsym):
                idx = np.clip(
                    (rel["info"][absolute] >> 32).astype(np.int64), 0, len(self.dynsym) - 1
                )
                wheres.append(rel["offset"][absolute])
                targets.append(
                    self.dynsym["value"][idx] + rel["addend"][absolute].astype(np.uint64)
                )
        if not wheres:
            return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
        return np.concatenate(wheres), np.concatenate(targets)

    def pointer_slots(self, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Data slots (GOT entries, pointer variables) that relocation fills with an address
        inside one of the ranges: code that loads such a slot and dereferences it reads the
        range (a Rust cdylib reaches std_detect's cache through its GOT entry)."""
        if not ranges:
            return []
        wheres, targets = [self._relocations[0]], [self._relocations[1]]
        for sec in self.sections:
            if sec.type != _SHT_RELA or not sec.flags & _SHF_ALLOC or not len(self.dynsym):
                continue
            rel = np.frombuffer(
                os.pread(self.fd, sec.size - sec.size % _RELA_DT.itemsize, sec.offset), _RELA_DT
            )
            glob = (rel["info"] & 0xFFFFFFFF) == _R_GLOB_DAT
            idx = np.clip((rel["info"][glob] >> 32).astype(np.int64), 0, len(self.dynsym) - 1)
            defined = self.dynsym["shndx"][idx] != 0
            wheres.append(rel["offset"][glob][defined])
            targets.append(self.dynsym["value"][idx][defined])
        where, target = np.concatenate(wheres), np.concatenate(targets)
        hit = np.zeros(len(target), bool)
        for lo, hi in ranges:
            hit |= (target >= np.uint64(lo)) & (target < np.uint64(hi))
        return [(int(w), int(w) + 8) for w in where[hit]]

    def init_targets(self, rel_where: np.ndarray, rel_target: np.ndarray) -> np.ndarray:
        """Constructor addresses in .init_array/.preinit_array (relocated or in place)."""
        out = [np.zeros(0, np.uint64)]
        for name in (".init_array", ".preinit_array"):
            sec = self.section(name)
            if sec is None or not sec.size or sec.type == _SHT_NOBITS:
                continue
            out.append(rel_target[(rel_where >= sec.addr) & (rel_where < sec.addr + sec.size)])
            raw = np.frombuffer(os.pread(self.fd, sec.size - sec.size % 8, sec.offset), "<u8")
            out.append(raw[(raw != 0) & (raw != np.uint64(2**64 - 1))])
        init = self.section(".init")
        if init is not None:
            out.append(np.array([init.addr], np.uint64))
        return np.concatenate(out).astype(np.uint64)

    def glibc_needed(self) -> str | None:
        best = None
        for hdr in self.sections:
            if hdr.type != _SHT_VERNEED:
                continue
            for _verneed, auxes in self.elf.get_section(hdr.index).iter_versions():
                for aux in auxes:
                    m = re.fullmatch(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", aux.name)
                    if m:
                        v = (int(m[1]), int(m[2]))
                        best = max(best or v, v)
        return f"{best[0]}.{best[1]}" if best else None

    def isa_needed(self) -> str | None:
        """The x86 ISA level GNU ld records with -mneeded / -z x86-64-vN (glibc enforces it):
        GNU_PROPERTY_X86_ISA_1_NEEDED in the NT_GNU_PROPERTY_TYPE_0 note."""
        hdr = self.section(".note.gnu.property")
        if hdr is None or hdr.type == _SHT_NOBITS:
            return None
        raw = os.pread(self.fd, min(hdr.size, 4096), hdr.offset)
        pos = 0
        while pos + 12 <= len(raw):
            namesz, descsz, kind = struct.unpack_from("<III", raw, pos)
            name = raw[pos + 12 : pos + 12 + namesz]
            start = pos + 12 + (namesz + 3) // 4 * 4  # name 4-aligned, desc 8-aligned
            desc = raw[start : start + descsz]
            pos = start + (descsz + 7) // 8 * 8
            if kind != _NT_GNU_PROPERTY_TYPE_0 or name != b"GNU\0":
                continue
            at = 0
            while at + 8 <= len(desc):
                pr_type, size = struct.unpack_from("<II", desc, at)
                data = desc[at + 8 : at + 8 + size]
                at += 8 + (size + 7) // 8 * 8
                if pr_type == _ISA_1_NEEDED and len(data) >= 4:
                    bits = int.from_bytes(data[:4], "little")
                    levels = [i + 1 for i in range(4) if bits >> i & 1]
                    return isa.level_name(max(levels)) if levels else None
        return None
        for note in self.elf.get_section(hdr.index).iter_notes():
            for prop in note.get("n_desc") or ():
                if (
                    not isinstance(prop, dict)
                    or prop.get("pr_type") != "GNU_PROPERTY_X86_ISA_1_NEEDED"
                ):
                    continue
                data = prop.get("pr_data")
                bits = int.from_bytes(data, "little") if isinstance(data, bytes) else int(data)
                levels = [i + 1 for i in range(4) if bits >> i & 1]
                return isa.level_name(max(levels)) if levels else None
        return None


def open_file(path: Path):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})")
