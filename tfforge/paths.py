"""Where tfforge keeps things: project folders (relative to the working directory) and a cache.

Each place is checked when asked for: a file or a dangling link where a folder belongs is one
ConfigError naming the place (and the variable that set it), never a traceback or a folder made
at the link's target.
"""

from __future__ import annotations

import os
from pathlib import Path

from tfforge.errors import ConfigError
from tfforge.files import io_error


def folder(path: Path, what: str, *, create: bool = False) -> Path:
    """`path` as a usable folder (made with create=True); ConfigError naming `what` otherwise."""
    if path.is_symlink() and not path.exists():
        raise ConfigError(f"{what} {path}: a dangling link; point it at a folder or remove it")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path}: is a file, not a folder; move it away or set another")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise io_error(path, exc, f"{what} cannot be made a folder") from exc
    return path


def project_root() -> Path:
    """The tfforge checkout or project folder: TFFORGE_ROOT, else the working directory."""
    given = os.environ.get("TFFORGE_ROOT")
    if not given:
        return Path.cwd().resolve()
    return folder(Path(given), "TFFORGE_ROOT").resolve()


def builds_dir() -> Path:
    return folder(project_root() / "builds", "builds folder")


def wheels_dir() -> Path:
    return folder(project_root() / "wheels", "wheels folder")


def kits_dir(given: str = "") -> Path:
    """Where kits go: `given` (--out / kits_dir), else ./kits."""
    return folder(Path(given) if given else project_root() / "kits", "kits folder")


def cache_dir(*parts: str) -> Path:
    """TFFORGE_CACHE, else the platform's user cache folder for tfforge (platformdirs: on Linux
    $XDG_CACHE_HOME/tfforge, else ~/.cache/tfforge); created on demand."""
    given = os.environ.get("TFFORGE_CACHE")
    if given:
        base = Path(given)
    else:
        import platformdirs  # ~8 ms to import: only when the cache is used

        base = platformdirs.user_cache_path("tfforge", appauthor=False)
    folder(base, "TFFORGE_CACHE" if given else "cache folder")
    path = base.joinpath(*parts)
    return folder(path, "cache folder", create=True)
