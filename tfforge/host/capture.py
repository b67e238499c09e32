#!/usr/bin/env python3
"""tfforge host capture: this machine's CPU and runtime as one JSON document, stdlib only.

Run it on a fleet host with the Python every host has (3.6 or newer), keep what it prints:

    python3 capture.py > web-1.json

and give web-1.json to tfforge like a `detect --save` snapshot (`match hosts/`, `build --host`,
`verify --host`). It records /proc/cpuinfo as it is, the C library and its version, the symbol
versions the loader's own libc, libm, libstdc++, libgcc_s and libgomp define (read from their
.gnu.version_d sections, the table the loader checks), the Pythons on PATH and the
distribution (/etc/os-release). It writes nothing, runs no compiler and needs no root.

tfforge itself imports this file to describe the machine it runs on (`invoke detect`), so a
remote capture and a local one are the same code; `invoke detect --capture-script` prints it.
"""

import ctypes
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Set, Tuple

SCHEMA = "tfforge-capture/1"
# The libraries a compiled Python extension usually needs from the system; for each the loader's
# copy is found (dlopen + dlinfo) and the version names it defines are read.
LIBRARIES = ("libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libgomp.so.1")
SHT_GNU_VERDEF = 0x6FFFFFFD
VER_FLG_BASE = 1
RTLD_DI_LINKMAP = 2
CPUINFO_CAP = 8 << 20
PY_NAME = re.compile(r"^python(3\.[0-9]{1,2})$")
PY_VERSION = re.compile(r"^3\.[0-9]{1,2}$")
MAX_CANDIDATES = 64  # python3.N files run to ask their version
PY_DIRS = ("/usr/bin", "/usr/local/bin", "/bin", "/opt/rh")


class _LinkMap(ctypes.Structure):
    _fields_ = [
        ("l_addr", ctypes.c_void_p),
        ("l_name", ctypes.c_char_p),
        ("l_ld", ctypes.c_void_p),
        ("l_next", ctypes.c_void_p),
        ("l_prev", ctypes.c_void_p),
    ]


def loaded_path(soname: str) -> Optional[str]:
    """The file the dynamic loader uses for soname (None when it finds none)."""
    try:
        lib = ctypes.CDLL(soname)
    except OSError:
        return None
    try:
        dlinfo = ctypes.CDLL(None).dlinfo
    except AttributeError:  # glibc < 2.34 keeps dlinfo in libdl
        try:
            dlinfo = ctypes.CDLL("libdl.so.2").dlinfo
        except (OSError, AttributeError):
            return None
    link = ctypes.POINTER(_LinkMap)()
    if dlinfo(ctypes.c_void_p(lib._handle), RTLD_DI_LINKMAP, ctypes.byref(link)) != 0:
        return None
    name = link.contents.l_name
    return os.path.realpath(name.decode("utf-8", "replace")) if name else None


def version_definitions(path: str) -> List[str]:
    """Version names an ELF64 little-endian library defines (its .gnu.version_d), sorted."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)
    ]
    names: Set[str] = set()
    for sec in sections:
        if sec[1] != SHT_GNU_VERDEF:
            continue
        off, count = sec[4], sec[7]
        strtab = sections[sec[6]][4]
        for _ in range(count):
            flags, _ndx, _cnt, _hash, aux, nxt = struct.unpack_from("<HHHIII", data, off + 2)
            if not flags & VER_FLG_BASE:
                (name_off,) = struct.unpack_from("<I", data, off + aux)
                start = strtab + name_off
                names.add(data[start : data.index(b"\0", start)].decode("ascii", "replace"))
            if not nxt:
                break
            off += nxt
    return sorted(names)


def library(soname: str) -> Dict[str, Any]:
    path = loaded_path(soname)
    doc: Dict[str, Any] = {"path": path, "defines": []}
    if path:
        try:
            doc["defines"] = version_definitions(path)
        except (OSError, ValueError, struct.error, IndexError) as exc:
            doc["error"] = "%s: %s" % (type(exc).__name__, exc)
    return doc


def libc() -> Tuple[str, Optional[str]]:
    """('glibc', '2.31') from the C library itself; ('musl' or 'unknown', None) otherwise."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        text = ""
    m = re.match(r"glibc ([0-9]+\.[0-9]+)", text)
    if m:
        return "glibc", m.group(1)
    if os.path.exists("/lib/ld-musl-x86_64.so.1"):
        return "musl", None
    return "unknown", None


def pythons() -> List[str]:
    """Versions of python3.N found on PATH and in the usual folders that really run, and this
    one. A name is only a hint (pyenv shims and broken links exist for versions that are not
    installed): a version counts once one of its files prints that version. The candidates run
    side by side, so a shim that takes a fraction of a second costs that once, not per name."""
    here = "%d.%d" % sys.version_info[:2]
    candidates: Dict[str, str] = {}  # path -> the version its name claims
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d] + list(PY_DIRS)
    for d in dirs:
        try:
            entries = os.listdir(d)
        except OSError:
            continue
        for name in entries:
            m = PY_NAME.match(name)
            path = os.path.join(d, name)
            if m and m.group(1) != here and os.access(path, os.X_OK):
                candidates.setdefault(path, m.group(1))
    runs = _versions_reported(sorted(candidates)[:MAX_CANDIDATES])
    found = {here} | {v for path, v in candidates.items() if runs.get(path) == v}
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def _versions_reported(paths: List[str], timeout: float = 10.0) -> Dict[str, str]:
    """The X.Y version each interpreter reports (all started at once, all done within `timeout`
    seconds); one that does not run, fails, is too slow or says something else is left out."""
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    started = []
    for path in paths:
        try:
            proc = subprocess.Popen(
                [path, "-I", "-c", code],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        started.append((path, proc))
    out = {}
    deadline = time.monotonic() + timeout
    for path, proc in started:
        try:
            text, _ = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            continue
        said = text.decode("ascii", "replace").strip()
        if proc.returncode == 0 and PY_VERSION.match(said):
            out[path] = said
    return out


def distribution() -> Dict[str, str]:
    """ID, VERSION_ID and PRETTY_NAME of /etc/os-release (then /usr/lib/os-release)."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read(65536).splitlines()
        except OSError:
            continue
        fields: Dict[str, str] = {}
        for line in lines:
            key, sep, value = line.partition("=")
            if sep:
                fields[key.strip()] = value.strip().strip("\"'")
        return {
            "id": fields.get("ID", ""),
            "version_id": fields.get("VERSION_ID", ""),
            "name": fields.get("PRETTY_NAME", ""),
        }
    return {"id": "", "version_id": "", "name": ""}


def runtime() -> Dict[str, Any]:
    kind, version = libc()
    return {
        "libc": kind,
        "glibc": version,
        "libraries": {name: library(name) for name in LIBRARIES} if kind == "glibc" else {},
        "python": "%d.%d" % sys.version_info[:2],
        "pythons": pythons(),
        "distribution": distribution(),
        "captured_by": "%s under Python %s" % (SCHEMA, sys.version.split()[0]),
    }


def capture() -> Dict[str, Any]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpuinfo = f.read(CPUINFO_CAP)
    except OSError:
        cpuinfo = ""
    return {
        "schema": SCHEMA,
        "name": socket.gethostname(),
        "cpuinfo": cpuinfo,
        "runtime": runtime(),
    }


if __name__ == "__main__":
    json.dump(capture(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
