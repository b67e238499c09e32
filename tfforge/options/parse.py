"""The one parser of option values: text (a TFFORGE_* variable, a command-line flag) or a
tfforge.toml value, checked against the option's declaration and turned into its typed value.

Every refusal is one ConfigError that names the value's origin (the flag, the variable or the
toml key) in its message and carries the option and the origin as attributes. Values are echoed
cut to a readable length; whole numbers are capped in digits before Python converts them (a
4,300-digit int is refused, not computed); floats must be finite and inside the option's range.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from pathlib import Path

from tfforge.errors import ConfigError, Origin
from tfforge.options.declared import Option
from tfforge.text import without_credentials

Value = bool | int | float | str | Path | StrEnum | tuple[str, ...] | None

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
MAX_TEXT = 4096  # characters in one value (a path, a URL, a list item)
MAX_ITEMS = 256  # items in one list
SHOWN = 60  # characters of a refused value echoed in a message
_INT = re.compile(r"[+-]?[0-9]{1,20}")
_FLOAT = re.compile(r"[+-]?(?:[0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})(?:[eE][+-]?[0-9]{1,3})?")
_VERSION = re.compile(r"[0-9]{1,2}(?:\.[0-9]{1,2}){0,2}")  # ASCII: \d takes any script's
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(value: object) -> str:
    """A refused value as a message shows it: one line, at most about SHOWN characters, with
    anything that looks like URL credentials masked (text.without_credentials)."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    if isinstance(value, str):
        value = without_credentials(value)[: SHOWN + 1]
    text = repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "...'"


def refuse(opt: Option, origin: Origin, value: object, problem: str) -> ConfigError:
    """The one error for a refused value: '<origin> <value>: <problem>'."""
    return ConfigError(f"{origin} {shown(value)}: {problem}", option=opt.name, origin=origin)


def _text(opt: Option, origin: Origin, text: str) -> str:
    if len(text) > MAX_TEXT:
        raise refuse(opt, origin, text, f"too long ({len(text)} characters; at most {MAX_TEXT})")
    if _CONTROL.search(text):
        raise refuse(opt, origin, text, "has control characters")
    return text


def _number(opt: Option, origin: Origin, raw: object, number: float) -> int | float:
    rng = opt.range
    assert rng is not None  # declared.py requires a range for every number
    if not (math.isfinite(number) and rng.min <= number <= rng.max):
        raise refuse(opt, origin, raw, f"must be {rng.min} to {rng.max}: {rng.what}")
    return number


def _whole(opt: Option, origin: Origin, raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return int(_number(opt, origin, raw, raw))
    if isinstance(raw, str) and _INT.fullmatch(raw.strip()):
        return int(_number(opt, origin, raw, int(raw.strip())))
    example = opt.default if opt.default is not None else (opt.range.min if opt.range else 1)
    raise refuse(opt, origin, raw, f"not a whole number; use ASCII digits, e.g. {example}")


def _float(opt: Option, origin: Origin, raw: object) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(_number(opt, origin, raw, float(raw)))
    if isinstance(raw, str) and _FLOAT.fullmatch(raw.strip()):
        return float(_number(opt, origin, raw, float(raw.strip())))
    example = opt.default if opt.default is not None else 60
    raise refuse(opt, origin, raw, f"not a number; use e.g. {example}")


def _bool(opt: Option, origin: Origin, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in TRUE + FALSE:
        return raw.strip().lower() in TRUE
    raise refuse(opt, origin, raw, f"not true or false; use one of {', '.join(TRUE + FALSE)}")


def _items(opt: Option, origin: Origin, raw: object) -> tuple[str, ...]:
    """A repeated flag's values as given; a comma list split, spaces around items dropped."""
    if isinstance(raw, str):
        items = [raw] if opt.repeat else raw.split(",")
    elif isinstance(raw, (list, tuple)) and all(isinstance(i, str) for i in raw):
        items = list(raw)
    else:
        raise refuse(opt, origin, raw, "must be a list of strings")
    if len(items) > MAX_ITEMS:
        raise refuse(opt, origin, raw, f"{len(items)} items; at most {MAX_ITEMS}")
    checked = [_text(opt, origin, i) for i in items]
    return tuple(i if opt.repeat else i.strip(" ") for i in checked if i.strip())


def _string(opt: Option, origin: Origin, raw: object) -> str | None:
    if not isinstance(raw, str):
        raise refuse(opt, origin, raw, "must be a string")
    text = _text(opt, origin, raw)
    if opt.optional and not text.strip():
        return None  # an empty value unsets an optional option
    return text


def value(opt: Option, raw: object, origin: Origin) -> Value:
    """The typed value of `raw` for `opt`, or ConfigError naming `origin`.

    `raw` is a string (environment, command line), a bool or list from the command line, or
    any TOML value; the option's type decides what it may be."""
    kind = opt.type
    if kind == "bool":
        return _bool(opt, origin, raw)
    if kind == "int":
        return _whole(opt, origin, raw)
    if kind == "float":
        return _float(opt, origin, raw)
    if kind == "list":
        return _items(opt, origin, raw)
    text = _string(opt, origin, raw)
    if text is None:
        return None
    if kind == "version":
        if not _VERSION.fullmatch(text.strip()):
            raise refuse(opt, origin, raw, "expected a version such as 12.2.0")
        return text.strip()
    if kind == "path":
        return Path(text).expanduser()
    if kind == "choice":
        if text.strip() not in opt.choices:
            raise refuse(opt, origin, raw, f"must be one of {', '.join(opt.choices)}")
        from tfforge.options.typed.enums import ENUMS

        return ENUMS[str(opt.enum)](text.strip())
    return text


def default(opt: Option) -> Value:
    """The option's declared default as its typed value (None or () when it has none)."""
    if opt.default is None:
        return () if opt.type == "list" else (False if opt.type == "bool" else None)
    return value(opt, opt.default, Origin("default", f"default {opt.name}"))
