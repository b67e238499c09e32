"""Fetch wheels from PyPI once into the cache (pip does the talking)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from tfforge.errors import ConfigError, TfforgeError
from tfforge.paths import cache_dir


def _pinned(requirement: str) -> Requirement:
    try:
        req = Requirement(requirement)
    except InvalidRequirement as exc:
        raise ConfigError(
            f"{requirement!r} is not a requirement string ({exc}); "
            "write it like tensorflow-cpu==2.21.0"
        ) from exc
    pins = [s for s in req.specifier if s.operator == "=="]
    if len(pins) != 1 or req.url or req.extras:
        raise ConfigError(f"{requirement!r} must pin one exact version, like {req.name}==2.21.0")
    return req


def _installs_on(tags: frozenset[Tag], python_version: str) -> bool:
    """Whether a CPython of this version installs one of the tags (cpXY, abi3 back to cp32,
    py3 ...), whatever their platform: fetch asks pip for the manylinux x86_64 ones only."""
    major, minor = (int(p) for p in python_version.split(".")[:2])
    ok = {
        (t.interpreter, t.abi)
        for t in (
            *cpython_tags((major, minor), platforms=["x"]),
            *compatible_tags((major, minor), platforms=["x"]),
        )
    }
    return any((t.interpreter, t.abi) in ok for t in tags)


def cached_wheel(requirement: str, *, python_version: str | None = None) -> Path | None:
    """The cached wheel for an exact pin, if already downloaded."""
    req = _pinned(requirement)
    version = next(iter(req.specifier)).version
    for path in sorted(cache_dir("pypi").glob("*.whl")):
        name, ver, _, tags = parse_wheel_filename(path.name)
        if (
            canonicalize_name(name) == canonicalize_name(req.name)
            and str(ver) == version
            and (python_version is None or _installs_on(tags, python_version))
        ):
            return path
    return None


def fetch(requirement: str, *, python_version: str | None = None) -> Path:
    """Download one pinned wheel (no dependencies) for this platform, once; return its path."""
    pyver = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    hit = cached_wheel(requirement, python_version=pyver)
    if hit:
        return hit
    dest = cache_dir("pypi")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        pyver,
        "--platform",
        "manylinux2014_x86_64",
        "--platform",
        "manylinux_2_27_x86_64",
        "--platform",
        "manylinux_2_28_x86_64",
        "--platform",
        "manylinux_2_17_x86_64",
        "-d",
        str(dest),
        requirement,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise TfforgeError(f"could not download {requirement!r} from PyPI: {last}")
    hit = cached_wheel(requirement, python_version=pyver)
    if hit is None:
        raise TfforgeError(f"pip downloaded {requirement!r} but no matching wheel is in {dest}")
    return hit
