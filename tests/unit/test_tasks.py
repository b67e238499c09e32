"""The tasks (tfforge/cli.py, built from tfforge/data/options.toml): the flags every earlier
tasks.py had, help with the declared defaults, every documented command line parses, and the
`tfforge` program runs them (in process here; tests/integration/test_install.py runs the
installed console script)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from invoke.parser import Parser

from tfforge import cli, settings
from tfforge.errors import ConfigError
from tfforge.options import declared

# Every task's flags as tasks.py declared them by hand before they were generated: names (with
# invoke's short flags), kinds and positionals must stay, so documented command lines keep working.
BEFORE = json.loads((ROOT / "tests" / "golden" / "task-flags.json").read_text())


def arguments(task: str) -> dict:
    return {a.name: a for a in cli.namespace()[task].get_arguments()}


@pytest.mark.parametrize("task", sorted(BEFORE))
def test_every_earlier_flag_keeps_its_names_kind_and_place(task):
    args = arguments(task)
    for name, was in BEFORE[task]["flags"].items():
        assert name in args, f"{task}: --{name} is gone"
        assert sorted(args[name].names) == was["names"], (task, name)
        assert args[name].kind.__name__ == was["kind"], (task, name)
    positional = [a.name for a in cli.namespace()[task].get_arguments() if a.positional]
    assert positional == BEFORE[task]["positional"]


def test_every_task_and_flag_is_declared_once():
    tasks = set(cli.namespace().task_names)
    assert tasks == set(declared.declarations().commands)
    for cmd in declared.declarations().commands.values():
        assert set(arguments(cmd.name)) == {p.flag for p in cmd.params}


@pytest.mark.parametrize("task", sorted(declared.declarations().commands))
def test_help_shows_the_declared_help_and_defaults(task):
    args = arguments(task)
    for p in declared.command(task).params:
        opt = declared.option(p.option)
        assert args[p.flag].help == cli.help_text(opt, p), (task, p.flag)
        assert args[p.flag].help.startswith(opt.help if p.feature is None else "target ")
        if opt.default not in (None, False, ""):
            value = opt.default
            shown = int(value) if isinstance(value, float) and value.is_integer() else value
            assert args[p.flag].help.endswith(f"(default: {shown})"), (task, p.flag)
        elif opt.default_text:
            assert args[p.flag].help.endswith(f"(default: {opt.default_text})")
    proc = run_cli("--help", task)
    assert proc.returncode == 0, proc.stderr
    assert all(
        f"--{p.flag.replace('_', '-')}" in proc.stdout for p in declared.command(task).params
    )
    assert declared.command(task).help.split()[0] in proc.stdout


# ---- documented command lines ----------------------------------------------------------------
def documented_lines() -> list[str]:
    """`invoke TASK ...` and `tfforge TASK ...` lines of the README and docs/ code blocks
    (comments, `$ ` and leading VAR=value assignments dropped; continuation lines joined)."""
    lines: list[str] = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        block, pending = False, ""
        for raw in path.read_text().splitlines():
            if raw.lstrip().startswith("```"):
                block, pending = not block, ""
                continue
            if not block:
                continue
            line = pending + raw.strip().removeprefix("$ ")
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            words = line.split()
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words.pop(0)
            core = {"--help", "-h", "--list", "-l"}  # invoke's own flags: run_cli tests them
            task_line = len(words) > 1 and words[0] in ("invoke", "tfforge") and words[1][0] != "-"
            if task_line and not core & set(words):
                lines.append(" ".join(["invoke", *words[1:]]))
    return lines


DOCUMENTED = documented_lines()


def test_the_docs_have_command_lines_to_check():
    assert len(DOCUMENTED) > 40
    assert "invoke build --avx2 --fma --mkl" in " | ".join(DOCUMENTED) or any(
        line.startswith("invoke build") for line in DOCUMENTED
    )


@pytest.mark.parametrize("line", DOCUMENTED)
def test_every_documented_command_line_parses_and_resolves(line, tmp_path):
    words = shlex.split(line, comments=True)[1:]
    # the shell's redirection or pipe ends the task's words (`detect --capture-script > f`)
    shell = [i for i, w in enumerate(words) if re.fullmatch(r"[0-9]?(>>?|<|\|)", w)]
    words = words[: shell[0]] if shell else words
    # '...' after the first argument elides flags shown on an earlier line
    words = words[:2] + [w for w in words[2:] if w != "..."]
    parser = Parser(contexts=cli.namespace().to_contexts())
    [parsed] = [c for c in parser.parse_argv(words) if c.name]  # one task per line
    given = parsed.as_kwargs
    try:
        opts = settings.resolve(parsed.name, given, root=tmp_path, environ={})
    except ConfigError as exc:  # only the values the docs leave open ('...', WHEEL)
        pytest.fail(f"{line}: {exc}")
    assert type(opts).__name__.lower() == f"{parsed.name}options"


@pytest.mark.parametrize(
    "line, check",
    [
        ("invoke build --mkl --avx2", lambda o: o.spec.mkl and o.spec.features == ("avx2",)),
        ("invoke detect", lambda o: o.match_gcc_version == "12.2.0" and not o.json),
        ("invoke detect --gcc-version 13.2.0", lambda o: o.match_gcc_version == "13.2.0"),
        ("invoke build --gcc-version 12.2.0", lambda o: o.spec.build_gcc_version == "12.2.0"),
        ("invoke detect -j -g 11.4.0", lambda o: o.json and o.match_gcc_version == "11.4.0"),
        (
            "invoke render --sse4-2 --avx512-vnni",
            lambda o: o.spec.features == ("sse4_2", "avx512_vnni"),
        ),
        ("invoke bench a.whl -h b.whl --quick", lambda o: o.bench_more_wheels == ("b.whl",)),
        ("invoke matrix hosts/ --bazel-arg=--jobs=2", lambda o: o.spec.bazel_args == ("--jobs=2",)),
    ],
)
def test_command_lines_mean_what_they_meant(line, check, tmp_path):
    words = shlex.split(line)[1:]
    [parsed] = [
        c for c in Parser(contexts=cli.namespace().to_contexts()).parse_argv(words) if c.name
    ]
    given = parsed.as_kwargs
    assert check(settings.resolve(parsed.name, given, root=tmp_path, environ={}))


# ---- the program ------------------------------------------------------------------------------
def test_the_tfforge_program_lists_and_runs_the_tasks(tmp_path):
    proc = run_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "tfforge" in proc.stdout
    listed = run_cli("--list", cwd=tmp_path)
    assert listed.returncode == 0
    for task in declared.declarations().commands:
        assert re.search(rf"^\s+{task}\s", listed.stdout, re.M), task
    fixture = ROOT / "tests" / "fixtures" / "cpuinfo" / "haswell-i7-4770.cpuinfo"
    detect = run_cli("detect", "--json", "--cpuinfo", str(fixture), cwd=tmp_path)
    assert detect.returncode == 0, detect.stderr
    assert json.loads(detect.stdout)["recommended"]["target"] == "haswell"
    bad = run_cli("detect", "--gcc-version", "twelve", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --gcc-version 'twelve': expected a version such as 12.2.0"


def test_tasks_py_is_only_the_collection():
    text = (ROOT / "tasks.py").read_text()
    assert "@task" not in text and "def " not in text
    assert Path(cli.__file__).parent.name == "tfforge"
