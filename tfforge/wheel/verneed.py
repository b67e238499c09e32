"""An ELF file's version needs (.gnu.version_r), read with the one bound every reader of them
shares: the walk visits at most one entry per 16 bytes of the section, so a chain whose
`vn_next`/`vna_next` loops or whose counts lie (pyelftools trusts `sh_info` and `vn_cnt`: up to
2**32 * 65535 steps) is an error after work proportional to the section's size, never a hang.

Used by the ISA scan (tfforge.elfscan.tables), the build facts (tfforge.wheel.builtwith) and the
loader needs (tfforge.wheel.symvers).
"""

from __future__ import annotations

import os
import struct

ENTRY = 16  # Elf64_Verneed and Elf64_Vernaux are both 16 bytes
SECTION_MAX = 1 << 20  # a real table holds a few hundred entries
NAME_MAX = 256


def _name(fd: int, strtab: tuple[int, int], at: int) -> str:
    offset, size = strtab
    if at >= size:
        raise ValueError(f"a version name at {at} lies outside its {size}-byte string table")
    raw = os.pread(fd, min(NAME_MAX + 1, size - at), offset + at)
    end = raw.find(b"\0")
    if end < 0:
        raise ValueError(f"the version name at {at} is unterminated or over {NAME_MAX} bytes")
    return raw[:end].decode("utf-8", "replace")


def read(
    fd: int, section: tuple[int, int], strtab: tuple[int, int], file_size: int
) -> list[tuple[str, tuple[str, ...]]]:
    """(library file, version names) for each version need in the section at (offset, size),
    names from the string table at (offset, size); ValueError when either lies outside the
    file, the section is too big, an entry lies outside the section, or the walk would visit
    more entries than the section has room for (a loop)."""
    offset, size = section
    for what, (off, n) in (("version needs", section), ("their string table", strtab)):
        if off < 0 or n < 0 or off + n > file_size:
            raise ValueError(f"{what} ({n} bytes at {off}) lie outside the file")
    if size > SECTION_MAX:
        raise ValueError(f"version needs of {size} bytes (at most {SECTION_MAX})")
    raw = os.pread(fd, size, offset)
    budget = len(raw) // ENTRY  # entries a table of this size can hold

    def entry(at: int, fmt: str) -> tuple[int, ...]:
        nonlocal budget
        budget -= 1
        if budget < 0:
            raise ValueError("version needs loop or claim more entries than the section holds")
        if at < 0 or at + ENTRY > len(raw):
            raise ValueError(f"a version need entry at {at} lies outside the section")
        return struct.unpack_from(fmt, raw, at)

    out: list[tuple[str, tuple[str, ...]]] = []
    at = 0
    while raw:
        _version, cnt, file_name, aux, nxt = entry(at, "<HHIII")
        names = []
        aux_at = at + aux
        for _ in range(cnt):
            _hash, _flags, _other, name, aux_next = entry(aux_at, "<IHHII")
            names.append(_name(fd, strtab, name))
            if not aux_next:
                break
            aux_at += aux_next
        out.append((_name(fd, strtab, file_name), tuple(names)))
        if not nxt:
            break
        at += nxt
    return out
