"""What a running build shows: console.Progress (the current step and elapsed time; a live line
on a terminal, timed plain lines with a heartbeat otherwise), as a tfforge.docker.run.Watcher."""

from __future__ import annotations

from tfforge import console
from tfforge.docker.progress import step_title


class BuildWatcher(console.Progress):
    """`note`, `tick` and `close` come from console.Progress; steps arrive by BuildKit name."""

    def __init__(self) -> None:
        super().__init__("build")

    def __enter__(self) -> BuildWatcher:
        super().__enter__()
        return self

    def step_started(self, name: str) -> None:
        self.step(step_title(name))
