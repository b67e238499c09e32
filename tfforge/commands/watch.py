"""What a running build shows: console.Progress (the current step and elapsed time; a live line
on a terminal, timed plain lines with a heartbeat otherwise), as a tfforge.docker.run.Watcher."""

from __future__ import annotations

from tfforge import console
from tfforge.docker.progress import step_title


class BuildWatcher(console.Progress):
    """`note`, `tick` and `close` come from console.Progress; steps arrive by BuildKit name."""

    def __init__(self):
        super().__init__("build")

    def step_started(self, name: str) -> None:
        self.step(step_title(name))
