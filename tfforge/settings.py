"""Typed settings, built once at the edge: defaults.toml -> tfforge.toml -> TFFORGE_* -> command line.

The defaults file declares every option and, by its value, the option's type. `load()` merges the
four layers into one frozen `Settings`; every error names where the bad value came from (the toml
key, the environment variable or the command-line flag). Only commands call `load()`; domain code
receives plain values.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tfforge import paths, resources
from tfforge.errors import ConfigError
from tfforge.files import read_user_text

CONFIG_FILE = "tfforge.toml"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def defaults() -> dict[str, Any]:
    """Every option and its default value (the value's type is the option's type)."""
    return dict(resources.toml("defaults.toml"))


def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def env_name(key: str) -> str:
    return "TFFORGE_" + key.upper()


@dataclass(frozen=True)
class Settings:
    """Merged option values, read by attribute; `origin(key)` says where a value came from."""

    values: Mapping[str, Any]
    origins: Mapping[str, str] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def origin(self, key: str) -> str:
        """'TFFORGE_X', "tfforge.toml key 'x'", '--x' or 'default x'."""
        return self.origins.get(key, f"default {key}")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.values)


def _type_name(like: Any) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}[
        type(like)
    ]


def parse_text(text: str, like: Any, where: str) -> Any:
    """A string from the environment or the command line, as the type of `like`."""
    value = text.strip()
    if isinstance(like, bool):
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError(
            f"{where}={text!r} is not true or false; use one of {', '.join(_TRUE + _FALSE)}"
        )
    if isinstance(like, int):
        if not re.fullmatch(r"[+-]?[0-9]+", value):
            raise ConfigError(f"{where}={text!r} is not a whole number; use digits such as {like}")
        return int(value)
    if isinstance(like, float):
        try:
            number = float(value) if value.isascii() else math.nan
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ConfigError(f"{where}={text!r} is not a finite number; use e.g. {like}")
        return number
    return text


def check_value(value: Any, like: Any, where: str) -> Any:
    """A value from tfforge.toml or a typed command-line value, checked against the default's type."""
    if isinstance(value, str) and not isinstance(like, str):
        return parse_text(value, like, where)
    if isinstance(like, bool):
        ok = isinstance(value, bool)
    elif isinstance(like, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(like, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ConfigError(f"{where} = {value!r} is not a finite number; use e.g. {like}")
        value = float(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(
            f"{where} = {value!r} has the wrong type: it must be {_type_name(like)} (e.g. {like!r})"
        )
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """The [tfforge] table of a tfforge.toml; {} when there is none. Regular files only."""
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        doc = tomllib.loads(read_user_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix or remove it")
    except ConfigError as exc:
        raise ConfigError(f"{exc}; fix or remove it")
    table = doc.get("tfforge", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'tfforge' must be a table ([tfforge]); fix or remove it")
    return table


def load(
    cli: Mapping[str, Any] | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    prefix: str = "",
) -> Settings:
    """Merge the four layers; a command-line value of None means 'not given'.

    `prefix` is the part of the option names a command's flags leave out (smoke's --mode is
    smoke_mode), so errors name the flag the user typed.
    """
    base = defaults()
    values, origins = dict(base), {}
    cfg = (cwd or paths.project_root()) / CONFIG_FILE
    table = read_config_file(cfg)
    unknown = sorted(set(table) - set(base))
    if unknown:
        raise ConfigError(
            f"{cfg}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(base))}"
        )
    for key, value in table.items():
        where = f"{cfg.name} key '{key}'"
        values[key], origins[key] = check_value(value, base[key], where), where
    env = os.environ if environ is None else environ
    for key in base:
        text = env.get(env_name(key))
        if text is not None:
            values[key] = parse_text(text, base[key], env_name(key))
            origins[key] = env_name(key)
    for key, value in (cli or {}).items():
        if value is None:
            continue
        where = flag(key.removeprefix(prefix))
        # Options with no default (lists such as --feature) are the command's to check.
        values[key] = check_value(value, base[key], where) if key in base else value
        origins[key] = where
    return Settings(MappingProxyType(values), MappingProxyType(origins))


def positive(opts: Settings, key: str, minimum: float = 0, *, strict: bool = True) -> Any:
    """opts[key], refused with its origin when below `minimum` (or equal, with strict)."""
    value = opts[key]
    if value < minimum or (strict and value == minimum):
        bound = f"more than {minimum:g}" if strict else f"at least {minimum:g}"
        raise ConfigError(f"{opts.origin(key)} = {value!r}: must be {bound}")
    return value


_VERSION = re.compile(r"[0-9]{1,2}(?:\.[0-9]{1,2}){0,2}")  # ASCII digits: \d takes any script's


def version(opts: Settings, key: str) -> str:
    """opts[key] as a compiler version such as 12.2.0, refused with its origin otherwise."""
    value = str(opts[key]).strip()
    if not _VERSION.fullmatch(value):
        raise ConfigError(f"{opts.origin(key)} = {value!r}: expected a version such as 12.2.0")
    return value


def from_origin(exc: ConfigError, opts: Settings) -> ConfigError:
    """`exc` with the command-line flag it names replaced by where the value really came from
    (a tfforge.toml key or a TFFORGE_* variable); domain checks only know the flags."""
    text = str(exc)
    for key, where in opts.origins.items():
        name = flag(key)
        if where != name and (text.startswith(name + " ") or text.startswith(name + "=")):
            return ConfigError(where + text[len(name) :])
    return exc
