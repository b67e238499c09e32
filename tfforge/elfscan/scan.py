"""Streaming x86 ISA scan of ELF shared objects: which extensions the machine code uses, in which
functions, and whether each one is required to run (baseline) or used only behind run-time CPU
checks (dispatched).

How it reads: iced-x86 decodes only SHF_EXECINSTR sections, read with pread in bounded chunks.
The decode loop looks each instruction's iced Code up in one flat table and keeps only the few
it needs later (extension instructions, direct calls and jumps, RIP-relative LEAs) as packed
integers; after each chunk numpy attributes those to functions (starts from the symbol tables
and the .eh_frame_hdr search table, ends from symbol sizes) and the chunk is dropped. No list of
decoded instructions ever exists.

How it classes: the rules R1-R4 in RULES, applied per function, then per feature.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import time
import tomllib
from array import array
from dataclasses import asdict, dataclass
from functools import cache, cached_property
from tfforge import resources
from pathlib import Path
from typing import Callable, Iterable

import iced_x86
import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from tfforge.host import isa
from tfforge.errors import ConfigError

RULES = (
    "R1 name: functions whose symbol matches a dispatch pattern (verify.toml) or the library's "
    "allow-list (verify_allow.toml) are dispatched kernels",
    "R2 guard: functions that are not exported, whose address is not stored in data, and whose "
    "every reference (call, tail jump, LEA) comes from CPU-check code (cpuid/xgetbv, reads of "
    "__cpu_model & co., or a direct caller of those) or from dispatched code, are dispatched",
    "R3 load: features in code reachable by direct calls from .init/.init_array/PyInit_* "
    "(not through dispatched code) are baseline: it runs when the library loads",
    "R4 rest: every other function is ordinary; a feature in any ordinary function is baseline "
    "(no frequency threshold: where code lives decides, not how common it is)",
    "ignored: instructions in verify.toml [ignore] (tzcnt, endbr64, multi-byte nop, prefetchw, "
    "xgetbv ...) never make a requirement; x86-64 level-1 features (SSE, SSE2) are implicit",
)

CHUNK = 8 << 20          # code bytes per pread; bounds the per-chunk records
_SHIFT = 13              # a kept instruction is packed as address << 13 | iced Code (< 8192)
_FEATURE, _CALL, _JMP, _LEA = 1, 2, 3, 4
_SYM_DT = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"),
                    ("value", "<u8"), ("size", "<u8")])
_RELA_DT = np.dtype([("offset", "<u8"), ("info", "<u8"), ("addend", "<i8")])
_R_X86_64_64, _R_JUMP_SLOT, _R_RELATIVE, _R_IRELATIVE = 1, 7, 8, 37
EXAMPLES = 3


# ---- results -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureEvidence:
    """Why one feature was classed baseline or dispatched in one library."""

    name: str                        # canonical feature name (tfforge.isa), or iced:NAME
    cls: str                         # "baseline" | "dispatched"
    instructions: int                # instructions using it (in function bodies)
    ordinary_instructions: int       # of them in ordinary (incl. load-time) functions
    functions: int                   # functions using it
    ordinary: int                    # ordinary functions (R3 + R4) using it
    load_time: int                   # of those, reachable at load (R3)
    named: int                       # dispatch-named / allow-listed functions (R1)
    guarded: int                     # functions reached only from CPU-check code (R2)
    examples: tuple[str, ...]        # function names: ordinary ones (most uses first) if any
    mnemonics: tuple[tuple[str, int], ...]  # its most frequent instructions
    reason: str


@dataclass(frozen=True)
class LibraryScan:
    """The ISA facts of one ELF library: `.baseline`, `.dispatched` and per-feature evidence."""

    path: str
    size: int
    code_bytes: int
    instructions: int
    functions: int
    symbols: str                     # where function names came from
    baseline: frozenset[str]
    dispatched: frozenset[str]
    features: tuple[FeatureEvidence, ...] = ()
    ignored: tuple[tuple[str, int], ...] = ()     # non-requirement mnemonics and counts
    cpu_checks: int = 0              # CPU-check functions found
    roots: int = 0                   # load-time entry points
    load_reachable: int = 0          # functions reachable from them
    pattern_hits: tuple[tuple[str, int], ...] = ()  # dispatch pattern -> feature functions
    glibc: str | None = None         # highest GLIBC_x.y symbol version needed
    isa_needed: str | None = None    # x86 ISA level in .note.gnu.property, if recorded
    seconds: float = 0.0
    phases: tuple[tuple[str, float], ...] = ()

    def feature(self, name: str) -> FeatureEvidence | None:
        return next((f for f in self.features if f.name == name), None)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["baseline"] = sorted(self.baseline, key=isa.sort_key)
        d["dispatched"] = sorted(self.dispatched, key=isa.sort_key)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LibraryScan":
        feats = tuple(FeatureEvidence(**{**f, "examples": tuple(f["examples"]),
                                         "mnemonics": tuple(map(tuple, f["mnemonics"]))})
                      for f in d["features"])
        return cls(**{**d, "baseline": frozenset(d["baseline"]),
                      "dispatched": frozenset(d["dispatched"]), "features": feats,
                      "ignored": tuple(map(tuple, d["ignored"])),
                      "pattern_hits": tuple(map(tuple, d["pattern_hits"])),
                      "phases": tuple(map(tuple, d["phases"]))})


# ---- rules (data files) --------------------------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    """A dispatch-name pattern: generic ones (verify.toml) match the identifiers of a symbol,
    allow-list ones (verify_allow.toml) the raw symbol name."""

    source: str
    regex: re.Pattern
    why: str
    libraries: tuple[str, ...] = ("*",)

    def applies(self, lib_name: str) -> bool:
        return any(fnmatch.fnmatch(lib_name, g) for g in self.libraries)

    @property
    def label(self) -> str:
        return f"{self.source}: {self.regex.pattern}"


@dataclass(frozen=True)
class Rules:
    implicit: frozenset[str]
    ignore: tuple[tuple[str, str], ...]
    check_instructions: frozenset[str]
    check_variables: tuple[str, ...]
    check_functions: tuple[str, ...]
    generic: tuple[Pattern, ...]
    allow: tuple[Pattern, ...]


def _read_toml(name: str) -> dict:
    text = resources.read_text(resources.DATA, name)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"tfforge/data/{name}: not valid TOML ({exc}); fix the file")


def _compile(source: str, entry: dict) -> Pattern:
    try:
        return Pattern(source, re.compile(entry["pattern"]), entry["why"],
                       tuple(entry.get("libraries", ["*"])))
    except KeyError as exc:
        raise ConfigError(f"tfforge/data/{source}: an entry lacks {exc}; each needs "
                          "pattern and why")
    except re.error as exc:
        raise ConfigError(f"tfforge/data/{source}: bad pattern {entry['pattern']!r} ({exc})")


@cache
def rules() -> Rules:
    """verify.toml + verify_allow.toml, validated once."""
    base = _read_toml("verify.toml")
    allow = _read_toml("verify_allow.toml")
    checks = base.get("cpu_checks", {})
    known = _mnemonics()
    bad = [m for m in (*base.get("ignore", {}), *checks.get("instructions", ()))
           if m not in known.values()]
    if bad:
        raise ConfigError(f"tfforge/data/verify.toml: unknown mnemonic(s) {', '.join(bad)}; "
                          "use iced-x86 mnemonic names in lower case")
    return Rules(frozenset(base.get("implicit", ())), tuple(base.get("ignore", {}).items()),
                 frozenset(checks.get("instructions", ())),
                 tuple(checks.get("variables", ())), tuple(checks.get("functions", ())),
                 tuple(_compile("verify.toml", e) for e in base.get("dispatch", [])),
                 tuple(_compile("verify_allow.toml", e) for e in allow.get("allow", [])))


@cache
def _mnemonics() -> dict[int, str]:
    return {v: k.lower() for k, v in vars(iced_x86.Mnemonic).items()
            if not k.startswith("_") and isinstance(v, int)}


def feature_name(cpuid_feature: str) -> str:
    """Canonical name of an iced CpuidFeature; 'iced:NAME' when the vocabulary lacks it."""
    return isa.lookup(cpuid_feature) or f"iced:{cpuid_feature}"


@dataclass(frozen=True)
class CodeTable:
    """Per iced Code: requirement features, what the decode loop keeps, mnemonic."""

    features: tuple[tuple[str, ...], ...]
    hot: list[int]
    mnemonic: tuple[str, ...]
    ignored: frozenset[int]          # codes whose features are not requirements
    checks: frozenset[int]           # cpuid, xgetbv


@cache
def code_table() -> CodeTable:
    """Built once: a Code's CPUID features depend only on the Code, never on its operands."""
    r = rules()
    ignore = dict(r.ignore)
    cf_names = {v: k for k, v in vars(iced_x86.CpuidFeature).items()
                if not k.startswith("_") and isinstance(v, int)}
    codes = [v for k, v in vars(iced_x86.Code).items()
             if not k.startswith("_") and isinstance(v, int)]
    n = max(codes) + 1
    feats: list[tuple[str, ...]] = [()] * n
    mnem = [""] * n
    hot = [0] * n
    ignored, checks = set(), set()
    ins = iced_x86.Instruction()
    for code in codes:
        ins.code = code
        mn = _mnemonics().get(iced_x86.OpCodeInfo(code).mnemonic, "?")
        mnem[code] = mn
        names = []
        for f in ins.cpuid_features():
            raw = cf_names[f]
            name = feature_name(raw)
            level = isa.features()[name].level if name in isa.features() else None
            if raw not in r.implicit and level != 1:
                names.append(name)
        if mn in r.check_instructions:
            checks.add(code)
        if mn in ignore and names:
            ignored.add(code)
            names = []
        feats[code] = tuple(dict.fromkeys(names))
        if names or code in checks or code in ignored:
            hot[code] = _FEATURE
    hot[iced_x86.Code.CALL_REL32_64] = _CALL
    hot[iced_x86.Code.JMP_REL32_64] = _JMP
    hot[iced_x86.Code.LEA_R64_M] = _LEA
    return CodeTable(tuple(feats), hot, tuple(mnem), frozenset(ignored), frozenset(checks))


