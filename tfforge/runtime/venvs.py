"""Isolated virtual environments, one per wheel, cached by the wheel's sha256.

A cached venv lives in cache_dir('venvs')/<name>/ and counts only once its record file
(`tfforge-venv.json`) exists: the record is written last, after pip succeeded, so a venv whose
install failed or was killed is never handed out; the next call removes and rebuilds it. The
venv is built in place rather than in a temporary folder renamed at the end, because a venv is
not relocatable (pip writes its absolute path into every script it installs). A lock file per
venv keeps two processes from building the same one at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import sys_tags
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version

from tfforge import resources
from tfforge.errors import ConfigError, TfforgeError, VerifyError
from tfforge.files import sha256_file, write_json_atomic
from tfforge.paths import cache_dir, wheels_dir
from tfforge.wheel import fetch as pypi

logger = logging.getLogger(__name__)
RECORD = "tfforge-venv.json"


@dataclass(frozen=True)
class Rule:
    projects: frozenset[str]
    versions: SpecifierSet
    pins: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class VenvPlan:
    """What a venv holds; `name` is its folder under the cache."""

    name: str
    wheel: Path | None
    wheel_sha256: str | None
    requirements: tuple[str, ...]
    constraints: tuple[str, ...]
    why: tuple[str, ...] = ()  # the reasons for the constraints (data/venvs.toml), recorded


def pin_rules() -> tuple[Rule, ...]:
    doc = resources.toml("venvs.toml")
    return tuple(
        Rule(
            frozenset(canonicalize_name(p) for p in r["projects"]),
            SpecifierSet(r["versions"]),
            tuple(r["pins"]),
            r["why"],
        )
        for r in doc["rule"]
    )


def matching_rules(project: str, version: Version) -> tuple[Rule, ...]:
    """The rules of data/venvs.toml that apply to a wheel of this project and version."""
    name = canonicalize_name(project)
    # Compare the public version: local labels (2.14.0+avx2.fma) do not change the API.
    return tuple(
        rule
        for rule in pin_rules()
        if name in rule.projects
        and rule.versions.contains(Version(version.public), prereleases=True)
    )


def check_installable(wheel: Path) -> tuple[str, Version]:
    """The wheel's (project, version); ConfigError when this interpreter cannot install it."""
    if not wheel.is_file():
        raise ConfigError(
            f"wheel {str(wheel)!r} does not exist; pass a .whl file, a name in "
            f"wheels/ or a PyPI pin like tensorflow-cpu==2.21.0"
        )
    try:
        name, version, _, tags = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise ConfigError(
            f"{wheel.name!r} is not a wheel file name ({exc}); "
            "pass a .whl file as pip and PyPI name them"
        ) from exc
    supported = set(sys_tags())
    if not tags & supported:
        here = f"CPython {sys.version_info.major}.{sys.version_info.minor}"
        raise ConfigError(
            f"{wheel.name} is not installable on this interpreter ({here}, best tag "
            f"{next(iter(sys_tags()))}); its tags are {', '.join(sorted(map(str, tags)))} "
            f"(use a wheel built for cp{sys.version_info.major}{sys.version_info.minor})"
        )
    return name, version


def plan(wheel: Path | None, requirements: tuple[str, ...] = ()) -> VenvPlan:
    """Validate the inputs and name the venv (hashes the wheel)."""
    for req in requirements:
        try:
            Requirement(req)
        except InvalidRequirement as exc:
            raise ConfigError(f"{req!r} is not a requirement string ({exc})") from exc
    interpreter = {"python": sys.version, "executable": os.path.realpath(sys.executable)}
    if wheel is None:
        key = hashlib.sha256(json.dumps([interpreter, list(requirements)]).encode()).hexdigest()
        return VenvPlan(f"reqs-{key[:16]}", None, None, tuple(requirements), ())
    wheel = wheel.resolve()
    project, version = check_installable(wheel)
    sha = sha256_file(wheel)
    applied = matching_rules(project, version)
    constraints = tuple(pin for rule in applied for pin in rule.pins)
    key = hashlib.sha256(
        json.dumps([interpreter, sha, list(requirements), list(constraints)]).encode()
    ).hexdigest()
    return VenvPlan(
        f"{canonicalize_name(project)}-{version}-{sha[:12]}-{key[:8]}",
        wheel,
        sha,
        tuple(requirements),
        constraints,
        tuple(rule.why for rule in applied),
    )


