"""Servers tfforge starts (nginx, pypiserver) end with it, however it ends.

- `die_with_parent`: a `preexec_fn` asking Linux to send the child SIGTERM when tfforge's
  thread that started it dies (prctl PR_SET_PDEATHSIG), even by SIGKILL; it then checks that
  the parent did not die before the request took effect.
- `stopping_signals()`: while a server runs in the foreground, SIGTERM and SIGHUP stop it the
  way Ctrl-C does (KeyboardInterrupt), so the `finally` that stops the child always runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: SIGTERM to this child when its parent dies (Linux; a no-op elsewhere)."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def stopping_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread while inside."""
    saved = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
