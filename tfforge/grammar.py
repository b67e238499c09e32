"""The grammars of names tfforge turns into paths on this machine, one checker each.

A value read from a wheel, a record or the command line is matched whole against its grammar
before any path is built from it: a build id is one path part made of the release, the local
label and 12 hex digits; a file name is one path part with no control characters. Neither can
climb out of the folder it is joined to.
"""

from __future__ import annotations

import re

from tfforge.errors import ConfigError
from tfforge.text import clip

# <tf version>-<local label>-<12 hex>: what BuildSpec.build_id makes (the label is PEP 440
# normalised: lower-case letters, digits and dots).
BUILD_ID = re.compile(r"[0-9][0-9a-z.]{0,40}-[a-z0-9][a-z0-9.]{0,200}-[0-9a-f]{12}")
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=@,~-]{0,254}")


def is_build_id(value: object) -> bool:
    return isinstance(value, str) and BUILD_ID.fullmatch(value) is not None


def build_id(value: object, where: str) -> str:
    """`value` when it is a build id; ConfigError naming `where` otherwise."""
    if not is_build_id(value):
        raise ConfigError(
            f"{where} {clip(repr(value))} is not a build id (e.g. "
            "2.21.0-haswell-0123456789ab: release, label, 12 hex digits); "
            "pass one from `ls builds/`"
        )
    return str(value)


def is_file_name(value: object) -> bool:
    """One plain path part: letters, digits and `_.+=@,~-`, not starting with a dot or dash."""
    return isinstance(value, str) and _FILE_NAME.fullmatch(value) is not None


def file_name(value: object, where: str) -> str:
    """`value` when it is one plain path part (see is_file_name); ConfigError otherwise."""
    if not is_file_name(value):
        raise ConfigError(
            f"{where} {clip(repr(value))} is not a plain file name (letters, digits, "
            "'_.+=@,~-', no folders); fix the record or pass another"
        )
    return str(value)


# Characters a path may have where it is written unquoted into a file another program reads
# (an nginx directive, an #SBATCH line): no space, quote, '#', ';', '{', '}', '$' or '%'.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9._/+@:,=~-]+")


def plain_path(value: object, where: str) -> str:
    """An absolute path made only of plain characters (see _PLAIN_PATH); ConfigError naming
    `where` otherwise, suggesting a folder whose path has none of the others."""
    text = str(value)
    if not text.startswith("/") or not _PLAIN_PATH.fullmatch(text) or "/../" in f"{text}/":
        raise ConfigError(
            f"{where} {clip(repr(text))} must be an absolute path of letters, digits and "
            "._/+@:,=~- only (it is written unquoted into a generated file); use such a folder"
        )
    return text
