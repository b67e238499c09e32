"""Option precedence, in one place: defaults -> tfforge.toml -> TFFORGE_* env -> command line."""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError


def defaults() -> dict[str, Any]:
    return tomllib.loads(resources.files("tfforge.data").joinpath("defaults.toml").read_text())


def _coerce(key: str, text: str, like: Any) -> Any:
    try:
        if isinstance(like, bool):
            return text.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(like, int):
            return int(text)
        if isinstance(like, float):
            return float(text)
    except ValueError:
        raise ConfigError(f"TFFORGE_{key.upper()}={text!r} is not a valid {type(like).__name__}")
    return text


def settings(cli: Mapping[str, Any] | None = None, *, cwd: Path | None = None,
             environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Merged options; a command-line value of None means 'not given'."""
    merged = defaults()
    cfg = (cwd or Path.cwd()) / "tfforge.toml"
    if cfg.exists():
        try:
            table = tomllib.loads(cfg.read_text()).get("tfforge", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{cfg}: not valid TOML ({exc}); fix or remove it")
        unknown = sorted(set(table) - set(merged))
        if unknown:
            raise ConfigError(f"{cfg}: unknown option(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(merged))}")
        merged.update(table)
    env = os.environ if environ is None else environ
    for key, value in list(merged.items()):
        text = env.get(f"TFFORGE_{key.upper()}")
        if text is not None:
            merged[key] = _coerce(key, text, value)
    for key, value in (cli or {}).items():
        if value is not None:
            merged[key] = value
    return merged
