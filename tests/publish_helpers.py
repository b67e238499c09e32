"""Helpers for the index/publish tests: tiny real wheels (pure Python, installable by pip) and
pip isolated from this machine's configuration."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import need

USER, PASSWORD = "ci-publisher", "pw-Zq8#tfforge-secret"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def make_wheel(
    folder: Path,
    name: str = "tfdemo",
    version: str = "1.0.0+avx2.fma",
    *,
    requires_python: str | None = ">=3.8, <4",
    value: int = 42,
    corrupt_record: bool = False,
    payload_bytes: int = 0,
) -> Path:
    """Write `<name>-<version>-py3-none-any.whl` with module `<name>` (VALUE = value).

    corrupt_record=True writes a RECORD whose hash for the module does not match its bytes,
    the kind of damage the structure check must catch. payload_bytes adds an incompressible
    data file, for uploads that take more than one TCP send."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires_python:
        meta += f"Requires-Python: {requires_python}\n"
    files = {
        f"{dist}/__init__.py": f"VALUE = {value}\n".encode(),
        f"{info}/METADATA": (meta + "\n").encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tfforge-tests\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    if payload_bytes:
        files[f"{dist}/payload.bin"] = random.Random(value).randbytes(payload_bytes)
    lines = []
    for member, data in files.items():
        recorded = data + b"# tampered\n" if corrupt_record and member.endswith(".py") else data
        lines.append(f"{member},{_record_hash(recorded)},{len(data)}")
    lines.append(f"{info}/RECORD,,")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in files.items():
            zf.writestr(zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0)), data)
        zf.writestr(
            zipfile.ZipInfo(f"{info}/RECORD", date_time=(2020, 1, 1, 0, 0, 0)),
            "\n".join(lines) + "\n",
        )
    return path


def isolated_pip_env(tmp_path: Path) -> dict:
    """pip with no machine-wide config (this host's adds extra indexes, find-links and
    constraints) and no cache, so an install proves the index alone served the wheel."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_CACHE_DIR="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
    )
    return env


def fresh_venv(path: Path) -> Path:
    """A venv without pip (fast); the outer pip installs into it with --python (pip >= 22.3)."""
    from importlib.metadata import version

    from packaging.version import Version

    need(Version(version("pip")) >= Version("22.3"), "pip >= 22.3 is needed for pip --python")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def pip_install(python: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# ---- shared by the unit and the real-server publish tests ----
def tree(root: Path) -> dict[str, str]:
    """Every file under root with its sha256: 'nothing changed locally' is equality of these."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def one_line_error(proc: subprocess.CompletedProcess, code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and proc.stdout == "", (proc.stdout, proc.stderr)
    return errors[0]


def no_secrets(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text and USER not in text


def env_for(root: Path, user: str | None = USER, password: str | None = PASSWORD) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    # keyring off, so a developer's stored passwords cannot make these runs pass or fail
    env.update(TFFORGE_ROOT=str(root), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    if user is not None:
        env["TWINE_USERNAME"] = user
    if password is not None:
        env["TWINE_PASSWORD"] = password
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
