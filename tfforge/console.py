"""The one output channel: rich on a terminal, plain lines otherwise; warnings to stderr.

Every line shown here, and every JSON document, passes `text.scrub` (the run's secrets in
every encoding) and then `text.plain` (control characters escaped).

rich is imported the first time something is shown through it (`out`, `err`, `say`, a live
`Progress`), so a `--json` command never loads it. `Progress` is the one step/progress display
of long jobs (build, verify, bench).
"""

from __future__ import annotations

import json
import sys
import time
from functools import cache
from typing import TYPE_CHECKING, Any

from tfforge.text import plain as _plain
from tfforge.text import scrub

if TYPE_CHECKING:  # rich is imported on first use only
    from rich.console import Console
    from rich.progress import Progress as Live
    from rich.progress import ProgressColumn, TaskID


@cache
def _consoles() -> tuple[Console, Console]:
    from rich.console import Console

    return (
        Console(highlight=False, soft_wrap=False),
        Console(stderr=True, highlight=False, soft_wrap=True),
    )


def __getattr__(name: str) -> Console:
    """`console.out` (stdout) and `console.err` (stderr): rich consoles made on first use."""
    if name == "out":
        return _consoles()[0]
    if name == "err":
        return _consoles()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def plain(value: object) -> str:
    """Input text as shown: the run's secrets scrubbed, then control characters escaped."""
    return _plain(scrub(_plain(value) if isinstance(value, bytes) else str(value)))


def is_tty() -> bool:
    return _consoles()[0].is_terminal


def print_json(doc: Any) -> None:
    """One JSON document on stdout, nothing else."""
    text = json.dumps(_scrubbed(doc), indent=2, sort_keys=True, default=str)
    sys.stdout.write(scrub(text) + "\n")


def _scrubbed(doc: Any) -> Any:
    """Every string of a document scrubbed before it is encoded (an echoed form stays masked
    once JSON escapes it again)."""
    if isinstance(doc, str):
        return scrub(doc)
    if isinstance(doc, dict):
        return {_scrubbed(k) if isinstance(k, str) else k: _scrubbed(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [_scrubbed(v) for v in doc]
    return doc
    sys.stdout.flush()


def _lines(text: str) -> str:
    return "\n".join(plain(line) for line in str(text).split("\n"))


def safe(value: object) -> str:
    """A value from input (a host, model or member name) for a rich markup string or table
    cell: control characters escaped, `[` never read as markup."""
    from rich.markup import escape

    return escape(plain(value))


def say(line: str) -> None:
    """One plain line of results on stdout: no markup, no wrapping, control characters escaped."""
    _consoles()[0].print(_lines(line), markup=False, soft_wrap=True)


def warn(message: str) -> None:
    from rich.markup import escape

    _consoles()[1].print(f"[yellow]warning:[/] {escape(_lines(message))}", markup=True)


def info(message: str) -> None:
    """Progress/status lines go to stderr so stdout stays clean for --json."""
    _consoles()[1].print(_lines(message), markup=False)


def _fit(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(1, width - 3)] + "..."


class Progress:
    """The steps of one long job on stderr: a live line on a terminal, plain timed lines otherwise.

    Use as a context manager (or call `close()`, which is idempotent):

    - `step(text)`: what runs now. Plain output prints it as `[  12.3s] text` when the job has
      no `total` (open-ended steps such as a build's); a counted job prints its `done` lines.
    - `done(line)`: a step finished; its result line stays, the count advances
      (plain: `[3/8] line`).
    - `note(line)`: a line that stays above the live one (plain: the line).
    - `update(completed, total)`: amounts such as bytes scanned (`unit="bytes"`); live only.
    - `tick()`: call while waiting; plain output says `still running: <step>` after
      `heartbeat_s` of silence.
    """

    def __init__(
        self,
        title: str,
        total: int | None = None,
        *,
        unit: str = "steps",
        heartbeat_s: float = 60.0,
    ):
        self.title, self.total, self.unit, self.heartbeat_s = title, total, unit, heartbeat_s
        self.count = 0
        self.current = title
        self.started = self.last_line = time.monotonic()
        self._live: Live | None = None
        self._task: TaskID  # set with _live
        if _consoles()[1].is_terminal:
            self._start_live()

    def _start_live(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import (
            Progress as Live,
        )

        # No markup: step names such as "[build 3/4]" are text, not rich tags.
        text = TextColumn("{task.description}", markup=False)
        columns: tuple[ProgressColumn, ...]
        if self.total is None and self.unit != "bytes":  # open-ended: spinner, clock, step
            columns = (SpinnerColumn(), TimeElapsedColumn(), text)
        else:
            amount = DownloadColumn() if self.unit == "bytes" else MofNCompleteColumn()
            columns = (text, BarColumn(), amount, TimeElapsedColumn())
        live = Live(*columns, console=_consoles()[1], transient=True)
        self._task = live.add_task(self._text(), total=self.total)
        live.start()
        self._live = live

    def _text(self) -> str:
        # The other columns take ~14 (spinner, clock) or ~60 (bar, amount, clock) of one line.
        room = 14 if self.total is None and self.unit != "bytes" else 60
        return _fit(self.current, max(20, _consoles()[1].width - room))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _plain(self, line: str) -> None:
        self.last_line = time.monotonic()
        info(line)

    def step(self, text: str) -> None:
        self.current = plain(text)
        if self._live:
            self._live.update(self._task, description=self._text())
        elif self.total is None:
            self._plain(f"[{self.elapsed():7.1f}s] {_fit(text, 110)}")

    def done(self, line: str) -> None:
        self.count += 1
        if self._live:
            self._live.console.print(_lines(line), markup=False, soft_wrap=True)
            self._live.advance(self._task)
        elif self.total is None:
            self._plain(f"[{self.elapsed():7.1f}s] {line}")
        else:
            self._plain(f"[{self.count}/{self.total}] {line}")

    def note(self, line: str) -> None:
        if self._live:
            self._live.console.print(_lines(line), markup=False, soft_wrap=True)
        else:
            self._plain(line)

    def update(self, completed: float, total: float | None = None) -> None:
        if self._live:
            self._live.update(self._task, completed=completed, total=total)

    def tick(self) -> None:
        if self._live:
            self._live.refresh()
        elif time.monotonic() - self.last_line >= self.heartbeat_s:
            self._plain(f"[{self.elapsed():7.1f}s] still running: {_fit(self.current, 90)}")

    def close(self) -> None:
        if self._live:
            self._live.stop()
            self._live = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
