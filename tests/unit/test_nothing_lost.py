"""Issue 14, class 2: nothing a user (or an earlier run) wrote is lost or silently replaced."""

from __future__ import annotations

import json

import pytest
from conftest import options_for

from tfforge.commands import bench as bench_cmd
from tfforge.errors import TfforgeError
from tfforge.runtime import bench


def test_bench_run_where_every_row_failed_keeps_earlier_results(tmp_path, monkeypatch):
    out = tmp_path / "bench"
    out.mkdir()
    (out / "bench.json").write_text('{"earlier": true}\n')
    (out / "bench.md").write_text("earlier\n")
    opts = options_for("bench", wheels="w.whl", out=str(out), quick=True, json=True)
    plan = bench_cmd.bench_plan(opts)
    rows = [
        bench.asdict(bench.Row(f"w {m}", "w", "1", "0", m, 64, error="no such wheel"))
        for m in plan.modes
    ]
    doc = {
        "machine": {"cpu": "Test CPU", "cores": 2},
        "words": 10,
        "warmup": 1,
        "repeat": 3,
        "baseline": rows[0]["key"],
        "rows": rows,
    }
    monkeypatch.setattr(bench, "run", lambda p, **kw: doc)
    with pytest.raises(TfforgeError, match="bench-failed.md"):
        bench_cmd.bench_command(opts)
    assert json.loads((out / "bench.json").read_text()) == {"earlier": True}
    assert (out / "bench.md").read_text() == "earlier\n"
    assert json.loads((out / "bench-failed.json").read_text())["rows"][0]["error"]
    assert not list(out.glob("*.tmp"))


# ---- index lists what publish accepts, and says what it skipped -------------------------------
def test_index_lists_only_publishable_wheels_and_warns_about_the_rest(tmp_path):
    import os

    from conftest import invoke
    from publish_helpers import make_wheel

    wheels = tmp_path / "wheels"
    make_wheel(wheels, "good", "1.0")
    make_wheel(wheels, "liar", "1.0", corrupt_record=True)
    os.mkfifo(wheels / "fifo-1.0-py3-none-any.whl")
    (wheels / "dir-1.0-py3-none-any.whl").mkdir()
    (wheels / "gone-1.0-py3-none-any.whl").symlink_to(tmp_path / "nowhere")
    os.close(
        os.open(
            os.path.join(os.fsencode(wheels), b"caf\xe9-1.0-py3-none-any.whl"),
            os.O_CREAT | os.O_WRONLY,
        )
    )
    proc = invoke("index", "--json", cwd=tmp_path, env={"TFFORGE_ROOT": str(tmp_path)}, timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    doc = json.loads(proc.stdout)
    assert [w["filename"] for w in doc["wheels"]] == ["good-1.0-py3-none-any.whl"]
    skipped = {s["filename"]: s["reason"] for s in doc["skipped"]}
    assert "publish would refuse it" in skipped["liar-1.0-py3-none-any.whl"]
    for name in ("fifo", "dir", "gone"):
        assert "not a regular file" in skipped[f"{name}-1.0-py3-none-any.whl"]
        assert f"not indexed: {name}-1.0-py3-none-any.whl" in proc.stderr
    assert "caf\\xe9-1.0" in proc.stderr  # an undecodable name, shown escaped


# ---- build never replaces a different wheel of the same name ---------------------------------
def test_delivering_a_wheel_never_replaces_a_different_one(tmp_path):
    from tfforge.docker import run as engine
    from tfforge.errors import BuildError

    wheels, build_dir, stage = tmp_path / "wheels", tmp_path / "build", tmp_path / "stage"
    for d in (wheels, build_dir, stage):
        d.mkdir()
    name = "tensorflow_cpu-2.21.0+haswell-cp311-cp311-manylinux_2_17_x86_64.whl"
    (wheels / name).write_bytes(b"first build")
    (stage / name).write_bytes(b"second build")
    with pytest.raises(BuildError, match="already exists and is a different wheel"):
        engine._move_into(stage / name, wheels, keep_in=build_dir)
    assert (wheels / name).read_bytes() == b"first build"
    assert (build_dir / name).read_bytes() == b"second build"
    (stage / name).write_bytes(b"first build")  # the same bytes again: fine, nothing changes
    assert engine._move_into(stage / name, wheels) == wheels / name
    assert (wheels / name).read_bytes() == b"first build"
    assert [p.name for p in wheels.iterdir()] == [name]


# ---- publish takes what the user names; crafted members are checked, never skipped -----------
def test_publish_takes_a_literal_file_name_with_brackets(tmp_path):
    from publish_helpers import make_wheel

    from tfforge.publish import upload

    wheel = make_wheel(tmp_path / "wheels[1]", "tfdemo", "1.0")
    assert upload.resolve_wheels([str(wheel)]) == [wheel]
    assert upload.resolve_wheels([str(tmp_path / "wheels[[]1]" / "*.whl")]) == [wheel]


def _with_member(path, name: str, data: bytes, *, link: bool = False, declared: int = 0):
    import stat
    import zipfile

    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    if link:
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(info, data)
    return path


def test_a_symlink_member_with_a_long_target_is_checked(tmp_path):
    from publish_helpers import make_wheel

    from tfforge.wheel.read import structure_problems

    wheel = _with_member(
        make_wheel(tmp_path, "tfdemo", "1.0"),
        "tfdemo/evil.so",
        b"../" * 1500 + b"etc/passwd",
        link=True,
    )
    problems = structure_problems(wheel)
    assert any("evil.so" in p and "symlink" in p for p in problems), problems


def test_a_zip_bomb_member_is_capped_not_expanded(tmp_path):
    import resource

    from publish_helpers import make_wheel

    from tfforge.wheel import read

    wheel = _with_member(
        make_wheel(tmp_path, "tfdemo", "1.0"), "tfdemo/bomb.so", b"\0" * (200 << 20)
    )  # 200 MiB of zeros: ~200 KB deflated
    assert wheel.stat().st_size < 1 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    out = tmp_path / "extract"
    out.mkdir()
    result = read.check(wheel, extract_dir=out)
    assert any("bomb.so" in p and "cap" in p for p in result.problems), result.problems
    assert resource.getrusage(resource.RUSAGE_SELF).ru_utime - before < 0.5  # never inflated
    assert sum(p.stat().st_size for p in out.iterdir()) < 1 << 20
