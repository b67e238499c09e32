"""Every `invoke ...` line in README.md and docs/ parses with the real tasks (invoke's parser).

tests/integration/test_doc_commands_run.py runs the cheap ones.
"""

from __future__ import annotations

import pytest
from conftest import ROOT
from doc_helpers import doc_commands, invoke_argvs, parse_problem, task_collection


@pytest.fixture(scope="module")
def collection():
    return task_collection(ROOT)


def test_every_documented_invoke_command_parses(collection):
    commands = doc_commands(ROOT)
    problems = [
        f"{c.where(ROOT)}\n    {problem}"
        for c in commands
        if (problem := c.shell_error or parse_problem(c.argv, collection, c.program))
    ]
    assert not problems, "documented commands invoke would refuse:\n" + "\n".join(problems)


def test_the_documentation_shows_every_task(collection):
    """The extraction really finds the documented commands: each task appears in some line."""
    shown = {arg for c in doc_commands(ROOT) for arg in c.argv}
    assert set(collection.task_names) <= shown, set(collection.task_names) - shown


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["verify"], "did not receive required positional arguments"),
        (["verify", "w.whl", "extra"], "No idea what 'extra' is"),
        (["match", "hosts/", "--require"], "needed value"),
        (["build", "--avx2", "--bogus"], "No idea what '--bogus' is"),
        (["nosuch"], "No idea what 'nosuch' is"),
        (["--help", "nosuch"], "--help names no task"),
        (["verify", "--help"], "was taken as the value of WHEEL"),
        (["detect", "match", "hosts/"], "several tasks"),
        ([], "no task named"),
    ],
)
def test_wrong_command_lines_are_refused(collection, argv, fragment):
    problem = parse_problem(argv, collection)
    assert problem and fragment in problem, problem


@pytest.mark.parametrize(
    "argv",
    [
        ["detect", "--json"],
        ["-r", "/elsewhere", "detect"],
        ["--help", "render"],
        ["--list"],
        ["verify", "w.whl", "--host", "a.json", "-h", "b.json", "--emulate=SandyBridge"],
        ["render", "--target=haswell", "--bazel-arg=--override_repository=x=/y"],
        ["cache", "serve", "--port", "9091"],
    ],
)
def test_right_command_lines_pass(collection, argv):
    assert parse_problem(argv, collection) is None


def test_the_tfforge_script_has_no_checkout_flags(collection):
    """The console script bundles its tasks: -r (invoke's search root) means nothing to it."""
    assert parse_problem(["--help", "build"], collection, "tfforge") is None
    assert "-r" in (parse_problem(["-r", "/x", "detect"], collection, "tfforge") or "")


@pytest.mark.parametrize(
    "shell, argvs",
    [
        ("bash scripts/setup.sh && .venv/bin/invoke detect", [["invoke", "detect"]]),
        ("tfforge build --mkl --avx2  # installed", [["tfforge", "build", "--mkl", "--avx2"]]),
        (
            "TFFORGE_ROOT=/tmp/p invoke detect --json > out.json 2>&1; echo $?",
            [["invoke", "detect", "--json"]],
        ),
        (
            "invoke verify x.whl#sha256=ab --host a  # a comment",
            [["invoke", "verify", "x.whl#sha256=ab", "--host", "a"]],
        ),
        ("invoke verify w --jobs 2 >log", [["invoke", "verify", "w", "--jobs", "2"]]),
        (
            ". .venv/bin/activate && sudo inv build --target x | tee b.log",
            [["invoke", "build", "--target", "x"]],
        ),
        (
            "invoke publish 'wheels/*.whl' --repository http://h/",
            [["invoke", "publish", "wheels/*.whl", "--repository", "http://h/"]],
        ),
        ("docker info >/dev/null 2>&1 || (dockerd > /tmp/d.log 2>&1 &)", []),
        ("pip install --index-url file://$PWD/wheels/simple/ tensorflow-cpu", []),
    ],
)
def test_shell_lines_yield_their_invoke_commands(shell, argvs):
    assert invoke_argvs(shell) == argvs
