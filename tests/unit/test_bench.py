"""bench: the matrix, option checks, baseline, speedups, table and chart (unit tests)."""

from __future__ import annotations

import json

import pytest
from conftest import options_for

from tfforge.commands import bench as bench_cmd
from tfforge.errors import ConfigError
from tfforge.runtime import bench, bench_report


def plan_for(wheels: list[str], **flags):
    """bench's plan for `invoke bench WHEELS --FLAG VALUE ...`."""
    return bench_cmd.bench_plan(options_for("bench", wheels=",".join(wheels), **flags))


def test_full_matrix_is_the_product_of_the_axes(tmp_path):
    plan = plan_for(["w.whl"], out=str(tmp_path))
    assert (plan.threads, plan.onednn, plan.modes, plan.batches) == (
        ("default", "1"),
        ("0", "1"),
        ("eager", "graph", "frozen", "xla"),
        (1, 64),
    )
    cfgs = bench.configs(plan, ["a-1.0", "b-2.0"])
    assert len(cfgs) == 2 * 2 * 2 * 4 * 2
    assert len({(c.key, c.batch) for c in cfgs}) == len(cfgs)


def test_quick_preset_and_explicit_options_win(tmp_path):
    quick = plan_for(["w.whl"], quick=True, out=str(tmp_path))
    assert (quick.threads, quick.onednn, quick.modes, quick.batches) == (
        ("1",),
        ("0", "1"),
        ("graph", "frozen"),
        (64,),
    )
    assert (quick.warmup, quick.repeat, quick.words) == (1, 2, 256)
    mixed = plan_for(["w.whl"], quick=True, modes="xla", batches="1", repeat=3)
    assert (mixed.modes, mixed.batches, mixed.repeat) == (("xla",), (1,), 3)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"modes": "graph,turbo"}, "--modes 'turbo' is not one of eager, graph, frozen, xla"),
        ({"threads": "4"}, "--threads '4' is not one of default, 1"),
        ({"onednn": "2"}, "--onednn '2' is not one of 0, 1"),
        ({"batches": "x"}, "--batches 'x' is not one of"),
        ({"repeat": "0"}, "--repeat '0': must be 1 to 1000"),
        ({"words": "5000"}, "--words '5000': must be 1 to 1024"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_for(["w.whl"], **options)


def test_no_wheel_is_refused():
    with pytest.raises(ConfigError, match="no wheel given"):
        plan_for([])


def test_baseline_by_exact_key_or_unique_words():
    plan = plan_for(["w.whl"], baseline="2.14.1 threads=1 xla")
    keys = [
        "tensorflow-cpu-2.14.1 threads=1 onednn=0 xla",
        "tensorflow-cpu-2.14.1 threads=1 onednn=0 graph",
        "tensorflow-cpu-2.21.0 threads=1 onednn=0 xla",
    ]
    assert bench.find_baseline(plan, keys) == keys[0]
    vague = plan_for(["w.whl"], baseline="threads=1")
    with pytest.raises(ConfigError, match="matches 3 configurations"):
        bench.find_baseline(vague, keys)
    assert bench.find_baseline(plan_for(["w.whl"]), keys) == keys[0]
    with_reference = plan_for(["w.whl"], reference=True)
    assert bench.find_baseline(with_reference, keys) == "g2p-en-numpy"
    with pytest.raises(ConfigError, match="needs --reference"):
        bench.find_baseline(plan_for(["w.whl"], baseline="g2p-en-numpy"), keys)


def _row(key, batch, median, lo=None, hi=None):
    r = bench.Row(key, key.split()[0], "1", "0", key.split()[-1], batch)
    r.words_per_s = {"median": median, "min": lo or median, "max": hi or median}
    r.times_s = [1.0]
    r.mismatches = 0
    return r


def test_speedups_compare_within_a_batch_size():
    rows = [
        _row("a graph", 1, 100),
        _row("a graph", 64, 1000),
        _row("b xla", 1, 250),
        _row("b xla", 64, 500),
    ]
    bench.add_speedups(rows, "a graph")
    assert [r.speedup for r in rows] == [1.0, 1.0, 2.5, 0.5]
    ref = [_row("g2p-en-numpy numpy", 1, 200), _row("b xla", 64, 1000)]
    ref[0].key = bench.REFERENCE
    bench.add_speedups(ref, bench.REFERENCE)
    assert [r.speedup for r in ref] == [1.0, 5.0]  # the reference is every batch's yardstick


def test_stats_are_medians_with_min_and_max():
    assert bench.stats(100, [1.0, 0.5, 2.0]) == {"median": 100.0, "min": 50.0, "max": 200.0}


def test_outputs_table_json_and_png(tmp_path):
    rows = [_row("a graph", 1, 100, 90, 110), _row("a graph", 64, 1000), _row("b xla", 1, 300)]
    failed = bench.Row("c frozen", "c", "1", "0", "frozen", 64, error="TensorFlow died | SIGILL")
    rows.append(failed)
    bench.add_speedups(rows, "a graph")
    doc = {
        "machine": {"cpu": "Test CPU", "cores": 2},
        "words": 10,
        "warmup": 1,
        "repeat": 3,
        "baseline": "a graph",
        "rows": [bench.asdict(r) for r in rows],
    }
    paths = bench_report.write_outputs(doc, tmp_path / "out")
    assert json.loads(paths["json"].read_text())["rows"][2]["speedup"] == 3.0
    table, pivot = paths["markdown"].read_text().split("Side by side")
    body = [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| wheel")]
    assert len(body) == 4
    assert "**1.00x** (baseline)" in body[0] and "| 3.00x |" in body[2]
    assert "error: TensorFlow died / SIGILL" in body[3]  # a pipe would break the table
    assert "| batch | threads | oneDNN | mode | a | b | c |" in pivot
    assert "| 1 | 1 | 0 | graph | 100 (1.00x) | - | - |" in pivot
    assert "| 64 | 1 | 0 | frozen | - | - | failed |" in pivot
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "bench.json",
        "bench.md",
        "bench.png",
    ]


def test_config_env_sets_threads_and_onednn(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    env = bench.config_env("default", "1")
    assert "OMP_NUM_THREADS" not in env and env["TF_ENABLE_ONEDNN_OPTS"] == "1"
    env = bench.config_env("1", "0")
    assert env["OMP_NUM_THREADS"] == "1" and env["TF_ENABLE_ONEDNN_OPTS"] == "0"


def test_specs_split_on_commas_and_expand_globs(tmp_path):
    for name in ("a-1.0-py3-none-any.whl", "b-1.0-py3-none-any.whl"):
        (tmp_path / name).write_bytes(b"x")
    specs = bench.expand_specs([f"{tmp_path}/*.whl,tensorflow-cpu==2.14.1", "x==1"])
    assert specs == [
        str(tmp_path / "a-1.0-py3-none-any.whl"),
        str(tmp_path / "b-1.0-py3-none-any.whl"),
        "tensorflow-cpu==2.14.1",
        "x==1",
    ]
    with pytest.raises(ConfigError, match="matches no file"):
        bench.expand_specs([f"{tmp_path}/*.zip"])
