"""Round trip of the Dockerfile's Bazel command: for generated hostile --bazel-arg values, either
one error line, or bash (the shell BuildKit's RUN uses) reads the rendered command back as
exactly the spec's argv, each user argument one word, in its place, unexpanded."""

from __future__ import annotations

import re
import subprocess

from conftest import make_spec
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tfforge.build import render
from tfforge.errors import ConfigError

SETTINGS = settings(
    max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
SAFE = list("abcxyz019_.,:/@%+=-")
HOSTILE = list("$`'\"\\ ;&|*?~{}()#!\n\t")
names = st.text(alphabet=st.sampled_from(list("abcdefxyz_")), min_size=1, max_size=10)
args = st.builds(
    lambda n, v: f"--{n}={v}" if v else f"--{n}",
    names,
    st.one_of(
        st.text(alphabet=st.sampled_from(SAFE), max_size=20),
        st.text(alphabet=st.sampled_from(SAFE + HOSTILE), max_size=20),
    ),
)


def _bash_words(command: str) -> list[str]:
    proc = subprocess.run(
        ["bash", "-c", 'printf "%s\\0" ' + command],
        capture_output=True,
        timeout=10,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode().split("\0")[:-1]


@SETTINGS
@given(st.lists(args, min_size=1, max_size=4))
@example(["--jobs=2", "--copt=-O2"])
@example(["--copt=$(touch /tmp/pwned)"])
@example(["--define=a=b;curl x|sh"])
def test_bazel_args_reach_the_run_line_as_exactly_those_words(user_args):
    try:
        s = make_spec(bazel_arg=list(user_args))
    except ConfigError as exc:
        assert "\n" not in str(exc)
        event("refused")
        return
    event("rendered")
    text = render.dockerfile(s)
    build = text[text.index("FROM source AS build") :]
    start = build.index("bazel build")
    end = build.index("//tensorflow/tools/pip_package:wheel", start)
    command = build[start:end] + "//tensorflow/tools/pip_package:wheel"
    command = re.sub(r"\$\{TFFORGE_FRESH:\+[^}]*\}", "", command.replace("\\\n", " "))
    words = _bash_words(command)
    assert words == list(s.bazel_command)
    at = words.index(user_args[0])
    assert words[at : at + len(user_args)] == list(user_args)