# ---- names ---------------------------------------------------------------------------------
_SOURCE_NAME = re.compile(r"(\d+)([A-Za-z_])")
# Cheap pre-filter: generic patterns only run on names containing one of these (lower case)
# or a '.' (multi-versioning clone suffixes). Every generic pattern needs one of them.
_ISA_HINTS = ("avx", "sse", "fma", "f16c", "bmi", "amx", ".")


# An unrolled `or` of `in` tests: 3x faster than any(...) or a regex on long mangled names.
_has_isa_hint = eval("lambda low: " + " or ".join(f"{h!r} in low" for h in _ISA_HINTS))


def name_words(symbol: str) -> str:
    """The identifiers of an Itanium-mangled name, space-separated (plain names unchanged).

    `_ZN3ynn22min_max_bf16_4x16_avx2Emmm` -> `ynn min_max_bf16_4x16_avx2`: in the mangled form
    the identifier runs into type codes, so word-boundary patterns could not see its end.
    A clone suffix (`.avx2`, `.arch_x86_64_v3`) is kept.
    """
    if not symbol.startswith("_Z"):
        return symbol
    base, dot, clone = symbol.partition(".")
    words, pos = [], 2
    while m := _SOURCE_NAME.search(base, pos):
        start = m.start(2)
        end = start + int(m[1])
        words.append(base[start:end])
        pos = max(end, start + 1)
    return " ".join(words) + (f" .{clone}" if dot else "")


class Matcher:
    """Dispatch-name matching for one library: which pattern (if any) a symbol matches.

    Runs on hundreds of thousands of long mangled names, so: allow-list patterns anchored with
    ^ are tried together at position 0 only, other allow-list patterns one by one (each starts
    with a literal, which re searches fast), and generic patterns only on names that contain
    an ISA word at all.
    """

    def __init__(self, lib_name: str):
        r = rules()
        self.generic = [p for p in r.generic if p.applies(lib_name)]
        allow = [p for p in r.allow if p.applies(lib_name)]
        self.anchored = [p for p in allow if p.regex.pattern.startswith("^")]
        # (literal the pattern starts with, pattern): `literal in name` is a cheap pre-test.
        self.floating = [(re.match(r"[\w]*", p.regex.pattern)[0], p) for p in allow
                         if not p.regex.pattern.startswith("^")]
        self._anchored_any = (re.compile("|".join(f"(?:{p.regex.pattern})"
                                                  for p in self.anchored))
                              if self.anchored else None)

    def match(self, symbol: str) -> Pattern | None:
        if self._anchored_any is not None and self._anchored_any.match(symbol):
            return next(p for p in self.anchored if p.regex.match(symbol))
        for literal, p in self.floating:
            if literal in symbol and p.regex.search(symbol):
                return p
        if _has_isa_hint(symbol.lower()):
            words = name_words(symbol)
            return next((p for p in self.generic if p.regex.search(words)), None)
        return None


