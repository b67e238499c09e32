"""How every invoke task calls its command: status logs shown, errors as one line + exit code.

tasks.py calls `quit_on_interrupt()` first thing: a Ctrl-C while invoke and tfforge are still
importing ends the process with 130 and one line (invoke itself would exit 1). Each task then
calls `run(command, *args, debug=..., **kwargs)`, which hands Ctrl-C back to Python
(KeyboardInterrupt) so a running command cleans up, then exits 130; nothing else in tfforge
handles exits. An unexpected exception (a bug) becomes one line and exit 4 (InternalError),
never the exit code of a verdict. Domain modules report status through `logging` (loggers
under "tfforge"); `run` shows those lines on stderr through tfforge.console.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from invoke.exceptions import Exit

from tfforge.errors import BuildError, InternalError, Interrupted, TfforgeError
from tfforge.text import plain

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


def _quit(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    os.write(2, b"error: interrupted\n")
    os._exit(Interrupted.exit_code)


def quit_on_interrupt() -> None:
    """Until a command runs, Ctrl-C exits 130 at once (nothing is started that needs cleanup)."""
    signal.signal(signal.SIGINT, _quit)


def run(command: Callable[..., T], *args, debug: bool = False, **kwargs) -> T:
    """Call command; turn TfforgeError (and a stray local OSError) into one line and an exit
    code, and any other exception into the internal-error line and exit 4."""
    debug = debug or os.environ.get("TFFORGE_DEBUG") == "1"
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    show_status_logs()
    try:
        return command(*args, **kwargs)
    except TfforgeError as exc:
        if debug:
            traceback.print_exc()
        detail = getattr(exc, "detail", "") if isinstance(exc, BuildError) else ""
        if detail:
            sys.stderr.write("\n".join(plain(ln) for ln in detail.rstrip("\n").split("\n")) + "\n")
        raise Exit(f"error: {plain(exc)}", code=exc.exit_code)
    except OSError as exc:
        # A local I/O failure nothing below turned into a TfforgeError: still one line, exit 2.
        if debug:
            traceback.print_exc()
        where = f"{plain(exc.filename)}: " if exc.filename else ""
        raise Exit(f"error: {where}{exc.strerror or exc}", code=2)
    except KeyboardInterrupt:
        raise Exit(f"error: {Interrupted('interrupted')}", code=Interrupted.exit_code)
    except Exception as exc:  # noqa: BLE001 - the one place a bug becomes an exit code
        raise Exit(internal_error_line(exc, debug), code=InternalError.exit_code)


def internal_error_line(exc: BaseException, debug: bool) -> str:
    """The one line an unexpected exception becomes (its traceback first under --debug): an
    internal error has its own exit code, so a crash never reads as a verdict."""
    if debug:
        traceback.print_exception(exc)
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    ours = [f for f in frames if "tfforge" in Path(f.filename).parts] or frames
    at = f" at {Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else ""
    return (
        f"error: internal error{at}: {type(exc).__name__}: {plain(str(exc))[:300]} "
        "(a bug in tfforge, not a verdict on the input; rerun with --debug for the traceback "
        "and report it)"
    )
