"""tasks.py: task help shows the defaults of tfforge/data/defaults.toml (none written in tasks)."""

from __future__ import annotations

import re

import pytest
from conftest import invoke

from tfforge import settings


@pytest.mark.parametrize(
    "task, flag, key",
    [
        ("detect", "gcc-version", "gcc_version"),
        ("smoke", "batch", "smoke_batch"),
        ("smoke", "mode", "smoke_mode"),
        ("bench", "repeat", "bench_repeat"),
        ("bench", "batches", "bench_batches"),
        ("serve", "port", "serve_port"),
        ("publish", "timeout", "publish_timeout"),
        ("render", "tf-version", "tf_version"),
    ],
)
def test_help_shows_the_default_from_defaults_toml(task, flag, key):
    proc = invoke("--help", task)
    assert proc.returncode == 0, proc.stderr
    value = settings.defaults()[key]
    shown = f"{int(value)}" if isinstance(value, float) and value.is_integer() else str(value)
    help_text = " ".join(proc.stdout.split())
    entry = re.search(rf"--{flag}\S* (.*?)(?= -\w|$)", help_text)
    assert entry and f"(default: {shown})" in entry.group(1), help_text
