"""`invoke smoke` end to end with a real TensorFlow wheel from PyPI (integration)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import ROOT, invoke, need

from tfforge.errors import TfforgeError
from tfforge.runtime import g2p, venvs
from tfforge.wheel import fetch as pypi

pytestmark = pytest.mark.integration
TF_PIN = "tensorflow-cpu==2.21.0"


@pytest.fixture(scope="module")
def tf_python():
    try:
        return venvs.venv_python(pypi.fetch(TF_PIN))  # cached: the CLI below reuses it
    except TfforgeError as exc:
        need(False, f"{TF_PIN} could not be fetched or installed: {exc}")


def test_smoke_passes_and_reports_tensorflow(tf_python):
    proc = invoke("smoke", TF_PIN)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "tensorflow: 2.21.0" in out
    assert "1024/1024 golden words match (graph, batch 64)" in out
    assert "words/s (median of 3)" in out
    assert "threads:    OMP_NUM_THREADS=1, intra-op 1, inter-op 1" in out
    assert "oneDNN:" in out and "CPU features this TensorFlow does not use:" in out


def test_smoke_json_document(tf_python):
    proc = invoke("smoke", TF_PIN, "--json", "--mode", "frozen", "--batch", "32", "--repeat", "1")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["matched"] == doc["words"] == 1024
    assert doc["mismatches"] == [] and doc["mode"] == "frozen" and doc["batch"] == 32
    assert doc["tensorflow"]["version"] == "2.21.0"
    assert doc["python"] == str(tf_python) and doc["words_per_s"] > 0
    # smoke ran it here, so verify's static verdict for this host must say it runs
    assert doc["verify"]["runs"] is True and doc["verify"]["missing"] == []


def test_corrupted_golden_fails_naming_the_first_differing_words(tf_python, tmp_path):
    pairs = g2p.read_golden()
    bad = dict(pairs)
    victims = [pairs[10][0], pairs[500][0], pairs[900][0]]
    for word in victims:
        bad[word] = ["ZH"] + bad[word]
    golden = tmp_path / "golden.txt"
    golden.write_text("".join(f"{w}\t{' '.join(p)}\n" for w, p in bad.items()))
    proc = invoke("smoke", TF_PIN, "--golden", str(golden))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"error: 3 of 1024 words differ from the golden phonemes; first: "
        f"{victims[0]} (expected 'ZH "
    )
    assert victims[1] in last and victims[2] in last
    assert f"MISMATCH {victims[0]}: expected" in proc.stdout


def test_current_environment_when_no_wheel_is_given(tf_python):
    """'current' = the TensorFlow of the interpreter running tfforge (here: the venv's)."""
    code = (
        "from tfforge.commands import smoke; from tfforge.options.typed.smoke import SmokeOptions; "
        "smoke.smoke_command(SmokeOptions(smoke_wheel='current', json=True, smoke_repeat=1))"
    )
    proc = subprocess.run(
        [str(tf_python), "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["wheel"] is None and doc["ok"] and doc["python"] == str(tf_python)
