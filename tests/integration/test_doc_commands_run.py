"""The cheap `invoke` commands the documentation shows really run, from a copy of the project.

Cheap: `detect`, `match`, `render`, `index`, `engine`, `build --dry-run`, `matrix` with
`--dry-run` or `--emit` (not `--run`), and every `--help` / `--list` form. Everything else (real
builds, verify, smoke, servers, uploads) is only parsed, by tests/unit/test_doc_commands.py.
`invoke` lines run as `python -m invoke` in the copy, `tfforge` lines as the console script's
entry point (`tfforge.cli:main`) in the copy.

A command must exit 0, unless the documentation shows it failing (an `error:` line among the
output lines of its console block): then it must exit non-zero with an `error:` line.

The copy holds the checkout's files without .git, .venv, builds/ and wheels/ contents; its
`hosts/` holds the tutorial's fleet (the Skylake-SP and Zen 2 snapshots of tests/fixtures/hosts).
Lines written for other machines are run with the fixtures substituted:
- a host file the copy does not have (`hosts/web-1.json`, `web-2.cpuinfo`: any argument or
  comma-list item ending in .json or .cpuinfo that does not exist) becomes a fixture snapshot
  (.json: tests/fixtures/hosts/skylake-sp-8175m.json) or cpuinfo text (.cpuinfo:
  tests/fixtures/cpuinfo/haswell-i7-4770.cpuinfo);
- what `--save` and `--out` would write goes to `scratch/` in the copy, so the fleet in `hosts/`
  stays the tutorial's and nothing is written outside the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, need_engine
from doc_helpers import DocCommand, doc_commands

pytestmark = pytest.mark.integration

FLEET = ("skylake-sp-8175m.json", "zen2-epyc-7742.json")
SNAPSHOT = FIXTURES / "hosts" / "skylake-sp-8175m.json"
CPUINFO = FIXTURES / "cpuinfo" / "haswell-i7-4770.cpuinfo"
OUTPUTS = ("--save", "--out")
ALWAYS = {"detect", "match", "render", "index", "engine"}


def task_of(argv: tuple[str, ...]) -> str | None:
    """The task a command runs, '--help'/'--list' for those forms, None when not cheap."""
    if "--help" in argv or argv[:1] == ("--list",):
        return "--help" if "--help" in argv else "--list"
    task = next((a for a in argv if not a.startswith("-")), None)
    if task in ALWAYS:
        return task
    if task == "build" and "--dry-run" in argv:
        return task
    emits = any(a == "--emit" or a.startswith("--emit=") for a in argv)
    if task == "matrix" and ("--dry-run" in argv or emits) and "--run" not in argv:
        return task
    return None


def substituted(argv: tuple[str, ...], copy: Path) -> list[str]:
    """argv with missing host files replaced by fixtures and outputs sent to scratch/."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if not eq and arg.startswith("-"):
            out.append(arg)
            continue
        if (flag or (argv[i - 1] if i else "")) in OUTPUTS:
            value = str(Path("scratch") / Path(value).name)
        else:
            value = ",".join(_host_file(item, copy) for item in value.split(","))
        out.append(f"{flag}={value}" if eq else value)
    return out


def _host_file(item: str, copy: Path) -> str:
    if item.endswith((".json", ".cpuinfo")) and not (copy / item).exists():
        return str(SNAPSHOT if item.endswith(".json") else CPUINFO)
    return item


ANYWHERE = {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
AT_TOP = {"hosts", "bench", "matrix", "scratch"}  # a user's files in the checkout


def _not_copied(folder: str, names: list[str]) -> set[str]:
    top = Path(folder) == ROOT
    return {n for n in names if n in ANYWHERE or n.endswith(".egg-info") or (top and n in AT_TOP)}


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("doc-commands") / "tfforge"
    shutil.copytree(ROOT, dest, symlinks=True, ignore=_not_copied)
    for folder in ("builds", "wheels"):
        for entry in (dest / folder).iterdir():
            if entry.name != "README.md":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    (dest / "hosts").mkdir()
    for name in FLEET:
        shutil.copy(FIXTURES / "hosts" / name, dest / "hosts" / name)
    (dest / "scratch").mkdir()
    return dest


def cheap_commands() -> dict[tuple[str, ...], DocCommand]:
    """Each distinct cheap command (program and arguments), with the first place the
    documentation shows it."""
    found: dict[tuple[str, ...], DocCommand] = {}
    for command in doc_commands(ROOT):
        if command.argv and task_of(command.argv):
            found.setdefault((command.program, *command.argv), command)
    return found


# What the `tfforge` console script runs ([project.scripts]: tfforge.cli:main), here from the
# copy (python -c puts the working folder first on sys.path).
TFFORGE = "import sys; from tfforge.cli import main; sys.argv[0] = 'tfforge'; main()"


def program(name: str) -> list[str]:
    return (
        [sys.executable, "-c", TFFORGE] if name == "tfforge" else [sys.executable, "-m", "invoke"]
    )


def shows_failure(command: DocCommand) -> bool:
    return any(line.startswith("error:") for line in command.output)


def test_documented_cheap_commands_run(copy):
    commands = cheap_commands()
    tasks = {task_of(key[1:]) for key in commands}
    # The selection is not empty: the tutorial's and the reference's cheap commands are there.
    assert {"detect", "match", "render", "build", "matrix", "--help", "--list"} <= tasks, tasks
    if "engine" in tasks:
        need_engine()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TFFORGE_")}
    env["COLUMNS"] = "100"
    failures = []
    for command in commands.values():
        args = substituted(command.argv, copy)
        proc = subprocess.run(
            [*program(command.program), *args],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        expect_failure = shows_failure(command)
        ok = (
            proc.returncode != 0 and "error:" in proc.stderr
            if expect_failure
            else proc.returncode == 0
        )
        if not ok:
            failures.append(
                f"{command.where(ROOT)}\n    ran: {command.program} {' '.join(args)}\n"
                f"    exit {proc.returncode} (expected {'non-zero' if expect_failure else 0})\n"
                f"    {proc.stderr.strip()[-600:]}"
            )
    assert not failures, f"{len(failures)} of {len(commands)} failed:\n" + "\n".join(failures)


def test_substitution_rules(copy):
    """The rules the docstring states, on the copy itself."""
    assert substituted(("match", "hosts/"), copy) == ["match", "hosts/"]
    assert substituted(("verify", "w.whl", "--host", "hosts/web-1.json"), copy)[-1] == str(SNAPSHOT)
    assert substituted(("detect", "--cpuinfo=web-2.cpuinfo"), copy) == [
        "detect",
        f"--cpuinfo={CPUINFO}",
    ]
    assert substituted(("match", "hosts/zen2-epyc-7742.json,hosts/old.cpuinfo"), copy) == [
        "match",
        f"hosts/zen2-epyc-7742.json,{CPUINFO}",
    ]
    assert substituted(("detect", "--save", "hosts/web-1.json"), copy) == [
        "detect",
        "--save",
        "scratch/web-1.json",
    ]
    assert task_of(("build", "--target", "x")) is None
    assert task_of(("matrix", "hosts/", "--run", "slurm", "--emit", "slurm")) is None
    assert task_of(("--help", "verify")) == "--help"
    assert task_of(("build", "--help")) == "--help"
