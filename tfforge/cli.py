"""The top-level handler every task goes through: one line for errors, exit codes from errors.py."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Callable, TypeVar

from invoke.exceptions import Exit

from tfforge.errors import BuildError, Interrupted, TfforgeError

T = TypeVar("T")


def run(fn: Callable[..., T], *args, debug: bool = False, **kwargs) -> T:
    """Call fn; turn TfforgeError into a one-line message and its exit code."""
    debug = debug or os.environ.get("TFFORGE_DEBUG") == "1"
    try:
        return fn(*args, **kwargs)
    except TfforgeError as exc:
        if debug:
            traceback.print_exc()
        detail = getattr(exc, "detail", "") if isinstance(exc, BuildError) else ""
        if detail:
            sys.stderr.write(detail.rstrip("\n") + "\n")
        raise Exit(f"error: {exc}", code=exc.exit_code)
    except KeyboardInterrupt:
        raise Exit(f"error: {Interrupted('interrupted')}", code=Interrupted.exit_code)
