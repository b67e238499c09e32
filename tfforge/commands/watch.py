"""What a running build shows: the current step and elapsed time, a rich line on a terminal,
plain lines (with a heartbeat) otherwise. A tfforge.docker.run.Watcher."""

from __future__ import annotations

import time

from tfforge import console
from tfforge.docker.progress import short, step_title


class BuildWatcher:
    HEARTBEAT_S = 60.0

    def __init__(self):
        self.start = time.monotonic()
        self.last_plain = self.start
        self.step = "starting"
        self.rich = None
        self.task = None

    def _text(self) -> str:
        # Spinner and clock take ~12 columns; the step gets the rest of one line.
        return short(step_title(self.step), max(20, console.err.width - 14))

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def note(self, text: str) -> None:
        console.info(text)

    def step_started(self, name: str) -> None:
        self.step = name
        if self.rich is None and console.err.is_terminal:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
            # No markup: step names such as "[build 3/4]" are text, not rich tags.
            self.rich = Progress(SpinnerColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.description}", markup=False),
                                 console=console.err, transient=True)
            self.task = self.rich.add_task(self._text(), total=None)
            self.rich.start()
        if self.rich:
            self.rich.update(self.task, description=self._text())
        else:
            self._plain(f"[{self.elapsed():7.1f}s] {short(step_title(name), 110)}")

    def tick(self) -> None:
        if self.rich:
            self.rich.refresh()
        elif time.monotonic() - self.last_plain >= self.HEARTBEAT_S:
            self._plain(f"[{self.elapsed():7.1f}s] still running: "
                        f"{short(step_title(self.step), 90)}")

    def _plain(self, text: str) -> None:
        self.last_plain = time.monotonic()
        console.info(text)

    def close(self) -> None:
        if self.rich:
            self.rich.stop()
            self.rich = None