def demangle(names: Iterable[str]) -> dict[str, str]:
    """Readable C++ names via c++filt (binutils), one process for the batch."""
    names = [n for n in dict.fromkeys(names) if n]
    tool = shutil.which("c++filt")
    if not names or tool is None:
        return {n: n for n in names}
    proc = subprocess.run([tool], input="\n".join(names) + "\n", capture_output=True,
                          text=True)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != len(names):
        return {n: n for n in names}
    return dict(zip(names, lines))


# ---- ELF reading ---------------------------------------------------------------------------
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


_SHDR_DT = np.dtype([("name", "<u4"), ("type", "<u4"), ("flags", "<u8"), ("addr", "<u8"),
                     ("offset", "<u8"), ("size", "<u8"), ("link", "<u4"), ("info", "<u4"),
                     ("align", "<u8"), ("entsize", "<u8")])
_SHT_PROGBITS, _SHT_RELA, _SHT_NOBITS, _SHT_VERNEED = 1, 4, 8, 0x6FFFFFFE
_SHF_ALLOC, _SHF_EXECINSTR = 0x2, 0x4


def _strings_at(fd: int, strtab: Section, offsets: Iterable[int]) -> dict[int, str]:
    """Names at string-table offsets, reading the table in bounded chunks, in order."""
    want = _unique(np.fromiter((int(o) for o in offsets), np.int64))
    out: dict[int, str] = {}
    i = 0
    while i < len(want):
        lo = int(want[i])
        buf = os.pread(fd, min(CHUNK, max(strtab.size - lo, 0)), strtab.offset + lo)
        nul = np.flatnonzero(np.frombuffer(buf, np.uint8) == 0)
        j = int(np.searchsorted(want, lo + len(buf)))
        starts = want[i:j] - lo
        k = np.searchsorted(nul, starts)
        whole = int(np.searchsorted(k, len(nul)))      # names whose NUL is in this buffer
        for st, end in zip(starts[:whole].tolist(), nul[k[:whole]].tolist()):
            out[lo + st] = buf[st:end].decode("utf-8", "replace")
        if whole == 0:                          # unterminated or longer than a chunk: skip it
            out[lo] = ""
            whole = 1
        i += whole
    return out


def _offsets_of(fd: int, strtab: Section, needles: Iterable[bytes]) -> dict[bytes, list[int]]:
    """String-table offsets where each needle starts, in one pass over the table.

    Needles sharing b"cpu" are found through that one anchor (a fast bytes.find) and compared
    in place, instead of one search of a ~175 MB table per needle."""
    needles = [n for n in dict.fromkeys(needles) if n]
    found: dict[bytes, list[int]] = {n: [] for n in needles}
    if not needles:
        return found
    anchors: dict[bytes, list[tuple[bytes, int]]] = {}
    for n in needles:
        anchor = b"cpu" if b"cpu" in n else n
        anchors.setdefault(anchor, []).append((n, n.find(anchor)))
    margin = max(len(n) for n in needles)
    pos = 0
    while pos < strtab.size:
        lo = max(pos - margin, 0)
        buf = os.pread(fd, min(CHUNK + 2 * margin, strtab.size - lo), strtab.offset + lo)
        for anchor, group in anchors.items():
            at = buf.find(anchor)
            while at >= 0:
                for needle, k in group:
                    start = at - k
                    # count each start once: in the chunk [pos, pos + CHUNK) it falls in
                    if start >= 0 and pos <= lo + start < pos + CHUNK and \
                            buf.startswith(needle, start):
                        found[needle].append(lo + start)
                at = buf.find(anchor, at + 1)
        pos += CHUNK
    return found


def _open_elf(path: Path, f) -> tuple[ELFFile, list[Section]]:
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
        raise ConfigError(f"{path}: machine {elf['e_machine']}; only x86-64 libraries "
                          "are scanned")
    if not count or elf.header["e_shentsize"] != _SHDR_DT.itemsize:
        return elf, []
    fd = f.fileno()
    raw = np.frombuffer(os.pread(fd, count * _SHDR_DT.itemsize, elf.header["e_shoff"]),
                        _SHDR_DT)
    if len(raw) != count:
        raise ConfigError(f"{path}: truncated ELF file (section headers missing)")
    names: dict[int, str] = {}
    if shstrndx < count:
        shstr = Section("", int(raw[shstrndx]["offset"]), int(raw[shstrndx]["size"]), 0)
        names = _strings_at(fd, shstr, raw["name"])
    return elf, [Section(names.get(int(h["name"]), ""), int(h["offset"]), int(h["size"]),
                         int(h["addr"]), int(h["type"]), int(h["flags"]), int(h["link"]),
                         int(h["entsize"]), i) for i, h in enumerate(raw)]


def _exec_sections(sections: list[Section]) -> list[Section]:
    return [s for s in sections if s.flags & _SHF_EXECINSTR and s.type == _SHT_PROGBITS
            and s.size]


