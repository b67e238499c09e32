"""`invoke bench --quick` end to end with a real TensorFlow wheel from PyPI (integration)."""

from __future__ import annotations

import json

import pytest
from conftest import invoke, need

from tfforge.errors import TfforgeError
from tfforge.runtime import venvs
from tfforge.wheel import fetch as pypi

pytestmark = pytest.mark.integration
TF_PIN = "tensorflow-cpu==2.21.0"


def test_quick_bench_writes_json_markdown_and_png(tmp_path):
    try:
        venvs.venv_python(pypi.fetch(TF_PIN))
    except TfforgeError as exc:
        need(False, f"{TF_PIN} could not be fetched or installed: {exc}")
    out = tmp_path / "bench"
    proc = invoke("bench", TF_PIN, "--quick", "--reference", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    rows = doc["rows"]
    assert [r["key"] for r in rows] == [
        "g2p-en-numpy",
        "tensorflow-cpu-2.21.0 threads=1 onednn=0 graph",
        "tensorflow-cpu-2.21.0 threads=1 onednn=0 frozen",
        "tensorflow-cpu-2.21.0 threads=1 onednn=1 graph",
        "tensorflow-cpu-2.21.0 threads=1 onednn=1 frozen",
    ]
    assert [r["batch"] for r in rows] == [1, 64, 64, 64, 64]
    assert doc["baseline"] == "g2p-en-numpy" and rows[0]["speedup"] == 1.0
    for r in rows:
        w = r["words_per_s"]
        assert r["error"] is None and r["mismatches"] == 0, r
        assert len(r["times_s"]) == 2 and 0 < w["min"] <= w["median"] <= w["max"]
        assert r["speedup"] == pytest.approx(w["median"] / rows[0]["words_per_s"]["median"])
    assert doc["words"] == 256 and doc["wheels"][0]["tensorflow"] == "2.21.0"
    assert json.loads((out / "bench.json").read_text())["rows"] == rows
    table = [
        ln
        for ln in (out / "bench.md").read_text().splitlines()
        if ln.startswith("| ") and not ln.startswith("| wheel")
    ]
    assert len(table) == 5 and "**1.00x** (baseline)" in table[0]
    assert all("| ok |" in ln for ln in table)
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "[5/5]" in proc.stderr  # progress lines (plain, not a terminal)
