"""A host's runtime: C library, the symbol versions its system libraries define, its Pythons
and its distribution. Decides nothing (tfforge/verify/runtime.py and build/floor.py do).

The facts come from tfforge/host/capture.py, a stdlib-only script: tfforge imports it for this
machine and prints it for others (`invoke detect --capture-script`), so both are the same code.
A snapshot without them (a raw /proc/cpuinfo copy, an older snapshot) has an unknown runtime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from tfforge import resources
from tfforge.errors import ConfigError

CAPTURE_SCHEMA = "tfforge-capture/1"
# Names a version table may hold: GLIBC_2.34, GLIBCXX_3.4.30, CXXABI_TM_1, GLIBC_ABI_DT_RELR ...
_VERSION_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")
_NUMBERED = re.compile(r"^([A-Z_]+?)_([0-9]+(?:\.[0-9]+){0,3})$")
_GLIBC = re.compile(r"^[0-9]{1,2}\.[0-9]{1,3}$")
_PYTHON = re.compile(r"^[23]\.[0-9]{1,2}$")
_SONAME = re.compile(r"^[A-Za-z0-9_.+-]{1,128}$")
LIBC_KINDS = ("glibc", "musl", "unknown")
MAX_NAMES = 4096
MAX_LIBRARIES = 64


def numbered(name: str) -> tuple[str, tuple[int, ...]] | None:
    """'GLIBCXX_3.4.30' -> ('GLIBCXX', (3, 4, 30)); None for names without a number."""
    m = _NUMBERED.fullmatch(name)
    return (m[1], tuple(int(p) for p in m[2].split("."))) if m else None


def newest(names: frozenset[str] | tuple[str, ...], prefix: str) -> str | None:
    """The highest numbered name with this prefix ('GLIBCXX' -> 'GLIBCXX_3.4.30')."""
    found = [(n[1], name) for name in names if (n := numbered(name)) and n[0] == prefix]
    return max(found)[1] if found else None


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


@dataclass(frozen=True)
class SystemLibrary:
    """One system library as the host's loader finds it: its file and the versions it defines."""

    soname: str
    path: str | None  # None: the loader finds no such library on this host
    defines: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "defines": sorted(self.defines)}


@dataclass(frozen=True)
class Runtime:
    """What a host's loader and Python offer a wheel."""

    libc: str  # glibc | musl | unknown
    glibc: str | None  # '2.31'
    libraries: tuple[SystemLibrary, ...]
    python: str | None  # the python3 the capture ran under
    pythons: tuple[str, ...]
    distribution: tuple[str, str, str]  # ID, VERSION_ID, PRETTY_NAME of os-release
    captured_by: str

    def library(self, soname: str) -> SystemLibrary | None:
        return next((lib for lib in self.libraries if lib.soname == soname), None)

    @cached_property
    def glibcxx(self) -> str | None:
        """The newest GLIBCXX_ version the host's libstdc++ defines (None: no libstdc++)."""
        lib = self.library("libstdc++.so.6")
        return newest(lib.defines, "GLIBCXX") if lib else None

    @cached_property
    def cxxabi(self) -> str | None:
        lib = self.library("libstdc++.so.6")
        return newest(lib.defines, "CXXABI") if lib else None

    @property
    def distro_name(self) -> str:
        ident, version, pretty = self.distribution
        return pretty or " ".join(p for p in (ident, version) if p) or "unknown distribution"

    def summary(self) -> str:
        """'glibc 2.31, GLIBCXX_3.4.28, Python 3.9 (Debian GNU/Linux 11 (bullseye))'."""
        libc = f"glibc {self.glibc}" if self.glibc else self.libc
        cxx = self.glibcxx or "no libstdc++"
        py = ", ".join(self.pythons) or "no Python"
        return f"{libc}, {cxx}, Python {py} ({self.distro_name})"

    def to_dict(self) -> dict[str, Any]:
        ident, version, pretty = self.distribution
        return {
            "libc": self.libc,
            "glibc": self.glibc,
            "glibcxx": self.glibcxx,
            "cxxabi": self.cxxabi,
            "libraries": {lib.soname: lib.to_dict() for lib in self.libraries},
            "python": self.python,
            "pythons": list(self.pythons),
            "distribution": {"id": ident, "version_id": version, "name": pretty},
            "captured_by": self.captured_by,
        }


# ---- reading a runtime document (a snapshot's "runtime", a capture's) --------------------------
def _bad(source: str, what: str) -> ConfigError:
    return ConfigError(
        f'{source}: "runtime" {what}; capture it again with `invoke detect --save FILE` '
        "(this host) or the script `invoke detect --capture-script` prints (another host)"
    )


def _text(doc: dict[str, Any], key: str, source: str, pattern: re.Pattern[str] | None) -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 256 or (pattern and not pattern.fullmatch(value)):
        raise _bad(source, f"{key} must be text like the capture writes, not {str(value)[:40]!r}")
    return value


def _library(soname: str, doc: object, source: str) -> SystemLibrary:
    if not _SONAME.fullmatch(soname) or not isinstance(doc, dict):
        raise _bad(source, f"libraries entry {soname[:40]!r} is not a library record")
    path = doc.get("path")
    if path is not None and (not isinstance(path, str) or len(path) > 4096):
        raise _bad(source, f"libraries.{soname}.path must be a file path or null")
    names = doc.get("defines", [])
    if (
        not isinstance(names, list)
        or len(names) > MAX_NAMES
        or not all(isinstance(n, str) and _VERSION_NAME.fullmatch(n) for n in names)
    ):
        raise _bad(source, f"libraries.{soname}.defines must be a list of version names")
    return SystemLibrary(soname, path, frozenset(names))


def from_dict(doc: object, source: str) -> Runtime:
    """A Runtime from a snapshot's "runtime" document; ConfigError naming the field otherwise."""
    if not isinstance(doc, dict):
        raise _bad(source, "must be an object")
    libc = _text(doc, "libc", source, None) or "unknown"
    if libc not in LIBC_KINDS:
        raise _bad(source, f"libc must be one of {', '.join(LIBC_KINDS)}")
    glibc = _text(doc, "glibc", source, _GLIBC) or None
    if libc == "glibc" and glibc is None:
        raise _bad(source, 'says libc "glibc" without its version')
    libs = doc.get("libraries", {})
    if not isinstance(libs, dict) or len(libs) > MAX_LIBRARIES:
        raise _bad(source, "libraries must be an object of library records")
    pythons = doc.get("pythons", [])
    if not isinstance(pythons, list) or not all(
        isinstance(p, str) and _PYTHON.fullmatch(p) for p in pythons
    ):
        raise _bad(source, 'pythons must be a list of versions such as "3.9"')
    python = _text(doc, "python", source, _PYTHON) or None
    dist = doc.get("distribution", {})
    if not isinstance(dist, dict):
        raise _bad(source, "distribution must be an object")
    ident, version, pretty = (_text(dist, k, source, None) for k in ("id", "version_id", "name"))
    known = sorted({*pythons, *([python] if python else [])}, key=version_tuple)
    return Runtime(
        libc,
        glibc,
        tuple(_library(str(k), v, source) for k, v in sorted(libs.items())),
        python,
        tuple(known),
        (ident, version, pretty),
        _text(doc, "captured_by", source, None) or "unknown",
    )


def detect() -> Runtime:
    """This machine's runtime, by the same capture code a remote host runs."""
    from tfforge.host import capture

    return from_dict(capture.runtime(), "this host")


def capture_script() -> str:
    """The stdlib-only script to run on another host (`python3 capture.py > HOST.json`)."""
    return resources.read_text("tfforge.host", "capture.py")
