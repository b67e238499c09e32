"""How a wheel's machine code was built, read from its ELF members (never run).

Each ELF's `.comment` names the compilers whose objects went into it and, for LLD or mold, the
linker (GNU gold leaves a `.note.gnu.gold-version` section instead; BFD ld leaves nothing). A
clang-built library also carries the `GCC: (...)` line of the GCC installation whose startup
objects and libstdc++ it was linked with. Its dynamic section says whether it needs
libstdc++.so.6, and its version needs say how new a libstdc++ (GLIBCXX_) and glibc (GLIBC_) it
asks for. `read_wheel` gathers this for every ELF member, whatever its name; `BuiltWith`
answers for the wheel. Decides nothing: verify and the release evidence judge the facts.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from tfforge import resources
from tfforge.errors import ConfigError
from tfforge.files import io_error
from tfforge.wheel import read, verneed

ELF_MAGIC = b"\x7fELF"
COMMENT_MAX = 1 << 20  # a .comment holds a few lines; more is not a compiler's
NOTE_MAX = 4096
DYNAMIC_MAX = 1 << 20
ENTRIES_MAX = 4096  # DT_NEEDED entries, version needs and their aux entries read per ELF
# What a damaged or hostile ELF makes pyelftools raise; each becomes the member's `error`.
READ_ERRORS = (
    ELFError,
    ValueError,
    IndexError,
    KeyError,
    OverflowError,
    AttributeError,
    TypeError,
    AssertionError,
    struct.error,
    EOFError,
    RecursionError,
    UnicodeDecodeError,
)

_CLANG = re.compile(r"\bclang version (\d+\.\d+\.\d+)")
_GCC = re.compile(r"^GCC: \(([^)]*)\) (\d+(?:\.\d+){0,2})")
_LLD = re.compile(r"^Linker: (.*?)\s*LLD (\d+\.\d+\.\d+)")
_MOLD = re.compile(r"^mold (\d+\.\d+\.\d+)")
_RUSTC = re.compile(r"^rustc version (\d+\.\d+\.\d+)")
_GOLD = re.compile(r"gold (\d+\.\d+)")
_VERSIONED = re.compile(r"^(GLIBCXX|GLIBC)_(\d+(?:\.\d+){1,3})$")


def version_key(version: str) -> tuple[int, ...]:
    """'3.4.22' -> (3, 4, 22); non-numeric parts count as 0."""
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def _full(version: str) -> str:
    """'12' -> '12.0.0', '4.7' -> '4.7.0': GCC prints as many parts as its build chose."""
    parts = version.split(".")
    return ".".join(parts + ["0"] * (3 - len(parts)))


@dataclass(frozen=True, order=True)
class Ident:
    """One `.comment` line, parsed. kind: 'compiler', 'linker' or 'other'."""

    kind: str
    name: str  # clang, gcc, rustc | lld, mold, gold | '' for other lines
    version: str  # X.Y.Z ('' for other lines)
    vendor: str  # the build's own label: 'Ubuntu', 'Debian', 'GNU', ... ('' = none)
    text: str = field(compare=False)

    @property
    def label(self) -> str:
        """'clang 17.0.6 (Ubuntu)', 'LLD 18.1.8', 'GCC 9.3.1 (GNU)'."""
        name = {"gcc": "GCC", "lld": "LLD"}.get(self.name, self.name)
        return f"{name} {self.version}" + (f" ({self.vendor})" if self.vendor else "")

    @property
    def origin(self) -> str:
        """For clang: 'distribution' (a vendor's package, such as apt.llvm.org's or Debian's)
        or 'unbranded' (built from LLVM's sources without a vendor label, as LLVM's release
        binaries and the hermetic toolchains that download them are)."""
        if self.name != "clang":
            return ""
        return "distribution" if self.vendor else "unbranded"

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "vendor": self.vendor}


def parse_comment_line(text: str) -> Ident:
    """What one `.comment` line names (any text is accepted; unknown lines are 'other')."""
    m = _CLANG.search(text)
    if m and not text.startswith("Linker:"):
        vendor = text[: m.start()].strip()
        # 'Ubuntu clang', 'Debian clang', 'Apple clang': the vendor's word, bounded
        return Ident("compiler", "clang", m[1], vendor[:40], text)
    m = _GCC.match(text)
    if m:
        vendor = m[1].split(" ")[0][:40]
        return Ident("compiler", "gcc", _full(m[2]), vendor, text)
    m = _LLD.match(text)
    if m:
        return Ident("linker", "lld", m[2], m[1].strip()[:40], text)
    m = _MOLD.match(text)
    if m:
        return Ident("linker", "mold", m[1], "", text)
    m = _RUSTC.match(text)
    if m:
        return Ident("compiler", "rustc", m[1], "", text)
    return Ident("other", "", "", "", text)


def comment_lines(data: bytes) -> tuple[str, ...]:
    """The distinct non-empty NUL-separated strings of a `.comment` section, in order."""
    lines = (part.decode("utf-8", "replace").strip() for part in data.split(b"\0"))
    return tuple(dict.fromkeys(line[:512] for line in lines if line))


@dataclass(frozen=True)
class ElfBuild:
    """The build facts of one ELF member."""

    member: str
    comments: tuple[str, ...] = ()
    needed: tuple[str, ...] = ()  # DT_NEEDED
    glibcxx: str = ""  # highest GLIBCXX_ version needed ('' = none)
    glibc: str = ""  # highest GLIBC_ version needed
    gold: str = ""  # GNU gold's version from .note.gnu.gold-version
    error: str = ""  # why the member could not be read ('' = it was)

    @property
    def idents(self) -> tuple[Ident, ...]:
        return tuple(parse_comment_line(c) for c in self.comments)

    @property
    def compiler(self) -> Ident | None:
        """The compiler of this library's own code: the newest clang when one is named (a
        clang build also carries the GCC lines of the startup objects and libstdc++ it linked),
        else the newest GCC (older GCC lines come from the C library's objects)."""
        found = [i for i in self.idents if i.kind == "compiler"]
        for name in ("clang", "rustc", "gcc"):
            named = [i for i in found if i.name == name]
            if named:
                return max(named, key=lambda i: version_key(i.version))
        return None

    @property
    def linker(self) -> Ident | None:
        linkers = [i for i in self.idents if i.kind == "linker"]
        if linkers:
            return max(linkers, key=lambda i: version_key(i.version))
        if self.gold:
            return Ident("linker", "gold", self.gold, "GNU", f"gold {self.gold}")
        return None

    @property
    def gcc_objects(self) -> tuple[Ident, ...]:
        """GCC lines other than the compiler's own: the GCC installations (and C library)
        whose objects were linked in."""
        own = self.compiler
        return tuple(sorted({i for i in self.idents if i.name == "gcc" and i != own}, reverse=True))

    @property
    def needs_libstdcxx(self) -> bool:
        return any(n.startswith("libstdc++.so") for n in self.needed)


@cache
def _glibcxx_table() -> tuple[tuple[str, str], ...]:
    raw = resources.toml("libstdcxx.toml")
    rows = raw.get("glibcxx")
    if raw.get("schema") != 1 or not isinstance(rows, dict) or not rows:
        raise ValueError("tfforge/data/libstdcxx.toml: needs schema = 1 and a [glibcxx] table")
    out = []
    for symver, gcc in rows.items():
        if not re.fullmatch(r"3\.4\.\d+", symver) or not re.fullmatch(r"\d+\.\d+\.\d+", gcc):
            raise ValueError(f"tfforge/data/libstdcxx.toml: bad row {symver!r} = {gcc!r}")
        out.append((symver, gcc))
    return tuple(sorted(out, key=lambda r: version_key(r[0])))


def glibcxx_gcc(symver: str) -> str:
    """The first GCC whose libstdc++ defines GLIBCXX_<symver>: '4.8.3' for '3.4.19';
    '<4.8.0' below the table, '>14.1.0' above it."""
    table = _glibcxx_table()
    exact = dict(table)
    if symver in exact:
        return exact[symver]
    if version_key(symver) < version_key(table[0][0]):
        return "<" + table[0][1]
    if version_key(symver) > version_key(table[-1][0]):
        return ">" + table[-1][1]
    return "?"


def _highest(versions: Iterable[str]) -> str:
    return max(versions, key=version_key, default="")


def _section(elf: ELFFile, name: str, size_max: int, file_size: int) -> Any:
    sec = elf.get_section_by_name(name)
    if sec is None:
        return None
    if sec["sh_type"] == "SHT_NOBITS":
        return None
    off, size = int(sec["sh_offset"]), int(sec["sh_size"])
    if off + size > file_size or size > size_max:
        raise ValueError(f"section {name} ({size} bytes at {off}) is outside the file or too big")
    return sec


_SHT_NOBITS = 8


def check_bounds(handle: BinaryIO, file_size: int) -> None:
    """ValueError unless the file is a 64-bit little-endian ELF whose section headers, and every
    section they describe, lie inside the file: nothing read later seeks outside it."""
    handle.seek(0)
    head = handle.read(64)
    if len(head) < 64 or head[:4] != ELF_MAGIC or head[4] != 2 or head[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", head, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", head, 0x3A)
    if shnum == 0:
        return
    if shentsize != 64 or shoff + shnum * 64 > file_size or shstrndx >= shnum:
        raise ValueError(f"section headers ({shnum} at {shoff}) lie outside the file")
    handle.seek(shoff)
    table = handle.read(shnum * 64)
    for i in range(shnum):
        (kind,) = struct.unpack_from("<I", table, i * 64 + 4)
        offset, size = struct.unpack_from("<QQ", table, i * 64 + 24)
        if kind != _SHT_NOBITS and offset + size > file_size:
            raise ValueError(f"section {i} ({size} bytes at {offset}) lies outside the file")


def version_needs(
    handle: BinaryIO, elf: ELFFile, section: Any, file_size: int
) -> list[tuple[str, tuple[str, ...]]]:
    """A pyelftools .gnu.version_r section's needs, read by the bounded tfforge.wheel.verneed
    (pyelftools' own walk trusts the counts: a lying one is billions of steps)."""
    link = int(section["sh_link"])
    if link >= elf.num_sections():
        raise ValueError("version needs name no string table")
    strtab = elf.get_section(link)
    return verneed.read(
        handle.fileno(),
        (int(section["sh_offset"]), int(section["sh_size"])),
        (int(strtab["sh_offset"]), int(strtab["sh_size"])),
        file_size,
    )


def read_elf(handle: BinaryIO, member: str) -> ElfBuild:
    """The build facts of one ELF file (open for binary reading); damage becomes `error`."""
    try:
        file_size = os.fstat(handle.fileno()).st_size
        check_bounds(handle, file_size)
        handle.seek(0)
        elf = ELFFile(handle)
        comment = _section(elf, ".comment", COMMENT_MAX, file_size)
        comments = comment_lines(comment.data()) if comment is not None else ()
        gold = ""
        note = _section(elf, ".note.gnu.gold-version", NOTE_MAX, file_size)
        if note is not None:
            m = _GOLD.search(note.data().decode("ascii", "replace"))
            gold = m[1] if m else "?"
        needed: list[str] = []
        dynamic = _section(elf, ".dynamic", DYNAMIC_MAX, file_size)
        if dynamic is not None:
            for tag in itertools.islice(dynamic.iter_tags(), ENTRIES_MAX):
                if tag.entry.d_tag == "DT_NEEDED":
                    needed.append(str(tag.needed)[:256])
        versions: dict[str, list[str]] = {"GLIBCXX": [], "GLIBC": []}
        verneed = _section(elf, ".gnu.version_r", DYNAMIC_MAX, file_size)
        if verneed is not None and verneed["sh_type"] == "SHT_GNU_verneed":
            for _library, names in version_needs(handle, elf, verneed, file_size):
                for name in names:
                    m = _VERSIONED.fullmatch(name)
                    if m:
                        versions[m[1]].append(m[2])
    except OSError as exc:
        # a damaged offset (a program header's, a string's) makes pyelftools seek where no
        # file can be: the file's fault, not the disk's
        if exc.errno not in (errno.EINVAL, errno.EOVERFLOW):
            raise io_error(Path(member), exc, "cannot be read") from None
        return ElfBuild(member, error=f"unreadable ELF (a damaged offset: {exc.strerror})")
    except READ_ERRORS as exc:
        return ElfBuild(member, error=f"unreadable ELF ({type(exc).__name__}: {exc})"[:300])
    return ElfBuild(
        member,
        comments,
        tuple(needed),
        _highest(versions["GLIBCXX"]),
        _highest(versions["GLIBC"]),
        gold,
    )


@dataclass(frozen=True)
class BuiltWith:
    """The build facts of a wheel's ELF members, and what they say together."""

    members: tuple[ElfBuild, ...]

    def _most(self, idents: Iterable[Ident | None]) -> Ident | None:
        counts = Counter(i for i in idents if i is not None)
        if not counts:
            return None
        # most members first; then the newest version, so the answer never depends on order
        return max(counts, key=lambda i: (counts[i], version_key(i.version), i.name, i.vendor))

    @property
    def compiler(self) -> Ident | None:
        """The compiler most ELF members name."""
        return self._most(m.compiler for m in self.members)

    @property
    def compilers(self) -> tuple[Ident, ...]:
        """Every distinct compiler a member's own code names (most members first)."""
        counts = Counter(m.compiler for m in self.members if m.compiler is not None)
        return tuple(sorted(counts, key=lambda i: (-counts[i], i)))

    @property
    def linker(self) -> Ident | None:
        return self._most(m.linker for m in self.members)

    @property
    def gcc_objects(self) -> tuple[Ident, ...]:
        """GCC installations whose objects were linked in beside another compiler's code,
        newest first."""
        return tuple(sorted({i for m in self.members for i in m.gcc_objects}, reverse=True))

    @property
    def needs_libstdcxx(self) -> bool:
        return any(m.needs_libstdcxx for m in self.members)

    @property
    def glibcxx(self) -> str:
        return _highest(m.glibcxx for m in self.members if m.glibcxx)

    @property
    def glibc(self) -> str:
        return _highest(m.glibc for m in self.members if m.glibc)

    @property
    def unreadable(self) -> tuple[ElfBuild, ...]:
        return tuple(m for m in self.members if m.error)

    @property
    def silent(self) -> tuple[ElfBuild, ...]:
        """Readable members that name no compiler (their .comment was stripped)."""
        return tuple(m for m in self.members if not m.error and m.compiler is None)

    def libstdcxx_text(self) -> str:
        if not self.needs_libstdcxx:
            return "no libstdc++"
        if not self.glibcxx:
            return "libstdc++ (no GLIBCXX_ version needed)"
        first = glibcxx_gcc(self.glibcxx)
        since = {"<": "a GCC before ", ">": "a GCC after "}.get(first[:1], "GCC >= ")
        return f"libstdc++ GLIBCXX_{self.glibcxx} ({since}{first.lstrip('<>')})"

    def summary(self) -> str:
        """One line: 'clang 18.1.8 (Ubuntu) + LLD 18.1.8; libstdc++ GLIBCXX_3.4.19 (GCC >=
        4.8.3), GCC 9.3.1 (GNU) objects; glibc 2.17'."""
        if not self.members:
            return "no ELF members"
        c, ld = self.compiler, self.linker
        head = c.label if c else "no compiler named (.comment stripped)"
        head += f" + {ld.label}" if ld else " (linker leaves no mark: GNU ld?)"
        others = [i.label for i in self.compilers if i != c]
        if others:
            head += f" (also {', '.join(others[:3])})"
        runtime = ", ".join(i.label for i in self.gcc_objects[:2])
        tail = self.libstdcxx_text() + (f", {runtime} objects" if runtime else "")
        return f"{head}; {tail}; glibc {self.glibc or 'not versioned'}"

    def as_dict(self) -> dict[str, Any]:
        c, ld = self.compiler, self.linker
        return {
            "summary": self.summary(),
            "compiler": c.as_dict() if c else None,
            "compiler_origin": c.origin if c else "",
            "compilers": [i.as_dict() for i in self.compilers],
            "linker": ld.as_dict() if ld else None,
            "gcc_objects": [i.as_dict() for i in self.gcc_objects],
            "libstdcxx": {
                "needed": self.needs_libstdcxx,
                "glibcxx": self.glibcxx,
                "first_gcc": glibcxx_gcc(self.glibcxx) if self.glibcxx else "",
            },
            "glibc": self.glibc,
            "elf_members": len(self.members),
            "unreadable": [{"member": m.member, "error": m.error} for m in self.unreadable],
            "silent": [m.member for m in self.silent],
        }


def read_wheel(
    path: Path,
    *,
    on_elf: Callable[[str, Path], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    scratch: Path | None = None,
) -> BuiltWith:
    """The build facts of every ELF member of a wheel (found by its magic, whatever its name).

    Each ELF is copied to a scratch file, read, handed to on_elf(member, path) and deleted.
    ConfigError when the file is not a readable wheel."""
    archive, _name, _version, _tags = read.open_wheel(Path(path))
    out: list[ElfBuild] = []
    with archive, tempfile.TemporaryDirectory(prefix="tfforge-builtwith-", dir=scratch) as tmp:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        total = sum(i.file_size for i in infos)
        if total > read.MAX_TOTAL:
            raise ConfigError(
                f"{Path(path).name}: its members expand to {total} bytes, over the "
                f"{read.MAX_TOTAL >> 30} GiB cap for a wheel; not read"
            )
        done = 0
        for info in infos:
            done += info.file_size
            if info.file_size < 64 or read.bomb_reason(info) or read.member_problem(info):
                continue
            scratch_file = Path(tmp) / "member"
            try:
                with archive.open(info) as src:
                    if src.read(4) != ELF_MAGIC:
                        continue
                    try:
                        with open(scratch_file, "wb") as dst:
                            dst.write(ELF_MAGIC)
                            shutil.copyfileobj(src, dst, read.BLOCK)
                    except OSError as exc:
                        raise io_error(scratch_file, exc, "cannot be written") from None
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                out.append(ElfBuild(info.filename, error=f"cannot be unpacked ({exc})"))
                continue
            with open(scratch_file, "rb") as fh:
                out.append(read_elf(fh, info.filename))
            if on_elf is not None:
                on_elf(info.filename, scratch_file)
            scratch_file.unlink()
            if progress:
                progress(done, total)
    return BuiltWith(tuple(out))


def read_file(path: Path) -> ElfBuild:
    """The build facts of one ELF file on disk."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != ELF_MAGIC:
                raise ConfigError(f"{path}: not an ELF file")
            fh.seek(0)
            return read_elf(fh, str(path))
    except OSError as exc:
        raise io_error(Path(path), exc, "cannot be read") from None
