"""Start-up cost: `invoke detect --json` loads only what it uses (benchmarks/bench_detect.py
measures the time; this test pins down the imports)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

HEAVY = (
    "rich",
    "jinja2",
    "docker",
    "elftools",
    "iced_x86",
    "matplotlib",
    "numpy",
    "cpuinfo",
    "twine",
    "pypiserver",
    "requests",
)


def imported(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `invoke ARGS` under -X importtime; the top-level packages it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "invoke", "-r", str(ROOT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    names = {
        line.split("|")[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    return proc, names


def test_detect_json_imports_no_table_template_engine_or_elf_libraries():
    proc, names = imported("detect", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["host"]["arch"]
    assert {"invoke", "tfforge", "archspec"} <= names  # the measurement saw the imports
    assert names.isdisjoint(HEAVY), sorted(names & set(HEAVY))


def test_task_list_imports_no_command():
    proc, names = imported("--list")
    assert proc.returncode == 0 and "detect" in proc.stdout
    assert "tfforge" in names and names.isdisjoint(HEAVY + ("archspec",))
