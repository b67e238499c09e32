"""Hostile wheels for property tests, and the oracles they are judged by.

The oracles are not tfforge's rules restated: `installer_refuses` asks pypa's installer,
`escapes` really extracts the members into a folder the way a mode-honouring unpacker does
(links made as links, later members written through them) and looks where the files landed,
and `metadata_refused` asks packaging's strict parser about the METADATA bytes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import tempfile
import zipfile
from pathlib import Path

DIST = "demo"
VERSION = "1.0"
INFO = f"{DIST}-{VERSION}.dist-info"
WHEEL = b"Wheel-Version: 1.0\nGenerator: tfforge-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def metadata(summary: bytes = b"demo") -> bytes:
    return b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nSummary: " + summary + b"\n\n"


def build(
    folder: Path,
    members: list[tuple[str, str, bytes, int]],
    *,
    meta: bytes | None = None,
    extra_info: dict[str, bytes] | None = None,
    record_rows: list[str] | None = None,
) -> Path:
    """A wheel `demo-1.0-py3-none-any.whl` holding `members` (name, kind, data, create_system;
    kind: file, symlink, fifo, dir) beside a sound .dist-info; RECORD lists every member with
    its true hash unless `record_rows` replaces RECORD's rows."""
    info = {"METADATA": meta if meta is not None else metadata(), "WHEEL": WHEEL}
    info.update(extra_info or {})
    entries = [(n, "file", d, 3) for n, d in ((f"{INFO}/{k}", v) for k, v in info.items())]
    entries = list(members) + entries
    rows = [f'"{n}",{record_hash(d)},{len(d)}' for n, kind, d, _ in entries if not n.endswith("/")]
    rows = record_rows if record_rows is not None else rows
    record = ("\n".join([*rows, f"{INFO}/RECORD,,"]) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{DIST}-{VERSION}-py3-none-any.whl"
    modes = {"file": 0o100644, "symlink": 0o120777, "fifo": 0o010644, "dir": 0o040755}
    with zipfile.ZipFile(path, "w") as zf:
        for name, kind, data, system in [*entries, (f"{INFO}/RECORD", "file", record, 3)]:
            zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            zi.create_system = system
            zi.external_attr = modes[kind] << 16
            zf.writestr(zi, data)
    return path


def installer_refuses(path: Path) -> str | None:
    """installer's own verdict on the wheel's RECORD and .dist-info (None = accepted)."""
    from installer.sources import WheelFile

    try:
        with WheelFile.open(path) as source:
            source.validate_record()
            _ = source.dist_info_dir
    except Exception as exc:  # noqa: BLE001 - installer's errors share no narrower base
        return f"{type(exc).__name__}: {exc}"
    return None


def escapes(path: Path) -> str | None:
    """Extract like a mode-honouring unpacker (links as links whatever create_system says,
    later members written through earlier links, on a case-insensitive file system when
    `fold`) and say which member landed outside the root or overwrote another (None: none)."""
    with tempfile.TemporaryDirectory() as tmp:
        outer = Path(tmp)
        root = outer / "root"
        root.mkdir()
        real_root = os.path.realpath(root)
        written: dict[str, str] = {}
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = info.filename
                target = os.path.join(root, name)
                where = os.path.realpath(os.path.dirname(target.rstrip("/")))
                if not (where + "/").startswith(real_root + "/") and where != real_root:
                    return f"{name!r} lands in {where}"
                final = os.path.realpath(target)
                if not (final + "/").startswith(real_root + "/"):
                    return f"{name!r} resolves to {final}"
                key = final.casefold()
                if key in written and not name.endswith("/"):
                    return f"{name!r} overwrites {written[key]!r}"
                written[key] = name
                mode = (info.external_attr >> 16) & 0xFFFF
                try:
                    if name.endswith("/") or stat.S_ISDIR(mode):
                        os.makedirs(target, exist_ok=True)
                    elif stat.S_ISLNK(mode):
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        os.symlink(zf.read(info).decode("utf-8", "replace"), target)
                    else:
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        with open(target, "wb") as fh:
                            fh.write(zf.read(info))
                except (OSError, ValueError):
                    continue  # the unpacker gives up on this member: nothing landed
    return None


def metadata_refused(data: bytes) -> str | None:
    """packaging's strict reading of METADATA bytes (None = accepted)."""
    from packaging.metadata import Metadata

    try:
        Metadata.from_email(data, validate=True)
    except Exception as exc:  # noqa: BLE001 - an ExceptionGroup or a decode error
        return str(exc)
    return None
