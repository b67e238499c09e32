"""One error hierarchy and one exit-code table for every tfforge command.

Exit codes: 0 success, 1 a check or build failed, 2 unusable input or configuration,
3 undecided (verify: static analysis cannot tell whether a host runs the wheel), 4 internal
error (a bug in tfforge, never a verdict), 130 interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OriginKind = Literal["default", "file", "env", "flag"]


@dataclass(frozen=True)
class Origin:
    """Where an option's value came from: its default, a tfforge.toml key, a TFFORGE_*
    variable or a command-line flag. `where` is how messages name it ('--gcc-version',
    'TFFORGE_BUILD_GCC_VERSION', "tfforge.toml key 'build_gcc_version'")."""

    kind: OriginKind
    where: str

    def __str__(self) -> str:
        return self.where


class TfforgeError(Exception):
    """Base of every error tfforge reports to a person; the message is one line."""

    exit_code = 1


class ConfigError(TfforgeError):
    """Bad input: a flag, a file, a version, a name. Nothing was changed.

    `option` and `origin` name the option whose value was refused and where that value came
    from, when the error is about one option's value (the message already says it)."""

    exit_code = 2

    def __init__(self, message: str, *, option: str | None = None, origin: Origin | None = None):
        super().__init__(message)
        self.option = option
        self.origin = origin


class BuildError(TfforgeError):
    """A build could not run or failed; `detail` carries log lines."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


class VerifyError(TfforgeError):
    """A wheel failed a check."""


class Undecided(TfforgeError):
    """verify: no check failed, but whether some host runs the wheel is undecided."""

    exit_code = 3


class InternalError(TfforgeError):
    """tfforge could not finish: a bug, or a tool it runs failed (a scan worker killed, qemu
    unusable). Reported as such, never as a verdict."""

    exit_code = 4


class PublishError(TfforgeError):
    """An upload or index operation failed."""


class Interrupted(TfforgeError):
    """The user pressed Ctrl-C or a timeout fired; cleanup already happened."""

    exit_code = 130
