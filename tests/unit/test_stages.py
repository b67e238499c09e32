"""Which stage a BuildKit step is counted in (tfforge.docker.stages): whatever label BuildKit shows
(an index padded to the count's width in a stage of ten or more steps; the label of another
build that shares the step), a step of a rendered Dockerfile is counted in its own stage.

BuildKit's display of a step, as read in real logs: the instruction with continuation lines
joined and its ARG/ENV variables expanded, under `[STAGE I/N]`. The generated labels below
follow that; tests/integration/test_build_e2e.py checks the stages of real builds."""

from __future__ import annotations

import re
from functools import cache

import pytest
from conftest import make_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfforge.build import render
from tfforge.docker import progress, stages

HYPO = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SPECS = {
    "plain": {"tf_version": "2.21.0"},
    # the sysroot route with bazelisk: ten toolchain steps, so BuildKit pads the index
    "sysroot": {"tf_version": "2.20.0", "python_version": "3.9", "runtime_floor": "bullseye"},
    "remote": {"remote_cache": "grpcs://cache.example.com:443"},
    "debian-mkl": {"bazel_provider": "debian", "mkl": True, "target": "x86-64-v2"},
}
_VAR = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
_STEP = re.compile(r"(?:FROM|RUN|COPY|ADD|WORKDIR)\b", re.I)


@cache
def dockerfile(name: str) -> str:
    return render.dockerfile(make_spec(**SPECS[name]))


@cache
def parsed(name: str) -> stages.Stages:
    return stages.parse(dockerfile(name))


def as_shown(line: str) -> str:
    """A FROM step as BuildKit shows it: the image fully qualified, no AS."""
    return "FROM docker.io/" + line.split()[1] if line.startswith("FROM ") else line


def steps_of(text: str) -> list[tuple[str, str]]:
    """(stage, instruction with continuations joined) of each step, in order."""
    out, stage, pending = [], "", ""
    for raw in text.splitlines():
        if not pending and (not raw.strip() or raw.startswith("#")):
            continue
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        line, pending = pending + raw, ""
        if line.startswith("FROM "):
            words = line.split()
            stage = words[3] if len(words) > 3 else stage
            if words[1] == "scratch" or words[1] in ("toolchain", "source", "sysroot"):
                continue  # no step of its own
        if _STEP.match(line):
            out.append((stage, line))
    return out


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_step_under_its_own_label_is_its_stage(name):
    text = dockerfile(name)
    counts: dict[str, int] = {}
    for stage, _ in steps_of(text):
        counts[stage] = counts.get(stage, 0) + 1
    seen: dict[str, int] = {}
    for stage, line in steps_of(text):
        seen[stage] = seen.get(stage, 0) + 1
        width = len(str(counts[stage]))
        label = f"[{stage} {seen[stage]:>{width}}/{counts[stage]}] {as_shown(line)}"
        assert parsed(name).stage(label) == stage, label[:80]


def test_the_sysroot_route_has_ten_toolchain_steps():
    """The case the padded index comes from: label_stage alone must read it."""
    toolchain = [s for s, _ in steps_of(dockerfile("sysroot")) if s == "toolchain"]
    assert len(toolchain) >= 10
    assert stages.label_stage("[toolchain  2/10] COPY apt-pins /tmp/x") == "toolchain"
    assert stages.label_stage("[linux/amd64 build 3/4] RUN make") == "build"
    assert stages.label_stage("[internal] load build definition") == "internal"
    assert stages.label_stage("exporting to client directory") == "export"


expansion = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12).filter(
    lambda s: "\n" not in s
)
foreign = st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True)


@HYPO
@given(
    name=st.sampled_from(sorted(SPECS)),
    pick=st.integers(min_value=0),
    other=foreign,
    index=st.integers(min_value=1, max_value=40),
    total=st.integers(min_value=1, max_value=40),
    values=st.lists(expansion, min_size=8, max_size=8),
    spaces=st.integers(min_value=1, max_value=3),
)
def test_a_step_shown_under_another_builds_label_keeps_its_stage(
    name, pick, other, index, total, values, spaces
):
    """A step shared with another build carries that build's label (its stage name and
    numbering, padded or not); with its variables expanded to anything it stays in its stage."""
    text = dockerfile(name)
    all_steps = steps_of(text)
    stage, line = all_steps[pick % len(all_steps)]
    it = iter(values * 20)
    shown = as_shown(_VAR.sub(lambda m: next(it), line))
    label = f"[{other}{' ' * spaces}{index}/{max(index, total)}] {shown}"
    got = parsed(name).stage(label)
    same = {s for s, ln in all_steps if as_shown(_VAR.sub("", ln)) == as_shown(_VAR.sub("", line))}
    assert got == stage or got in same, (label[:100], got)


@HYPO
@given(label=st.text(max_size=300))
def test_any_label_gets_a_stage(label):
    assert isinstance(parsed("remote").stage(label), str)


def test_steplog_counts_shared_and_padded_steps_in_their_stage():
    """A fresh rebuild's toolchain steps, shown as BuildKit shows them when another build on
    the engine ran them first (its labels) or the stage is long (a padded index)."""
    text = dockerfile("sysroot")
    toolchain = [ln for s, ln in steps_of(text) if s == "toolchain"]
    log = []
    for n, line in enumerate(toolchain[1:4], start=10):
        log += [f"#{n} [toolchain  {n - 8}/10] {line}", f"#{n} DONE 2.0s"]
    for n, line in enumerate(toolchain[4:6], start=20):
        log += [f"#{n} [kitdebs 2/3] {line}", f"#{n} DONE 1.5s"]
    steps = progress.StepLog(stages=stages.parse(text))
    for line in log:
        steps.feed(line)
    assert steps.stage_seconds == {"toolchain": 9.0}
    by_label = progress.StepLog()
    for line in log:
        by_label.feed(line)
    assert by_label.stage_seconds == {"toolchain": 6.0, "kitdebs": 3.0}
