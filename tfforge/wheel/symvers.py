"""What a wheel's ELF members need from the loader: DT_NEEDED libraries and the symbol versions
(.gnu.version_r) they need from each. The members come from the one wheel reader's rules
(tfforge.wheel.builtwith.read_wheel over tfforge.wheel.read: every member whose content is ELF,
whatever its name, under the reader's caps); each is read with pyelftools.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

from tfforge.wheel import builtwith


@dataclass(frozen=True)
class ElfNeeds:
    """One ELF member's needs from the dynamic loader."""

    member: str
    soname: str | None
    needed: tuple[str, ...]  # DT_NEEDED
    versions: tuple[tuple[str, tuple[str, ...]], ...]  # (library file, version names)

    def to_dict(self) -> dict[str, object]:
        return {
            "member": self.member,
            "soname": self.soname,
            "needed": list(self.needed),
            "versions": {lib: list(names) for lib, names in self.versions},
        }


def read_needs(path: Path, member: str) -> ElfNeeds:
    """DT_NEEDED, DT_SONAME and the version needs of one ELF file; ValueError when unreadable."""
    try:
        with open(path, "rb") as f:
            builtwith.check_bounds(f, os.fstat(f.fileno()).st_size)
            f.seek(0)
            elf = ELFFile(f)
            needed: list[str] = []
            soname = None
            versions: dict[str, set[str]] = {}
            for section in elf.iter_sections():
                if isinstance(section, DynamicSection):
                    for tag in itertools.islice(section.iter_tags(), builtwith.ENTRIES_MAX):
                        if tag.entry.d_tag == "DT_NEEDED":
                            needed.append(str(tag.needed))  # type: ignore[attr-defined]
                        elif tag.entry.d_tag == "DT_SONAME":
                            soname = str(tag.soname)  # type: ignore[attr-defined]
                elif isinstance(section, GNUVerNeedSection):
                    size = os.fstat(f.fileno()).st_size
                    for lib, names in builtwith.version_needs(f, elf, section, size):
                        versions.setdefault(lib, set()).update(names)
    except (ELFError, OSError, ValueError, KeyError, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"{member}: unreadable ELF ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # noqa: BLE001 - pyelftools on damaged input raises anything
        raise ValueError(f"{member}: unreadable ELF ({type(exc).__name__}: {exc})") from None
    return ElfNeeds(
        member,
        soname,
        tuple(needed),
        tuple((lib, tuple(sorted(names))) for lib, names in sorted(versions.items())),
    )


def wheel_needs(wheel: Path) -> tuple[list[ElfNeeds], list[str]]:
    """Every ELF member's needs, and the members that could not be read (with why).
    ConfigError when the file is not a readable wheel."""
    out: list[ElfNeeds] = []
    errors: list[str] = []
    handed: set[str] = set()

    def take(member: str, path: Path) -> None:
        handed.add(member)
        try:
            out.append(read_needs(path, member))
        except ValueError as exc:
            errors.append(str(exc))

    built = builtwith.read_wheel(Path(wheel), on_elf=take)
    # members the reader could not unpack were never handed over
    errors += [f"{m.member}: {m.error}" for m in built.members if m.member not in handed]
    return out, errors


def provided_inside(needs: list[ElfNeeds]) -> frozenset[str]:
    """Library names the wheel itself carries (their SONAMEs and file names)."""
    names = {PurePosixPath(n.member).name for n in needs}
    names |= {n.soname for n in needs if n.soname}
    return frozenset(names)