def _eh_frame_hdr_starts(fd: int, sections: list[Section]) -> np.ndarray:
    """Function starts (int64, in table order) from the .eh_frame_hdr binary-search table;
    empty when there is none or it is not in the one layout linkers write."""
    sec = next((s for s in sections if s.name == ".eh_frame_hdr"), None)
    if sec is None or sec.size < 12 or sec.type == _SHT_NOBITS:
        return np.zeros(0, np.int64)
    raw = os.pread(fd, sec.size, sec.offset)
    if len(raw) < 12:
        return np.zeros(0, np.int64)
    version, _ptr_enc, count_enc, table_enc = raw[:4]
    # udata4 count and datarel|sdata4 table: what GNU ld, gold and LLD all write.
    if version != 1 or count_enc != 0x03 or table_enc != 0x3B:
        return np.zeros(0, np.int64)
    count = min(int.from_bytes(raw[8:12], "little"), (len(raw) - 12) // 8)
    table = np.frombuffer(raw, "<i4", count * 2, 12)[0::2]
    return table.astype(np.int64) + sec.addr


def code_bytes(path: Path | str) -> int:
    """Bytes of machine code in a library: the size of its executable (SHF_EXECINSTR)
    sections; ConfigError if it is not an x86-64 ELF file."""
    path = Path(path)
    with open(path, "rb") as f:
        return sum(s.size for s in _exec_sections(_open_elf(path, f)[1]))


class _Library:
    """One open ELF library: sections, symbol tables and the function table."""

    def __init__(self, path: Path, f):
        self.path = path
        self.fd = f.fileno()
        self.elf, self.sections = _open_elf(path, f)
        self.exec_secs = _exec_sections(self.sections)
        self.tables = [self._symbols(".symtab"), self._symbols(".dynsym")]
        self.dynsym = self.tables[1][0]
        fsyms = [self._function_symbols(syms) for syms, _ in self.tables]
        self.symbol_source = (".symtab" if len(fsyms[0]) else
                              ".dynsym" if len(fsyms[1]) else ".eh_frame_hdr")
        starts = _unique(np.concatenate(
            [fsyms[0]["value"], fsyms[1]["value"],
             _eh_frame_hdr_starts(self.fd, self.sections).astype(np.uint64),
             np.array([s.addr for s in self.exec_secs], np.uint64)]).astype(np.uint64))
        self.fsyms = fsyms
        self.starts = starts
        self.lo = np.array([s.addr for s in self.exec_secs], np.uint64)
        self.hi = np.array([s.addr + s.size for s in self.exec_secs], np.uint64)
        # A function ends at the next start, or earlier where a symbol gives its size: bytes
        # after it (constant tables that hand-written assembly keeps in .text) are not code.
        ends = np.append(starts[1:], self.hi.max() if len(self.hi) else 0).astype(np.uint64)
        for syms in fsyms:
            sized = syms[syms["size"] > 0]
            if len(sized):
                first = np.unique(sized["value"], return_index=True)[1]
                span = np.maximum.reduceat(sized["size"], first)
                idx = np.searchsorted(starts, sized["value"][first])
                ends[idx] = np.minimum(ends[idx], sized["value"][first] + span)
        self.ends = ends

    def __len__(self) -> int:
        return len(self.starts)

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    # -- symbols
    def _symbols(self, name: str) -> tuple[np.ndarray, Section | None]:
        sec = self.section(name)
        if sec is None or sec.entsize != _SYM_DT.itemsize or sec.link >= len(self.sections):
            return np.zeros(0, _SYM_DT), None
        raw = os.pread(self.fd, sec.size - sec.size % _SYM_DT.itemsize, sec.offset)
        return np.frombuffer(raw, _SYM_DT), self.sections[sec.link]

    def _function_symbols(self, syms: np.ndarray) -> np.ndarray:
        kind = syms["info"] & 0xF              # STT_FUNC = 2, STT_GNU_IFUNC = 10
        syms = syms[((kind == 2) | (kind == 10)) & (syms["shndx"] != 0)]
        value = syms["value"]
        inside = np.zeros(len(syms), bool)
        for s in self.exec_secs:
            inside |= (value >= s.addr) & (value < s.addr + s.size)
        syms = syms[inside]
        return syms[np.argsort(syms["value"], kind="stable")]

    @cached_property
    def special(self) -> dict[str, np.ndarray]:
        """Defined symbols the rules look for, found in one pass over each string table:
        'variables' (CPU-feature variables), 'functions' (CPU-check helpers), 'pyinit'."""
        r = rules()
        groups = {"variables": [n.encode() + b"\0" for n in r.check_variables],
                  "functions": [n.encode() + b"\0" for n in r.check_functions],
                  "pyinit": [b"PyInit_"]}
        out = {k: [] for k in groups}
        has_symtab = len(self.tables[0][0]) > 0
        for table, (syms, strtab) in zip((".symtab", ".dynsym"), self.tables):
            if strtab is None or not len(syms):
                continue
            # Hidden CPU-check symbols live in .symtab; PyInit_* is exported (.dynsym).
            keys = ("variables", "functions") if table == ".symtab" else \
                (("pyinit",) if has_symtab else tuple(groups))
            found = _offsets_of(self.fd, strtab, [n for k in keys for n in groups[k]])
            found = {n: found.get(n, []) for ns in groups.values() for n in ns}
            for key, needles in groups.items():
                offs = [o for n in needles for o in found[n]]
                if offs:
                    out[key].append(syms[np.isin(syms["name"], offs) & (syms["shndx"] != 0)])
        return {k: np.concatenate(v) if v else np.zeros(0, _SYM_DT) for k, v in out.items()}

    def names(self, fns: np.ndarray) -> Iterable[tuple[int, str]]:
        """(function, name) for every symbol at each function's start (aliases included)."""
        addrs = self.starts[fns]
        for syms, strtab in zip(self.fsyms, (t[1] for t in self.tables)):
            if strtab is None or not len(syms):
                continue
            lo = np.searchsorted(syms["value"], addrs, side="left")
            cnt = np.searchsorted(syms["value"], addrs, side="right") - lo
            if not cnt.sum():
                continue
            owner = np.repeat(fns, cnt)
            name_off = syms["name"][_ranges(lo, cnt)]
            got = _strings_at(self.fd, strtab, name_off)
            for fn, off in zip(owner.tolist(), name_off.tolist()):
                if got.get(off):
                    yield fn, got[off]

    # -- addresses
    def of(self, addrs: np.ndarray) -> np.ndarray:
        """Function containing each address; -1 outside function bodies."""
        i = np.searchsorted(self.starts, addrs, side="right").astype(np.int64) - 1
        return np.where((i >= 0) & (addrs < self.ends[np.clip(i, 0, None)]), i, -1)

    def exact(self, addrs: np.ndarray) -> np.ndarray:
        """Function starting exactly at each address, else -1."""
        i = np.searchsorted(self.starts, addrs).astype(np.int64)
        ic = np.clip(i, 0, max(len(self.starts) - 1, 0))
        return np.where((i < len(self.starts)) & (self.starts[ic] == addrs), ic, -1)

    def in_code(self, addrs: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.lo, addrs, side="right").astype(np.int64) - 1
        return (i >= 0) & (addrs < self.hi[np.clip(i, 0, None)])

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
        rel = np.frombuffer(os.pread(self.fd, rela.size - rela.size % _RELA_DT.itemsize,
                                     rela.offset), _RELA_DT)
        first = 0 if sec.name == ".plt.sec" else 1     # .plt starts with a 16-byte header
        entries = sec.addr + 16 * (first + np.arange(len(rel), dtype=np.uint64))
        idx = np.clip((rel["info"] >> 32).astype(np.int64), 0, len(self.dynsym) - 1)
        sym = self.dynsym[idx]
        ok = ((rel["info"] & 0xFFFFFFFF) == _R_JUMP_SLOT) & (sym["shndx"] != 0) & \
            (entries < sec.addr + sec.size)
        return entries[ok], sym["value"][ok]

    def through_plt(self, targets: np.ndarray) -> np.ndarray:
        """Targets with PLT entries replaced by the local function they reach."""
        entries, reach = self.plt
        if not len(entries):
            return targets
        i = np.clip(np.searchsorted(entries, targets), 0, len(entries) - 1)
        return np.where(entries[i] == targets, reach[i], targets)

    def relocations(self) -> tuple[np.ndarray, np.ndarray]:
        """(where, target) of every dynamic relocation that stores an address in data."""
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
            absolute = kind == _R_X86_64_64
            if absolute.any() and len(self.dynsym):
                idx = np.clip((rel["info"][absolute] >> 32).astype(np.int64), 0,
                              len(self.dynsym) - 1)
                wheres.append(rel["offset"][absolute])
                targets.append(self.dynsym["value"][idx]
                               + rel["addend"][absolute].astype(np.uint64))
        if not wheres:
            return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
        return np.concatenate(wheres), np.concatenate(targets)

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
        """The x86 ISA level GNU ld records with -mneeded / -z x86-64-vN (glibc enforces it)."""
        hdr = self.section(".note.gnu.property")
        if hdr is None:
            return None
        for note in self.elf.get_section(hdr.index).iter_notes():
            for prop in note.get("n_desc") or ():
                if not isinstance(prop, dict) or \
                        prop.get("pr_type") != "GNU_PROPERTY_X86_ISA_1_NEEDED":
                    continue
                data = prop.get("pr_data")
                bits = int.from_bytes(data, "little") if isinstance(data, bytes) else int(data)
                levels = [i + 1 for i in range(4) if bits >> i & 1]
                return isa.level_name(max(levels)) if levels else None
        return None


def _unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values. (numpy 2.x np.unique without return_* takes a hash path that
    is ~100x slower than sorting on millions of integers.)"""
    a = np.sort(a)
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if len(a) else a


def _ranges(lo: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[i], lo[i] + cnt[i]) for all i, vectorized."""
    total = int(cnt.sum())
    return np.repeat(lo, cnt) + (np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt))


