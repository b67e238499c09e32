"""Which stage of a build's own Dockerfile a BuildKit step belongs to.

BuildKit's plain progress names a step `[STAGE I/N] INSTRUCTION ...`, and that label is not a
reliable stage: I is padded to N's width in a stage of ten or more steps (`[toolchain  2/10]`),
and a step shared with another build running on the same engine (the same instruction on the
same chain: BuildKit runs it once for both, `--no-cache` builds included) is shown under the
label of the build that started it first, with that build's stage name and numbering. The
instruction text is the same in both, so it is matched against the Dockerfile's own instructions
(BuildKit shows it with the ARG and ENV variables expanded: a variable matches any text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# [STAGE I/N], [ I/N] (an unnamed stage), [PLATFORM STAGE I/N], [internal]
_LABEL = re.compile(
    r"\[\s*(?:[^\s\]/]+/[^\s\]]+\s+)?(?P<stage>[^\s\]/]*)\s*(?:\d+/\d+)?\]\s*(?P<text>.*)", re.S
)
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
_FLAGS = re.compile(r"(?:--\S+\s+)+")
_STEP = ("RUN", "COPY", "ADD", "WORKDIR")  # the instructions that are steps besides FROM
_FROM = re.compile(r"FROM\s+(?:--\S+\s+)*(?P<image>\S+)(?:\s+AS\s+(?P<name>\S+))?", re.I)


def _words(text: str) -> str:
    return " ".join(text.split())


def _without_flags(keyword: str, rest: str) -> str:
    """`RUN --mount=... cmd` -> `RUN cmd` (BuildKit shows the flags; other builds may differ)."""
    rest = _words(rest)
    flags = _FLAGS.match(rest + " ")
    return f"{keyword} {rest[flags.end() :] if flags else rest}".strip()


def _literal(text: str) -> str:
    """A regex for text whose whitespace runs may be any whitespace, at the ends none."""
    body = r"\s+".join(re.escape(w) for w in text.split())
    lead = r"\s*" if text[:1].isspace() else ""
    tail = r"\s*" if text[-1:].isspace() else ""
    return lead + body + tail


def _pattern(instruction: str) -> re.Pattern[str]:
    parts = _VARIABLE.split(instruction)
    return re.compile(".*?".join(_literal(p) for p in parts), re.S)


def _logical_lines(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    out: list[str] = []
    pending = ""
    for raw in dockerfile.splitlines():
        if not pending and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if pending and raw.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        out.append(pending + raw)
        pending = ""
    if pending:
        out.append(pending)
    return out


@dataclass(frozen=True)
class Stages:
    """The stages of one Dockerfile and the instructions that are steps in each."""

    names: tuple[str, ...]
    steps: tuple[tuple[str, re.Pattern[str]], ...]  # (stage, instruction as BuildKit shows it)

    def stage(self, label: str) -> str:
        """The stage of the step BuildKit shows as `label`; BuildKit's own steps are
        'internal' or 'export'; a step matching no instruction keeps its label's stage."""
        shown = label_stage(label)
        match = _LABEL.fullmatch(label)
        if match is None:
            return shown
        keyword, _, rest = match["text"].partition(" ")
        text = _without_flags(keyword.upper(), rest)
        found = [stage for stage, pattern in self.steps if pattern.fullmatch(text)]
        if shown in found or not found:
            return shown
        return found[0]


def parse(dockerfile: str) -> Stages:
    """The stages of a Dockerfile (a stage without AS is named by its index, as BuildKit does)."""
    names: list[str] = []
    steps: list[tuple[str, re.Pattern[str]]] = []
    for line in _logical_lines(dockerfile):
        keyword, _, rest = line.strip().partition(" ")
        word = keyword.upper()
        if word == "FROM":
            found = _FROM.fullmatch(_words(line))
            name = (found and found["name"]) or str(len(names))
            names.append(name)
            image = found["image"] if found else ""
            if image and image != "scratch" and image not in names:
                # BuildKit shows the image fully qualified (docker.io/library/...)
                last = re.escape(image.rsplit("/", 1)[-1])
                steps.append((name, re.compile(rf"FROM\s+(?:\S+/)?{last}")))
        elif word in _STEP and names:
            steps.append((names[-1], _pattern(_without_flags(word, rest))))
    return Stages(tuple(names), tuple(steps))


def label_stage(label: str) -> str:
    """The stage BuildKit's label names: '[build 2/3] RUN ...' and '[build  2/10] RUN ...' ->
    'build'; BuildKit's own steps -> 'internal' / 'export'."""
    match = _LABEL.fullmatch(label)
    if match and match["stage"]:
        return match["stage"]
    if label.startswith("exporting"):
        return "export"
    return "internal"
