"""The bundled model under a real TensorFlow wheel, and regenerating the committed artifacts.

Integration: downloads tensorflow-cpu 2.21.0 (and 2.14.1 for the converter) from PyPI once
into the tfforge cache and installs them into cached venvs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, need

from tfforge.errors import TfforgeError
from tfforge.runtime import g2p, venvs
from tfforge.wheel import fetch as pypi

pytestmark = pytest.mark.integration
TF_PIN = "tensorflow-cpu==2.21.0"


def tf_venv(pin: str) -> Path:
    """The python of the cached venv for a PyPI TensorFlow pin (skip/fail when unavailable)."""
    try:
        return venvs.venv_python(pypi.fetch(pin))
    except TfforgeError as exc:
        need(False, f"{pin} could not be fetched or installed: {exc}")


@pytest.fixture(scope="module")
def tf_python() -> Path:
    return tf_venv(TF_PIN)


@pytest.mark.parametrize(
    "mode, batch",
    [("graph", 64), ("frozen", 64), ("xla", 64), ("eager", 64), ("xla", 1), ("frozen", 1)],
)
def test_runner_agrees_with_golden_on_every_word(tf_python, mode, batch):
    proc = subprocess.run(
        [
            str(tf_python),
            str(g2p.RUNNER),
            "--words",
            str(g2p.GOLDEN),
            "--mode",
            mode,
            "--batch",
            str(batch),
            "--warmup",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    golden = g2p.read_golden()
    assert doc["tf_version"] == "2.21.0" and doc["words"] == len(golden) == 1024
    assert len(doc["predictions"]) == 1024
    wrong = [
        (w, p, got) for (w, p), got in zip(golden, doc["predictions"], strict=True) if p != got
    ]
    assert wrong == []


def test_converter_regenerates_the_artifact_byte_identically():
    try:
        pypi.fetch("tensorflow-cpu==2.14.1")  # the converter's pinned TensorFlow
    except TfforgeError as exc:
        need(False, f"tensorflow-cpu==2.14.1 could not be fetched: {exc}")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "convert_g2p.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "identical: g2p.pb, MODEL.json, LICENSE.g2p-en" in proc.stdout


def test_golden_file_regenerates_identically_from_g2p_en():
    need(Path("/usr/share/dict/words").is_file(), "Debian's word list: apt-get install wamerican")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_golden.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert proc.stdout.strip() == f"identical: {g2p.GOLDEN}"
