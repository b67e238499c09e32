"""Reading BuildKit's plain progress log: which step runs, per-stage seconds, cache counts, and
the one-line cause of a failed build."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tfforge.docker.client import DEBIAN_CLIENT, engine_error, make_base
from tfforge.docker.stages import Stages, label_stage
from tfforge.errors import BuildError

TAIL_LINES = 30
_HEADER = re.compile(r"^#(\d+) (\[.*|[a-z].*)$")
_STATUS = re.compile(r"^#(\d+) (DONE (\d+(?:\.\d+)?)s|CACHED|CANCELED|ERROR:? ?(.*))$")


@dataclass
class StepLog:
    """Follows BuildKit's plain progress: step names, what runs now, durations per stage.

    `stages`: the build's own Dockerfile (tfforge.docker.stages), so a step is counted in its
    stage there whatever label BuildKit shows; without it, the label's stage."""

    stages: Stages | None = None
    names: dict[str, str] = field(default_factory=dict)
    stage_of: dict[str, str] = field(default_factory=dict)  # step number -> its stage
    current: str = ""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    cached: int = 0
    ran: int = 0
    failed_step: str = ""
    failed_number: str = ""
    failed_reason: str = ""
    outputs: dict[str, deque[str]] = field(default_factory=dict)  # last lines of each step
    running: dict[str, str] = field(default_factory=dict)  # started, not yet finished

    def running_commands(self) -> list[str]:
        """The shell commands of RUN steps now running (as the step container runs them)."""
        return [
            step_title(name).split("] RUN ", 1)[1]
            for name in self.running.values()
            if "] RUN " in name
        ]

    def feed(self, line: str) -> str | None:
        """Take one log line; return a step name when a new step starts."""
        numbered = re.match(r"#(\d+) ", line)
        if numbered:
            self.outputs.setdefault(numbered.group(1), deque(maxlen=TAIL_LINES)).append(line)
        status = _STATUS.match(line)
        if status:
            name = self.names.get(status.group(1), "")
            self.running.pop(status.group(1), None)
            word = status.group(2)
            if word.startswith("DONE"):
                self.ran += 1
                stage = self.stage_of.get(status.group(1)) or label_stage(name)
                self.stage_seconds[stage] = round(
                    self.stage_seconds.get(stage, 0.0) + float(status.group(3)), 3
                )
            elif word == "CACHED":
                self.cached += 1
            elif word.startswith("ERROR") and not self.failed_step:
                self.failed_step, self.failed_reason = name, (status.group(4) or "").strip()
                self.failed_number = status.group(1)
            return None
        header = _HEADER.match(line)
        if header and not line.startswith(f"#{header.group(1)} sha256:"):
            number, name = header.groups()
            if re.match(r"\d+(\.\d+)? ", name):  # a step's own output line "#5 1.23 text"
                return None
            if number not in self.names:
                self.names[number] = name
                self.stage_of[number] = (
                    self.stages.stage(name) if self.stages else label_stage(name)
                )
                self.running[number] = name
                self.current = name
                return name
        return None


# The template's set-up in front of `bazel build` (umask, ~/.bazelrc for a fresh output root, a
# kit or a mirror, the kit build's network check, CPU set), as written and as BuildKit shows it
# with the build args expanded: everything from `RUN umask` up to the bazel command.
_REBUILD_SETUP = re.compile(
    r'\bRUN umask "[^"]*" +&& +.*? +&& +'
    r"(?:\$\{TFFORGE_CPUS:\+[^}]*\} *|taskset -c 0-\$\(\([^)]*\)\) +)?(?=bazel build )"
)


def step_title(name: str) -> str:
    """A step as people read it: 'RUN --mount=... bazel build' -> 'RUN bazel build'."""
    return _REBUILD_SETUP.sub("RUN ", re.sub(r"\bRUN (?:--\S+ +)+", "RUN ", name))


def tail(lines: Sequence[str], count: int = TAIL_LINES) -> list[str]:
    return [line.rstrip("\n") for line in lines[-count:]]


def short(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def classify_failure(
    lines: Sequence[str], returncode: int, steps: StepLog, log_path: Path
) -> BuildError:
    """The one-line cause of a failed `docker build` plus the last log lines as detail.

    For a failed step the detail is that step's own last lines (the compiler's error, not
    BuildKit's summary that repeats the command)."""
    own = steps.outputs.get(steps.failed_number) if steps.failed_step else None
    detail = "\n".join(tail(list(own) if own else lines) + [f"full log: {log_path}"])
    text = "\n".join(lines[-200:])
    missing = re.search(r"load metadata for (\S+)", steps.failed_step) or re.search(
        r"(?:pull access denied for|failed to resolve source metadata for) (\S+?)[,:\s]", text
    )
    if missing and (
        "metadata" in steps.failed_step
        or "pull access denied" in text
        or "failed to resolve source metadata" in text
    ):
        ref = missing.group(1).rstrip(",:")
        ref = re.sub(r"^docker\.io/(library/)?", "", ref)
        return BuildError(
            f"base image {ref!r} is not in the engine and cannot be pulled; " + make_base(ref),
            detail,
        )
    if "Cannot connect to the Docker daemon" in text:
        return BuildError(engine_error(text), detail)
    if "buildx component is missing" in text:
        return BuildError(
            "the docker client needs the buildx plugin for BuildKit; use Debian's "
            f"{DEBIAN_CLIENT} (set TFFORGE_DOCKER)",
            detail,
        )
    # The template's own checks explain themselves on a line "tfforge: what happened; the fix".
    said = [
        m.group(1)
        for m in (re.match(r"#\d+ \d+(?:\.\d+)? tfforge: (.+)", line) for line in own or ())
        if m
    ]
    if said:
        return BuildError(
            f"{said[-1].strip()} (build step "
            f"{short(step_title(steps.failed_step), 60)}; full log {log_path})",
            detail,
        )
    if steps.failed_step:
        code = re.search(r"exit code: (\d+)", steps.failed_reason or text)
        why = f" (exit code {code.group(1)})" if code else ""
        return BuildError(
            f"build step failed: {short(step_title(steps.failed_step))}{why}; "
            f"its last {TAIL_LINES} log lines are shown, full log {log_path}",
            detail,
        )
    return BuildError(f"docker build failed (exit {returncode}); full log {log_path}", detail)
