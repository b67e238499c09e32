"""The Python wheels a release's requirements lock names (TensorFlow's
requirements_lock_3_X.txt at the source root): rules_python's pip downloads them, not Bazel's
downloader, so the repository cache never holds them. The capture downloads them with pip,
each checked against the lock's hashes; a kit build hands them to pip as its only index."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tfforge.errors import BuildError, ConfigError

_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([A-Za-z0-9.!+_-]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
MAX_LOCK = 4 << 20


@dataclass(frozen=True)
class Locked:
    name: str
    version: str
    hashes: tuple[str, ...]

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


def lock_name(python_version: str) -> str:
    """requirements_lock_3_11.txt for Python 3.11."""
    return f"requirements_lock_{python_version.replace('.', '_')}.txt"


def parse_lock(text: str, where: str) -> list[Locked]:
    """Each `name==version` of a hash-locked requirements file with its sha256 hashes;
    ConfigError for a requirement without a pin or without hashes (pip would refuse it too)."""
    if len(text) > MAX_LOCK:
        raise ConfigError(f"{where}: larger than {MAX_LOCK >> 20} MiB")
    joined = re.sub(r"\\\n", " ", text)
    found: list[Locked] = []
    for raw in joined.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            continue  # pip options (--index-url ...): the kit build names its own
        match = _REQ.match(line)
        if not match:
            raise ConfigError(f"{where}: {line[:80]!r} is not a name==version requirement")
        hashes = tuple(_HASH.findall(line))
        if not hashes:
            raise ConfigError(f"{where}: {match.group(1)}=={match.group(3)} has no --hash")
        found.append(Locked(match.group(1), match.group(3), hashes))
    return found


def download(lock: Path, python_version: str, dest: Path, *, timeout_s: float) -> list[Path]:
    """pip download every locked requirement for CPython python_version on x86-64 Linux into
    dest (no dependencies: the lock is complete), hashes checked by pip; the files."""
    major, minor = python_version.split(".")[:2]
    dest.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
        "--disable-pip-version-check", "--quiet", "-d", str(dest), "-r", str(lock),
        "--python-version", f"{major}.{minor}", "--implementation", "cp",
        "--platform", "manylinux_2_36_x86_64", "--platform", "linux_x86_64",
    ]  # fmt: skip
    # a constraint file in the machine's pip configuration must not move a locked version
    env = {**os.environ, "PIP_CONSTRAINT": ""}
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise BuildError(f"pip download of {lock.name} took longer than {timeout_s:g}s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise BuildError(f"pip download of {lock.name} failed: {last[:300]}")
    return sorted(p for p in dest.iterdir() if p.is_file())
