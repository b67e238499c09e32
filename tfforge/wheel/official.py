"""A TensorFlow release's official wheels on PyPI, read as evidence of how the release was built.

PyPI's index (the PEP 691 JSON file list) names every wheel of a release with its sha256: the
Linux x86-64 ones say which Pythons the release supports and which glibc its tags promise. One
of them is downloaded (cached, checked against that sha256) and read: the compiler, linker and
libstdc++ level of its machine code (tfforge.wheel.builtwith), the commit string TensorFlow
compiles in (GIT_VERSION), the version in its METADATA and version.h, its C++ ABI flag. Every
fact keeps the file name and sha256 it was read from. Decides nothing about recipes.
"""

from __future__ import annotations

import json
import mmap
import re
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from tfforge.errors import ConfigError, TfforgeError
from tfforge.files import sha256_file
from tfforge.wheel import builtwith, fetch, read

INDEX = "https://pypi.org/simple/{project}/"
ACCEPT = "application/vnd.pypi.simple.v1+json"
INDEX_MAX = 64 << 20  # tensorflow's file list is a few MB
# The CPU wheel of a release: tensorflow-cpu when PyPI has a real one, else tensorflow.
PROJECTS = ("tensorflow-cpu", "tensorflow")
STUB_MAX = 8 << 20  # a Linux wheel smaller than this holds no TensorFlow build
# The Python of the one wheel read per release: common to all pinned releases. Another
# release picks the newest Python it was released for.
PYTHON = "3.11"
LINUX_X86 = re.compile(r"^(manylinux_(\d+)_(\d+)|manylinux(1|2010|2014)|linux)_x86_64$")
LEGACY = {"1": "2.5", "2010": "2.12", "2014": "2.17"}
GIT_VERSION = re.compile(rb"\x00(v\d+\.\d+\.\d+(?:-rc\d+)?-\d+-g[0-9a-f]{7,40})\x00")
VERSION_H = "tensorflow/include/tensorflow/core/public/version.h"
_DEFINE = re.compile(r"^#define TF_(MAJOR|MINOR|PATCH)_VERSION (\d+)\s*$", re.M)
_SUFFIX = re.compile(r'^#define TF_VERSION_SUFFIX "([^"]*)"\s*$', re.M)
FRAMEWORK = "tensorflow/libtensorflow_framework.so.2"
CXX11_MARK = b"St7__cxx11"  # in the mangled names of the new-ABI std::string and friends


@dataclass(frozen=True)
class IndexFile:
    """One file of a project's index: name, sha256 and size as PyPI serves them."""

    name: str
    sha256: str
    size: int
    yanked: bool


def glibc_of(platform: str) -> str | None:
    """'manylinux_2_27_x86_64' -> '2.27', 'manylinux2014_x86_64' -> '2.17', 'linux_x86_64' ->
    '' (no promise), other platforms -> None."""
    m = LINUX_X86.fullmatch(platform)
    if not m:
        return None
    if m[2]:
        return f"{m[2]}.{m[3]}"
    return LEGACY.get(m[4] or "", "")


def index_files(project: str, *, timeout: float = 60.0) -> list[IndexFile]:
    """Every file PyPI's simple index lists for a project (PEP 691 JSON)."""
    url = INDEX.format(project=canonicalize_name(project))
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read(INDEX_MAX + 1)
    except (urllib.error.URLError, OSError) as exc:
        raise TfforgeError(f"cannot read PyPI's index of {project} ({url}): {exc}") from None
    if len(raw) > INDEX_MAX:
        raise TfforgeError(f"{url}: the index is over {INDEX_MAX >> 20} MB; not read")
    return parse_index(raw, url)


def parse_index(raw: bytes, where: str) -> list[IndexFile]:
    """The files of a PEP 691 JSON index page; TfforgeError naming `where` when malformed."""
    try:
        doc = json.loads(raw)
        files = doc["files"]
        out = [
            IndexFile(
                str(f["filename"]),
                str(f["hashes"]["sha256"]),
                int(f.get("size") or 0),
                bool(f.get("yanked")),
            )
            for f in files
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise TfforgeError(f"{where}: not a PEP 691 file list ({exc})") from None
    bad = [f.name for f in out if not re.fullmatch(r"[0-9a-f]{64}", f.sha256)]
    if bad:
        raise TfforgeError(f"{where}: {bad[0]} has no sha256 of 64 hex digits")
    return out


def linux_wheels(files: list[IndexFile], version: str) -> list[tuple[IndexFile, str, str]]:
    """(file, 'X.Y' Python, glibc 'X.Y') for the release's CPython Linux x86-64 wheels that
    are not yanked, sorted by Python then name."""
    out = []
    for f in files:
        if f.yanked or not f.name.endswith(".whl"):
            continue
        try:
            _name, ver, _build, tags = parse_wheel_filename(f.name)
            if ver != Version(version):
                continue
        except (InvalidWheelFilename, InvalidVersion):
            continue
        pythons = {t.interpreter for t in tags if re.fullmatch(r"cp3\d+", t.interpreter)}
        glibcs = {glibc_of(t.platform) for t in tags} - {None}
        if len(pythons) != 1 or not glibcs:
            continue
        py = pythons.pop()
        # the lowest glibc the tags promise is the one the wheel was built for
        glibc = min((g for g in glibcs if g), key=builtwith.version_key, default="")
        out.append((f, f"3.{py[3:]}", glibc))
    return sorted(out, key=lambda r: (builtwith.version_key(r[1]), r[0].name))


def _real(files: list[IndexFile], version: str) -> bool:
    """The release has Linux x86-64 wheels here and none is a stub."""
    wheels = linux_wheels(files, version)
    return bool(wheels) and all(f.size > STUB_MAX for f, _, _ in wheels)


def pick_project(version: str, lists: dict[str, list[IndexFile]]) -> str:
    """The first of PROJECTS with real (not stub) Linux x86-64 wheels of the release."""
    for project in PROJECTS:
        if _real(lists.get(project, []), version):
            return project
    raise ConfigError(
        f"PyPI has no Linux x86-64 CPU wheels of TensorFlow {version} "
        f"({' or '.join(PROJECTS)}); check the version"
    )


def _version_h(text: str) -> str:
    parts = dict(_DEFINE.findall(text))
    if set(parts) != {"MAJOR", "MINOR", "PATCH"}:
        return ""  # the release passes its version as compiler flags instead
    suffix = _SUFFIX.search(text)
    return f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}" + (suffix[1] if suffix else "")


