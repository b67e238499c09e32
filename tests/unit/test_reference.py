"""docs/reference/options.md is generated from the option declarations and up to date."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT
from doc_helpers import task_collection

from tfforge.options import declared

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
    stale.write_bytes(OPTIONS.read_bytes().replace(b"`TFFORGE_TF_VERSION`", b"`TFFORGE_TF`"))
    proc = check("--output", str(stale))
    assert proc.returncode == 1
    assert "python tools/make_reference.py" in proc.stderr


def test_the_reference_lists_every_setting_and_every_flag_of_every_command():
    """Held against the sources directly: the declared settings, and each task's arguments as
    invoke itself builds them from tasks.py."""
    text = OPTIONS.read_text(encoding="utf-8")
    for opt in declared.declarations().options.values():
        if opt.config:
            assert re.search(rf"^\| `{opt.name}` \| `{opt.env}` \|", text, re.M), opt.name
    sections = re.split(r"^### invoke ", text, flags=re.M)[1:]
    documented = {s.split("\n", 1)[0]: s for s in sections}
    collection = task_collection(ROOT)
    assert set(documented) == set(collection.task_names)
    for name, task in collection.tasks.items():
        for arg in task.get_arguments():
            flag = arg.names[0]  # invoke spells python's build_id as build-id
            label = f"`{flag.replace('-', '_').upper()}`" if arg.positional else f"`--{flag}`"
            assert label in documented[name], (name, label)