def venv_python(wheel: Path | None, *, requirements: tuple[str, ...] = ()) -> Path:
    """The python of an isolated venv holding `wheel` (and `requirements`), built once."""
    return ensure(plan(wheel, tuple(requirements)))


def ensure(p: VenvPlan) -> Path:
    """The python of the venv a plan names, built once (the plan already hashed the wheel)."""
    root = cache_dir("venvs")
    target = root / p.name
    python = target / "bin" / "python"
    with open(root / f"{p.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / RECORD).is_file() and python.exists():
            return python
        if target.exists():
            logger.info(f"venv {target} is incomplete (an earlier install failed); rebuilding it")
            shutil.rmtree(target)
        _build(p, target, root / f"{p.name}.log")
    return python


def _sound(wheel: Path) -> None:
    """Install nothing the one wheel reader refuses (member paths, links, RECORD, METADATA)."""
    from tfforge.wheel.read import structure_problems

    problems = structure_problems(wheel)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise VerifyError(
            f"refusing to install {wheel.name}: {problems[0]}{more}; "
            f"run `invoke verify {wheel}` for details"
        )


def _build(p: VenvPlan, target: Path, log: Path) -> None:
    if p.wheel is not None:
        _sound(p.wheel)
    what = p.wheel.name if p.wheel else ", ".join(p.requirements)
    logger.info(f"creating venv {target.name} for {what} (once; pip fetches dependencies)")
    started = time.monotonic()
    try:
        # --without-pip + the host's `pip --python` is seconds faster than ensurepip per venv.
        _run([sys.executable, "-m", "venv", "--without-pip", str(target)], log, p)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(target / "bin" / "python"),
            "install",
            "--disable-pip-version-check",
            "--no-input",
        ]
        if p.constraints:
            cfile = target / "tfforge-constraints.txt"
            cfile.write_text("".join(c + "\n" for c in p.constraints))
            cmd += ["-c", str(cfile)]
        cmd += ([str(p.wheel)] if p.wheel else []) + list(p.requirements)
        _run(cmd, log, p)
        record = {
            "wheel": str(p.wheel) if p.wheel else None,
            "wheel_sha256": p.wheel_sha256,
            "requirements": list(p.requirements),
            "constraints": list(p.constraints),
            "why": list(p.why),
            "python": sys.version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.monotonic() - started, 1),
        }
        write_json_atomic(target / RECORD, record)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    logger.info(f"venv ready in {time.monotonic() - started:.0f} s")


def _run(cmd: list[str], log: Path, p: VenvPlan) -> None:
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in log.read_text().splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR:")] or lines[-1:] or ["no output"]
        what = p.wheel.name if p.wheel else " ".join(p.requirements)
        message = f"could not install {what} into a venv: {errors[0]} (log: {log})"
        # The wheel itself is the problem (bad input), not pip, the network or the index.
        if any("is not a supported wheel" in ln or " is invalid" in ln for ln in errors):
            raise ConfigError(message)
        raise TfforgeError(message)


def wheel_from_spec(spec: str) -> Path:
    """A wheel path from a file, a file name in wheels/, or a pinned PyPI requirement."""
    path = Path(spec)
    if path.is_file():
        return path.resolve()
    if (wheels_dir() / spec).is_file():
        return (wheels_dir() / spec).resolve()
    if spec.endswith(".whl"):
        raise ConfigError(
            f"wheel {spec!r} not found (looked in . and {wheels_dir()}); "
            "pass an existing .whl or a PyPI pin like tensorflow-cpu==2.21.0"
        )
    if "==" not in spec:
        raise ConfigError(
            f"{spec!r} is neither a wheel file nor a pinned requirement; pass a "
            ".whl path or e.g. tensorflow-cpu==2.21.0"
        )
    return pypi.fetch(spec)
