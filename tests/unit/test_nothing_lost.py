"""Issue 14, class 2: nothing a user (or an earlier run) wrote is lost or silently replaced."""

from __future__ import annotations

import json

import pytest

from tfforge.errors import TfforgeError
from tfforge.runtime import bench


def test_bench_run_where_every_row_failed_keeps_earlier_results(tmp_path, monkeypatch):
    out = tmp_path / "bench"
    out.mkdir()
    (out / "bench.json").write_text('{"earlier": true}\n')
    (out / "bench.md").write_text("earlier\n")
    plan = bench.make_plan(["w.whl"], out_dir=str(out), quick=True)
    rows = [bench.asdict(bench.Row(f"w {m}", "w", "1", "0", m, 64, error="no such wheel"))
            for m in plan.modes]
    doc = {"machine": {"cpu": "Test CPU", "cores": 2}, "words": 10, "warmup": 1, "repeat": 3,
           "baseline": rows[0]["key"], "rows": rows}
    monkeypatch.setattr(bench, "run", lambda p: doc)
    with pytest.raises(TfforgeError, match="bench-failed.md"):
        bench.bench_command(["w.whl"], as_json=True, out_dir=str(out), quick=True)
    assert json.loads((out / "bench.json").read_text()) == {"earlier": True}
    assert (out / "bench.md").read_text() == "earlier\n"
    assert json.loads((out / "bench-failed.json").read_text())["rows"][0]["error"]
    assert not list(out.glob("*.tmp"))