def _mask(ids: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros(n, bool)
    m[ids[ids >= 0]] = True
    return m


# ---- streaming decode ----------------------------------------------------------------------
@dataclass
class _Streamed:
    instructions: int
    pair_fn: np.ndarray              # per (function, code) with kept instructions:
    pair_code: np.ndarray            #   the function, the iced Code
    pair_count: np.ndarray           #   and how many
    calls: np.ndarray                # (caller, callee) edges, direct calls and tail jumps
    leas: np.ndarray                 # (referrer, function) edges from RIP-relative LEAs
    variable_reads: np.ndarray       # addresses that may read a CPU-feature variable
    seconds: float = 0.0

    def save(self, path: Path) -> Path:
        """Write to an .npz file: parts travel between processes as files, not pickles
        held by the coordinating process."""
        np.savez(path, instructions=self.instructions, pair_fn=self.pair_fn,
                 pair_code=self.pair_code, pair_count=self.pair_count, calls=self.calls,
                 leas=self.leas, variable_reads=self.variable_reads, seconds=self.seconds)
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> "_Streamed":
        with np.load(path) as z:
            return cls(int(z["instructions"]), z["pair_fn"], z["pair_code"], z["pair_count"],
                       z["calls"], z["leas"], z["variable_reads"], float(z["seconds"]))


class _Collector:
    """Per-chunk records -> per-(function, code) counts and reference edges, chunk by chunk."""

    def __init__(self, lib: _Library, ranges: list[tuple[int, int]]):
        self.lib = lib
        self.ranges = ranges
        self.keys: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.calls: list[np.ndarray] = []
        self.leas: list[np.ndarray] = []
        self.reads: list[np.ndarray] = []

    def _edges(self, ips: array, targets: array, exact: bool) -> np.ndarray:
        ip = np.frombuffer(ips, np.uint64)
        tgt = self.lib.through_plt(np.frombuffer(targets, np.uint64))
        keep = self.lib.in_code(tgt)
        src = self.lib.of(ip[keep])
        dst = self.lib.exact(tgt[keep]) if exact else self.lib.of(tgt[keep])
        ok = (src >= 0) & (dst >= 0) & (src != dst)
        return _unique(src[ok] * len(self.lib) + dst[ok])

    def chunk(self, data: bytes, base: int, kept: array, call_ip: array, call_to: array,
              jump_ip: array, jump_to: array, lea_ip: array, lea_to: array) -> None:
        if len(kept):
            packed = np.frombuffer(kept, np.int64)
            fn = self.lib.of((packed >> _SHIFT).astype(np.uint64))
            ok = fn >= 0
            key, cnt = np.unique(fn[ok] * 8192 + (packed[ok] & 8191), return_counts=True)
            self.keys.append(key)
            self.counts.append(cnt)
        self.calls.append(self._edges(call_ip, call_to, exact=False))
        self.calls.append(self._edges(jump_ip, jump_to, exact=True))
        self.leas.append(self._edges(lea_ip, lea_to, exact=True))
        if self.ranges:
            self._variable_reads(data, base)

    def _variable_reads(self, data: bytes, base: int) -> None:
        """Addresses of possible RIP-relative operands pointing into a CPU-feature variable.

        Its readers are ordinary mov/test/cmp instructions, far too common to inspect in the
        decode loop. Instead numpy looks at every ModRM-shaped byte (mod=00, rm=101: the
        RIP-relative form) and the 4-byte displacement after it (target = displacement end +
        disp, up to 4 immediate bytes later); the few candidates are confirmed by decoding
        their function afterwards.
        """
        b = np.frombuffer(data, np.uint8)
        if len(b) < 6:
            return
        at = np.flatnonzero((b[:-4] & 0xC7) == 0x05) + 1
        disp = (b[at].astype(np.int64) | b[at + 1].astype(np.int64) << 8
                | b[at + 2].astype(np.int64) << 16 | b[at + 3].astype(np.int64) << 24)
        target = (disp ^ 0x80000000) - 0x80000000 + at + (base + 4)
        for lo, hi in self.ranges:
            hit = at[(target >= lo - 4) & (target < hi)]
            if len(hit):
                self.reads.append((hit + base).astype(np.uint64))

    def result(self, instructions: int) -> _Streamed:
        def cat(parts: list[np.ndarray], dtype) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype)
        keys = cat(self.keys, np.int64)
        ukeys, inv = np.unique(keys, return_inverse=True)
        counts = np.bincount(inv, weights=cat(self.counts, np.int64),
                             minlength=len(ukeys)).astype(np.int64)
        return _Streamed(instructions, ukeys // 8192, ukeys % 8192, counts,
                         _unique(cat(self.calls, np.int64)),
                         _unique(cat(self.leas, np.int64)),
                         cat(self.reads, np.uint64))


