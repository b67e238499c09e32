"""A command's typed options, built once at the edge, in one order of precedence:

    the default in tfforge/data/options.toml -> ./tfforge.toml ([tfforge] table)
    -> TFFORGE_<NAME> environment -> command line

`resolve(command, given)` merges the four layers for one task into its frozen options
(tfforge/options/typed/); every value goes through the one parser (tfforge.options.parse),
whose errors name where the value came from. Only commands call `resolve`; domain code receives
typed values.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from tfforge import paths
from tfforge.errors import ConfigError, Origin
from tfforge.files import read_user_text
from tfforge.options import declared, parse
from tfforge.options.base import Options
from tfforge.options.declared import Command, Option

CONFIG_FILE = "tfforge.toml"
T = TypeVar("T", bound=Options)
# Names that meant something before and now mean two things: refused with the new names.
RENAMED = {
    "gcc_version": "it is two options now: match_gcc_version (the GCC detect and match recommend "
    "targets for; default 12.2.0) and build_gcc_version (the GCC a build installs; default the "
    "release recipe's)",
}


def read_config_file(path: Path) -> dict[str, Any]:
    """The [tfforge] table of a tfforge.toml; {} when there is none. Regular files only."""
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        doc = tomllib.loads(read_user_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix or remove it") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to read; fix or remove it") from None
    except ConfigError as exc:
        raise ConfigError(f"{exc}; fix or remove it") from None
    except MemoryError:
        raise ConfigError(f"{path}: too large to read; fix or remove it") from None
    except ValueError as exc:  # an integer of over 4,300 digits (not a TOMLDecodeError)
        raise ConfigError(f"{path}: not usable TOML ({str(exc)[:60]}); fix or remove it") from None
    table = doc.get("tfforge", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'tfforge' must be a table ([tfforge]); fix or remove it")
    known = {o.name for o in declared.declarations().options.values() if o.config}
    for key in table:
        if key in RENAMED:
            raise ConfigError(f"{path}: key '{key}': {RENAMED[key]}; rename it")
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{path}: unknown option {parse.shown(key)}{hint}; the options are listed in "
                "docs/reference/options.md"
            )
    for key, raw in table.items():  # the whole file is checked, whichever task reads it
        opt = declared.option(key)
        parse.value(opt, raw, Origin("file", f"{path.name} key '{key}'"))
    return table


def _cli_value(param_value: object) -> object | None:
    """A task argument as invoke gives it, None when it was not given (False, [], None)."""
    if param_value is None or param_value is False:
        return None
    if isinstance(param_value, list) and not param_value:
        return None
    return param_value


def _layers(
    opt: Option,
    table: Mapping[str, Any],
    env: Mapping[str, str],
    cfg: Path,
) -> tuple[parse.Value, Origin]:
    """The option's value and origin from the default, tfforge.toml and the environment."""
    value, origin = parse.default(opt), Origin("default", f"default {opt.name}")
    if not opt.config:
        return value, origin
    if opt.name in table:
        origin = Origin("file", f"{cfg.name} key '{opt.name}'")
        value = parse.value(opt, table[opt.name], origin)
    text = env.get(opt.env)
    if text is not None:
        origin = Origin("env", opt.env)
        value = parse.value(opt, text, origin)
    return value, origin


def _features(cmd: Command, given: Mapping[str, object]) -> list[str]:
    """The features the boolean feature flags (--avx2 ...) ask for, in the flags' order."""
    return [p.feature for p in cmd.params if p.feature and given.get(p.flag) is True]


def _merge(
    cmd: Command,
    options: tuple[Option, ...],
    given: Mapping[str, object],
    table: Mapping[str, Any],
    env: Mapping[str, str],
    cfg: Path,
) -> tuple[dict[str, Any], dict[str, Origin]]:
    values: dict[str, Any] = {}
    origins: dict[str, Origin] = {}
    for opt in options:
        value, origin = _layers(opt, table, env, cfg)
        flag = declared.flag_of(cmd, opt.name)
        raw = _cli_value(given.get(flag)) if flag else None
        if opt.name == "features":
            named = [*_features(cmd, given), *(cast(list[str], raw) or [])]
            raw = named or None
        if raw is not None:
            origin = Origin("flag", opt.cli)
            value = parse.value(opt, raw, origin)
        elif opt.positional:
            raise ConfigError(f"{opt.cli} is required: {opt.help}", option=opt.name, origin=origin)
        values[opt.name], origins[opt.name] = value, origin
    return values, origins


def resolve(
    command: str,
    given: Mapping[str, object] | None = None,
    *,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Options:
    """Task `command`'s typed options from the four layers.

    `given`: the task's arguments as invoke passes them (keyed by flag: `gcc_version`, `avx2`,
    `host` ...); a None, False or empty list means 'not given'. `root`: the project folder
    whose tfforge.toml counts (default: paths.project_root()). `environ`: default os.environ.
    """
    cmd = declared.command(command)
    given = given or {}
    unknown = set(given) - {p.flag for p in cmd.params}
    if unknown:
        raise TypeError(f"{command} has no flags {sorted(unknown)}")
    env = os.environ if environ is None else environ
    for old in RENAMED:
        if f"TFFORGE_{old.upper()}" in env:
            raise ConfigError(f"TFFORGE_{old.upper()}: {RENAMED[old]}; rename the variable")
    cfg = (root or paths.project_root()) / CONFIG_FILE
    table = read_config_file(cfg)
    values, origins = _merge(cmd, declared.received(cmd), given, table, env, cfg)
    fields: dict[str, Any] = {n: values[n] for n in cmd.options}
    for g in cmd.groups:
        names = declared.declarations().groups[g]
        fields[g] = declared.options_class(g)(
            **{n: values[n] for n in names}, origins={n: origins[n] for n in names}
        )
    own = {n: origins[n] for n in cmd.options}
    return declared.options_class(command)(**fields, origins=own)


def options(cls: type[T], command: str, given: Mapping[str, object] | None = None, **kw: Any) -> T:
    """resolve(), checked to be of the class the caller expects (for typed call sites)."""
    opts = resolve(command, given, **kw)
    if not isinstance(opts, cls):
        raise TypeError(f"{command} options are {type(opts).__name__}, not {cls.__name__}")
    return opts
