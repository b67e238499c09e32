"""Where tfforge keeps things: project folders (relative to the working directory) and a cache."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The tfforge checkout or project folder: TFFORGE_ROOT, else the working directory."""
    return Path(os.environ.get("TFFORGE_ROOT") or Path.cwd()).resolve()


def builds_dir() -> Path:
    return project_root() / "builds"


def wheels_dir() -> Path:
    return project_root() / "wheels"


def cache_dir(*parts: str) -> Path:
    """TFFORGE_CACHE, else $XDG_CACHE_HOME/tfforge, else ~/.cache/tfforge; created on demand."""
    base = os.environ.get("TFFORGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tfforge")
    path = Path(base, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
