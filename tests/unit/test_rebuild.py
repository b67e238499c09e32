"""Comparing two builds of a wheel, the rebuild record verify reads, and rebuild's input errors
(no engine; the real rebuilds are in tests/integration/test_build_e2e.py)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import invoke
from wheel_samples import raw_wheel

from tfforge.build import dockercmd
from tfforge.commands.rebuild import lines
from tfforge.docker import rebuild, run
from tfforge.errors import ConfigError
from tfforge.files import sha256_file
from tfforge.wheel import compare
from tfforge.wheel import edit as wheel_edit

INFO = "tensorflow_cpu-2.21.0+avx2.dist-info"


def finalized(folder: Path, provenance: dict) -> Path:
    folder.mkdir(parents=True)
    return wheel_edit.finalize(
        raw_wheel(folder / "raw"), folder, local_version="avx2", provenance=provenance
    )


def test_identical_wheels_compare_identical(tmp_path):
    a = finalized(tmp_path / "a", {"id": "x"})
    b = finalized(tmp_path / "b", {"id": "x"})
    result = compare.compare(a, b)
    assert result["identical"] is True and result["differing"] == []
    assert result["sha256"]["original"] == result["sha256"]["rebuild"] == sha256_file(a)


def test_differing_members_are_named_with_both_hashes(tmp_path):
    a = finalized(tmp_path / "a", {"id": "x", "durations": {"build_s": 1.0}})
    b = finalized(tmp_path / "b", {"id": "x", "durations": {"build_s": 2.0}})
    result = compare.compare(a, b)
    assert result["identical"] is False
    names = {m["name"]: m for m in result["differing"]}
    assert set(names) == {f"{INFO}/tfforge.json", f"{INFO}/RECORD"}
    member = names[f"{INFO}/tfforge.json"]
    assert member["status"] == "differs" and member["original"] != member["rebuild"]
    text = "\n".join(lines({**result, "wheel": a.name, "vary": {}, "diffoscope": None, "kept": ""}))
    assert text.startswith(f"NOT reproducible: {a.name}")
    assert f"{INFO}/tfforge.json" in text and "differs" in text


def test_same_members_in_another_zip_are_zip_differences(tmp_path):
    a = finalized(tmp_path / "a", {"id": "x"})
    b = tmp_path / "b" / a.name
    b.parent.mkdir()
    with zipfile.ZipFile(a) as src, zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            info.date_time = (2025, 1, 2, 3, 4, 6)  # what a build without a fixed stamp does
            dst.writestr(info, src.read(info.filename))
    result = compare.compare(a, b)
    assert result["identical"] is False and result["differing"] == []
    assert any(
        "date_time (1980, 1, 1, 0, 0, 0) != (2025, 1, 2, 3, 4, 6)" in z for z in result["zip"]
    )
    only = compare.members(a, finalized(tmp_path / "c", {"id": "x"}))
    assert {m.status for m in only} == {"same"}


def record(builds: Path, build_id: str, **fields) -> None:
    (builds / build_id).mkdir(parents=True, exist_ok=True)
    (builds / build_id / rebuild.RECORD).write_text(json.dumps(fields))


def test_status_reports_inputs_and_recorded_rebuilds(tmp_path):
    builds = tmp_path / "builds"
    doc = {"id": "2.21.0-avx2-abcabcabcabc", "spec": {}}
    none = rebuild.status(doc, "f" * 64, builds)
    assert none["inputs_only"] is True and none["rebuild"] == "none"
    assert "invoke rebuild 2.21.0-avx2-abcabcabcabc" in none["summary"]
    record(builds, doc["id"], identical=True, sha256={"original": "f" * 64}, vary={"TZ": "x"})
    same = rebuild.status(doc, "f" * 64, builds)
    assert same["rebuild"] == "identical" and "with variations" in same["summary"]
    assert rebuild.status(doc, "e" * 64, builds)["rebuild"] == "other wheel"
    record(
        builds,
        doc["id"],
        identical=False,
        sha256={"original": "f" * 64},
        differing=[{"name": "pkg/_ext.so"}],
    )
    differs = rebuild.status(doc, "f" * 64, builds)
    assert differs["rebuild"] == "differs" and "pkg/_ext.so" in differs["summary"]
    old = rebuild.status({**doc, "durations": {"build_s": 3}}, "f" * 64, builds)
    assert old["inputs_only"] is False and old["run_keys"] == ["durations"]


def test_rebuild_refuses_unknown_or_unfinished_builds(tmp_path):
    builds, wheels = tmp_path / "builds", tmp_path / "wheels"
    (builds / "2.21.0-avx2-aaaaaaaaaaaa").mkdir(parents=True)
    for name in ("build.json", "provenance.json"):
        (builds / "2.21.0-avx2-aaaaaaaaaaaa" / name).write_text(
            json.dumps({"id": "2.21.0-avx2-aaaaaaaaaaaa", "wheel": {"name": "gone.whl"}})
        )
    with pytest.raises(
        ConfigError,
        match=r"no build '2.21.0-avx2-bbbbbbbbbbbb' in .*known: "
        r"2.21.0-avx2-aaaaaaaaaaaa \(run `invoke build` first\)",
    ):
        rebuild.rebuild(
            "2.21.0-avx2-bbbbbbbbbbbb", builds_dir=builds, wheels_dir=wheels, timeout_s=9
        )
    with pytest.raises(ConfigError, match="has no apt.lock"):
        rebuild.rebuild(
            "2.21.0-avx2-aaaaaaaaaaaa", builds_dir=builds, wheels_dir=wheels, timeout_s=9
        )
    (builds / "2.21.0-avx2-aaaaaaaaaaaa" / run.APT_LOCK).write_text(
        "# archive-date: x\nzip=3.0-13\n"
    )
    (builds / "2.21.0-avx2-aaaaaaaaaaaa" / "provenance.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"provenance.json does not name the build's wheel"):
        rebuild.rebuild(
            "2.21.0-avx2-aaaaaaaaaaaa", builds_dir=builds, wheels_dir=wheels, timeout_s=9
        )
    (builds / "2.21.0-avx2-aaaaaaaaaaaa" / "provenance.json").write_text(
        json.dumps({"wheel": {"name": "gone.whl"}})
    )
    with pytest.raises(ConfigError, match=r"gone.whl, is gone"):
        rebuild.rebuild(
            "2.21.0-avx2-aaaaaaaaaaaa", builds_dir=builds, wheels_dir=wheels, timeout_s=9
        )
    assert not wheels.exists() and sorted(p.name for p in builds.iterdir()) == [
        "2.21.0-avx2-aaaaaaaaaaaa"
    ]


def test_cli_rebuild_of_unknown_id_is_one_line_exit_2(tmp_path):
    proc = invoke("rebuild", "nope", env={"TFFORGE_ROOT": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: no build 'nope' in {tmp_path / 'builds'}; known: none (run `invoke build` first)"
    ]


def test_copy_carries_inputs_and_pins_under_the_umask(tmp_path):
    build = tmp_path / "builds" / "b1"
    (build / "src" / "pkg").mkdir(parents=True)
    (build / "src" / "pkg" / "a.c").write_text("int a;\n")
    (build / "src" / "link").symlink_to("pkg/a.c")
    for name, text in (
        ("Dockerfile", "FROM x\n"),
        ("build.json", "{}"),
        (run.APT_LOCK, "# archive-date: 20250101T000000Z\nzip=3.0-13\n"),
        ("build.log", "old"),
        ("provenance.json", "{}"),
    ):
        (build / name).write_text(text)
    copy = rebuild.copy_build(build, tmp_path / "vary" / "builds", umask=0o002)
    assert sorted(p.name for p in copy.iterdir()) == [
        "Dockerfile",
        run.APT_PINS,
        "build.json",
        "kit",
        "src",
    ]
    assert list((copy / "kit").iterdir()) == []  # the template's kit mount: empty
    assert (copy / run.APT_PINS).read_text() == (build / run.APT_LOCK).read_text()
    assert (copy / "src" / "link").is_symlink()
    assert (copy / "src" / "pkg").stat().st_mode & 0o777 == 0o775  # made under umask 002
    assert run.apt_packages((copy / run.APT_PINS).read_text()) == ["zip=3.0-13"]
    shutil.rmtree(tmp_path / "vary")


def test_fresh_argv_disables_every_cache_and_sorts_variations():
    argv = dockercmd.docker_argv(
        "/usr/bin/docker",
        Path("/p/builds/b1"),
        fresh=True,
        build_args={"TZ": "Pacific/Kiritimati", "HOSTNAME": "h"},
    )
    assert argv == [
        "/usr/bin/docker",
        "build",
        "--progress=plain",
        "--target",
        "export",
        "--output",
        "type=local,dest=/p/builds/b1/.export",
        "--no-cache",
        "--build-arg",
        "HOSTNAME=h",
        "--build-arg",
        "TFFORGE_FRESH=1",
        "--build-arg",
        "TZ=Pacific/Kiritimati",
        "/p/builds/b1",
    ]
