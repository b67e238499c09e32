"""One open ELF library: its function table (starts from symbols, unwind entries and the
unlabelled code between them; ends from symbol sizes and unwind ranges), symbols and names,
address lookups, the PLT, relocated pointers in data and load-time entry points."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tfforge.elfscan import arrays
from tfforge.elfscan.arrays import Ints
from tfforge.elfscan.rules import rules
from tfforge.elfscan.tables import (
    CHUNK,
    GAP_BYTES,
    R_GLOB_DAT,
    R_IRELATIVE,
    R_JUMP_SLOT,
    R_RELATIVE,
    R_X86_64_64,
    RELA_DT,
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHT_NOBITS,
    SHT_PROGBITS,
    SHT_RELA,
    SYM_DT,
    Section,
    eh_frame_table,
    exec_sections,
    exec_segments,
    fde_ends,
    glibc_needed,
    inside,
    isa_level_note,
    le32,
    offsets_matching,
    open_elf,
    strings_at,
)


def inside_any(secs: list[Section], value: np.ndarray) -> np.ndarray:
    """Whether each address lies in one of the sections (which may overlap)."""
    ranges = sorted((s.addr, s.addr + s.size) for s in secs)
    if all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:], strict=False)):
        lo = np.array([r[0] for r in ranges], np.uint64)
        return inside(lo, np.array([r[1] for r in ranges], np.uint64), value)
    held = np.zeros(len(value), bool)
    for lo_, hi_ in ranges:
        held |= (value >= lo_) & (value < hi_)
    return held


class Library:
    """One open ELF library: sections, symbol tables and the function table."""

    def __init__(self, path: Path, f: BinaryIO):
        self.path = path
        self.fd = f.fileno()
        self.elf, self.sections = open_elf(path, f)
        self.exec_secs = exec_sections(self.sections)
        self.tables = [self._symbols(".symtab"), self._symbols(".dynsym")]
        self.dynsym = self.tables[1][0]
        self.undescribed = self._undescribed_code()
        self.exec_secs = sorted(self.exec_secs + self.undescribed, key=lambda s: s.addr)
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
        starts = starts[inside(self.lo, self.hi, starts)]  # unwind entries may point anywhere
        self.code_lo = self.lo[0] if len(self.lo) else np.uint64(0)
        self.code_hi = self.hi[-1] if len(self.hi) else np.uint64(0)
        data = [
            s
            for s in self.sections
            if s.flags & 0x3 == 0x3
            and s.type == SHT_PROGBITS
            and s.addr
            and not s.flags & SHF_EXECINSTR
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
        held = inside(self.lo, self.hi, starts)  # gaps after unwind ranges may lie outside
        self.starts = starts[held]
        self.ends = ends[held]
        self.unlabelled = self.unlabelled[held]

    def _undescribed_code(self) -> list[Section]:
        """Stretches of executable segments that no executable section describes but where
        code is entered (a function symbol, a constructor, the entry point): the loader maps
        them executable whatever the section headers say, so they are scanned like .text.
        Stretches nothing enters (leftovers of patchelf, .rodata in older layouts) are not."""
        segments = exec_segments(self.path, self.fd, self.elf, os.fstat(self.fd).st_size)
        if not segments:
            return []
        entries = [np.array([int(self.elf["e_entry"])], np.uint64)]
        for syms, _ in self.tables:
            kind = syms["info"] & 0xF  # STT_FUNC = 2, STT_GNU_IFUNC = 10
            entries.append(syms["value"][((kind == 2) | (kind == 10)) & (syms["shndx"] != 0)])
        entries.append(self.init_targets(*self._relocations))
        entered = arrays.unique(np.concatenate(entries).astype(np.uint64))
        entered = entered[entered != 0]  # e_entry 0: a library without an entry point
        described = sorted((s.addr, s.addr + s.size) for s in self.exec_secs)
        out = []
        for off, end, addr in segments:
            at, top = addr, addr + (end - off)
            for lo, hi in [*described, (top, top)]:
                if hi <= at or lo > top:
                    continue
                if lo > at and ((entered >= at) & (entered < lo)).any():
                    out.append(
                        Section(
                            "(code no section describes)",
                            off + (at - addr),
                            lo - at,
                            at,
                            SHT_PROGBITS,
                            SHF_ALLOC | SHF_EXECINSTR,
                        )
                    )
                at = max(at, hi)
        return out

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

                br = np.flatnonzero((b[:n] & 0xFE) == 0xE8)  # E8 or E9
                lea = np.flatnonzero(b[1 : n + 1] == 0x8D)  # the rare opcode byte first
                lea = lea[((b[lea] & 0xFB) == 0x48) & ((b[lea + 2] & 0xC7) == 0x05)]
                targets = np.concatenate(
                    [base + br + 5 + le32(b, br + 1), base + lea + 7 + le32(b, lea + 3)]
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
        at = np.flatnonzero(((kind == 2) | (kind == 10)) & (syms["shndx"] != 0))
        value = syms["value"][at]
        held = inside_any(self.exec_secs, value)
        at, value = at[held], value[held]
        # One copy of the records, in address order (stable: equal addresses keep theirs).
        ordered: np.ndarray = syms[at[arrays.stable_order(value)]]
        return ordered

    @cached_property
    def special(self) -> dict[str, np.ndarray]:
        """Defined symbols the rules look for: 'variables' (CPU-feature variables, among the
        data symbols: a name that ends with a verify.toml name, any prefix being a Rust crate's
        versioned copy such as ring_core_0_17_8_OPENSSL_ia32cap_P, or holds a `variables_in`
        one, a mangled Rust path) and 'pyinit' (PyInit_*, exported)."""
        r = rules()
        out: dict[str, list[np.ndarray]] = {"variables": [], "pyinit": []}
        for table, (syms, strtab) in zip((".symtab", ".dynsym"), self.tables, strict=True):
            if strtab is None or not len(syms):
                continue
            defined = syms["shndx"] != 0
            # NOTYPE/OBJECT/COMMON/TLS symbols in a section the program writes at run time
            # (.data, .bss, .tbss ...; not .data.rel.ro, which holds vtables and typeinfo);
            # .symtab holds .dynsym's defined symbols too.
            if table == ".symtab" or not len(self.tables[0][0]):
                data = syms[
                    defined
                    & np.isin(syms["info"] & 0xF, (0, 1, 5, 6))
                    & np.isin(syms["shndx"], self._runtime_writable)
                    & (syms["size"] <= 1 << 16)
                ]
                hit = offsets_matching(
                    self.fd,
                    strtab,
                    data["name"],
                    ends=r.check_variables,
                    holds=r.check_variables_in,
                )
                if len(hit):
                    out["variables"].append(data[np.isin(data["name"], hit)])
            if table == ".dynsym":
                funcs = syms[defined & ((syms["info"] & 0xF) == 2)]  # exported functions
                init = offsets_matching(self.fd, strtab, funcs["name"], begins=("PyInit_",))
                if len(init):
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
        hit = offsets_matching(
            self.fd,
            strtab,
            syms["name"][undefined],
            ends=r.check_variables,
            holds=r.check_variables_in,
        )
        wanted = undefined[np.isin(syms["name"][undefined], hit)]
        if not len(wanted):
            return []
        out = []
        for rel in self._rela:
            hit_rel = ((rel["info"] & 0xFFFFFFFF) == R_GLOB_DAT) & np.isin(
                (rel["info"] >> 32).astype(np.int64), wanted
            )
            out += [(int(w), int(w) + 8) for w in rel["offset"][hit_rel]]
        return out

    def names(
        self,
        fns: np.ndarray,
        keep: Callable[[bytes, Ints, Ints], np.ndarray] | None = None,
    ) -> Iterable[tuple[int, str]]:
        """(function, name) for every symbol at each function's start (aliases included);
        from .symtab, which holds the exported ones too, else from .dynsym. With `keep`,
        only names it passes (see tables.strings_at)."""
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
            got = strings_at(self.fd, strtab, name_off, keep)
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
        return inside(self.lo, self.hi, addrs)

    def in_data(self, addrs: np.ndarray) -> np.ndarray:
        """Whether each address is in initialized writable data (.data, .data.rel.ro ...)."""
        return inside(self.data_lo, self.data_hi, addrs)

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
        base, reach, local = self._plt_grid
        at = np.flatnonzero(local)
        return base + 16 * at.astype(np.uint64), reach[at]

    @cached_property
    def _plt_grid(self) -> tuple[np.uint64, np.ndarray, np.ndarray]:
        """(address of the first entry, per 16-byte entry: the function it reaches, whether it
        reaches one defined here): entries lie on a grid, so a target's entry is arithmetic."""
        none = (np.uint64(0), np.zeros(0, np.uint64), np.zeros(0, bool))
        rela = self.section(".rela.plt")
        sec = self.section(".plt.sec") or self.section(".plt")
        if rela is None or sec is None or not len(self.dynsym):
            return none
        rel = np.frombuffer(
            os.pread(self.fd, rela.size - rela.size % RELA_DT.itemsize, rela.offset), RELA_DT
        )
        first = 0 if sec.name == ".plt.sec" else 1  # .plt starts with a 16-byte header
        base = np.uint64(sec.addr + 16 * first)
        entries = base + 16 * np.arange(len(rel), dtype=np.uint64)
        idx = np.clip((rel["info"] >> 32).astype(np.int64), 0, len(self.dynsym) - 1)
        sym = self.dynsym[idx]
        local = (
            ((rel["info"] & 0xFFFFFFFF) == R_JUMP_SLOT)
            & (sym["shndx"] != 0)
            & (entries < sec.addr + sec.size)
        )
        return base, sym["value"].astype(np.uint64), local

    def through_plt(self, targets: np.ndarray) -> np.ndarray:
        """Targets with PLT entries replaced by the local function they reach."""
        base, reach, local = self._plt_grid
        if not local.any():
            return targets
        off = targets - base  # wraps around below the first entry: out of range
        k = off >> np.uint64(4)
        on_grid = np.flatnonzero(((off & np.uint64(15)) == 0) & (k < np.uint64(len(reach))))
        entry = k[on_grid].astype(np.int64)
        hit = local[entry]
        out = targets.copy()
        out[on_grid[hit]] = reach[entry[hit]]
        return out

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
    def _rela(self) -> list[np.ndarray]:
        """The entries of each allocated RELA section (.rela.dyn, .rela.plt), read once."""
        return [
            np.frombuffer(
                os.pread(self.fd, sec.size - sec.size % RELA_DT.itemsize, sec.offset), RELA_DT
            )
            for sec in self.sections
            if sec.type == SHT_RELA and sec.flags & SHF_ALLOC
        ]

    @cached_property
    def _relocations(self) -> tuple[np.ndarray, np.ndarray]:
        wheres, targets = [], []
        for rel in self._rela:
            kind = rel["info"] & 0xFFFFFFFF
            local = (kind == R_RELATIVE) | (kind == R_IRELATIVE)
            wheres.append(rel["offset"][local])
            targets.append(rel["addend"][local].astype(np.uint64))
            # R_X86_64_64 in data, and GOT entries (GLOB_DAT) of functions defined here: a
            # Rust or -fno-plt caller calls through the GOT entry (call [rip+sym@GOTPCREL])
            absolute = (kind == R_X86_64_64) | (kind == R_GLOB_DAT)
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
        for rel in self._rela if len(self.dynsym) else []:
            glob = (rel["info"] & 0xFFFFFFFF) == R_GLOB_DAT
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
            if sec is None or not sec.size or sec.type == SHT_NOBITS:
                continue
            out.append(rel_target[(rel_where >= sec.addr) & (rel_where < sec.addr + sec.size)])
            raw = np.frombuffer(os.pread(self.fd, sec.size - sec.size % 8, sec.offset), "<u8")
            out.append(raw[(raw != 0) & (raw != np.uint64(2**64 - 1))])
        init = self.section(".init")
        if init is not None:
            out.append(np.array([init.addr], np.uint64))
        return np.concatenate(out).astype(np.uint64)

    def glibc_needed(self) -> str | None:
        return glibc_needed(self.path, self.fd, self.sections)

    def isa_needed(self) -> str | None:
        return isa_level_note(self.fd, self.sections)
