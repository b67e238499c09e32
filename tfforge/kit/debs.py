"""Debian packages in a kit: each .deb's control fields, and a flat local repository of them
(Packages index, sources.list, apt.conf) that a kit build's apt reads instead of the archive.

A .deb is an ar archive holding debian-binary, control.tar.{gz,xz,} and data.tar.*; only the
control member is read, with bounded sizes (a .deb in a kit is outside input).
"""

from __future__ import annotations

import io
import lzma
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from tfforge.errors import ConfigError

AR_MAGIC = b"!<arch>\n"
MAX_CONTROL_TAR = 16 << 20
MAX_CONTROL = 1 << 20


def _members(data: bytes, where: str) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each ar member, in order."""
    if not data.startswith(AR_MAGIC):
        raise ConfigError(f"{where}: not a Debian package (no ar header)")
    at = len(AR_MAGIC)
    while at < len(data):
        header = data[at : at + 60]
        if len(header) < 60 or header[58:60] != b"`\n":
            raise ConfigError(f"{where}: damaged ar member header at byte {at}")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise ConfigError(f"{where}: damaged ar member size at byte {at}") from None
        start = at + 60
        if size < 0 or start + size > len(data):
            raise ConfigError(f"{where}: ar member {name!r} runs past the end of the file")
        yield name, data[start : start + size]
        at = start + size + (size & 1)


def _decompress(name: str, blob: bytes, where: str) -> bytes:
    try:
        if name.endswith(".gz"):
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = d.decompress(blob, MAX_CONTROL_TAR)
        elif name.endswith(".xz"):
            out = lzma.LZMADecompressor().decompress(blob, MAX_CONTROL_TAR)
        elif name == "control.tar":
            out = blob
        else:
            raise ConfigError(f"{where}: {name} is compressed in a way tfforge does not read")
    except (zlib.error, lzma.LZMAError) as exc:
        raise ConfigError(f"{where}: {name} is damaged ({exc})") from None
    if len(out) >= MAX_CONTROL_TAR:
        raise ConfigError(f"{where}: {name} unpacks to more than {MAX_CONTROL_TAR >> 20} MiB")
    return out


def control_text(data: bytes, where: str = "package") -> str:
    """The control paragraph of a .deb's bytes."""
    for name, blob in _members(data, where):
        if name.startswith("control.tar"):
            raw = _decompress(name, blob, where)
            try:
                with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
                    for info in tar:
                        if info.isfile() and info.name.lstrip("./") == "control":
                            if info.size > MAX_CONTROL:
                                raise ConfigError(f"{where}: control file is too large")
                            handle = tar.extractfile(info)
                            text = handle.read().decode("utf-8") if handle else ""
                            return text.strip("\n") + "\n"
            except (tarfile.TarError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{where}: {name} is damaged ({exc})") from None
            raise ConfigError(f"{where}: {name} has no control file")
    raise ConfigError(f"{where}: no control.tar member")


def fields(control: str) -> dict[str, str]:
    """Field name -> value (continuation lines kept) of one control paragraph."""
    out: dict[str, str] = {}
    key = None
    for line in control.splitlines():
        if line[:1] in (" ", "\t") and key:
            out[key] += "\n" + line
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip()
            out[key] = value.strip()
        elif line.strip():
            raise ConfigError(f"control line {line[:60]!r} is neither a field nor a continuation")
    return out


def read(path: Path) -> dict[str, str]:
    return fields(control_text(Path(path).read_bytes(), str(path)))


def packages_index(debs: list[tuple[str, str, int, str]]) -> str:
    """A Packages file for a flat repository: (file name, control text, size, sha256) each."""
    paragraphs = []
    for name, control, size, sha in sorted(debs):
        body = control.strip("\n")
        paragraphs.append(f"{body}\nFilename: ./{name}\nSize: {size}\nSHA256: {sha}\n")
    return "\n".join(paragraphs)


def apt_files(repo: str) -> dict[str, str]:
    """sources.list and apt.conf (APT_CONFIG) that make apt read only the flat repository at
    `repo` (a path inside the build step)."""
    return {
        "sources.list": f"deb [trusted=yes] file:{repo} ./\n",
        "apt.conf": (
            f'Dir::Etc::SourceList "{repo}/sources.list";\n'
            f'Dir::Etc::SourceParts "{repo}/sources.list.d";\n'
        ),
    }
