"""The one output channel: rich on a terminal, plain lines otherwise; warnings to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from tfforge.text import plain

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def is_tty() -> bool:
    return out.is_terminal


def print_json(doc: Any) -> None:
    """One JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def _lines(text: str) -> str:
    return "\n".join(plain(line) for line in str(text).split("\n"))


def safe(value: object) -> str:
    """A value from input (a host, model or member name) for a rich markup string or table
    cell: control characters escaped, `[` never read as markup."""
    return escape(plain(value))


def say(line: str) -> None:
    """One plain line of results on stdout: no markup, no wrapping, control characters escaped."""
    out.print(_lines(line), markup=False, soft_wrap=True)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(_lines(message))}", markup=True)


def info(message: str) -> None:
    """Progress/status lines go to stderr so stdout stays clean for --json."""
    err.print(_lines(message), markup=False)
