"""verify on native wheels from PyPI outside TensorFlow (tfforge/data/corpus_wide.toml), checked
against what their own import and a small workload really did under qemu models and natively
(tfforge/data/corpus_truth.toml, recorded by tools/corpus_truth.py): no false pass, no crash, at
most one false refusal in ten cells; a few emulated cells are run again live, and --emulate
settles a cell the static analysis leaves undecided."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import invoke, need, need_tool

from tfforge.files import sha256_file
from tfforge.verify import emulate, truth
from tfforge.wheel import fetch as pypi

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import corpus_table

# Cells run again live: a trap, a CPU guard refusing at import, a clean run (all quick).
LIVE = (
    ("polars-runtime-32==2.1.0", "SandyBridge"),
    ("jaxlib==0.10.2", "Nehalem"),
    ("orjson==3.13.0", "Haswell"),
)


def _fetch(pin: str) -> Path:
    try:
        return pypi.fetch(pin)
    except Exception as exc:
        need(False, f"cannot fetch {pin} from PyPI: {exc}")
        raise


@pytest.fixture(scope="module")
def recorded() -> truth.Truth:
    return truth.load_truth()


@pytest.fixture(scope="module")
def rows(recorded) -> list[truth.WheelCells]:
    out = truth.evaluate(recorded, truth.wide_corpus().wheels, fetch=_fetch, jobs=2)
    print("\n" + corpus_table.wide_markdown(out, recorded))
    return out


@pytest.mark.integration
def test_the_corpus_is_wide_and_fully_recorded(recorded):
    corpus = truth.wide_corpus()
    assert len(corpus.wheels) >= 12
    assert not [w.pin for w in corpus.wheels if "tensorflow" in w.pin]
    for w in corpus.wheels:
        for where in (*corpus.models, truth.NATIVE):
            run = recorded.run(w.pin, where)
            assert run is not None, f"{w.pin} {where}: not recorded (tools/corpus_truth.py)"
        native = recorded.run(w.pin, truth.NATIVE)
        assert native is not None and native.ran, native  # a valid witness on its host
    assert {m.name for m in recorded.models} == {f"qemu-{m}" for m in corpus.models}


@pytest.mark.integration
def test_the_recorded_wheels_are_the_ones_verified(recorded):
    for w in truth.wide_corpus().wheels:
        path = _fetch(w.pin)
        assert {r.sha256 for r in recorded.runs if r.pin == w.pin} == {sha256_file(path)}


@pytest.mark.integration
def test_no_false_pass_and_few_false_refusals(rows):
    counts = truth.tally(rows)
    cells = sum(counts.values())
    table = corpus_table.wide_markdown(rows, truth.load_truth())
    assert counts[truth.FALSE_PASS] == 0, table
    assert counts[truth.FALSE_REFUSAL] <= cells // 10, table
    # the corpus holds both outcomes, and verify agrees on most cells
    assert any(c.truth.ran for r in rows for c in r.cells)
    assert any(not c.truth.ran for r in rows for c in r.cells)
    assert counts[truth.AGREE] >= cells // 2, table


@pytest.mark.integration
def test_wheels_that_cannot_run_are_refused_where_they_trap(rows):
    by = {r.wheel.pin: {c.where: c for c in r.cells} for r in rows}
    polars = by["polars-runtime-32==2.1.0"]  # built for x86-64-v3, traps at import below it
    assert polars["SandyBridge"].answer == "cannot run" and not polars["SandyBridge"].truth.ran
    assert polars["Haswell"].answer == "runs" and polars["Haswell"].truth.ran
    jax = by["jaxlib==0.10.2"]  # AVX at load; its own guard refuses Nehalem at import
    assert jax["Nehalem"].answer == "cannot run" and "avx" in jax["Nehalem"].lacks


@pytest.mark.integration
@pytest.mark.parametrize("pin,model", LIVE)
def test_recorded_cells_again_live(recorded, pin, model):
    need_tool("qemu-x86_64")
    from tfforge.runtime import venvs

    w = truth.wide_corpus().wheel(pin)
    python = venvs.venv_python(_fetch(pin), requirements=w.requires)
    res = emulate.run(python, model, script=w.probe, timeout=truth.wide_corpus().timeout)
    was = recorded.run(pin, model)
    assert was is not None
    assert (res.status, res.signal or "") == (was.status, was.signal), res.detail


@pytest.mark.integration
def test_emulate_settles_an_undecided_cell(rows, tmp_path):
    need_tool("qemu-x86_64")
    recorded = truth.load_truth()
    cell = next(
        (c for r in rows for c in r.cells if c.outcome == truth.OPEN and c.where != truth.NATIVE),
        None,
    )
    need(cell is not None, "no undecided cell left in the wide corpus to settle")
    assert cell is not None
    host = tmp_path / "host.json"
    host.write_text(json.dumps(recorded.machine(cell.where).to_dict()))
    proc = invoke(
        "verify",
        str(_fetch(cell.pin)),
        "--json",
        "--jobs",
        "2",
        "--host",
        str(host),
        "--emulate",
        cell.where,
        timeout=1800,
    )
    doc = json.loads(proc.stdout)
    h = doc["hosts"][0]
    assert h["settled_by"] == cell.where, doc["checks"]
    assert h["answer"] == ("runs" if cell.truth.ran else "cannot run")
    em = doc["emulation"][0]
    assert em["settled"] is True and em["static"]["answer"] == "undecided"
    assert "corpus workload" in doc["probe"]
    assert proc.returncode == (0 if cell.truth.ran else 1), proc.stderr[-2000:]
