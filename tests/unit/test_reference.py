"""docs/reference/options.md is generated from the option declarations and up to date."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT
from doc_helpers import task_collection

from tfforge import settings

TOOL = ROOT / "tools" / "make_reference.py"
OPTIONS = ROOT / "docs" / "reference" / "options.md"


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), "--check", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_options_reference_is_current():
    proc = check()
    assert proc.returncode == 0, proc.stderr


def test_a_stale_reference_fails_and_names_the_command(tmp_path):
    stale = tmp_path / "options.md"
    stale.write_bytes(OPTIONS.read_bytes().replace(b"`TFFORGE_GCC_VERSION`", b"`TFFORGE_GCC`"))
    proc = check("--output", str(stale))
    assert proc.returncode == 1
    assert "python tools/make_reference.py" in proc.stderr


def test_the_reference_lists_every_setting_and_every_flag_of_every_command():
    """Held against the sources directly: defaults.toml's keys, and each task's arguments as
    invoke itself builds them."""
    text = OPTIONS.read_text(encoding="utf-8")
    for key in settings.defaults():
        assert re.search(rf"^\| `{key}` \| .*`TFFORGE_{key.upper()}`", text, re.M), key
    sections = re.split(r"^### invoke ", text, flags=re.M)[1:]
    documented = {s.split("\n", 1)[0]: s for s in sections}
    collection = task_collection(ROOT)
    assert set(documented) == set(collection.task_names)
    for name, task in collection.tasks.items():
        for arg in task.get_arguments():
            label = arg.names[0].upper() if arg.positional else f"--{arg.names[0]}"
            assert f"| `{label}`" in documented[name], (name, label)
