"""Small platform wheels shaped like the fixture's, and a RECORD re-check, for engine and wheel
tests."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile
from pathlib import Path


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def raw_wheel(folder: Path, *, version: str = "2.21.0", tamper: str = "") -> Path:
    """A platform wheel like the fixture's: package, an executable .so, a .data dir, dist-info."""
    info = f"tensorflow_cpu-{version}.dist-info"
    files = {
        "tensorflow/__init__.py": b"VERSION = '2.21.0'\n",
        "tensorflow/python/_pywrap_tfws.so": bytes(range(256)) * 64,
        f"tensorflow_cpu-{version}.data/scripts/tfws-info": b"#!/bin/sh\necho tfws\n",
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: tensorflow-cpu\nVersion: {version}\n"
            "Summary: x\n\nVersion: 9.9 (body text, not a header)\n"
        ).encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\n"
        b"Tag: cp311-cp311-linux_x86_64\n",
    }
    rows = [f"{n},{_hash(d + (b'x' if n == tamper else b''))},{len(d)}" for n, d in files.items()]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"tensorflow_cpu-{version}-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            member = zipfile.ZipInfo(name, date_time=(2024, 5, 6, 7, 8, 9))
            member.external_attr = (0o100755 if name.endswith((".so", "info")) else 0o100644) << 16
            archive.writestr(member, data)
        archive.writestr(f"{info}/RECORD", "\n".join(rows + [f"{info}/RECORD,,"]) + "\n")
    return path


def record_problems(path: Path) -> list[str]:
    """Re-read a wheel: every member listed once in RECORD with matching sha256 and size."""
    problems = []
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
        rows = list(csv.reader(io.StringIO(archive.read(record_name).decode())))
        listed = {r[0]: r for r in rows if r}
        if sorted(listed) != sorted(names) or len(rows) != len(listed):
            problems.append(f"RECORD lists {sorted(listed)}, archive has {sorted(names)}")
        for name in names:
            if name == record_name:
                continue
            data = archive.read(name)
            if listed.get(name, [None, None, None])[1:] != [_hash(data), str(len(data))]:
                problems.append(f"{name}: RECORD line does not match")
    return problems
