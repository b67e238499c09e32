"""Stopping a running build for real.

How a build is stopped (measured on Docker 20.10, see docs/explanation/stopping-builds.md):
the client runs in its own process group; we send it SIGINT, on which it calls the engine's
`POST /build/cancel` and closes its session; the engine then cancels the solve and BuildKit
kills the running step (a runc container that dockerd itself spawned). After the client has
gone we check that the step processes started during this build have left the engine's process
tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass

# Seconds the client gets to send /build/cancel after SIGINT, and the engine to end the steps.
CLIENT_GRACE_S = 15.0
ENGINE_GRACE_S = 20.0


@dataclass(frozen=True)
class EngineStep:
    """A BuildKit step container: a `runc run` child of dockerd (not of containerd)."""

    pid: int
    started: float
    bundle: str
    command: str  # the container's init command line, e.g. "/bin/sh -c make"


def engine_steps() -> list[EngineStep] | None:
    """BuildKit steps running in a dockerd on this machine; None when no dockerd is visible.

    dockerd runs BuildKit's steps with runc itself (its containers run under containerd), so
    a step is a `runc ... run ... <bundle>` child of dockerd; its child is the step's command.
    The process tree is psutil's (the engine may belong to another user: what cannot be read
    is skipped)."""
    import psutil

    daemons = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "dockerd"]
    if not daemons:
        return None
    steps = []
    for daemon in daemons:
        with contextlib.suppress(psutil.Error):
            for child in daemon.children():
                with contextlib.suppress(psutil.Error):
                    words = child.cmdline()
                    if not (
                        words
                        and words[0].endswith("runc")
                        and "run" in words
                        and any("buildkit" in w for w in words)
                    ):
                        continue
                    inits = child.children()
                    init = inits[0].cmdline() if inits else []
                    steps.append(
                        EngineStep(child.pid, child.create_time(), words[-1], " ".join(init))
                    )
    return steps


def _same_command(step: EngineStep, commands: Iterable[str]) -> bool:
    """Whether a step container runs one of our RUN commands (whitespace-insensitive)."""
    have = " ".join(step.command.split())
    return any(have.endswith(" ".join(c.split())) for c in commands if c.strip())


def stop_client(proc: subprocess.Popen[bytes], since: float, running: Iterable[str] = ()) -> str:
    """Stop a running build for real; return what happened, for the error message.

    running: the RUN commands our log shows as started and not finished; they tell our step
    containers from those of other builds on the same engine."""
    commands = list(running)
    before = engine_steps()
    ours = {
        s.pid
        for s in before or []
        if s.started >= since - 1 and (not commands or _same_command(s, commands))
    }
    with contextlib.suppress(ProcessLookupError):
        # SIGINT: the client calls POST /build/cancel and closes its session.
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=CLIENT_GRACE_S)
        how = "the client cancelled the build in the engine"
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        how = "the client did not exit on SIGINT and was killed (its session closed)"
    if before is None:
        return f"{how}; the engine's processes are not visible here to confirm"
    deadline = time.monotonic() + ENGINE_GRACE_S
    left = ours
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = ours & {s.pid for s in engine_steps() or []}
    if left:
        return (
            f"{how}, but {len(left)} of its step(s) still run in the engine after "
            f"{ENGINE_GRACE_S:g}s (runc pids {', '.join(map(str, sorted(left)))}; another "
            f"build may share them)"
        )
    return f"{how}; no step of it is left running in the engine ({len(ours)} stopped)"
