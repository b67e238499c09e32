"""The one output channel: rich on a terminal, plain lines otherwise; warnings to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def is_tty() -> bool:
    return out.is_terminal


def print_json(doc: Any) -> None:
    """One JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def say(line: str) -> None:
    """One plain line of results on stdout: no markup, no wrapping."""
    out.print(line, markup=False, soft_wrap=True)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", markup=True)


def info(message: str) -> None:
    """Progress/status lines go to stderr so stdout stays clean for --json."""
    err.print(message, markup=False)
