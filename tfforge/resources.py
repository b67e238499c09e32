"""Every file tfforge ships inside its package, named in one place and read with one error policy.

Data files live in tfforge/data/, the Dockerfile template in tfforge/templates/, the g2p model in
tfforge/runtime/g2p/. They are package data, so a non-editable install finds them too.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources as _res
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from tfforge.errors import ConfigError

DATA = "tfforge.data"
TEMPLATES = "tfforge.templates"
DOCKERFILE_TEMPLATE = "Dockerfile.j2"


def _file(package: str, name: str) -> Traversable:
    return _res.files(package).joinpath(name)


def path(package: str, name: str) -> Path:
    """A shipped file's path on disk (packages are installed unzipped)."""
    target = _file(package, name)
    if not target.is_file():
        raise ConfigError(
            f"{package.replace('.', '/')}/{name} is missing from the tfforge "
            f"installation; reinstall tfforge"
        )
    return Path(str(target))


def read_bytes(package: str, name: str) -> bytes:
    return path(package, name).read_bytes()


def read_text(package: str, name: str) -> str:
    return read_bytes(package, name).decode("utf-8")


@cache
def toml(name: str, package: str = DATA) -> dict[str, Any]:
    """A shipped TOML file, parsed once per process (callers must not mutate the result)."""
    try:
        return tomllib.loads(read_text(package, name))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{package.replace('.', '/')}/{name}: not valid TOML ({exc})") from exc


def template_path() -> Path:
    return path(TEMPLATES, DOCKERFILE_TEMPLATE)
