"""How every invoke task calls its command: status logs shown, errors as one line + exit code.

tasks.py calls `run(command, *args, debug=..., **kwargs)`; nothing else in tfforge handles
exits. Domain modules report status through `logging` (loggers under "tfforge"); `run` shows
those lines on stderr through tfforge.console.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Callable, TypeVar

from invoke.exceptions import Exit

from tfforge.errors import BuildError, Interrupted, TfforgeError

T = TypeVar("T")


class _ToConsole(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        from tfforge import console

        show = console.warn if record.levelno >= logging.WARNING else console.info
        show(record.getMessage())


def show_status_logs() -> None:
    """Send tfforge's INFO and WARNING log records to the console (once per process)."""
    logger = logging.getLogger("tfforge")
    if not any(isinstance(h, _ToConsole) for h in logger.handlers):
        logger.addHandler(_ToConsole())
        logger.setLevel(logging.INFO)
        logger.propagate = False


def run(command: Callable[..., T], *args, debug: bool = False, **kwargs) -> T:
    """Call command; turn TfforgeError into a one-line message and its exit code."""
    debug = debug or os.environ.get("TFFORGE_DEBUG") == "1"
    show_status_logs()
    try:
        return command(*args, **kwargs)
    except TfforgeError as exc:
        if debug:
            traceback.print_exc()
        detail = getattr(exc, "detail", "") if isinstance(exc, BuildError) else ""
        if detail:
            sys.stderr.write(detail.rstrip("\n") + "\n")
        raise Exit(f"error: {exc}", code=exc.exit_code)
    except KeyboardInterrupt:
        raise Exit(f"error: {Interrupted('interrupted')}", code=Interrupted.exit_code)