def _scan_strings(path: Path, member: str, found: dict[str, Any]) -> None:
    """GIT_VERSION strings anywhere in an ELF member; the C++ ABI mark in the framework."""
    if path.stat().st_size == 0:
        return
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for m in GIT_VERSION.finditer(data):
            found["git"].setdefault(m[1].decode(), member)
        if member == FRAMEWORK:
            found["cxx11_abi"] = int(data.find(CXX11_MARK) >= 0)


def read_wheel_facts(
    path: Path, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """The build facts of one official wheel (see the module docstring)."""
    found: dict[str, Any] = {"git": {}, "cxx11_abi": None}
    built = builtwith.read_wheel(
        path, on_elf=lambda m, p: _scan_strings(p, m, found), progress=progress
    )
    if built.unreadable:
        bad = built.unreadable[0]
        raise TfforgeError(f"{path.name}: {bad.member}: {bad.error}")
    compiler, linker = built.compiler, built.linker
    if compiler is None:
        raise TfforgeError(f"{path.name}: its ELF members name no compiler (.comment stripped)")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        meta = read.headers(archive.read(f"{dist_info}/METADATA"))
        wheel_meta = read.headers(archive.read(f"{dist_info}/WHEEL"))
        version_h = (
            _version_h(archive.read(VERSION_H).decode("utf-8", "replace"))
            if VERSION_H in names
            else ""
        )
    numpy = sorted(r for r in meta.get("requires-dist", []) if r.lower().startswith("numpy"))
    gits = sorted(found["git"])
    return {
        "compiler": compiler.name,
        "compiler_version": compiler.version,
        "compiler_vendor": compiler.vendor,
        "compiler_origin": compiler.origin,
        "linker": linker.name if linker else "",  # GNU ld leaves no mark
        "linker_version": linker.version if linker else "",
        "gcc_objects": [f"{i.version} ({i.vendor})" for i in built.gcc_objects],
        "libstdcxx": built.glibcxx if built.needs_libstdcxx else "",
        "libstdcxx_gcc": builtwith.glibcxx_gcc(built.glibcxx) if built.glibcxx else "",
        "glibc_needed": built.glibc,
        "cxx11_abi": found["cxx11_abi"] if found["cxx11_abi"] is not None else -1,
        "git_version": gits[0] if len(gits) == 1 else "",
        "git_version_in": found["git"][gits[0]] if len(gits) == 1 else "",
        "version": (meta.get("version") or [""])[0],
        "version_h": version_h,
        "requires_python": (meta.get("requires-python") or [""])[0],
        "requires_numpy": numpy,
        "generator": (wheel_meta.get("generator") or [""])[0],
        "elf_members": len(built.members),
        "comments": sorted({c for m in built.members for c in m.comments}),
    }


def read_release(
    version: str,
    *,
    lists: dict[str, list[IndexFile]] | None = None,
    status: Callable[[str], None] = lambda _m: None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Everything the release's official wheels show: the index facts and one wheel's facts.

    lists: index file lists by project, filled from PyPI as needed (pass one dict to several
    calls to read each index once)."""
    lists = lists if lists is not None else {}
    for project in PROJECTS:
        if project not in lists:
            status(f"reading PyPI's index of {project}")
            lists[project] = index_files(project)
        if _real(lists[project], version):
            break
    project = pick_project(version, lists)
    wheels = linux_wheels(lists[project], version)
    pythons = sorted({py for _, py, _ in wheels}, key=builtwith.version_key)
    glibcs = sorted({g for _, _, g in wheels}, key=builtwith.version_key)
    python = PYTHON if PYTHON in pythons else pythons[-1]
    chosen = next(f for f, py, _ in wheels if py == python)
    status(f"fetching {chosen.name} (cached under the tfforge cache)")
    path = fetch.fetch(f"{project}=={version}", python_version=python)
    if path.name != chosen.name:
        raise TfforgeError(
            f"pip fetched {path.name}; the index names {chosen.name} for Python {python}"
        )
    got = sha256_file(path)
    if got != chosen.sha256:
        raise TfforgeError(
            f"{path}: sha256 {got} differs from PyPI's {chosen.sha256}; delete it and run again"
        )
    status(f"reading the ELF members of {chosen.name}")
    facts = read_wheel_facts(path, progress)
    return {
        "project": project,
        "index": INDEX.format(project=project),
        "pythons": pythons,
        "glibc": glibcs[0] if len(glibcs) == 1 else ",".join(glibcs),
        "files": [{"name": f.name, "sha256": f.sha256} for f, _, _ in wheels],
        "wheel": {"name": chosen.name, "sha256": chosen.sha256, **facts},
    }