def _stream(lib: _Library, ranges: list[tuple[int, int]],
            progress: Callable[[int], None] | None, lo: int = 0, hi: int = 1 << 64) -> _Streamed:
    """Decode the executable sections (the part in [lo, hi)) in bounded chunks; redo
    instructions cut at chunk edges."""
    hot = code_table().hot
    no_more = iced_x86.DecoderError.NO_MORE_BYTES
    feature, call, jump, shift = _FEATURE, _CALL, _JMP, _SHIFT     # locals: faster in the loop
    col = _Collector(lib, ranges)
    total = 0
    for sec in lib.exec_secs:
        pos = max(lo - sec.addr, 0)
        end = min(hi - sec.addr, sec.size)
        while pos < end:
            want = min(CHUNK, end - pos)
            data = os.pread(lib.fd, want, sec.offset + pos)
            base = sec.addr + pos
            kept = array("q")
            call_ip, call_to, jump_ip, jump_to, lea_ip, lea_to = (array("Q") for _ in range(6))
            keep, c_ip, c_to, j_ip, j_to, l_ip, l_to = (
                kept.append, call_ip.append, call_to.append, jump_ip.append, jump_to.append,
                lea_ip.append, lea_to.append)
            decoder = iced_x86.Decoder(64, data, ip=base)
            n, ins = -1, None
            # The hot loop: one table lookup per instruction; only the rare kept ones do more.
            for n, ins in enumerate(decoder):
                code = ins.code
                kind = hot[code]
                if kind:
                    if kind == feature:
                        keep(ins.ip << shift | code)
                    elif kind == call:
                        c_ip(ins.ip)
                        c_to(ins.near_branch64)
                    elif kind == jump:
                        j_ip(ins.ip)
                        j_to(ins.near_branch64)
                    elif ins.is_ip_rel_memory_operand:
                        l_ip(ins.ip)
                        l_to(ins.ip_rel_memory_address)
            consumed = want
            if ins is not None and decoder.last_error == no_more and pos + want < end:
                n -= 1                      # cut by the chunk edge: decode it again next time
                consumed = ins.ip - base    # (it was not kept: an invalid Code is never hot)
            total += n + 1
            col.chunk(data[:consumed], base, kept, call_ip, call_to, jump_ip, jump_to,
                      lea_ip, lea_to)
            pos += consumed
            if progress is not None:
                progress(consumed)
    return col.result(total)


def plain_decode_count(path: Path | str) -> tuple[int, float]:
    """(instructions, seconds) of a bare decode-and-count pass over the same bytes: the
    benchmark's yardstick (the loop tfforge would run if it only counted)."""
    t0 = time.perf_counter()
    path = Path(path)
    counts = [0] * len(code_table().hot)
    no_more = iced_x86.DecoderError.NO_MORE_BYTES
    with open(path, "rb") as f:
        for sec in _exec_sections(_open_elf(path, f)[1]):
            pos = 0
            while pos < sec.size:
                want = min(CHUNK, sec.size - pos)
                decoder = iced_x86.Decoder(64, os.pread(f.fileno(), want, sec.offset + pos),
                                           ip=sec.addr + pos)
                ins = None
                for ins in decoder:
                    counts[ins.code] += 1
                if ins is not None and decoder.last_error == no_more and pos + want < sec.size:
                    counts[ins.code] -= 1
                    pos = ins.ip - sec.addr
                else:
                    pos += want
    return sum(counts), time.perf_counter() - t0


# ---- classification ------------------------------------------------------------------------
@dataclass
class _Classes:
    feature_fns: np.ndarray          # functions with requirement features (sorted)
    named: np.ndarray                # bool masks over all functions
    dispatched: np.ndarray
    load: np.ndarray
    checks: int
    roots: int
    hits: dict[str, int]


def _cpu_checks(lib: _Library, s: _Streamed, ranges: list[tuple[int, int]],
                call_src: np.ndarray, call_dst: np.ndarray) -> np.ndarray:
    """Mask of CPU-check functions (see RULES R2)."""
    n = len(lib)
    table = code_table()
    direct = [s.pair_fn[np.isin(s.pair_code, list(table.checks))]]
    if len(s.variable_reads):
        for fn in _unique(lib.of(s.variable_reads)).tolist():
            if fn < 0:
                continue
            start, data = lib.code_bytes(fn)
            for ins in iced_x86.Decoder(64, data, ip=start):
                if ins.is_ip_rel_memory_operand and any(
                        lo <= ins.ip_rel_memory_address < hi for lo, hi in ranges):
                    direct.append(np.array([fn]))
                    break
    helpers = lib.special["functions"]
    direct.append(lib.exact(helpers["value"]))
    direct_mask = _mask(np.concatenate(direct).astype(np.int64), n)
    checks = direct_mask.copy()
    checks[call_src[direct_mask[call_dst]]] = True      # their direct callers check too
    return checks


