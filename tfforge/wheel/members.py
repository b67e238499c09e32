"""The rules a wheel's members must follow before anything reads, extracts or installs them.

One function per rule, each pure and each the only place the rule is written:

- `name_problem(name)`: a member name is a relative POSIX path of ordinary characters: no
  leading `/`, no drive (`C:`), no backslash, no NUL or other control or format character, no
  empty, `.` or `..` part, at most PATH_MAX bytes and NAME_MAX bytes a part.
- `type_problem(info)`: a member is a regular file or a folder entry. The mode in the upper
  16 bits of `external_attr` is read whatever `create_system` says: an unpacker that honours
  modes (bsdtar, unzip on some systems, a future installer) would make a symlink, FIFO or
  device of it, so none of them is allowed, not even a link that points inside the wheel (a
  chain of such links climbs out one step at a time).
- `duplicate_problems(names)`: no name twice, and no two names that one case-insensitive or
  Unicode-normalising file system (macOS, Windows) would write to the same file; no name that
  is a file in one member and a folder in another.
- `is_elf(head)`: machine code is found by content (the ELF magic), never by the file name.
"""

from __future__ import annotations

import stat
import unicodedata
import zipfile
from collections.abc import Iterable

ELF_MAGIC = b"\x7fELF"
PATH_MAX = 4096
NAME_MAX = 255
# Control, format, surrogate, private-use and unassigned characters, and line/paragraph
# separators: none belongs in a file name, and each can change how a name prints or splits.
_BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def name_problem(name: str) -> str | None:
    """Why a member name is not a safe relative path (None when it is)."""
    if not name:
        return "empty name"
    # Printable ASCII holds no character of those categories: the per-character look-up
    # (20 us for a typical name, 13,000 names in a TensorFlow wheel) is for the rest.
    plain = name.isascii() and name.isprintable()
    bad = (
        None
        if plain
        else next((ch for ch in name if unicodedata.category(ch) in _BAD_CATEGORIES), None)
    )
    if bad is not None:
        return f"control or format character U+{ord(bad):04X} in the name"
    if "\\" in name:
        return "backslash in path"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        return "absolute path"
    encoded = len(name.encode("utf-8", "surrogatepass"))
    if encoded > PATH_MAX:
        return f"name of {encoded} bytes, over the {PATH_MAX} a path may have"
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        return "'..' in path"
    if any(part in ("", ".") for part in parts):
        return "empty or '.' part in path"
    long = next((p for p in parts if len(p.encode("utf-8", "surrogatepass")) > NAME_MAX), None)
    if long is not None:
        return f"a path part of over {NAME_MAX} bytes"
    return None


def mode(info: zipfile.ZipInfo) -> int:
    """The Unix mode stored in a member's external attributes (0 when none is stored)."""
    return (info.external_attr >> 16) & 0xFFFF


def type_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a member is not a plain file or folder entry, whatever its create_system says."""
    kind = stat.S_IFMT(mode(info))
    if kind in (0, stat.S_IFREG):
        return None
    if kind == stat.S_IFDIR:
        return None if info.filename.endswith("/") else "a folder entry without a trailing '/'"
    what = {
        stat.S_IFLNK: "a symlink",
        stat.S_IFIFO: "a FIFO",
        stat.S_IFCHR: "a character device",
        stat.S_IFBLK: "a block device",
        stat.S_IFSOCK: "a socket",
    }.get(kind, f"file type {kind >> 12:o}")
    return f"{what} (create_system {info.create_system}); wheels hold regular files only"


def folded(name: str) -> str:
    """The name a case-insensitive, normalising file system stores (NFC, case-folded)."""
    return unicodedata.normalize("NFC", name.rstrip("/")).casefold()


def duplicate_problems(names: Iterable[str]) -> list[str]:
    """Names that would overwrite each other, or be a file and a folder at once."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    files: set[str] = set()
    for name in names:
        key = folded(name)
        other = seen.get(key)
        if other is not None and not (name.endswith("/") and other.endswith("/")):
            if other == name:
                problems.append(f"member {name!r} appears twice in the zip")
            else:
                problems.append(
                    f"members {other!r} and {name!r} are one file on a case-insensitive file system"
                )
        seen.setdefault(key, name)
        if not name.endswith("/"):
            files.add(key)
    for key, name in seen.items():
        parts = key.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in files:
                problems.append(f"{seen[parent]!r} is a file and also the folder of {name!r}")
                break
    return problems


def is_elf(head: bytes) -> bool:
    """Whether a member's first bytes are the ELF magic."""
    return head[:4] == ELF_MAGIC
