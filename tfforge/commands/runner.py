"""How every task calls its command: options resolved, status logs shown, errors as one line
and an exit code.

tasks.py and the `tfforge` script call `quit_on_interrupt()` first thing: a Ctrl-C while invoke
and tfforge are still importing ends the process with 130 and one line (invoke itself would
exit 1). Each task (tfforge/cli.py) then calls `run_task(name, given)`: the task's typed options
come from tfforge.settings.resolve, and its command (tfforge/data/options.toml `run`) gets them
through `run`, which hands Ctrl-C back to Python (KeyboardInterrupt) so a running command cleans
up, then exits 130; nothing else in tfforge handles exits. An unexpected exception (a bug)
becomes one line and exit 4 (InternalError), never the exit code of a verdict. Domain modules
report status through `logging` (loggers under "tfforge"); `run` shows those lines on stderr
through tfforge.console.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from invoke.exceptions import Exit

from tfforge.errors import BuildError, InternalError, Interrupted, TfforgeError
from tfforge.text import plain, scrub, secrets_from_environ

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


def _quit(signum: int, frame: object) -> None:
    os.write(2, b"error: interrupted\n")
    os._exit(Interrupted.exit_code)


def quit_on_interrupt() -> None:
    """Until a command runs, Ctrl-C exits 130 at once (nothing is started that needs cleanup)."""
    signal.signal(signal.SIGINT, _quit)


def _debug_from_environment() -> bool:
    """TFFORGE_DEBUG (the `debug` option's variable) asks for tracebacks even when the options
    themselves cannot be read."""
    return os.environ.get("TFFORGE_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def command_function(name: str) -> Callable[[Any], object]:
    """The function task `name` runs (options.toml: run = "module:function")."""
    from tfforge.options import declared

    cmd = declared.command(name)
    module = importlib.import_module(f"tfforge.commands.{cmd.module}")
    function: Callable[[Any], object] = getattr(module, cmd.function)
    return function


def run_task(name: str, given: Mapping[str, object]) -> object:
    """Task `name` with invoke's arguments: resolve its options, run its command, one error
    line and an exit code on failure (a bad option is exit 2, like any ConfigError)."""

    def call() -> object:
        from tfforge import settings

        return command_function(name)(settings.resolve(name, given))

    return run(call, debug=given.get("debug") is True)


def run(command: Callable[..., T], *args: Any, debug: bool = False, **kwargs: Any) -> T:
    """Call command; a TfforgeError (or a stray local OSError) becomes one line and an exit
    code, any other exception the internal-error line and exit 4."""
    debug = debug or _debug_from_environment()
    secrets_from_environ(os.environ)
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
            lines = scrub(detail).rstrip("\n").split("\n")
            sys.stderr.write("\n".join(plain(ln) for ln in lines) + "\n")
        raise Exit(f"error: {plain(scrub(str(exc)))}", code=exc.exit_code) from None
    except OSError as exc:
        # A local I/O failure nothing below turned into a TfforgeError: still one line, exit 2.
        if debug:
            traceback.print_exc()
        where = f"{plain(scrub(os.fsdecode(exc.filename)))}: " if exc.filename else ""
        raise Exit(f"error: {where}{plain(scrub(str(exc.strerror or exc)))}", code=2) from None
    except KeyboardInterrupt:
        raise Exit(f"error: {Interrupted('interrupted')}", code=Interrupted.exit_code) from None
    except Exit:
        raise  # already one line and an exit code (a nested run)
    except Exception as exc:  # noqa: BLE001 - the one place a bug becomes an exit code
        raise Exit(internal_error_line(exc, debug), code=InternalError.exit_code) from None


def internal_error_line(exc: BaseException, debug: bool) -> str:
    """The one line an unexpected exception becomes (its traceback first under --debug): an
    internal error has its own exit code, so a crash never reads as a verdict."""
    if debug:
        traceback.print_exception(exc)
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    ours = [f for f in frames if "tfforge" in Path(f.filename).parts] or frames
    at = f" at {Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else ""
    return (
        f"error: internal error{at}: {type(exc).__name__}: {plain(scrub(str(exc)))[:300]} "
        "(a bug in tfforge, not a verdict on the input; rerun with --debug for the traceback "
        "and report it)"
    )