def _classify(lib: _Library, s: _Streamed, ranges: list[tuple[int, int]],
              lib_name: str) -> _Classes:
    n = len(lib)
    table = code_table()
    has_feat = np.array([bool(table.features[c]) for c in range(len(table.features))])
    feature_fns = _unique(s.pair_fn[has_feat[s.pair_code]])
    feat_mask = _mask(feature_fns, n)
    call_src, call_dst = s.calls // n, s.calls % n
    ref_src = np.concatenate([call_src, s.leas // n])
    ref_dst = np.concatenate([call_dst, s.leas % n])
    checks = _cpu_checks(lib, s, ranges, call_src, call_dst)

    # Unknown callers: exported functions and functions whose address is stored in data.
    rel_where, rel_target = lib.relocations()
    outside = _mask(lib.exact(rel_target), n)
    dyn = lib.dynsym
    exported = dyn[((dyn["info"] >> 4) != 0) & ((dyn["other"] & 3) == 0) & (dyn["shndx"] != 0)]
    outside |= _mask(lib.exact(exported["value"]), n)
    referenced = _mask(ref_dst, n)

    # R1: names of feature functions, and of the referrers of those R2 may class.
    matcher = Matcher(lib_name)
    named = np.zeros(n, bool)
    hits: dict[str, int] = {}

    def match(fns: np.ndarray) -> None:
        for fn, name in lib.names(fns):
            if not named[fn]:
                p = matcher.match(name)
                if p is not None:
                    named[fn] = True
                    if feat_mask[fn]:
                        hits[p.label] = hits.get(p.label, 0) + 1

    match(feature_fns)
    cand = feat_mask & ~named & ~outside & referenced
    referrers = _unique(ref_src[cand[ref_dst]])
    match(referrers[~feat_mask[referrers] & ~checks[referrers]])

    # R2: referenced only from CPU checks or dispatched code, to a fixed point.
    dispatched = named.copy()
    while True:
        bad = np.zeros(n, bool)
        bad[ref_dst[~(checks[ref_src] | dispatched[ref_src])]] = True
        new = cand & ~bad & ~dispatched
        if not new.any():
            break
        dispatched |= new

    # R3: reachable at load, never entering dispatched code.
    roots = lib.exact(lib.init_targets(rel_where, rel_target))
    pyinit = lib.special["pyinit"]
    roots = _unique(np.concatenate([roots, lib.exact(pyinit["value"])]))
    roots = roots[roots >= 0]
    load = _reachable(roots, call_src, call_dst, dispatched, n)
    return _Classes(feature_fns, named, dispatched, load, int(checks.sum()), len(roots), hits)


def _reachable(roots: np.ndarray, src: np.ndarray, dst: np.ndarray, blocked: np.ndarray,
               n: int) -> np.ndarray:
    """Mask of functions reachable from roots over edges, never entering blocked ones."""
    order = np.argsort(src, kind="stable")
    src, dst = src[order], dst[order]
    indptr = np.searchsorted(src, np.arange(n + 1))
    seen = np.zeros(n, bool)
    frontier = roots[~blocked[roots]]
    seen[frontier] = True
    while len(frontier):
        lo = indptr[frontier]
        nxt = _unique(dst[_ranges(lo, indptr[frontier + 1] - lo)])
        nxt = nxt[~seen[nxt] & ~blocked[nxt]]
        seen[nxt] = True
        frontier = nxt
    return seen


def _evidence(lib: _Library, s: _Streamed, c: _Classes, examples: int,
              readable: bool = True) -> list[FeatureEvidence]:
    table = code_table()
    ordinary = ~c.dispatched
    codes = _unique(s.pair_code).tolist()
    by_feature: dict[str, list[int]] = {}
    for code in codes:
        for feat in table.features[code]:
            by_feature.setdefault(feat, []).append(code)
    code_totals = np.bincount(s.pair_code, weights=s.pair_count).astype(np.int64)
    chosen: dict[str, np.ndarray] = {}
    rows = []
    for feat in sorted(by_feature, key=isa.sort_key):
        sel = np.isin(s.pair_code, by_feature[feat])
        fns, inv = np.unique(s.pair_fn[sel], return_inverse=True)
        per_fn = np.bincount(inv, weights=s.pair_count[sel]).astype(np.int64)
        per_code: dict[str, int] = {}
        for code in by_feature[feat]:
            mn = table.mnemonic[code]
            per_code[mn] = per_code.get(mn, 0) + int(code_totals[code])
        o, lt = ordinary[fns], c.load[fns]
        nm, gd = c.named[fns], c.dispatched[fns] & ~c.named[fns]
        pool = np.flatnonzero(o) if o.any() else np.arange(len(fns))
        order = np.lexsort((-per_fn[pool], -lt[pool].astype(np.int64)))
        chosen[feat] = fns[pool[order[:examples]]]
        if o.any() and lt.any():
            reason = (f"runs at load (R3): in {int(lt.sum())} function(s) reachable from "
                      f".init_array/PyInit_*; {int(o.sum())} ordinary function(s) in all")
        elif o.any():
            reason = (f"in {int(o.sum())} ordinary function(s) (R4): not dispatch-named, "
                      "not reached only from CPU checks")
        else:
            parts = ([f"{int(nm.sum())} dispatch-named/allow-listed (R1)"] if nm.any() else []) \
                + ([f"{int(gd.sum())} reached only from CPU-check code (R2)"] if gd.any() else [])
            reason = "only in dispatched functions: " + ", ".join(parts)
        top = sorted(per_code.items(), key=lambda kv: -kv[1])[:3]
        rows.append(dict(name=feat, cls="baseline" if o.any() else "dispatched",
                         instructions=int(per_fn.sum()), ordinary_instructions=int(per_fn[o].sum()),
                         functions=len(fns), ordinary=int(o.sum()), load_time=int(lt.sum()),
                         named=int(nm.sum()), guarded=int(gd.sum()), mnemonics=tuple(top),
                         reason=reason))
    # Names for the examples only: a few reads, one c++filt run.
    wanted = _unique(np.concatenate(list(chosen.values()))) if chosen else np.zeros(0, int)
    first: dict[int, str] = {}
    for fn, name in lib.names(wanted):
        first.setdefault(fn, name)
    shown = demangle(first.values()) if readable else {}
    out = []
    for row in rows:
        ex = tuple(shown.get(first[fn], first[fn]) if fn in first
                   else f"<function at {int(lib.starts[fn]):#x}>"
                   for fn in chosen[row["name"]].tolist())
        out.append(FeatureEvidence(examples=ex, **row))
    return out


# ---- entry points --------------------------------------------------------------------------
def _variable_ranges(lib: _Library) -> list[tuple[int, int]]:
    found = lib.special["variables"]
    return sorted({(int(v), int(v) + max(int(sz), 1))
                   for v, sz in zip(found["value"], found["size"])})


def _merge(parts: list[_Streamed]) -> _Streamed:
    if len(parts) == 1:
        return parts[0]
    keys, inv = np.unique(np.concatenate([p.pair_fn * 8192 + p.pair_code for p in parts]),
                          return_inverse=True)
    counts = np.bincount(inv, weights=np.concatenate([p.pair_count for p in parts]),
                         minlength=len(keys)).astype(np.int64)
    return _Streamed(sum(p.instructions for p in parts), keys // 8192, keys % 8192, counts,
                     _unique(np.concatenate([p.calls for p in parts])),
                     _unique(np.concatenate([p.leas for p in parts])),
                     np.concatenate([p.variable_reads for p in parts]),
                     max(p.seconds for p in parts))


def split_points(path: Path | str, parts: int, *,
                 min_bytes: int = 0) -> list[tuple[int, int]]:
    """Address ranges that split a library's code into `parts` pieces of similar size, cut
    at function starts (from .eh_frame_hdr), so each piece decodes from an instruction
    boundary. One range covering everything when the library cannot be split, or has no
    more than `min_bytes` of code (code_bytes)."""
    path = Path(path)
    with open(path, "rb") as f:
        sections = _open_elf(path, f)[1]
        execs = _exec_sections(sections)
        total = sum(s.size for s in execs)
        if parts < 2 or not execs or total <= min_bytes:
            return [(0, 1 << 64)]
        starts = np.sort(_eh_frame_hdr_starts(f.fileno(), sections))
    # Cumulative code bytes at each address, over the executable sections in address order.
    execs.sort(key=lambda s: s.addr)
    cuts = []
    for i in range(1, parts):
        goal, acc = total * i // parts, 0
        for sec in execs:
            if acc + sec.size > goal:
                addr = sec.addr + goal - acc
                j = np.searchsorted(starts, addr)
                if j < len(starts) and starts[j] < sec.addr + sec.size:
                    cuts.append(int(starts[j]))
                break
            acc += sec.size
    bounds = [0, *sorted(set(cuts)), 1 << 64]
    return list(zip(bounds[:-1], bounds[1:]))


def stream_part(path: Path | str, lo: int = 0, hi: int = 1 << 64,
                progress: Callable[[int], None] | None = None,
                out: Path | str | None = None) -> _Streamed | Path:
    """The decode phase for the code in [lo, hi), for `finish`; with `out`, written to that
    .npz file and its path returned (for worker processes)."""
    t0 = time.perf_counter()
    path = Path(path)
    with _open_file(path) as f:
        lib = _Library(path, f)
        part = _stream(lib, _variable_ranges(lib), progress, lo, hi)
    part.seconds = time.perf_counter() - t0
    return part.save(Path(out)) if out is not None else part


def finish(path: Path | str, parts: list[_Streamed | Path | str], *,
           display_name: str | None = None, examples: int = EXAMPLES,
           readable: bool = True) -> LibraryScan:
    """Classify decoded parts of one library (from stream_part, maybe in other processes)."""
    path = Path(path)
    parts = [p if isinstance(p, _Streamed) else _Streamed.load(Path(p)) for p in parts]
    with _open_file(path) as f:
        return _finish(_Library(path, f), _merge(parts), display_name, examples, readable,
                       time.perf_counter() - max(p.seconds for p in parts))


def _finish(lib: _Library, streamed: _Streamed, display_name: str | None, examples: int,
            readable: bool, started: float) -> LibraryScan:
    t0 = time.perf_counter()
    classes = _classify(lib, streamed, _variable_ranges(lib),
                        (display_name or str(lib.path)).rsplit("/", 1)[-1])
    t1 = time.perf_counter()
    evidence = _evidence(lib, streamed, classes, examples, readable)
    table = code_table()
    totals = np.bincount(streamed.pair_code, weights=streamed.pair_count,
                         minlength=len(table.hot))
    ignored: dict[str, int] = {}
    for code in table.ignored:
        if totals[code]:
            mn = table.mnemonic[code]
            ignored[mn] = ignored.get(mn, 0) + int(totals[code])
    t2 = time.perf_counter()
    return LibraryScan(
        path=display_name or str(lib.path), size=lib.path.stat().st_size,
        code_bytes=sum(s.size for s in lib.exec_secs), instructions=streamed.instructions,
        functions=len(lib), symbols=lib.symbol_source,
        baseline=frozenset(e.name for e in evidence if e.cls == "baseline"),
        dispatched=frozenset(e.name for e in evidence if e.cls == "dispatched"),
        features=tuple(evidence), ignored=tuple(sorted(ignored.items())),
        cpu_checks=classes.checks, roots=classes.roots,
        load_reachable=int(classes.load.sum()),
        pattern_hits=tuple(sorted(classes.hits.items())), glibc=lib.glibc_needed(),
        isa_needed=lib.isa_needed(), seconds=round(time.perf_counter() - started, 3),
        phases=(("decode", round(streamed.seconds, 3)), ("classify", round(t1 - t0, 3)),
                ("evidence", round(t2 - t1, 3))))


def _open_file(path: Path):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})")


def scan_library(path: Path | str, *, display_name: str | None = None,
                 progress: Callable[[int], None] | None = None,
                 examples: int = EXAMPLES, readable: bool = True) -> LibraryScan:
    """Scan one ELF library in this process; ConfigError if it is not a
    readable x86-64 ELF file.

    display_name: the name reported (a wheel member path); allow-list globs match its
    file name. progress: called with the code bytes done after each chunk.
    examples: example function names kept per feature; readable=False keeps them mangled
    (verify demangles all libraries' examples in one c++filt run).
    """
    t0 = time.perf_counter()
    path = Path(path)
    with _open_file(path) as f:
        lib = _Library(path, f)
        streamed = _stream(lib, _variable_ranges(lib), progress)
        streamed.seconds = time.perf_counter() - t0
        return _finish(lib, streamed, display_name, examples, readable, t0)
