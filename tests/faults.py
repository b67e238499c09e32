"""Fault injection for tests: run `invoke` in a process whose writes fail like on a full disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

_RUNNER = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
sys.argv = ["invoke", "-r", sys.argv[2], *sys.argv[3:]]
from invoke.main import program
program.run()
"""


def invoke_disk_full(
    limit: int, *args: str, cwd: Path, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`invoke ARGS` where every file write past `limit` bytes fails (RLIMIT_FSIZE)."""
    return subprocess.run(
        [sys.executable, "-c", _RUNNER, str(limit), str(ROOT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
